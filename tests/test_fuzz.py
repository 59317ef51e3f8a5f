"""Fuzzing the client side: hypothesis over the sans-I/O parser, and hostile frames through the real socket.

Bounded in time (hypothesis ``max_examples``; a fixed frame count through the socket);
``make fuzz`` runs the long version (``bench/fuzz.py``, a million frames).
"""

from __future__ import annotations

import asyncio
import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect as ws_connect

from hybrid_agent.audit.sink import MemoryAuditSink
from hybrid_agent.protocol.events import validate_server_event
from hybrid_agent.protocol.fuzz import hostile_frame
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.session import Action, CallConfig, CallSession, SendClient, SendUpstream
from hybrid_agent.settings import Settings

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
client_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["session.update", "input_audio_buffer.append", "conversation.item.create",
                              "conversation.item.truncate", "response.create", "response.cancel", "bogus"])},
    optional={"event_id": st.text(max_size=20), "audio": st.text(max_size=40), "session": json_values,
              "item": json_values, "item_id": json_values, "audio_end_ms": json_values},
)


def _check(actions: list[Action]) -> None:
    for action in actions:
        assert isinstance(action, Action.__args__)  # type: ignore[attr-defined]
        if isinstance(action, SendClient):
            validate_server_event(json.loads(action.text()))  # whatever the bridge says is valid protocol
        if isinstance(action, SendUpstream):
            json.loads(action.text())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(client_like, min_size=1, max_size=8))
def test_client_events_never_raise_and_answers_are_valid_protocol(events: list[dict]) -> None:
    s = CallSession(CallConfig(call_id="fuzz"))
    s.start(0.0, 0.0)
    for i, event in enumerate(events):
        _check(s.receive_client_frame(json.dumps(event), float(i)))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_arbitrary_frames_never_raise(frame: str | bytes) -> None:
    s = CallSession(CallConfig(call_id="fuzz"))
    s.start(0.0, 0.0)
    _check(s.receive_client_frame(frame, 1.0))


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False))
def test_hostile_frames_never_raise(rng: random.Random) -> None:
    s = CallSession(CallConfig(call_id="fuzz"))
    s.start(0.0, 0.0)
    for i in range(10):
        _check(s.receive_client_frame(hostile_frame(rng), float(i)))


async def test_hostile_frames_through_the_socket_leave_the_call_usable() -> None:
    """2,000 hostile frames on one connection: no close, every bad frame answered, then a normal turn works."""
    audit = MemoryAuditSink()
    settings_ = Settings(upstream="sim", host="127.0.0.1", port=0, bridge_tokens=["t"])
    rng = random.Random(9)
    async with BridgeServer(settings_, audit=audit) as bridge:
        async with ws_connect(f"{bridge.ws_base_url}/realtime", additional_headers={"Authorization": "Bearer t"}, max_size=None) as ws:
            for _ in range(2000):
                frame = hostile_frame(rng)
                await ws.send(frame)
            await ws.send(json.dumps({"type": "response.cancel"}))  # a hostile response.create may still be answering
            try:
                while True:  # drain until quiet
                    validate_server_event(json.loads(await asyncio.wait_for(ws.recv(), 1.0)))
            except TimeoutError:
                pass
            await ws.send(json.dumps({"type": "conversation.item.create", "event_id": "evt_last",
                                      "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}))
            await ws.send(json.dumps({"type": "response.create", "event_id": "evt_go"}))
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 30))
                validate_server_event(event)
                if event["type"] == "response.done" and event["response"]["status"] == "completed":
                    break
        await asyncio.sleep(0.1)
    ends = [r for r in audit.records if type(r).__name__ == "CallEnded"]
    assert [e.outcome for e in ends] == ["completed"]

"""The embedded Realtime simulator: protocol conformance, VAD, faults, scenarios.

Why this module is long: the simulator is the stand-in for the real service in every other test, so
its conformance (each event validated by the openai SDK's types) is proven here, through one raw client.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hybrid_agent.protocol.audio import BYTES_PER_MS
from hybrid_agent.protocol.events import validate_server_event
from hybrid_agent.simulator import (
    RealtimeSimulator,
    Scenario,
    ScenarioError,
    load_scenario,
    shipped_scenarios,
    silence,
    speech,
)
from hybrid_agent.simulator.scenario import AudioSettings, Fault, Turn, default_scenario, parse_scenario

TRANSCRIBE = {"type": "realtime", "audio": {"input": {"transcription": {"model": "gpt-4o-mini-transcribe"}}}}
FAST = AudioSettings(words_per_minute=150, speed=0, chunk_ms=200)


def scenario(**kw: Any) -> Scenario:
    base: dict[str, Any] = {
        "audio": FAST,
        "transcription_delay_ms": 20,
        "greeting": "Hello there, how can I help?",
        "turns": [Turn(user="first question", assistant="first answer is here"),
                  Turn(user="second question", assistant="second answer")],
    }
    base.update(kw)
    return Scenario(**base)


SLOW = AudioSettings(words_per_minute=150, speed=1.0, chunk_ms=100)
LONG = " ".join(["word"] * 60)


class Client:
    """A raw-websockets Realtime client that records what it receives."""

    def __init__(self, ws: Any):
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    async def send(self, type: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"type": type, **fields}))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        ev = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.events.append(ev)
        return ev

    async def until(self, type: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            ev = await self.recv(max(0.01, deadline - time.monotonic()))
            if ev["type"] == type and all(ev.get(k) == v for k, v in match.items()):
                return ev

    async def until_all(self, *types: str, timeout: float = 5.0) -> dict[str, dict[str, Any]]:
        """Receive until each of ``types`` has arrived (in any order); the first of each."""
        got: dict[str, dict[str, Any]] = {}
        while len(got) < len(types):
            ev = await self.recv(timeout)
            if ev["type"] in types:
                got.setdefault(ev["type"], ev)
        return got

    async def append(self, audio: bytes) -> None:
        await self.send("input_audio_buffer.append", audio=base64.b64encode(audio).decode())

    async def speak(self, fmt: str = "audio/pcm", pre: float = 200, ms: float = 600, post: float = 700) -> None:
        await self.append(silence(pre, fmt) + speech(ms, fmt) + silence(post, fmt))

    async def session_update(self, **session: Any) -> dict[str, Any]:
        await self.send("session.update", session={"type": "realtime", **session})
        ev = await self.recv()
        return ev

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]


async def open_client(sim: RealtimeSimulator, **kw: Any) -> Client:
    ws = await connect(sim.ws_url + "/realtime?model=gpt-realtime", max_queue=None, **kw)
    c = Client(ws)
    created = await c.recv()
    assert created["type"] == "session.created"
    return c


def assert_in_order(types: list[str], expected: list[str]) -> None:
    """``expected`` occurs in ``types`` as a subsequence."""
    it = iter(enumerate(types))
    for want in expected:
        for _, got in it:
            if got == want:
                break
        else:
            raise AssertionError(f"{want!r} missing (in order) from {types}")


def response_events(types: list[str], audio: bool = True) -> list[str]:
    body = (["response.output_audio_transcript.delta", "response.output_audio.delta", "response.output_audio.done",
             "response.output_audio_transcript.done"] if audio else
            ["response.output_text.delta", "response.output_text.done"])
    return ["response.created", "response.output_item.added", "conversation.item.added",
            "response.content_part.added", *body, "response.content_part.done", "response.output_item.done",
            "conversation.item.done", "response.done"]


USER_TURN = ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
             "input_audio_buffer.committed", "conversation.item.added", "conversation.item.done"]


# --------------------------------------------------------------------------- conformance


async def run_script(c: Client, sim: RealtimeSimulator, name: str) -> list[dict[str, Any]]:
    """Drive a shipped scenario end to end; returns the response.done events."""
    sc = sim.scenario
    await c.session_update(**{k: v for k, v in TRANSCRIBE.items() if k != "type"})
    dones = []
    await c.send("response.create")  # greeting
    dones.append(await c.until("response.done", timeout=10))
    turn = 0
    while turn < len(sc.turns):
        await c.speak()
        t = sc.turns[turn]
        if name == "barge_in" and turn == 0:
            # interrupt the long answer once some audio has arrived
            for _ in range(3):
                delta = await c.until("response.output_audio.delta")
            heard_ms = sum(len(base64.b64decode(e["delta"])) for e in c.events
                           if e["type"] == "response.output_audio.delta" and e["item_id"] == delta["item_id"]) / 48
            await c.speak(pre=0)
            await c.until("input_audio_buffer.speech_started")
            done = await c.until("response.done")
            assert done["response"]["status"] == "cancelled"
            assert done["response"]["status_details"]["reason"] == "turn_detected"
            dones.append(done)
            await c.send("conversation.item.truncate", item_id=delta["item_id"], content_index=0,
                         audio_end_ms=int(heard_ms))
            truncated = await c.until("conversation.item.truncated")
            assert truncated["audio_end_ms"] == int(heard_ms)
            dones.append(await c.until("response.done", timeout=10))  # the answer to the interruption
            turn += 2
            continue
        done = await c.until("response.done", timeout=10)
        if t.tool_calls:
            call = done["response"]["output"][0]
            assert call["type"] == "function_call" and call["name"] == t.tool_calls[0].name
            assert json.loads(call["arguments"]) == t.tool_calls[0].arguments
            await c.send("conversation.item.create", item={
                "type": "function_call_output", "call_id": call["call_id"],
                "output": json.dumps({"balance": "1,234.56", "currency": "dollars"})})
            await c.until("conversation.item.done")
            await c.send("response.create")
            dones.append(done)
            done = await c.until("response.done", timeout=10)
        dones.append(done)
        turn += 1
    await asyncio.sleep(0.05 + sc.transcription_delay_ms / 1000 + 0.3)  # late transcripts
    while True:
        try:
            await c.recv(timeout=0.1)
        except TimeoutError:
            break
    return dones


def reply_transcript(done: dict[str, Any]) -> str:
    item = done["response"]["output"][0]
    return item["content"][0]["transcript"]


@pytest.mark.parametrize("name", ["default", "banking", "barge_in"])
async def test_shipped_scenario_conformance(name: str) -> None:
    sc = load_scenario(shipped_scenarios()[name])
    if name != "barge_in":
        sc = sc.model_copy(update={"audio": AudioSettings(speed=40, chunk_ms=200)})
    async with RealtimeSimulator(sc, validate=True) as sim:
        c = await open_client(sim)
        dones = await run_script(c, sim, name)
        await c.ws.close()
    assert not sim.validation_errors
    for ev in sim.emitted:  # belt and braces: everything sent validates
        validate_server_event(ev)
    types = c.types()
    assert all(d["response"]["usage"]["total_tokens"] > 0 for d in dones)
    assert reply_transcript(dones[0]) == sc.greeting
    # greeting, then per user turn the VAD sequence and a response
    assert_in_order(types, ["session.created", "session.updated", *response_events(types)])
    for _ in sc.turns:
        assert_in_order(types, USER_TURN + ["response.created"])
    completed = [e for e in c.events if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert [e["transcript"] for e in completed] == [t.user for t in sc.turns]
    if name == "banking":
        assert_in_order(types, ["response.output_item.added", "response.function_call_arguments.delta",
                                "response.function_call_arguments.done", "response.output_item.done",
                                "response.done", "conversation.item.added", "response.created"])
        replies = [reply_transcript(d) for d in dones if d["response"]["output"][0]["type"] == "message"]
        assert "Your checking account balance is 1,234.56 dollars." in replies
        assert reply_transcript(dones[-1]) == sc.turns[-1].assistant
    elif name == "barge_in":
        assert dones[1]["response"]["status"] == "cancelled"
        assert dones[-1]["response"]["status"] == "completed"
        assert reply_transcript(dones[-1]) == sc.turns[1].assistant
        cancelled = dones[1]["response"]["output"][0]
        assert cancelled["status"] == "incomplete"
        assert len(reply_transcript(dones[1]).split()) < len(sc.turns[0].assistant.split())
    else:
        assert [reply_transcript(d) for d in dones[1:]] == [t.assistant for t in sc.turns]


async def test_openai_sdk_client_and_auth() -> None:
    from openai import AsyncOpenAI

    async with RealtimeSimulator(scenario(), validate=True, api_key="sk-right") as sim:
        client = AsyncOpenAI(base_url=sim.base_url, api_key="sk-right")
        async with client.realtime.connect(model="gpt-realtime") as conn:
            ev = await conn.recv()
            assert ev.type == "session.created" and ev.session.model == "gpt-realtime"
            await conn.response.create()
            async for ev in conn:
                if ev.type == "response.done":
                    assert ev.response.status == "completed"
                    break
        for headers in ({"Authorization": "Bearer sk-wrong"}, {}):
            with pytest.raises(InvalidStatus) as info:
                await connect(sim.ws_url + "/realtime?model=x", additional_headers=headers)
            assert info.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as info:
            await connect(sim.ws_url + "/other", additional_headers={"Authorization": "Bearer sk-right"})
        assert info.value.response.status_code == 404


async def test_connections_are_independent() -> None:
    async with RealtimeSimulator(scenario(), validate=True) as sim:
        a, b = await open_client(sim), await open_client(sim)
        for c in (a, b):
            await c.send("response.create")
            assert reply_transcript(await c.until("response.done")) == "Hello there, how can I help?"
        await a.send("response.create")  # greeting already given: default reply
        assert reply_transcript(await a.until("response.done")) == sim.scenario.default_reply


# --------------------------------------------------------------------------- session


async def test_session_update_partial_and_merge() -> None:
    async with RealtimeSimulator(scenario(), validate=True) as sim:
        c = await open_client(sim)
        created = c.events[0]["session"]
        td0 = created["audio"]["input"]["turn_detection"]
        assert td0["type"] == "server_vad" and td0["create_response"] and td0["interrupt_response"]
        assert created["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        ev = await c.session_update(instructions="Be brief.")
        assert ev["type"] == "session.updated"
        s = ev["session"]
        assert s["instructions"] == "Be brief."
        assert s["audio"] == created["audio"] and s["output_modalities"] == ["audio"]
        ev = await c.session_update(tracing="auto")
        assert ev["session"]["tracing"] == "auto" and ev["session"]["instructions"] == "Be brief."
        ev = await c.session_update(audio={"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 300,
                                                                         "create_response": False}},
                                           "output": {"format": {"type": "audio/pcmu"}}})
        s = ev["session"]
        td = s["audio"]["input"]["turn_detection"]
        assert td["silence_duration_ms"] == 300 and td["create_response"] is False
        assert td["threshold"] == td0["threshold"] and td["prefix_padding_ms"] == td0["prefix_padding_ms"]
        assert s["audio"]["output"] == {**created["audio"]["output"], "format": {"type": "audio/pcmu"}}
        ev = await c.session_update(audio={"input": {"turn_detection": None}}, tools=[
            {"type": "function", "name": "get_balance", "parameters": {"type": "object"}}])
        assert ev["session"]["audio"]["input"]["turn_detection"] is None
        assert ev["session"]["tools"][0]["name"] == "get_balance"


@pytest.mark.parametrize(("session", "param"), [
    ({"audio": {"input": {"format": {"type": "audio/wav"}}}}, "session.audio.input.format.type"),
    ({"audio": {"output": {"format": {"type": "audio/pcm", "rate": 16000}}}}, "session.audio.output.format.rate"),
    ({"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 2}}}},
     "session.audio.input.turn_detection.threshold"),
    ({"output_modalities": ["text", "audio"]}, "session.output_modalities"),
])
async def test_session_update_invalid_leaves_session(session: dict[str, Any], param: str) -> None:
    async with RealtimeSimulator(scenario(), validate=True) as sim:
        c = await open_client(sim)
        before = c.events[0]["session"]
        ev = await c.session_update(**session)
        assert ev["type"] == "error" and ev["error"]["param"] == param
        assert ev["error"]["type"] == "invalid_request_error"
        ev = await c.session_update(instructions=before["instructions"])
        assert ev["type"] == "session.updated" and ev["session"] == before
        await c.send("session.update", session={"instructions": "no type"})
        ev = await c.recv()
        assert ev["type"] == "error" and ev["error"]["param"] == "session.type"


async def test_bad_client_events_keep_connection() -> None:
    async with RealtimeSimulator(scenario(), validate=True) as sim:
        c = await open_client(sim)
        await c.send("input_audio_buffer.append", audio="not base64!!", event_id="evt_1")
        ev = await c.recv()
        assert ev["type"] == "error" and ev["error"]["param"] == "audio" and ev["error"]["code"] == "invalid_value"
        assert ev["error"]["event_id"] == "evt_1"
        await c.ws.send("{not json")
        assert (await c.recv())["error"]["code"] == "invalid_json"
        await c.send("no.such.event")
        ev = await c.recv()
        assert ev["type"] == "error" and ev["error"]["param"] == "type"
        await c.send("conversation.item.truncate", item_id="x")  # missing fields
        assert (await c.recv())["type"] == "error"
        await c.send("response.cancel")
        assert (await c.recv())["error"]["code"] == "response_cancel_not_active"
        assert (await c.session_update(instructions="still here"))["type"] == "session.updated"


# --------------------------------------------------------------------------- input audio


@pytest.mark.parametrize("fmt", ["audio/pcm", "audio/pcmu", "audio/pcma"])
async def test_vad_timing(fmt: str) -> None:
    async with RealtimeSimulator(scenario(), validate=True) as sim:
        c = await open_client(sim)
        if fmt != "audio/pcm":
            await c.session_update(audio={"input": {"format": {"type": fmt}}, "output": {"format": {"type": fmt}}})
        # prefix padding 300 ms: speech at 500 ms -> audio_start_ms 200; stop after 200 ms of silence (GA default)
        await c.speak(fmt, pre=500, ms=600, post=700)
        started = await c.until("input_audio_buffer.speech_started")
        stopped = await c.until("input_audio_buffer.speech_stopped")
        committed = await c.until("input_audio_buffer.committed")
        assert abs(started["audio_start_ms"] - 200) <= 20
        assert abs(stopped["audio_end_ms"] - 1300) <= 20
        assert started["item_id"] == stopped["item_id"] == committed["item_id"]
        added = await c.until("conversation.item.added")
        assert added["item"]["role"] == "user" and added["item"]["content"][0]["type"] == "input_audio"
        assert added["item"]["content"][0]["transcript"] is None
        # create_response: the response starts at once, audio in the output format
        delta = await c.until("response.output_audio.delta")
        assert len(base64.b64decode(delta["delta"])) == 200 * BYTES_PER_MS[fmt]
        await c.until("response.done")
        # no prefix padding: start at speech onset (buffer time keeps counting)
        await c.session_update(audio={"input": {"turn_detection": {"type": "server_vad", "prefix_padding_ms": 0}}})
        await c.speak(fmt, pre=300, ms=400, post=600)
        started = await c.until("input_audio_buffer.speech_started")
        assert abs(started["audio_start_ms"] - (1800 + 300)) <= 20


async def test_quiet_audio_is_not_speech() -> None:
    async with RealtimeSimulator(scenario(), validate=True) as sim:
        c = await open_client(sim)
        quiet = bytes(b for _ in range(24000) for b in (10, 0))  # 1 s of a tiny DC offset
        await c.append(quiet)
        await c.session_update(instructions="x")
        assert "input_audio_buffer.speech_started" not in c.types()


async def test_manual_commit_and_clear() -> None:
    async with RealtimeSimulator(scenario(), validate=True) as sim:
        c = await open_client(sim)
        await c.session_update(audio={"input": {"turn_detection": None, "transcription": {"model": "whisper-1"}}})
        await c.send("input_audio_buffer.commit")
        ev = await c.recv()
        assert ev["type"] == "error" and ev["error"]["code"] == "input_audio_buffer_commit_empty"
        await c.speak()
        await c.send("input_audio_buffer.clear")
        assert (await c.recv())["type"] == "input_audio_buffer.cleared"
        await c.send("input_audio_buffer.commit")
        assert (await c.recv())["type"] == "error"  # cleared buffer is empty
        await c.speak()
        await c.send("input_audio_buffer.commit")
        committed = await c.until("input_audio_buffer.committed")
        await c.until("conversation.item.done")
        completed = await c.until("conversation.item.input_audio_transcription.completed")
        assert completed["item_id"] == committed["item_id"] and completed["transcript"] == "first question"
        assert completed["usage"]["type"] == "duration"
        assert "input_audio_buffer.speech_started" not in c.types()
        assert "response.created" not in c.types()  # manual mode: the client asks for responses
        await c.send("response.create")
        assert reply_transcript(await c.until("response.done")) == "first answer is here"


async def test_transcription_delay_failure_and_off() -> None:
    sc = scenario(transcription_delay_ms=200, turns=[Turn(user="not transcribed", assistant="ok0"),
                                                     Turn(user="one two three four", assistant="ok"),
                                                     Turn(user="lost", transcription_fails=True, assistant="ok2")])
    async with RealtimeSimulator(sc, validate=True) as sim:
        c = await open_client(sim)
        await c.speak()  # transcription off: no transcription events
        await c.until("response.done")
        await c.session_update(**{k: v for k, v in TRANSCRIBE.items() if k != "type"})
        await c.speak()
        await c.until_all("response.done", "conversation.item.input_audio_transcription.completed")
        types = c.types()
        # the transcript arrives after the response started (create_response does not wait for it)
        assert types.index("conversation.item.input_audio_transcription.delta") > \
            len(types) - 1 - types[::-1].index("response.created")
        transcripts = [e for e in c.events if e["type"].startswith("conversation.item.input_audio_transcription")]
        assert "not transcribed" not in json.dumps(transcripts)
        assert transcripts[-1]["transcript"] == "one two three four"
        await c.speak()
        failed = await c.until("conversation.item.input_audio_transcription.failed")
        assert failed["error"]["code"]


async def test_transcript_uses_turn_order_and_default() -> None:
    sc = scenario(turns=[Turn(user="only turn", assistant="only answer")])
    async with RealtimeSimulator(sc, validate=True) as sim:
        c = await open_client(sim)
        await c.session_update(**{k: v for k, v in TRANSCRIBE.items() if k != "type"})
        got = []
        for _ in range(2):
            await c.speak()
            both = await c.until_all("conversation.item.input_audio_transcription.completed", "response.done")
            got += [both["conversation.item.input_audio_transcription.completed"], both["response.done"]]
        assert got[0]["transcript"] == "only turn" and reply_transcript(got[1]) == "only answer"
        assert got[2]["transcript"] == sc.default_transcript and reply_transcript(got[3]) == sc.default_reply


# --------------------------------------------------------------------------- conversation


async def test_truncate_and_items() -> None:
    async with RealtimeSimulator(scenario(), validate=True) as sim:
        c = await open_client(sim)
        await c.send("response.create")
        done = await c.until("response.done")
        item = done["response"]["output"][0]
        audio_ms = sum(len(base64.b64decode(e["delta"])) for e in c.events
                       if e["type"] == "response.output_audio.delta") / 48
        assert abs(audio_ms - 6 * 400) < 1  # 6 words at 150 wpm
        await c.send("conversation.item.truncate", item_id=item["id"], content_index=0,
                     audio_end_ms=int(audio_ms) + 100)
        ev = await c.recv()
        assert ev["type"] == "error" and ev["error"]["param"] == "audio_end_ms"
        await c.send("conversation.item.truncate", item_id="item_nope", content_index=0, audio_end_ms=10)
        ev = await c.recv()
        assert ev["type"] == "error" and ev["error"]["param"] == "item_id"
        assert ev["error"]["code"] == "item_truncate_invalid_item_id"
        await c.send("conversation.item.truncate", item_id=item["id"], content_index=0, audio_end_ms=1000)
        ev = await c.recv()
        assert ev == {**ev, "type": "conversation.item.truncated", "item_id": item["id"], "audio_end_ms": 1000}
        await c.send("conversation.item.retrieve", item_id=item["id"])
        got = await c.recv()
        assert got["item"]["content"][0]["transcript"] == ""  # the service deletes the truncated transcript
        # create / delete
        await c.send("conversation.item.create", item={"type": "message", "role": "user",
                                                       "content": [{"type": "input_text", "text": "hi"}]})
        added = await c.recv()
        assert added["type"] == "conversation.item.added" and added["previous_item_id"] == item["id"]
        assert (await c.recv())["type"] == "conversation.item.done"
        await c.send("conversation.item.delete", item_id=added["item"]["id"])
        assert (await c.recv()) == {**c.events[-1], "type": "conversation.item.deleted", "item_id": added["item"]["id"]}
        await c.send("conversation.item.delete", item_id=added["item"]["id"])
        assert (await c.recv())["type"] == "error"
        await c.send("conversation.item.create", item={"type": "function_call_output", "call_id": "call_x",
                                                       "output": "{}"})
        ev = await c.recv()
        assert ev["type"] == "error" and ev["error"]["param"] == "item.call_id"


async def test_response_cancel_and_busy() -> None:
    async with RealtimeSimulator(scenario(greeting=LONG, audio=SLOW), validate=True) as sim:
        c = await open_client(sim)
        await c.send("response.create")
        created = await c.until("response.created")
        await c.until("response.output_audio.delta")
        await c.send("response.create")
        ev = await c.until("error")
        assert ev["error"]["code"] == "conversation_already_has_active_response"
        await c.send("response.cancel", response_id=created["response"]["id"])
        done = await c.until("response.done", timeout=5)  # SLOW audio would take far longer to finish
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
        assert done["response"]["output"][0]["status"] == "incomplete"
        tail = c.types()[c.types().index("response.done") - 5:]
        assert tail[:5] == ["response.output_audio.done", "response.output_audio_transcript.done",
                            "response.content_part.done", "response.output_item.done", "conversation.item.done"]
        await c.send("response.cancel")
        assert (await c.recv())["error"]["code"] == "response_cancel_not_active"


async def test_text_modality() -> None:
    async with RealtimeSimulator(scenario(), validate=True) as sim:
        c = await open_client(sim)
        await c.session_update(output_modalities=["text"])
        await c.send("response.create")
        done = await c.until("response.done")
        assert done["response"]["output"][0]["content"][0]["text"] == "Hello there, how can I help?"
        assert_in_order(c.types(), response_events(c.types(), audio=False))
        assert "response.output_audio.delta" not in c.types()


async def test_audio_pacing_speed() -> None:
    sc = scenario(greeting="one two three four five", audio=AudioSettings(speed=10, chunk_ms=100))
    async with RealtimeSimulator(sc, validate=True) as sim:
        c = await open_client(sim)
        t0 = time.monotonic()
        await c.send("response.create")
        await c.until("response.done")
        elapsed = time.monotonic() - t0
        assert 0.17 < elapsed < 2.0  # 2000 ms of audio: paced (not instant) and faster than real time


# --------------------------------------------------------------------------- faults


async def test_fault_close_after_events() -> None:
    sc = scenario(faults=[Fault(kind="close", after_events=5)])
    async with RealtimeSimulator(sc, validate=True) as sim:
        c = await open_client(sim)
        await c.send("response.create")
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await c.recv()
        assert len(c.events) == 5
        assert info.value.rcvd is not None and info.value.rcvd.code == 1011
        c2 = await open_client(sim)  # new connection: fresh session
        await c2.send("session.update", session={"type": "realtime", "instructions": "x"})
        assert (await c2.recv())["type"] == "session.updated"


async def test_fault_abort_without_close_frame() -> None:
    sc = scenario(faults=[Fault(kind="close", response=0, after_deltas=2, close_code=None)])
    async with RealtimeSimulator(sc, validate=True) as sim:
        c = await open_client(sim)
        await c.send("response.create")
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await c.recv()
        assert info.value.rcvd is None
        deltas = [t for t in c.types() if t == "response.output_audio.delta"]
        assert len(deltas) == 2 and "response.done" not in c.types()


async def test_fault_error_event() -> None:
    sc = scenario(faults=[Fault(kind="error", response=0, after_deltas=1, code="server_error_x")])
    async with RealtimeSimulator(sc, validate=True) as sim:
        c = await open_client(sim)
        await c.send("response.create")
        await c.until("response.done")
        types = c.types()
        i = types.index("error")
        assert types[i - 1] == "response.output_audio.delta" and types[:i].count("response.output_audio.delta") == 1
        err = c.events[i]["error"]
        assert err["type"] == "server_error" and err["code"] == "server_error_x"


async def test_fault_stall() -> None:
    sc = scenario(greeting="one two three four five six",
                  faults=[Fault(kind="stall", response=0, after_deltas=2, ms=400)])
    async with RealtimeSimulator(sc, validate=True) as sim:
        c = await open_client(sim)
        await c.send("response.create")
        stamps = []
        while True:
            ev = await c.recv()
            if ev["type"] == "response.output_audio.delta":
                stamps.append(time.monotonic())
            if ev["type"] == "response.done":
                break
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        assert gaps[1] >= 0.38 and gaps[1] == max(gaps)  # the stall is the one long pause


async def test_session_limit_expires_like_the_service() -> None:
    """At the scenario's limit: session.created said so in expires_at, then an error session_expired, close 1001."""
    async with RealtimeSimulator(scenario(session_limit_s=0.6), validate=True) as sim:
        before = time.time()
        c = await open_client(sim)
        expires_at = c.events[0]["session"]["expires_at"]
        assert before - 1 <= expires_at <= before + 2
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await c.recv(timeout=3)
        err = c.events[-1]
        assert err["type"] == "error" and err["error"]["code"] == "session_expired"
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001
        assert time.time() - before >= 0.55


async def test_outage_fault_refuses_new_connections_for_its_length() -> None:
    sc = scenario(faults=[Fault(kind="close", after_events=1, outage_ms=500)])
    async with RealtimeSimulator(sc, validate=True) as sim:
        c = await open_client(sim)  # closed after its first event, session.created
        with pytest.raises(ConnectionClosed):
            while True:
                await c.recv()
        with pytest.raises(InvalidStatus) as refused:
            await open_client(sim)
        assert refused.value.response.status_code == 503 and sim.refused_during_outage == 1
        await asyncio.sleep(0.6)
        await open_client(sim)  # the outage is over


# --------------------------------------------------------------------------- scenarios


def test_scenario_errors_name_the_file(tmp_path: Any) -> None:
    bad_yaml = tmp_path / "broken.yaml"
    bad_yaml.write_text("turns: [\n")
    with pytest.raises(ScenarioError, match="broken.yaml.*invalid YAML"):
        load_scenario(bad_yaml)
    extra = tmp_path / "extra.yaml"
    extra.write_text("name: x\nturns:\n  - user: hi\n    asistant: typo\n")
    with pytest.raises(ScenarioError, match=r"extra.yaml: turns\.0\.asistant"):
        load_scenario(extra)
    with pytest.raises(ScenarioError, match="missing.yaml"):
        load_scenario(tmp_path / "missing.yaml")
    with pytest.raises(ScenarioError, match="exactly one trigger"):
        parse_scenario("faults:\n  - kind: stall\n", "f.yaml")
    with pytest.raises(ScenarioError, match="mapping"):
        parse_scenario("- a\n", "f.yaml")
    assert isinstance(ScenarioError("x"), ValueError)


def test_shipped_scenarios_load() -> None:
    shipped = shipped_scenarios()
    assert {"default", "banking", "barge_in"} <= set(shipped)
    assert default_scenario().name == "default"
    banking = load_scenario(shipped["banking"])
    assert [t.tool_calls[0].name for t in banking.turns if t.tool_calls] == ["verify_identity", "get_balance"]


def test_synth() -> None:
    from hybrid_agent.protocol.audio import rms, to_pcm16

    for fmt in ("audio/pcm", "audio/pcmu", "audio/pcma"):
        s = speech(100, fmt)
        assert len(s) == 100 * BYTES_PER_MS[fmt]
        assert rms(to_pcm16(s, fmt)) > 4000
        assert rms(to_pcm16(silence(100, fmt), fmt)) < 10


async def test_validate_catches_invalid_events(monkeypatch: pytest.MonkeyPatch) -> None:
    from hybrid_agent.simulator import SimulatorValidationError
    from hybrid_agent.simulator.session import SimSession

    monkeypatch.setattr(SimSession, "_usage", lambda self, output: {"total_tokens": "lots"})
    sim = RealtimeSimulator(scenario(), validate=True)
    await sim.start()
    c = await open_client(sim)
    await c.send("response.create")
    with pytest.raises(ConnectionClosed) as info:
        await c.until("response.done")
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011
    assert "response.done" not in c.types()
    with pytest.raises(SimulatorValidationError, match="response.done"):
        await sim.stop()


async def test_serve_simulator_announces(capsys: pytest.CaptureFixture[str]) -> None:
    from hybrid_agent.simulator import serve_simulator

    task = asyncio.create_task(serve_simulator("127.0.0.1", 0, scenario()))
    for _ in range(100):
        await asyncio.sleep(0.01)
        out = capsys.readouterr().out
        if out:
            break
    assert out.startswith("simulator listening on ws://127.0.0.1:") and out.endswith("/v1/realtime\n")
    port = int(out.rsplit(":", 1)[1].split("/")[0])
    async with connect(f"ws://127.0.0.1:{port}/v1/realtime?model=m") as ws:
        assert json.loads(await ws.recv())["session"]["model"] == "m"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_unknown_parameters_are_rejected_like_the_service() -> None:
    """A beta-era field anywhere in an event gets unknown_parameter and the whole event is dropped."""
    async with RealtimeSimulator(scenario(), validate=True) as sim:
        c = await open_client(sim)
        await c.send("session.update", session={"type": "realtime", "instructions": "new",
                                                "input_audio_transcription": {"model": "whisper-1"}})
        ev = await c.recv()
        assert ev["type"] == "error" and ev["error"]["code"] == "unknown_parameter"
        assert ev["error"]["param"] == "session.input_audio_transcription"
        await c.send("response.create", response={"modalities": ["text"]})
        ev = await c.recv()
        assert ev["error"]["code"] == "unknown_parameter" and ev["error"]["param"] == "response.modalities"
        got = await c.session_update(instructions="kept")  # a valid update still works
        assert got["session"]["instructions"] == "kept"


async def test_truncating_user_audio_or_silence_is_unsupported() -> None:
    async with RealtimeSimulator(scenario(), validate=True) as sim:
        c = await open_client(sim)
        await c.send("conversation.item.create", item={"type": "message", "role": "user",
                                                       "content": [{"type": "input_text", "text": "hi"}]})
        added = await c.until("conversation.item.added")
        await c.send("conversation.item.truncate", item_id=added["item"]["id"], content_index=0, audio_end_ms=0)
        ev = await c.until("error")
        assert ev["error"]["code"] == "unsupported_content_type"

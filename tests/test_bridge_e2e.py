"""End to end: unmodified openai-SDK client -> bridge (real server socket) -> embedded simulator."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import websockets
from openai import AsyncOpenAI
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from hybrid_agent.audit.records import (
    CallEnded,
    CallStarted,
    DisclosureRecord,
    PolicyDecisionRecord,
    ToolCallRecord,
    ToolResultRecord,
    TurnInterrupted,
    TurnRecord,
)
from hybrid_agent.audit.sink import MemoryAuditSink
from hybrid_agent.caller import ScriptedCaller
from hybrid_agent.demo import DEMO_TOOLS, caller_turns
from hybrid_agent.protocol.events import validate_server_event
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.simulator.scenario import load_scenario, parse_scenario, shipped_scenarios
from hybrid_agent.simulator.server import RealtimeSimulator
from hybrid_agent.simulator.synth import silence, speech

from bridge_helpers import TOKEN, bridge_settings

ROOT = Path(__file__).resolve().parents[1]


async def run_scenario(name: str | Path, **settings: object) -> tuple[MemoryAuditSink, list[dict]]:
    path = shipped_scenarios()[name] if isinstance(name, str) else name
    audit = MemoryAuditSink()
    async with BridgeServer(bridge_settings(sim_scenario=path, **settings), audit=audit) as bridge:
        client = AsyncOpenAI(api_key=TOKEN, websocket_base_url=bridge.ws_base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            caller = ScriptedCaller(conn, caller_turns(load_scenario(path)), tools=DEMO_TOOLS, playback_rate=2.0)
            log = await caller.run()
        await client.close()
        await asyncio.sleep(0.1)  # let the bridge see the close
    return audit, log.events


async def test_banking_call_with_function_call_round_trip() -> None:
    audit, events = await run_scenario("banking")
    for event in events:  # everything the client got through the bridge is valid Realtime
        validate_server_event(event)
    types = [e["type"] for e in events]
    for required in (
        "session.updated",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "conversation.item.input_audio_transcription.completed",
        "response.output_audio_transcript.delta",
        "response.output_audio.delta",
        "response.function_call_arguments.done",
        "response.done",
    ):
        assert required in types, required
    transcripts = [e["transcript"] for e in events if e["type"] == "response.output_audio_transcript.done"]
    assert any("1,234.56" in t for t in transcripts), transcripts  # the reply used the tool's output

    records = audit.records
    verify, balance = [r for r in records if isinstance(r, ToolCallRecord)]
    assert verify.name == "verify_identity" and balance.name == "get_balance"
    assert json.loads(balance.arguments) == {"account_id": "checking"}
    results = {r.tool_call_id: r for r in records if isinstance(r, ToolResultRecord)}
    assert "1,234.56" in results[balance.tool_call_id].output
    assert json.loads(results[verify.tool_call_id].output)["verification_level"] == "basic"
    turns = sorted((r for r in records if isinstance(r, TurnRecord)), key=lambda r: r.seq)
    users = [t.text for t in turns if t.role == "user"]
    assert users == [t.user for t in load_scenario(shipped_scenarios()["banking"]).turns]
    assert turns[0].role == "assistant"  # the greeting came first
    assert [r.seq for r in turns] == list(range(1, len(turns) + 1)) or len({r.seq for r in turns}) == len(turns)
    assert isinstance(records[-1], CallEnded) and records[-1].outcome == "completed"


async def test_barge_in_truncates_at_heard_audio() -> None:
    audit, events = await run_scenario("barge_in")
    truncated = [e for e in events if e["type"] == "conversation.item.truncated"]
    assert len(truncated) == 1
    cancelled = [e for e in events if e["type"] == "response.done" and e["response"]["status"] == "cancelled"]
    assert cancelled, "the interrupted response was not cancelled"
    [cut] = [r for r in audit.records if isinstance(r, TurnInterrupted)]
    [turn] = [r for r in audit.records if isinstance(r, TurnRecord) and r.item_id == cut.item_id]
    assert cut.audio_end_ms == truncated[0]["audio_end_ms"]
    assert cut.heard_text and turn.text.startswith(cut.heard_text)
    assert len(cut.heard_text) < len(turn.text)  # the caller did not hear it all
    # the interruption was answered
    users = [r.text for r in sorted(audit.records, key=lambda r: getattr(r, "seq", 0)) if isinstance(r, TurnRecord) and r.role == "user"]
    assert users[-1] == load_scenario(shipped_scenarios()["barge_in"]).turns[-1].user


async def test_wrong_or_missing_token_refused_at_handshake() -> None:
    async with BridgeServer(bridge_settings(), audit=MemoryAuditSink()) as bridge:
        for headers in ({"Authorization": "Bearer wrong"}, {}, {"Authorization": "Basic " + TOKEN}):
            with pytest.raises(InvalidStatus) as info:
                async with ws_connect(f"{bridge.ws_base_url}/realtime?model=m", additional_headers=headers):
                    pass
            assert info.value.response.status_code == 401
        client = AsyncOpenAI(api_key="not-the-token", websocket_base_url=bridge.ws_base_url)
        with pytest.raises(Exception) as sdk_info:
            async with client.realtime.connect(model="gpt-realtime"):
                pass
        assert "401" in str(sdk_info.value)
        await client.close()


async def test_healthz_requires_token() -> None:
    import httpx2 as httpx  # the SDK's HTTP client

    async with BridgeServer(bridge_settings(), audit=MemoryAuditSink()) as bridge:
        url = f"http://127.0.0.1:{bridge.port}/healthz"
        async with httpx.AsyncClient() as http:
            assert (await http.get(url)).status_code == 401
            ok = await http.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200 and ok.json()["status"] == "ok"


async def test_bad_input_over_the_socket_gets_errors_and_call_goes_on() -> None:
    async with BridgeServer(bridge_settings(max_message_bytes=64 * 1024), audit=MemoryAuditSink()) as bridge:
        async with ws_connect(
            f"{bridge.ws_base_url}/realtime?model=m", additional_headers={"Authorization": f"Bearer {TOKEN}"}, max_size=None
        ) as ws:
            first = json.loads(await ws.recv())
            assert first["type"] == "session.created"
            bad_frames: list[str | bytes] = [
                "{not json",
                json.dumps({"type": "definitely.not.an.event"}),
                json.dumps({"type": "input_audio_buffer.append", "audio": "%%%notbase64"}),
                json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\0" * 100_000).decode()}),
                b"\x00\x01\x02",
            ]
            codes = []
            for frame in bad_frames:
                await ws.send(frame)
                event = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert event["type"] == "error"
                validate_server_event(event)
                codes.append(event["error"]["code"])
            assert codes == ["invalid_json", "unknown_event_type", "invalid_value", "message_too_large", "binary_frame"]
            # still alive: a valid event goes through to the simulator and back
            await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": "hi"}}))
            event = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert event["type"] == "session.updated" and event["session"]["instructions"] == "hi"


async def test_upstream_drop_mid_call_gives_error_and_clean_close(tmp_path: Path) -> None:
    scenario = tmp_path / "drop.yaml"
    scenario.write_text("name: drop\nfaults:\n  - kind: close\n    after_events: 3\n")
    parse_scenario(scenario.read_text(), "drop.yaml")
    audit = MemoryAuditSink()
    async with BridgeServer(bridge_settings(sim_scenario=scenario), audit=audit) as bridge:
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=m", additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
            audio = speech(600) + silence(800)
            for off in range(0, len(audio), 4800):
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(audio[off : off + 4800]).decode()}))
            received = []
            with pytest.raises(websockets.ConnectionClosedOK) as closed:
                while True:
                    received.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
            assert received[-1]["type"] == "error" and received[-1]["error"]["code"] == "upstream_closed"
    ended = [r for r in audit.records if isinstance(r, CallEnded)]
    assert ended and ended[0].outcome == "upstream_closed"


async def test_openai_key_never_reaches_the_client() -> None:
    key = "sk-test-" + secrets.token_hex(16)
    async with RealtimeSimulator(api_key=key) as sim:  # an upstream that demands the key
        settings = bridge_settings(upstream=sim.ws_url, openai_api_key=key)
        async with BridgeServer(settings, audit=MemoryAuditSink()) as bridge:
            async with ws_connect(f"{bridge.ws_base_url}/realtime?model=m", additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
                frames = [await asyncio.wait_for(ws.recv(), 5)]
                await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
                frames.append(await asyncio.wait_for(ws.recv(), 5))
                await ws.send("{bad")
                frames.append(await asyncio.wait_for(ws.recv(), 5))
            assert json.loads(frames[0])["type"] == "session.created"  # the key was accepted upstream
            assert all(key not in f for f in frames)


def test_standalone_sdk_script_against_serve_subprocess(tmp_path: Path) -> None:
    """The README's path: `hybrid-agent serve --upstream sim`, a plain SDK script, and the call in `audit calls`."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    env = {**os.environ, "HYBRID_AGENT_BRIDGE_TOKENS": "tok-a,tok-b", "HYBRID_AGENT_DATABASE_URL": db}
    exe = [sys.executable, "-m", "hybrid_agent"]
    subprocess.run([*exe, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=60)
    server = subprocess.Popen(
        [*exe, "serve", "--upstream", "sim", "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        assert "listening" in line, line + server.stderr.read()  # type: ignore[union-attr]
        url = f"ws://127.0.0.1:{port}/v1"
        client = [sys.executable, str(ROOT / "examples" / "sdk_client.py"), "--url", url]
        ok = subprocess.run([*client, "--token", "tok-b"], capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "response.done" in ok.stdout
        bad = subprocess.run([*client, "--token", "wrong"], capture_output=True, text=True, timeout=60)
        assert bad.returncode != 0 and "401" in bad.stderr
    finally:
        server.terminate()  # SIGTERM: uvicorn shuts down, the audit writer flushes
        server.wait(20)
    calls = subprocess.run([*exe, "audit", "calls", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert calls.returncode == 0, calls.stderr
    [call] = json.loads(calls.stdout)
    assert call["channel"] == "realtime" and call["turns"] >= 2
    verify = subprocess.run([*exe, "audit", "verify"], env=env, capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_serve_refuses_to_start_without_tokens() -> None:
    env = {k: v for k, v in os.environ.items() if k != "HYBRID_AGENT_BRIDGE_TOKENS"}
    run = subprocess.run([sys.executable, "-m", "hybrid_agent", "serve", "--upstream", "sim", "--port", "0"], env=env, capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and "HYBRID_AGENT_BRIDGE_TOKENS" in run.stderr


async def test_frame_beyond_hard_limit_is_refused_by_the_engine() -> None:
    """Above the soft limit a frame gets an error event; above the hard limit the engine closes with 1009."""
    from hybrid_agent.server.runner import HARD_FRAME_LIMIT

    async with BridgeServer(bridge_settings(), audit=MemoryAuditSink()) as bridge:
        async with ws_connect(
            f"{bridge.ws_base_url}/realtime?model=m", additional_headers={"Authorization": f"Bearer {TOKEN}"}, max_size=None
        ) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.send("x" * (HARD_FRAME_LIMIT + 1))  # the refusal may arrive while still sending
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_concurrent_calls_are_independent() -> None:
    audit = MemoryAuditSink()
    async with BridgeServer(bridge_settings(sim_scenario=shipped_scenarios()["banking"]), audit=audit) as bridge:

        async def one_call() -> list[dict]:
            client = AsyncOpenAI(api_key=TOKEN, websocket_base_url=bridge.ws_base_url)
            async with client.realtime.connect(model="gpt-realtime") as conn:
                turns = caller_turns(load_scenario(shipped_scenarios()["banking"]))[:2]
                log = await ScriptedCaller(conn, turns, tools=DEMO_TOOLS, playback_rate=3.0).run()
            await client.close()
            return log.events

        logs = await asyncio.gather(*(one_call() for _ in range(3)))
        await asyncio.sleep(0.1)
    for events in logs:  # each call walked the scenario from its start
        users = [e["transcript"] for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
        assert users == [t.user for t in load_scenario(shipped_scenarios()["banking"]).turns[:2]]
    calls = {r.call_id for r in audit.records if isinstance(r, CallEnded)}
    assert len(calls) == 3


async def test_a_failing_bridge_component_ends_the_call_cleanly() -> None:
    """A bug in an adapter (here: an audit sink that raises) closes the call with an error, not a hang."""

    class BrokenSink:
        def enqueue(self, record: object) -> None:
            if isinstance(record, TurnRecord):
                raise RuntimeError("sink exploded")

    async with BridgeServer(bridge_settings(), audit=BrokenSink()) as bridge:  # type: ignore[arg-type]
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=m", additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            await ws.send(json.dumps({"type": "response.create"}))  # the default scenario answers; its turn record fails
            received = []
            with pytest.raises(websockets.ConnectionClosedError) as closed:
                while True:
                    received.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
            assert received[-1]["type"] == "error" and received[-1]["error"]["code"] == "bridge_error"


BANKING_PACK = ROOT / "policies" / "retail-banking"


async def test_observe_gate_records_decisions_and_disclosures() -> None:
    """With the retail-banking pack every turn, tool call and tool result gets a recorded decision."""
    audit, _ = await run_scenario("banking", policy_pack=BANKING_PACK, gate_mode="observe")
    records = audit.records
    [started] = [r for r in records if isinstance(r, CallStarted)]
    assert started.policy_pack == "retail-banking" and started.gate_mode == "observe" and started.policy_version
    decisions = [r for r in records if isinstance(r, PolicyDecisionRecord)]
    assert sorted(d.seq for d in decisions) == list(range(len(decisions)))
    assert all(d.policy_version == started.policy_version for d in decisions)
    by_stage = {d.stage for d in decisions}
    assert by_stage == {"session_start", "user_text", "assistant_text", "tool_call", "tool_result"}
    # the greeting spoke the pack's recording notice word for word
    [disclosure] = [r for r in records if isinstance(r, DisclosureRecord)]
    assert disclosure.disclosure_id == "recording_notice" and disclosure.status == "given"
    # get_balance came after verify_identity reported basic verification: allowed, no step-up
    balance = next(r for r in records if isinstance(r, ToolCallRecord) and r.name == "get_balance")
    on_balance = [d for d in decisions if d.subject_id == balance.record_id]
    assert [d.effect for d in on_balance] == ["allow"]
    turns = {r.turn_id: r for r in records if isinstance(r, TurnRecord)}
    assert {d.subject_id for d in decisions if d.stage.endswith("_text")} == {t for t, r in turns.items() if r.text}


async def test_observe_gate_flags_a_balance_before_verification(tmp_path: Path) -> None:
    scenario = tmp_path / "eager.yaml"
    scenario.write_text(
        "name: eager\n"
        "greeting: 'Welcome. This call is recorded for quality, training and compliance purposes.'\n"
        "turns:\n"
        "  - user: What's my balance?\n"
        "    tool_calls: [{name: get_balance, arguments: {account_id: checking}}]\n"
        "    assistant: 'Your balance is {output[balance]}.'\n"
        "  - user: My card is four one one one one one one one one one one one one one one one.\n"
        "    assistant: 'Your card number 4111 1111 1111 1111 is noted.'\n"
    )
    audit, _ = await run_scenario(scenario, policy_pack=BANKING_PACK)
    decisions = [r for r in audit.records if isinstance(r, PolicyDecisionRecord)]
    step_up = [d for d in decisions if d.stage == "tool_call" and d.effect == "step_up"]
    assert [d.rule_id for d in step_up] == ["banking.identity.required_for_balance"]
    blocked = [d for d in decisions if d.stage == "assistant_text" and d.effect == "block_speech"]
    assert blocked and all(d.is_violation for d in blocked)  # observe mode records it; it does not stop it yet


def test_bad_gate_mode_and_bad_pack_are_one_line_errors(tmp_path: Path) -> None:
    env = {**os.environ, "HYBRID_AGENT_BRIDGE_TOKENS": "t", "HYBRID_AGENT_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}
    exe = [sys.executable, "-m", "hybrid_agent", "serve", "--upstream", "sim", "--port", "0"]
    run = subprocess.run([*exe, "--policy", str(BANKING_PACK), "--gate", "block-everything"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--gate" in run.stderr and "Traceback" not in run.stderr
    bad = tmp_path / "pack"
    (bad / "rules").mkdir(parents=True)
    (bad / "pack.yaml").write_text("name: bad\ndescription: d\nversion: '1'\n")
    (bad / "rules" / "r.yaml").write_text("rules:\n  - id: x.y\n    stage: user_text\n    effect: nope\n")
    run = subprocess.run([*exe, "--policy", str(bad)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "r.yaml" in run.stderr and "Traceback" not in run.stderr


async def test_user_transcripts_arrive_even_if_the_client_never_asks_for_them() -> None:
    """The middle layer needs what the caller said: the bridge keeps input transcription on."""
    audit = MemoryAuditSink()
    async with BridgeServer(bridge_settings(), audit=audit) as bridge:
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=m", additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": "only this"}}))
            audio = speech(600) + silence(800)
            for off in range(0, len(audio), 4800):
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(audio[off : off + 4800]).decode()}))
            seen = []
            while "conversation.item.input_audio_transcription.completed" not in seen:
                seen.append(json.loads(await asyncio.wait_for(ws.recv(), 10))["type"])
            assert seen.count("session.updated") == 1  # only the answer to the client's own update
    assert any(isinstance(r, TurnRecord) and r.role == "user" and r.text for r in audit.records)


async def test_refused_upstream_is_audited_and_its_url_secret_never_shown() -> None:
    import httpx2 as httpx

    secret = "AZURE-SECRET-" + secrets.token_hex(4)
    audit = MemoryAuditSink()
    settings = bridge_settings(upstream=f"ws://127.0.0.1:1/openai?api-key={secret}")
    async with BridgeServer(settings, audit=audit) as bridge:
        async with httpx.AsyncClient() as http:
            health = await http.get(f"http://127.0.0.1:{bridge.port}/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
        assert secret not in health.text and health.json()["upstream"] == "ws://127.0.0.1:1"
        assert health.json()["calls"] == 0 and health.json()["tasks"] >= 1  # the soak watches both for leaks
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=m", additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            frame = await asyncio.wait_for(ws.recv(), 10)
            assert json.loads(frame)["error"]["code"] == "upstream_unavailable" and secret not in frame
    kinds = [type(r).__name__ for r in audit.records]
    assert kinds == ["CallStarted", "CallEventRecord", "CallEventRecord", "CallEnded"]
    assert audit.records[1].kind == "model_mapped"  # ?model=m is not an allowed model
    assert audit.records[2].kind == "upstream_unavailable" and "cannot connect" in audit.records[2].message
    assert audit.records[-1].outcome == "upstream_unavailable"
    assert all(secret not in str(r) for r in audit.records)


async def test_upstream_drop_mid_answer_is_survived_by_reconnect_and_replay(tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load(shipped_scenarios()["banking"].read_text())
    data["faults"] = [{"kind": "close", "response": 1, "after_deltas": 0, "connections": [0]}]  # first socket only
    scenario = tmp_path / "drop_once.yaml"
    scenario.write_text(yaml.safe_dump(data))
    audit = MemoryAuditSink()
    sim_scenario = load_scenario(scenario)
    async with BridgeServer(bridge_settings(sim_scenario=scenario), audit=audit) as bridge:
        client = AsyncOpenAI(api_key=TOKEN, websocket_base_url=bridge.ws_base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            log = await ScriptedCaller(conn, caller_turns(sim_scenario), tools=DEMO_TOOLS, playback_rate=3.0).run()
        await client.close()
        await asyncio.sleep(0.1)
        sim = bridge.connector._simulator
        assert sim.connections == 2  # dropped once, reopened once
        replayed = [e for e in sim.emitted if e["type"] == "conversation.item.added" and e["item"]["id"].startswith("item_bridge_replay_")]
    assert replayed, "the conversation was not replayed on the new socket"
    for event in log.events:
        validate_server_event(event)
    statuses = [e["response"]["status"] for e in log.events if e["type"] == "response.done"]
    assert "failed" in statuses and statuses[-1] == "completed"
    assert not any(e["type"] == "error" for e in log.events)
    assert not any(e["type"] == "conversation.item.added" and e["item"]["id"].startswith("item_bridge_replay_") for e in log.events)
    transcripts = [e["transcript"] for e in log.events if e["type"] == "response.output_audio_transcript.done"]
    assert any("1,234.56" in t for t in transcripts)  # the call carried on to the balance after the drop
    ended = [r for r in audit.records if isinstance(r, CallEnded)]
    assert [r.outcome for r in ended] == ["completed"]

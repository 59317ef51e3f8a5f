"""Tools the bridge runs itself, through the real socket: the client never sees the call, the policy
decides it, the DEMO bank answers, the model speaks the result; everything is in the audit."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from websockets.asyncio.client import connect as ws_connect

from hybrid_agent.audit.records import GateActionRecord, ToolCallRecord, ToolResultRecord
from hybrid_agent.audit.sink import MemoryAuditSink
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.settings import Settings
from socket_helpers import AUTH, speak, until_transcript

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = """
name: server_tools
greeting: "Welcome to Example Bank. This call is recorded for quality, training and compliance purposes. How can I help you?"
transcription_delay_ms: 50
audio: {words_per_minute: 300, speed: 0, chunk_ms: 200}
turns:
  - user: "Please check my identity."
    tool_calls:
      - name: verify_identity
        arguments: {customer_id: "DEMO-CUST-0001", date_of_birth: "1980-03-03", postcode: "ZZ99 1AA"}
    assistant: "Thank you, you are verified at level {output[verification_level]}."
  - user: "What is my balance?"
    tool_calls:
      - name: get_balance
        arguments: {account_id: "DEMO-ACC-0001-CUR"}
    assistant: "Your balance is {output[balance]} pounds."
"""


def hold_settings(tmp_path: Path, *, greeting: str | None = None, pack: Path | None = None, **kw: object) -> Settings:
    """A bridge on the simulator with the banking pack's server tools (``greeting``: the scenario's, replaced)."""
    scenario = tmp_path / "s.yaml"
    text = SCENARIO
    if greeting is not None:
        text = text.replace('greeting: "Welcome to Example Bank. This call is recorded for quality, '
                            'training and compliance purposes. How can I help you?"', f'greeting: "{greeting}"')
    scenario.write_text(text)
    return Settings(upstream="sim", host="127.0.0.1", port=0, bridge_tokens=["t"], sim_scenario=scenario,  # type: ignore[arg-type]
                    policy_pack=pack or ROOT / "policies" / "retail-banking", server_tools=True, **kw)


async def test_bridge_runs_a_tool_the_client_never_declared(tmp_path: Path) -> None:
    audit = MemoryAuditSink()
    settings = hold_settings(tmp_path)
    async with BridgeServer(settings, audit=audit) as bridge:
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime", additional_headers=AUTH) as ws:
            events = []
            await ws.send(json.dumps({"type": "response.create"}))
            events += await until_transcript(ws, "recorded")
            await speak(ws)
            events += await until_transcript(ws, "verified")
            await speak(ws)
            events += await until_transcript(ws, "balance is")
    text = json.dumps(events)
    leaks = [e["type"] for e in events if "function_call" in json.dumps(e) or "verify_identity" in json.dumps(e)]
    assert not leaks, leaks
    assert "function_call" not in text and "verify_identity" not in text and "get_balance" not in text
    assert "1234.56" in text  # the DEMO bank's balance, spoken by the model
    assert "level basic" in text
    assert not [e for e in events if e["type"] == "error"]
    for e in events:
        if e["type"] in ("session.created", "session.updated"):
            assert not e["session"].get("tools")  # the bridge's tools stay invisible
    await asyncio.sleep(0.2)
    runs = [r for r in audit.records if isinstance(r, GateActionRecord) and r.action == "tool_run"]
    assert [(r.tool, r.status) for r in runs] == [("verify_identity", "ok"), ("get_balance", "ok")]
    decided = [r for r in audit.records if isinstance(r, GateActionRecord) and r.action == "tool_decided"]
    assert [r.status for r in decided] == ["allow", "allow"]
    assert len([r for r in audit.records if isinstance(r, ToolCallRecord)]) == 2
    assert all(r.status == "ok" for r in audit.records if isinstance(r, ToolResultRecord))


def pack_without_disclosure_at_start(tmp_path: Path) -> Path:
    """The banking pack with the recording notice required before account actions only (so the
    bridge does not ask for it at the start of the call)."""
    pack = tmp_path / "pack"
    shutil.copytree(ROOT / "policies" / "retail-banking", pack)
    rules = pack / "rules" / "disclosure.yaml"
    text = rules.read_text()
    start = text.index("  - id: banking.disclosure.recording_at_start")
    end = text.index("  - id: banking.disclosure.before_account_action")
    rules.write_text(text[:start] + text[end:])
    shutil.rmtree(pack / "tests")
    return pack


async def test_a_denied_server_tool_never_runs(tmp_path: Path) -> None:
    """No recording notice before an account action: the pack refuses; the model hears why."""
    audit = MemoryAuditSink()
    settings = hold_settings(tmp_path, greeting="Hello.", pack=pack_without_disclosure_at_start(tmp_path), gate_mode="hold")
    async with BridgeServer(settings, audit=audit) as bridge:
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime", additional_headers=AUTH) as ws:
            await ws.send(json.dumps({"type": "response.create"}))
            await until_transcript(ws, "Hello")
            await speak(ws)
            await until_transcript(ws, "verified")
    await asyncio.sleep(0.2)
    decided = [r for r in audit.records if isinstance(r, GateActionRecord) and r.action == "tool_decided"]
    assert decided and decided[0].status != "allow"
    assert not [r for r in audit.records if isinstance(r, GateActionRecord) and r.action == "tool_run"]


async def test_the_bridge_speaks_the_required_disclosure_first(tmp_path: Path) -> None:
    """Hold mode: the pack requires the recording notice at the start; the bridge asks for it word for
    word before the model's first answer (the client's own response.create waits), checks the
    transcript, and the tools that require it then run."""
    audit = MemoryAuditSink()
    settings = hold_settings(tmp_path, greeting="Hello.", gate_mode="hold")
    async with BridgeServer(settings, audit=audit) as bridge:
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime", additional_headers=AUTH) as ws:
            await ws.send(json.dumps({"type": "response.create"}))
            first = await until_transcript(ws, "recorded")
            second = await until_transcript(ws, "Hello")
            await speak(ws)
            third = await until_transcript(ws, "verified")
    events = first + second + third
    assert not [e for e in events if e["type"] == "error"], [e for e in events if e["type"] == "error"]
    done = [e["transcript"] for e in events if e["type"] == "response.output_audio_transcript.done"]
    assert done[0] == "This call is recorded for quality, training and compliance purposes."
    assert done[1] == "Hello."  # the client's own greeting request ran after the disclosure
    await asyncio.sleep(0.2)
    actions = [r for r in audit.records if isinstance(r, GateActionRecord)]
    assert [r.rule_id for r in actions if r.action == "disclosure_requested"] == ["recording_notice"]
    assert not [r for r in actions if r.action == "disclosure_undelivered"]
    assert [r.status for r in actions if r.action == "tool_decided"] == ["allow"]
    assert [(r.tool, r.status) for r in actions if r.action == "tool_run"] == [("verify_identity", "ok")]


async def test_the_opening_waits_for_the_client_and_the_client_sees_only_its_own_configuration(tmp_path: Path) -> None:
    """The bridge's disclosure does not start before the client asked for anything (the service refuses
    a voice change once assistant audio exists: openai-agents configures right at connect), and the
    session the client sees has its own instructions and tools, never the pack's; the audit notes the
    configuration the upstream accepted (the bridge's tools included)."""
    audit = MemoryAuditSink()
    settings = hold_settings(tmp_path, greeting="Hello.", gate_mode="hold")
    own_tool = {"type": "function", "name": "get_branch_hours", "description": "Opening hours.", "parameters": {"type": "object", "properties": {}}}
    async with BridgeServer(settings, audit=audit) as bridge:
        async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime", additional_headers=AUTH) as ws:
            await asyncio.sleep(0.3)  # a client that configures a little after connecting
            await ws.send(json.dumps({"type": "session.update", "session": {
                "type": "realtime", "instructions": "Be brief.", "tools": [own_tool], "audio": {"output": {"voice": "ash"}}}}))
            events = await until_transcript(ws, "recorded")  # the opening starts within ARM_AFTER_MS without a request
    errors = [e for e in events if e["type"] == "error"]
    assert not errors, errors
    [updated] = [e for e in events if e["type"] == "session.updated"][-1:]
    assert updated["session"]["instructions"] == "Be brief."
    assert [t["name"] for t in updated["session"]["tools"]] == ["get_branch_hours"]
    assert updated["session"]["audio"]["output"]["voice"] == "ash"
    text = json.dumps(events)
    assert "verify_identity" not in text and "retail bank" not in text
    await asyncio.sleep(0.2)
    notes = [r.message for r in audit.records if getattr(r, "kind", None) == "session_configured"]
    assert notes and "verify_identity" in notes[-1] and "get_branch_hours" in notes[-1]

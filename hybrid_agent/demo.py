"""``hybrid-agent demo``: scripted calls through the real bridge to the embedded simulator.

No keys, no network: the bridge runs in-process on a loopback port with a
one-off bridge token, its upstream is the simulator, and the caller is an
unmodified ``openai`` SDK client.  Each call prints live, then as the bridge
recorded it (turns ordered by when speech started, what was heard on barge-in,
tool calls).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI
from pydantic import SecretStr

from hybrid_agent.audit.records import CallEnded, ToolCallRecord, ToolResultRecord, TurnInterrupted, TurnRecord
from hybrid_agent.audit.sink import MemoryAuditSink
from hybrid_agent.caller import CallerTurn, ScriptedCaller
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.settings import Settings
from hybrid_agent.simulator.scenario import Scenario, load_scenario, shipped_scenarios

DEMO_ACCOUNTS = {"checking": {"balance": "1,234.56", "currency": "dollars"}, "savings": {"balance": "9,870.00", "currency": "dollars"}}


def demo_get_balance(args: dict[str, Any]) -> dict[str, Any]:
    """The demo bank's balance tool (the bridge runs tools itself once the tools issue lands)."""
    account = str(args.get("account", "checking"))
    return {"account": account, **DEMO_ACCOUNTS.get(account, {"balance": "0.00", "currency": "dollars"})}


DEMO_TOOLS = {"get_balance": demo_get_balance}


def caller_turns(scenario: Scenario) -> list[CallerTurn]:
    return [CallerTurn(speech_ms=900.0, barge_in_after_ms=t.barge_in_after_ms) for t in scenario.turns]


def resolve_scenario(name_or_path: str) -> Path:
    shipped = shipped_scenarios()
    if name_or_path in shipped:
        return shipped[name_or_path]
    return Path(name_or_path)


async def run_call(settings: Settings, scenario_path: Path, *, out: Any = print, playback_rate: float = 4.0) -> MemoryAuditSink:
    """One scripted call through a fresh bridge; returns what the bridge audited."""
    scenario = load_scenario(scenario_path)
    token = secrets.token_urlsafe(24)
    bridge_settings = settings.model_copy(
        update={"upstream": "sim", "sim_scenario": scenario_path, "host": "127.0.0.1", "port": 0, "bridge_tokens": [SecretStr(token)]}
    )
    audit = MemoryAuditSink()
    async with BridgeServer(bridge_settings, audit=audit) as bridge:
        client = AsyncOpenAI(api_key=token, websocket_base_url=bridge.ws_base_url)
        async with client.realtime.connect(model=settings.model) as conn:
            caller = ScriptedCaller(
                conn,
                caller_turns(scenario),
                tools=DEMO_TOOLS,
                greeting=scenario.greeting is not None,
                on_line=lambda line: out("  " + line),
                playback_rate=playback_rate,
            )
            await caller.run()
        await client.close()
    return audit


def render_audit(audit: MemoryAuditSink) -> list[str]:
    """The call as the bridge recorded it: turns in the order speech started, tools where they ran."""
    heard = {r.item_id: r for r in audit.records if isinstance(r, TurnInterrupted)}
    results = {r.tool_call_id: r for r in audit.records if isinstance(r, ToolResultRecord)}
    tools = sorted((r for r in audit.records if isinstance(r, ToolCallRecord)), key=lambda r: r.at_ms)
    lines: list[str] = []
    for turn in sorted((r for r in audit.records if isinstance(r, TurnRecord)), key=lambda r: r.seq):
        while tools and turn.role == "assistant" and tools[0].at_ms <= turn.started_ms:
            tool = tools.pop(0)
            res = results.get(tool.tool_call_id)
            lines.append(f"      tool {tool.name}({tool.arguments}) -> {res.output if res else '(no result)'}")
        text = turn.text if turn.text is not None else f"({turn.status})"
        lines.append(f"  #{turn.seq:<2} {turn.role:<9} {text}")
        if turn.item_id in heard:
            cut = heard[turn.item_id]
            lines.append(f"      interrupted: heard {cut.audio_end_ms / 1000:.1f} s of {turn.audio_ms / 1000:.1f} s: \"{cut.heard_text}\"")
    for tool in tools:
        res = results.get(tool.tool_call_id)
        lines.append(f"      tool {tool.name}({tool.arguments}) -> {res.output if res else '(no result)'}")
    ended = [r for r in audit.records if isinstance(r, CallEnded)]
    if ended:
        lines.append(f"  call ended: {ended[-1].outcome} after {ended[-1].at_ms / 1000:.1f} s")
    return lines


async def run_demo(settings: Settings, scenario: str | None = None) -> int:
    names = [scenario] if scenario else ["banking", "barge_in"]
    for name in names:
        path = resolve_scenario(name)
        print(f"=== call: {path.stem} ===")
        audit = await run_call(settings, path)
        print("--- as audited by the bridge ---")
        for line in render_audit(audit):
            print(line)
        print()
    print(json.dumps({"calls": len(names), "status": "ok"}))
    return 0

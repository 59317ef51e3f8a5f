"""``hybrid-agent demo``: scripted calls through the real bridge to the embedded simulator.

No keys, no network: the bridge runs in-process on a loopback port with a
one-off bridge token, its upstream is the simulator, and the caller is an
unmodified ``openai`` SDK client.  Each call prints live, then as the bridge
recorded it (turns ordered by when speech started, what was heard on barge-in,
tool calls).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI
from pydantic import SecretStr

from hybrid_agent.audit.records import CallStarted
from hybrid_agent.audit.sink import AuditSink, FanOutSink, MemoryAuditSink
from hybrid_agent.audit.writer import make_writer
from hybrid_agent.caller import CallerTurn, ScriptedCaller
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.settings import Settings
from hybrid_agent.simulator.scenario import Scenario, load_scenario, shipped_scenarios

DEMO_SPOOL = "hybrid_agent_demo.spool"
DEMO_ACCOUNTS = {"checking": {"balance": "1,234.56", "currency": "dollars"}, "savings": {"balance": "9,870.00", "currency": "dollars"}}


def demo_get_balance(args: dict[str, Any]) -> dict[str, Any]:
    """The demo bank's balance tool (the caller runs tools until the bridge runs them itself)."""
    account = str(args.get("account_id") or args.get("account") or "checking")
    return {"account": account, **DEMO_ACCOUNTS.get(account, {"balance": "0.00", "currency": "dollars"})}


def demo_verify_identity(args: dict[str, Any]) -> dict[str, Any]:
    """Any customer number with a date of birth passes basic verification in the demo bank."""
    ok = bool(args.get("customer_id")) and bool(args.get("date_of_birth"))
    return {"verified": ok, "verification_level": "basic" if ok else "none"}


DEMO_TOOLS = {"verify_identity": demo_verify_identity, "get_balance": demo_get_balance}
DEMO_POLICY_PACK = Path(__file__).resolve().parents[1] / "policies" / "retail-banking"


#: the calls ``make demo`` runs: (scenario, gate mode); the bridge runs the pack's tools itself
DEMO_CALLS: tuple[tuple[str, str], ...] = (("bank_enforced", "hold"), ("bank_monitor", "monitor"))
DEMO_PLAYBACK_RATE = 8.0  # the scenarios' audio is generated 8x faster than real time; the caller plays it as fast


def caller_turns(scenario: Scenario) -> list[CallerTurn]:
    return [CallerTurn(speech_ms=900.0, barge_in_after_ms=t.barge_in_after_ms, truncate_overshoot_ms=t.truncate_overshoot_ms)
            for t in scenario.turns]


def resolve_scenario(name_or_path: str) -> Path:
    shipped = shipped_scenarios()
    if name_or_path in shipped:
        return shipped[name_or_path]
    return Path(name_or_path)


async def run_call(
    settings: Settings, scenario_path: Path, *, audit: AuditSink, out: Any = print, playback_rate: float = 4.0,
    gate_mode: str | None = None, server_tools: bool = False,
) -> None:
    """One scripted call through a fresh bridge recording to ``audit``.

    ``server_tools``: the bridge runs the pack's tools over its demo backend (the caller declares
    none); otherwise the caller runs the demo tools itself, as a plain Realtime client would."""
    scenario = load_scenario(scenario_path)
    token = secrets.token_urlsafe(24)
    update: dict[str, Any] = {
        "upstream": "sim", "sim_scenario": scenario_path, "host": "127.0.0.1", "port": 0, "bridge_tokens": [SecretStr(token)],
    }
    if settings.policy_pack is None and DEMO_POLICY_PACK.is_dir():
        update["policy_pack"] = DEMO_POLICY_PACK  # decide and record every turn with the banking pack
    if gate_mode is not None and settings.gate_mode is None:
        update["gate_mode"] = gate_mode
    if server_tools:
        update["server_tools"] = True
    bridge_settings = settings.model_copy(update=update)
    async with BridgeServer(bridge_settings, audit=audit) as bridge:
        client = AsyncOpenAI(api_key=token, websocket_base_url=bridge.ws_base_url)
        async with client.realtime.connect(model=settings.model) as conn:
            caller = ScriptedCaller(
                conn,
                caller_turns(scenario),
                tools=None if server_tools else DEMO_TOOLS,
                greeting=scenario.greeting is not None,
                on_line=lambda line: out("  " + line),
                playback_rate=playback_rate,
            )
            await caller.run()
        await client.close()


def call_id_of(audit: MemoryAuditSink) -> str:
    return next(r.call_id for r in audit.records if isinstance(r, CallStarted))


async def run_demo(settings: Settings, scenario: str | None = None, *, all_decisions: bool = False,
                   twilio: bool = False) -> int:
    """The shipped demo calls (or one scenario) through the bridge, then read back from the audit database."""
    from hybrid_agent.audit.cli import price_call, render_call
    from hybrid_agent.audit.queries import show_call
    from hybrid_agent.audit.store import connect, display_url, make_engine, upgrade
    from hybrid_agent.audit.queries import verify_chain

    calls: list[tuple[str, str | None, bool]] = (
        [(PHONE_SCENARIO, "twilio", True)] if twilio
        else [(scenario, None, False)] if scenario else [(name, mode, True) for name, mode in DEMO_CALLS]
    )
    if settings.pseudonym_key is None:  # a fixed, published key: fine for a demo database, never for production
        settings = settings.model_copy(update={"pseudonym_key": SecretStr("hybrid-agent-demo-pseudonym-key")})
    upgrade(settings.database_url)
    writer = make_writer(settings, spool_path=Path(DEMO_SPOOL))
    await writer.start()
    call_ids = []
    try:
        for name, mode, server_tools in calls:
            path = resolve_scenario(name)
            memory = MemoryAuditSink()
            if mode == "twilio":
                print(f"=== phone call: {path.stem} over Twilio Media Streams (gate mode {settings.gate_mode or 'hold'}; "
                      "the bridge runs the pack's tools on the DEMO bank; as Twilio saw it) ===")
                await run_twilio_call(settings, audit=FanOutSink(writer, memory))
            else:
                shown_mode = settings.gate_mode or mode or "the pack's"
                tools = "the bridge runs the pack's tools on the DEMO bank" if server_tools else "the caller runs the tools"
                print(f"=== call: {path.stem} (gate mode {shown_mode}; {tools}; live, as the caller heard it) ===")
                await run_call(settings, path, audit=FanOutSink(writer, memory), gate_mode=mode, server_tools=server_tools,
                               playback_rate=DEMO_PLAYBACK_RATE if server_tools else 4.0)
            await writer.flush()
            call_ids.append(call_id_of(memory))
            engine = make_engine(settings.database_url, must_exist=True)
            try:
                with connect(engine) as conn:
                    record = show_call(conn, call_ids[-1])
                    price_call(record)
            finally:
                engine.dispose()
            print(f"--- as recorded in the audit database {display_url(settings.database_url)} (hybrid-agent audit show) ---")
            for line in render_call(record, all_decisions=all_decisions):
                print(line)
            print()
    finally:
        await writer.close()
    engine = make_engine(settings.database_url, must_exist=True)
    try:
        with connect(engine) as conn:
            report = verify_chain(conn)
    finally:
        engine.dispose()
    status = "ok" if report.ok else "BROKEN"
    print(f"audit verify: {status} ({report.checked} ledger entries, head {report.head_hash[:16]}...)")
    print(json.dumps({"calls": call_ids, "database": display_url(settings.database_url), "verified": report.ok}))
    return 0 if report.ok else 1


PHONE_SCENARIO = "bank_phone"
#: a phone caller waits this long after the last audio before speaking (hold mode releases in bursts)
QUIET_S = 1.5
DEMO_CARD = "4111111111111111"  # the well-known test card number: fake, Luhn-valid
DEMO_SECURITY_CODE = "737"


async def run_twilio_call(settings: Settings, *, audit: AuditSink, out: Any = print) -> None:
    """One scripted phone call: Twilio's signed voice webhook first, then the Media Stream it points to."""
    import socket
    from urllib.parse import urlencode
    from xml.etree import ElementTree

    import httpx
    from websockets.asyncio.client import connect as ws_connect

    from hybrid_agent.server.twilio_webhook import twilio_signature
    from hybrid_agent.twilio_caller import PhoneCaller

    with socket.socket() as probe:  # the public URL Twilio signs must name the port the bridge listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    auth_token = secrets.token_urlsafe(24)
    update: dict[str, Any] = {
        "upstream": "sim", "sim_scenario": resolve_scenario(PHONE_SCENARIO), "host": "127.0.0.1", "port": port,
        "bridge_tokens": [SecretStr(secrets.token_urlsafe(24))], "twilio_auth_token": SecretStr(auth_token),
        "public_url": f"http://127.0.0.1:{port}", "server_tools": True,
    }
    if settings.policy_pack is None:
        update["policy_pack"] = DEMO_POLICY_PACK
    if settings.gate_mode is None:
        update["gate_mode"] = "hold"
    async with BridgeServer(settings.model_copy(update=update), audit=audit):
        url = f"http://127.0.0.1:{port}/twilio/voice"
        form = {"CallSid": "CA" + secrets.token_hex(16), "AccountSid": "AC" + "0" * 32, "From": "+447700900123",
                "To": "+441632960001", "CallStatus": "ringing", "Direction": "inbound"}
        async with httpx.AsyncClient() as http:
            unsigned = await http.post(url, content=urlencode(form), headers={"Content-Type": "application/x-www-form-urlencoded"})
            out(f"  twilio: POST /twilio/voice unsigned -> {unsigned.status_code}")
            answer = await http.post(url, content=urlencode(form), headers={
                "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": twilio_signature(auth_token, url, form)})
        stream = ElementTree.fromstring(answer.text).find("./Connect/Stream")
        assert stream is not None, answer.text
        params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
        out(f"  twilio: POST /twilio/voice signed -> {answer.status_code}, <Connect><Stream url=\"{stream.get('url')}\"> "
            f"with a token for {form['CallSid'][:10]}...")
        async with ws_connect(stream.get("url") or "") as ws:
            phone = PhoneCaller(stream.get("url") or "", params.get("token") or "", call_sid=form["CallSid"],
                                caller=form["From"], speed=3.0)
            await phone.open(ws, {"to": form["To"]})
            await phone.listen_until_quiet(quiet_s=QUIET_S)
            out(f"  phone: heard the opening ({phone.log.heard_ms / 1000:.1f} s of audio)")
            for line in ("identity answers", "asks to pay a bill by card"):
                await phone.say(900)
                await phone.listen_until_quiet(quiet_s=QUIET_S)
                out(f"  caller: {line}; heard {phone.log.heard_ms / 1000:.1f} s so far")
            for what, keys in (("card number", DEMO_CARD + "#"), ("security code", DEMO_SECURITY_CODE + "#")):
                await phone.press(keys)
                out(f"  caller: keys in the {what} ({len(keys) - 1} digits and #) on the keypad")
                await phone.listen_until_quiet(quiet_s=QUIET_S)
            await phone.say(900)  # a long answer follows...
            await phone.listen(1.0)
            clears = phone.log.clears
            await phone.say(600)  # ...and the caller talks over it
            await phone.listen_until_quiet(quiet_s=QUIET_S)
            out(f"  caller: interrupts the long answer after {phone.log.heard_ms / 1000:.1f} s in all; "
                f"the bridge cuts it at the marked position (clear sent {phone.log.clears - clears}x: only audio still queued at Twilio needs one)")
            await phone.say(700)
            await phone.listen_until_quiet(quiet_s=QUIET_S)
            await phone.hang_up()
            marks = sum(1 for m in phone.log.received if m["event"] == "mark")
            out(f"  twilio: {sum(1 for m in phone.log.received if m['event'] == 'media')} media messages "
                f"(mu-law 8 kHz, 100 ms each) and {marks} marks received, {phone.log.heard_ms / 1000:.1f} s played")
        await asyncio.sleep(0.3)

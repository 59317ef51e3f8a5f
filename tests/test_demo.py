"""``hybrid-agent demo`` end to end: the enforced banking call in hold mode and the monitor call,
through the real socket, recorded to SQLite and PostgreSQL; every table scanned for the raw
values the scenarios' callers and model said."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from hybrid_agent.demo import run_demo
from hybrid_agent.settings import Settings

#: what the scenarios say that must never be stored: the card number (any spacing), the passcode,
#: the date of birth as the caller and the tool call wrote it
PLANTED = [
    re.compile(r"4111\D{0,3}1111\D{0,3}1111\D{0,3}1111"),
    re.compile(r"(?<!\w)246810(?!\w)|two four six eight one zero"),  # not inside a hex digest or an id
    re.compile(r"1980-03-03|third of march nineteen eighty", re.IGNORECASE),
]


async def test_demo_runs_every_step_and_stores_no_raw_pii(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the demo's spool folder lands here
    settings = Settings(database_url=db_url)
    out = io.StringIO()
    with redirect_stdout(out):
        assert await run_demo(settings) == 0
    shown = out.getvalue()
    # hold mode: the disclosure first, tools run by the bridge, refusals, the confirmation, the block, the clamp
    assert "GATE disclosure_requested [hold] rule recording_notice" in shown
    assert "GATE tool_run [hold] verify_identity: ok" in shown
    assert "GATE tool_decided [hold] transfer_funds: step_up" in shown
    assert "GATE tool_decided [hold] transfer_funds: confirm" in shown
    assert "GATE tool_confirmed [hold] transfer_funds" in shown
    assert "GATE tool_run [hold] transfer_funds: ok" in shown
    assert "GATE speech_blocked [hold] rule banking.speech.card_number_pii" in shown and "leaked 0 ms" in shown
    assert re.search(r"GATE truncate_clamped \[hold\]: asked \d+ ms, clamped to \d+ ms", shown)
    assert "your savings balance is now 7870.0 pounds" in shown  # the DEMO bank really moved the money
    # what the caller heard: the fallback, never the card number read back
    live = shown.split("--- as recorded")[0]
    assert "For your security I can't read out card numbers" in live
    assert not PLANTED[0].search(live.split("Is that card still active?")[1])  # the agent never said it
    # monitor mode: the block and the leaked milliseconds
    assert re.search(r"GATE speech_blocked \[monitor\] rule banking.speech.no_investment_advice: .*leaked [1-9]\d* ms", shown)
    assert "audit verify: ok" in shown
    # nothing raw in any table
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            assert {"turns", "tool_calls", "tool_results", "gate_actions", "policy_decisions"} <= set(tables)
            for table in tables:
                for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                    for value in row:
                        if isinstance(value, (bytes, bytearray)):
                            value = value.decode("utf-8", "replace")
                        if isinstance(value, str):
                            for planted in PLANTED:
                                assert not planted.search(value), (table, value[:200])
    finally:
        engine.dispose()
    # what the demo's calls cost, beside the cascades (docs/observability.md)
    from hybrid_agent.cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["audit", "cost", "--json", "--db", db_url]) == 0
    cost = json.loads(out.getvalue())
    assert len(cost["rows"]) == 2 and all(r["responses"] > 0 and r["realtime_usd"] > 0 for r in cost["rows"])
    assert all(r["cascades"][name]["usd"] > 0 for r in cost["rows"] for name in ("deepgram+groq+openai-tts", "openai-cascade"))
    assert "time to first audio" not in shown and re.search(r"\[first audio \d+ ms; \$0\.\d{4}\]", shown)


async def test_demo_twilio_phone_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``hybrid-agent demo --twilio``: the signed webhook, the stream, keypad capture, the barge-in."""
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with redirect_stdout(out):
        assert await run_demo(Settings(database_url=f"sqlite:///{tmp_path / 'phone.db'}"), twilio=True) == 0
    shown = out.getvalue()
    assert "POST /twilio/voice unsigned -> 403" in shown and "POST /twilio/voice signed -> 200" in shown
    assert "channel twilio" in shown
    assert 'GATE keypad_capture [hold] take_payment: captured, "card_number: 16 digits"' in shown
    assert "approved, on the card ending 1111" in shown
    assert re.search(r"interrupted: caller heard \d+\.\ds of", shown)
    assert "audit verify: ok" in shown
    assert "4111111111111111" not in shown.split("--- as recorded")[1]
    engine = create_engine(f"sqlite:///{tmp_path / 'phone.db'}")
    try:
        with engine.connect() as conn:
            for table in inspect(conn).get_table_names():
                for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                    for value in row:
                        if isinstance(value, str):
                            # the number itself, not digits inside a hash or an id
                            assert not re.search(r"(?<!\w)(?:4111111111111111|737)(?!\w)", value), (table, value[:200])
    finally:
        engine.dispose()

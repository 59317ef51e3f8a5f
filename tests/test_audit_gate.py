"""Gate actions: what the enforcing middle layer did in a call (``GateActionRecord``, migration 0003).

Every database test runs on SQLite and on PostgreSQL (see conftest.py).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import cli, cli_json
from audit_helpers import record as _record
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from hybrid_agent.audit.models import LEDGER
from hybrid_agent.audit.queries import percentile
from hybrid_agent.audit.records import (
    GATE_ACTIONS,
    CallEnded,
    CallStarted,
    GateActionRecord,
    PolicyDecisionRecord,
    TurnRecord,
)
from hybrid_agent.audit.store import alembic_config, close_interrupted_calls, make_engine
from hybrid_agent.audit.writer import AuditWriter

T0 = 1_767_225_600.0
CARD = "4111 1111 1111 1111"
FALLBACK = "For your security I can't read card numbers out. Is there anything else?"


async def record(db_url: str, records: list[Any], tmp_path: Path) -> AuditWriter:
    return await _record(db_url, records, tmp_path, flush_interval_s=0.02, retry_interval_s=0.05)


def rows(db_url: str, sql: str) -> list[Any]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        out = list(conn.execute(text(sql)))
    engine.dispose()
    return out


def ledger_ids(db_url: str) -> list[str]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        ids = list(conn.execute(select(LEDGER.c.row_id).order_by(LEDGER.c.seq)).scalars())
    engine.dispose()
    return ids


def gated_call(call_id: str = "call_G", started_at: float = T0) -> list[Any]:
    """A hold-mode call: the answer's audio held and blocked, a fallback spoken, a clamped truncate,
    a tool decided and run."""
    return [
        CallStarted(call_id, started_at, "web", "gpt-realtime", "openai", gate_mode="hold"),
        TurnRecord(call_id, 0, "user", "i0", "What's my card number?", "completed", 0.0, 1_000.0, redacted=True),
        TurnRecord(call_id, 1, "assistant", "i1", "I can't share that.", "completed", 1_200.0, 3_000.0, redacted=True),
        PolicyDecisionRecord(call_id, 0, "assistant_text", "banking.speech.card_number", "block_speech", "v1", 1_150.0),
        GateActionRecord(call_id, 0, 1_100.0, "speech_held", mode="hold", item_id="i1", held_ms=120.0),
        GateActionRecord(call_id, 1, 1_150.0, "speech_blocked", mode="hold", item_id="i1",
                         rule_id="banking.speech.card_number", effect="block_speech", held_ms=850.0, leaked_ms=0.0,
                         text="<CREDIT_CARD>", redacted=True),
        GateActionRecord(call_id, 2, 1_200.0, "fallback_spoken", mode="hold", item_id="i1", text=FALLBACK, redacted=True),
        GateActionRecord(call_id, 3, 2_000.0, "truncate_clamped", item_id="i1", requested_ms=5_000.0, audio_end_ms=1_240.0),
        GateActionRecord(call_id, 4, 3_100.0, "tool_decided", mode="hold", item_id="call_1", rule_id="tool.get_balance",
                         effect="allow", status="allow", tool="get_balance"),
        GateActionRecord(call_id, 5, 3_150.0, "tool_run", item_id="call_1", latency_ms=12.0, status="ok", tool="get_balance"),
        CallEnded(call_id, 4_000.0, "completed"),
    ]


def monitor_call(call_id: str, started_at: float, *leaks: float) -> list[Any]:
    """A monitor-mode call: each leak is a blocked answer of which ``leak`` ms reached the caller."""
    recs: list[Any] = [CallStarted(call_id, started_at, "phone", "gpt-realtime", "openai", gate_mode="monitor")]
    for i, leak in enumerate(leaks):
        recs.append(GateActionRecord(call_id, i, 100.0 * (i + 1), "speech_blocked", mode="monitor", item_id=f"i{i}",
                                     rule_id="banking.speech.card_number", leaked_ms=leak))
    recs.append(CallEnded(call_id, 5_000.0, "completed"))
    return recs


# ---------------------------------------------------------------------------- the record
def test_record_shape() -> None:
    g = GateActionRecord("c", 7, 12.5, "truncate_refused", requested_ms=9_000.0)
    assert g.record_id == "c/gate/7" and g.redacted is False and g.text is None and g.mode is None
    with pytest.raises(AttributeError):
        g.action = "speech_held"  # type: ignore[misc]
    assert not hasattr(g, "__dict__")  # slots
    assert len(GATE_ACTIONS) == 18 and "gate_failed" in GATE_ACTIONS and "user_turn_gated" in GATE_ACTIONS


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 99) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 99) == 99.0 and percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0 and percentile([3.0, 1.0, 2.0], 99) == 3.0


# ---------------------------------------------------------------------------- write, read, chain
async def test_gate_actions_round_trip(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = gated_call()
    await record(db_url, recs, tmp_path)
    stored = {r.seq: r for r in rows(db_url, "SELECT * FROM gate_actions")}
    assert sorted(stored) == [0, 1, 2, 3, 4, 5]
    for rec in (r for r in recs if isinstance(r, GateActionRecord)):
        row = stored[rec.seq]._mapping
        assert row["id"] == rec.record_id and row["call_id"] == rec.call_id
        for f in ("at_ms", "action", "mode", "item_id", "rule_id", "effect", "held_ms", "leaked_ms", "audio_end_ms",
                  "requested_ms", "latency_ms", "status", "tool", "text"):
            assert row[f] == getattr(rec, f), (rec.seq, f)
        assert row["redaction"] == ("caller" if rec.redacted else "pii_gate")

    shown = cli_json(capsys, "audit", "show", "call_G", "--db", db_url)
    assert [g["action"] for g in shown["gate_actions"]] == [
        "speech_held", "speech_blocked", "fallback_spoken", "truncate_clamped", "tool_decided", "tool_run"]
    assert shown["blocked"] == 1 and shown["leaked_ms"] == 0.0
    timeline = [(e["kind"], e.get("action") or e.get("seq") if e["kind"] != "decision" else e["rule_id"]) for e in shown["timeline"]]
    assert timeline == [
        ("turn", 0), ("gate", "speech_held"), ("decision", "banking.speech.card_number"), ("gate", "speech_blocked"),
        ("turn", 1), ("gate", "fallback_spoken"), ("gate", "truncate_clamped"), ("gate", "tool_decided"), ("gate", "tool_run"),
    ]
    blocked = next(e for e in shown["timeline"] if e.get("action") == "speech_blocked")
    assert (blocked["seq"], blocked["mode"], blocked["held_ms"], blocked["leaked_ms"], blocked["item_id"]) == (1, "hold", 850.0, 0.0, "i1")


async def test_gate_actions_are_chained_and_replay_is_idempotent(db_url: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    recs = gated_call()
    await record(db_url, recs + recs[4:7], tmp_path)
    await record(db_url, recs, tmp_path)
    assert ledger_ids(db_url) == [r.record_id for r in recs]
    res = cli_json(capsys, "audit", "verify", "--db", db_url)
    assert res["ok"] and res["checked"] == len(recs)
    exported = [json.loads(x) for x in cli(capsys, "audit", "export", "--db", db_url)[1].splitlines()]
    gates = [x for x in exported if x["table"] == "gate_actions"]
    assert len(gates) == 6 and gates[1]["record"]["action"] == "speech_blocked" and gates[1]["record"]["held_ms"] == 850.0
    rc, out, _ = cli(capsys, "audit", "export", "--format", "csv", "--db", db_url)
    assert rc == 0 and out.count("gate_actions") == 6


GATE_TAMPERING = {
    # a leak that reached the caller, made to look contained
    "soften_leak": "UPDATE gate_actions SET leaked_ms = 0.0 WHERE id = 'call_G/gate/1'",
    "downgrade_action": "UPDATE gate_actions SET action = 'speech_held' WHERE id = 'call_G/gate/1'",
    "edit_text": "UPDATE gate_actions SET text = 'all fine' WHERE id = 'call_G/gate/2'",
    "delete_action": "DELETE FROM gate_actions WHERE id = 'call_G/gate/1'",
    "forge_action": ("INSERT INTO gate_actions (id, call_id, seq, at_ms, action, redaction) "
                     "VALUES ('call_G/gate/9', 'call_G', 9, 1.0, 'speech_held', 'caller')"),
}


@pytest.mark.parametrize("how", list(GATE_TAMPERING))
async def test_verify_detects_gate_tampering(how: str, db_url: str, tamper: Any, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    recs = gated_call()
    # monitor mode: 300 ms of the card number reached the caller
    recs[5] = GateActionRecord("call_G", 1, 1_150.0, "speech_blocked", mode="monitor", item_id="i1",
                               rule_id="banking.speech.card_number", leaked_ms=300.0)
    await record(db_url, recs, tmp_path)
    tamper(GATE_TAMPERING[how])
    rc, out, _ = cli(capsys, "audit", "verify", "--db", db_url)
    assert rc == 1 and out.startswith("FAILED"), out
    assert "table gate_actions, row call_G/gate/" in out, out
    expected = {"delete_action": "row_missing", "forge_action": "unledgered_row"}.get(how, "row_edited")
    assert expected in out, out
    if how == "soften_leak":
        # the edit shows as it was meant to look, but verify says it was edited: that is the point of the chain
        assert cli_json(capsys, "audit", "calls", "--db", db_url)[0]["leaked_ms"] == 0.0


async def test_gate_actions_are_append_only(db_url: str, tmp_path: Path) -> None:
    await record(db_url, gated_call(), tmp_path)
    engine = make_engine(db_url)
    statements = ["UPDATE gate_actions SET leaked_ms = 0.0", "DELETE FROM gate_actions"]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE gate_actions")
    for sql in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text(sql))
    engine.dispose()
    if db_url.startswith("sqlite"):
        db = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        cur = db.execute("SELECT * FROM gate_actions WHERE seq = 1")
        cols = [d[0] for d in cur.description]
        row = dict(zip(cols, cur.fetchone()))
        ins = f"INTO gate_actions ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})"
        for verb, changes in [
            ("INSERT OR REPLACE", {"leaked_ms": 0.0}),
            ("INSERT OR REPLACE", {"id": "call_G/gate/99"}),  # same (call_id, seq)
            ("INSERT", {"id": "call_G/gate/7", "seq": "seven"}),  # seq as text: the type check
            ("INSERT", {"id": "call_G/gate/8", "seq": 8, "held_ms": "long"}),
            ("INSERT", {"id": "call_G/gate/10", "seq": 10, "action": b"speech_held"}),  # a blob, not text
            ("INSERT", {"id": "call_G/gate/11", "seq": 11, "leaked_ms": b"\x00"}),
        ]:
            with pytest.raises(sqlite3.IntegrityError):
                db.execute(f"{verb} {ins}", list({**row, **changes}.values()))
        db.close()


# ---------------------------------------------------------------------------- redaction
async def test_gate_text_is_redacted_unless_marked(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = [
        CallStarted("p", T0, "web", "m", "sim", gate_mode="hold"),
        GateActionRecord("p", 0, 1.0, "speech_blocked", mode="hold", rule_id="banking.speech.card_number",
                         text=f"your card number is {CARD}", held_ms=400.0, leaked_ms=0.0),
        GateActionRecord("p", 1, 2.0, "escalated", text="mail jane.doe@example.com or call +1 415 555 0199",
                         item_id="jane.doe@example.com"),
        GateActionRecord("p", 2, 3.0, "fallback_spoken", text="keep +1 415 555 0199 as given", redacted=True),
        GateActionRecord("p", 3, 4.0, "gate_failed", text="x" * 5_000, redacted=True),
    ]
    await record(db_url, recs, tmp_path)
    got = {r[0]: r[1:] for r in rows(db_url, "SELECT seq, text, item_id, rule_id, redaction FROM gate_actions")}
    blob = json.dumps([got[0], got[1]])
    for planted in (CARD, "4111111111111111", "jane.doe@example.com", "415 555 0199"):
        assert planted not in blob, planted
    assert got[0][0].startswith("your card number is <") and got[0][2:] == ("banking.speech.card_number", "pii_gate")
    assert got[2] == ("keep +1 415 555 0199 as given", None, None, "caller")
    assert len(got[3][0]) == 4_001 and got[3][0].endswith("…")  # cut like a call event message
    # nowhere on the read side either
    for argv in (("audit", "show", "p"), ("audit", "gate"), ("audit", "export")):
        _, out, _ = cli(capsys, *argv, "--db", db_url)
        assert CARD not in out and "jane.doe@example.com" not in out, argv
    if db_url.startswith("sqlite"):
        raw = Path(db_url.removeprefix("sqlite:///")).read_bytes()
        wal = Path(db_url.removeprefix("sqlite:///") + "-wal")
        raw += wal.read_bytes() if wal.exists() else b""
        assert CARD.encode() not in raw and b"jane.doe@example.com" not in raw


# ---------------------------------------------------------------------------- show, calls, gate
async def test_show_renders_gate_actions_in_time_order(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await record(db_url, gated_call(), tmp_path)
    rc, out, _ = cli(capsys, "audit", "show", "call_G", "--db", db_url)
    assert rc == 0
    needles = [
        "What's my card number?",
        "GATE speech_held [hold]: held 120 ms",
        "decision  assistant_text: rule banking.speech.card_number -> block_speech",
        "GATE speech_blocked [hold] rule banking.speech.card_number: held 850 ms, leaked 0 ms",
        "I can't share that.",
        f'GATE fallback_spoken [hold]: "{FALLBACK}"',
        "GATE truncate_clamped: asked 5000 ms, clamped to 1240 ms",
        "GATE tool_decided [hold] get_balance rule tool.get_balance: allow",
        "GATE tool_run get_balance: ok in 12 ms",
        "call ended: completed",
    ]
    lines = out.splitlines()
    order = [next((i for i, ln in enumerate(lines) if needle in ln), -1) for needle in needles]
    assert -1 not in order and order == sorted(order), (order, out)


async def test_show_a_call_known_only_by_gate_actions(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await record(db_url, [GateActionRecord("orphan", 0, 5.0, "gate_failed", effect="fail_open", text="check timed out", redacted=True)], tmp_path)
    rc, out, _ = cli(capsys, "audit", "show", "orphan", "--db", db_url)
    assert rc == 0 and 'GATE gate_failed: effect fail_open, "check timed out"' in out
    rc, _, err = cli(capsys, "audit", "show", "nobody", "--db", db_url)
    assert rc == 1 and "no call" in err


async def test_calls_blocked_and_leaked(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = gated_call("held", T0) + monitor_call("leaky", T0 + 10, 300.0, 120.5) + monitor_call("clean", T0 + 20)
    await record(db_url, recs, tmp_path)
    calls = {c["call_id"]: c for c in cli_json(capsys, "audit", "calls", "--db", db_url)}
    assert {k: (c["blocked"], c["leaked_ms"]) for k, c in calls.items()} == {
        "held": (1, 0.0), "leaky": (2, 420.5), "clean": (0, 0.0)}
    assert [c["call_id"] for c in cli_json(capsys, "audit", "calls", "--blocked", "--db", db_url)] == ["leaky", "held"]
    assert [c["call_id"] for c in cli_json(capsys, "audit", "calls", "--blocked", "--channel", "web", "--db", db_url)] == ["held"]
    rc, out, _ = cli(capsys, "audit", "calls", "--db", db_url)
    assert rc == 0
    header, *body = out.splitlines()
    col = header.index("BLOCKED")
    assert {ln.split()[0]: ln[col:].split()[0] for ln in body if not ln.startswith("(")} == {"held": "1", "leaky": "2", "clean": "0"}
    # the BI views agree
    summary = {r[0]: (r[1], float(r[2])) for r in rows(db_url, "SELECT call_id, blocked, leaked_ms FROM audit_call_summary")}
    assert summary == {"held": (1, 0.0), "leaky": (2, 420.5), "clean": (0, 0.0)}
    view = rows(db_url, "SELECT call_id, seq, call_started_at, action, leaked_ms FROM audit_gate_actions "
                        "WHERE call_id = 'leaky' ORDER BY seq")
    assert [tuple(r) for r in view] == [("leaky", 0, T0 + 10, "speech_blocked", 300.0), ("leaky", 1, T0 + 10, "speech_blocked", 120.5)]


async def test_gate_command(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recent = time.time() - 3600
    recs = gated_call("held", T0) + monitor_call("leaky", recent, 300.0, 100.0, 0.0)
    await record(db_url, recs, tmp_path)
    listed = cli_json(capsys, "audit", "gate", "--db", db_url)
    # newest call first, each call's actions in seq order
    assert [(g["call_id"], g["seq"]) for g in listed] == [("leaky", 0), ("leaky", 1), ("leaky", 2)] + [("held", i) for i in range(6)]
    assert listed[0]["call_started_at"] == recent and listed[0]["action"] == "speech_blocked"
    assert [g["call_id"] for g in cli_json(capsys, "audit", "gate", "--action", "tool_run", "--db", db_url)] == ["held"]
    assert {g["call_id"] for g in cli_json(capsys, "audit", "gate", "--since", "7d", "--db", db_url)} == {"leaky"}
    assert [g["seq"] for g in cli_json(capsys, "audit", "gate", "--call", "held", "--limit", "2", "--db", db_url)] == [0, 1]

    rc, out, _ = cli(capsys, "audit", "gate", "--db", db_url)
    assert rc == 0 and out.splitlines()[0].split()[:3] == ["CALL", "CALL", "STARTED"]
    footer = out.splitlines()[-1]
    # held_ms: 120, 850 (the held call); leaked_ms: 0 (held) and 300, 100, 0 (leaky)
    assert footer == ("(9 gate actions; held p50 120 ms / p99 850 ms (n=2); "
                      "leaked p50 0 ms / p99 300 ms (n=4))"), footer
    assert "asked 5000 ms, clamped to 1240 ms" in out and "ok in 12 ms" in out

    rc, out, _ = cli(capsys, "audit", "gate", "--action", "speech_blocked", "--since", "7d", "--db", db_url)
    assert out.splitlines()[-1] == "(3 gate actions; leaked p50 100 ms / p99 300 ms (n=3))"
    # with --limit, the percentiles still cover every matching action
    rc, out, _ = cli(capsys, "audit", "gate", "--limit", "1", "--db", db_url)
    assert out.splitlines()[-1].startswith("(1 gate actions; --limit reached; held p50 120 ms / p99 850 ms (n=2)")
    rc, out, _ = cli(capsys, "audit", "gate", "--action", "tool_run", "--db", db_url)
    assert out.splitlines()[-1] == "(1 gate actions)"
    rc, out, _ = cli(capsys, "audit", "gate", "--action", "escalated", "--db", db_url)
    assert rc == 0 and out.splitlines()[-1] == "(0 gate actions)"


async def test_interrupted_call_ends_at_its_last_gate_action(db_url: str, tmp_path: Path) -> None:
    await record(db_url, gated_call()[:-1] + [GateActionRecord("call_G", 6, 3_900.5, "tool_late_result", tool="get_balance")], tmp_path)
    assert close_interrupted_calls(db_url, older_than_s=None) == [CallEnded("call_G", 3_900.5, "interrupted")]


# ---------------------------------------------------------------------------- migration
def test_migration_0003_downgrades_and_upgrades(db_url: str) -> None:
    from alembic import command

    engine = make_engine(db_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0002")
    with engine.connect() as conn:
        cols = list(conn.execute(text("SELECT * FROM audit_call_summary")).keys())
        assert "config_refused" in cols and "blocked" not in cols
        names = {r[0] for r in conn.execute(text(
            "SELECT name FROM sqlite_master" if conn.dialect.name == "sqlite"
            else "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"))}
        assert "gate_actions" not in names and "audit_gate_actions" not in names and "call_events" in names
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    with engine.connect() as conn:
        assert {"blocked", "leaked_ms"} <= set(conn.execute(text("SELECT * FROM audit_call_summary")).keys())
        conn.execute(text("SELECT * FROM audit_gate_actions"))
        command.check(alembic_config(conn))
    engine.dispose()

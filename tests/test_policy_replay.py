"""Replay: re-evaluate recorded calls (audit records) with a pack; from memory and through the audit database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybrid_agent.audit.records import (
    CallEnded,
    CallStarted,
    DisclosureRecord,
    PolicyDecisionRecord,
    ToolCallRecord,
    ToolResultRecord,
    TurnRecord,
)
from hybrid_agent.cli import main
from hybrid_agent.policy import load_pack
from hybrid_agent.policy.replay import group_records, parse_since, pii_from_placeholders, replay

BANK_DIR = Path(__file__).resolve().parents[1] / "policies" / "retail-banking"
T0 = 1_750_000_000.0


def call_records(cid: str = "c1") -> list[object]:
    """A call recorded under an old pack that allowed everything."""
    return [
        CallStarted(cid, T0, "twilio", "gpt-realtime", "sim", policy_pack="retail-banking", policy_version="old"),
        DisclosureRecord(cid, "recording_notice", "This call is recorded.", at_ms=10.0, redacted=True),
        TurnRecord(cid, 0, "user", "u0", "Move 5000 to my other account", "completed", 100.0, 900.0, redacted=True),
        PolicyDecisionRecord(cid, 0, "user_text", "old.ok", "allow", "old", 905.0, subject_id=f"{cid}/turn/0"),
        # transfer before verification: old pack allowed it
        ToolCallRecord(cid, "t1", "transfer_funds", json.dumps({"from_account": "a", "to_account": "b", "amount": 5000}), 1000.0, redacted=True),
        PolicyDecisionRecord(cid, 1, "tool_call", "old.tools", "allow", "old", 1001.0, subject_id=f"{cid}/tool/t1"),
        ToolResultRecord(cid, "t1", '{"status": "done"}', 1100.0, redacted=True),
        # the assistant read a card number; the PII gate redacted it in the store
        TurnRecord(cid, 1, "assistant", "a1", "Your card is [CREDIT_CARD].", "completed", 1200.0, 2000.0, redacted=True),
        PolicyDecisionRecord(cid, 2, "assistant_text", "old.ok", "allow", "old", 1201.0, subject_id=f"{cid}/turn/1"),
        # verification succeeds; a later balance check is fine under both packs
        ToolCallRecord(cid, "t2", "verify_identity", json.dumps({"customer_id": "x"}), 2100.0, redacted=True),
        ToolResultRecord(cid, "t2", '{"verified": true, "verification_level": "strong"}', 2200.0, redacted=True),
        ToolCallRecord(cid, "t3", "get_balance", json.dumps({"account_id": "a"}), 2300.0, redacted=True),
        PolicyDecisionRecord(cid, 3, "tool_call", "old.tools", "allow", "old", 2301.0, subject_id=f"{cid}/tool/t3"),
        TurnRecord(cid, 2, "user", "u2", "I want to make a complaint", "completed", 2400.0, 3000.0, redacted=True),
        PolicyDecisionRecord(cid, 4, "user_text", "old.complaint", "escalate", "old", 3001.0, subject_id=f"{cid}/turn/2"),
        CallEnded(cid, 4000.0, "completed"),
    ]


def test_replay_from_records() -> None:
    pack = load_pack(BANK_DIR)
    recs = call_records("c1") + call_records("c2")
    assert [c.call_id for c in group_records(recs)] == ["c1", "c2"]
    rep = replay(pack, recs)
    assert rep.calls == 2 and rep.pack_version == pack.version
    changes = [(e.call_id, e.stage, e.old_effect, e.new.effect, e.new.rule_ids) for e in rep.changes if e.call_id == "c1"]
    assert ("c1", "tool_call", "allow", "step_up", ("banking.identity.required_for_transfer",)) in changes
    assert ("c1", "assistant_text", "allow", "block_speech", ("banking.speech.card_number_pii",)) in changes
    # session_start had no recorded decision: counts as allow
    assert ("c1", "session_start", None, "allow", ()) not in changes
    by_subject = {e.subject_id: e for e in rep.events if e.call_id == "c1"}
    # the disclosure given at 10 ms and the verification at 2200 ms are part of the replayed session
    assert by_subject["c1/tool/t3"].new.effect == "allow" and not by_subject["c1/tool/t3"].changed
    assert by_subject["c1/turn/2"].old_effect == "escalate" and not by_subject["c1/turn/2"].changed
    assert by_subject["c1/tool/t1"].turn_seq is None and by_subject["c1/tool/t1"].tool_call_id == "t1"
    assert len(rep.changes) == 2 * len(changes)


def test_placeholders_and_since() -> None:
    assert pii_from_placeholders("[CREDIT_CARD] and [CREDIT_CARD], <IBAN_CODE> [x]") == {"CREDIT_CARD": 2, "IBAN_CODE": 1}
    assert parse_since("1750000000") == 1750000000.0
    assert parse_since("2025-06-15T15:06:40Z") == 1750000000.0
    assert parse_since("2025-06-15") == 1749945600.0
    with pytest.raises(ValueError):
        parse_since("last tuesday")


def test_replay_cli_over_audit_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hybrid_agent.audit.store import upgrade
    from hybrid_agent.audit.writer import AuditWriter

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    writer = AuditWriter(url, spool_path=tmp_path / "w.spool", pseudonym_key="k")
    writer.start_sync()
    try:
        for r in call_records("c1"):
            writer.enqueue(r)  # type: ignore[arg-type]
        writer.flush_sync()
    finally:
        writer.close_sync()
    capsys.readouterr()
    rc = main(["policy", "replay", str(BANK_DIR), "--db", url, "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    d = json.loads(out)
    assert d["calls"] == 1
    got = {(c["stage"], c["old_effect"], c["new_effect"]) for c in d["changes"]}
    assert got == {("tool_call", "allow", "step_up"), ("assistant_text", "allow", "block_speech")}
    rc = main(["policy", "replay", str(BANK_DIR), "--db", url, "--since", "2099-01-01"])
    out, _ = capsys.readouterr()
    assert rc == 0 and "replayed 0 call(s)" in out
    rc = main(["policy", "replay", str(BANK_DIR), "--db", url])
    out, _ = capsys.readouterr()
    assert rc == 0 and "2 would change" in out and "banking.speech.card_number_pii" in out


def test_replay_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    rc = main(["policy", "replay", str(BANK_DIR), "--db", f"sqlite:///{tmp_path / 'missing.db'}"])
    out, err = capsys.readouterr()
    assert rc == 2 and err.startswith("error: no audit database") and "Traceback" not in err
    rc = main(["policy", "replay", str(BANK_DIR), "--db", "sqlite:///x.db", "--since", "someday"])
    out, err = capsys.readouterr()
    assert rc == 2 and "--since" in err

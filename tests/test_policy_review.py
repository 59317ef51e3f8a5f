"""Regressions for the policy review: separators and spoken digits, contractions, loader/lint gaps,
replay vs live, verification only by identity tools, running transfer totals, CLI robustness."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from hybrid_agent.audit.records import CallStarted, DisclosureRecord, ToolCallRecord, ToolResultRecord, TurnRecord
from hybrid_agent.cli import main
from hybrid_agent.policy import load_pack
from hybrid_agent.pii.analyzer import get_analyzer, plain_separators
from hybrid_agent.policy.lint import lint
from hybrid_agent.policy.live import PolicySession
from hybrid_agent.policy.loader import PackError
from hybrid_agent.policy.replay import replay
from hybrid_agent.policy.text import digits_form, normalize_text

ROOT = Path(__file__).resolve().parents[1]
BANK = ROOT / "policies" / "retail-banking"
HEALTH = ROOT / "policies" / "healthcare"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def copy_pack(tmp_path: Path, src: Path = BANK, extra: dict[str, str] | None = None) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("tests"))
    for name, text in (extra or {}).items():
        (dst / "rules" / name).write_text(text)
    return dst


# ------------------------------------------------------------------------------------------ text forms
@pytest.mark.parametrize("text", [
    "4111\u00a01111\u00a01111\u00a01111", "4111\u202f1111\u202f1111\u202f1111", "4111/1111/1111/1111", "4111_1111_1111_1111",
    "4111.1111.1111.1111", "4111 - 1111 - 1111 - 1111", "4111  1111  1111  1111", "4111\u20131111\u20131111\u20131111",
    "four triple one, triple one one, one one one one, one one one one",
])
def test_digits_form_joins_card_groups(text: str) -> None:
    assert digits_form(text) == "4111111111111111"


@pytest.mark.parametrize("text", ["12,345,678.90", "1234.56", "29/11/2026", "2026-11-29", "ending in 1111"])
def test_digits_form_keeps_amounts_and_dates(text: str) -> None:
    assert digits_form(text) == text


@pytest.mark.parametrize("a,b", [
    ("I can’t breathe", "i cannot breathe"), ("I can not breathe", "I cant breathe"), ("That's probably", "that is probably"),
    ("You've got", "you have got"), ("I'd recommend", "I would recommend"), ("won't wake up", "will not wake up"),
    ("I'm short of breath", "im short of breath"), ("He's unresponsive", "he is unresponsive"),
])
def test_contractions_expand_on_both_sides(a: str, b: str) -> None:
    assert normalize_text(a) == normalize_text(b)


def test_pii_gate_reads_odd_separators_with_original_offsets() -> None:
    assert plain_separators("4111\u00a01111/1111_1111") == "4111 1111 1111 1111"
    assert plain_separators("and/or a_b") == "and/or a_b"
    for text in ("card 4111\u00a01111\u00a01111\u00a01111 ok", "card 4111/1111/1111/1111 ok", "card 4111_1111_1111_1111 ok"):
        [card] = get_analyzer().analyze(text)  # every user of the gate (audit redaction too) sees it
        assert card.type == "CREDIT_CARD" and text[card.start : card.end] == text[5:24]


# ------------------------------------------------------------------------------------------ the shipped packs
@pytest.mark.parametrize("text", [
    "Your card number is 4111\u00a01111\u00a01111\u00a01111.", "It is 4111/1111/1111/1111.", "It is 4111_1111_1111_1111.",
    "It is 4111.1111.1111.1111.", "Account no.12345678", "I've sent the money to 1234 5678", "account number is 1234\u00a05678",
    "four triple one, triple one one, one one one one, one one one one",
])
def test_bank_blocks_numbers_with_any_separator(text: str) -> None:
    d = load_pack(BANK).evaluate({"stage": "assistant_text", "text": text})
    assert d.effect == "block_speech", (text, d.rule_ids)


def test_bank_cumulative_limits_and_currency() -> None:
    pack = load_pack(BANK)
    s = PolicySession.for_pack(pack, channel="phone")
    s.verification_level = "basic"
    s.disclosures.append("recording_notice")
    args = json.dumps({"from_account": "a", "to_account": "b", "amount": 999, "currency": "GBP"})
    effects = []
    for i in range(9):
        inp = s.tool_call("transfer_funds", args, 1000.0 * i).model_copy(update={"confirmed": True})
        effects.append(pack.evaluate(inp).effect)
        s.note_tool_call()
        s.note_tool_result('{"status": "ok"}', tool="transfer_funds", arguments=args)
    assert effects[0] == "allow" and effects[1] == "step_up"
    btc = {"stage": "tool_call", "tool": "transfer_funds", "confirmed": True, "session": {"verification_level": "strong", "disclosures": ["recording_notice"]},
           "args": {"from_account": "a", "to_account": "b", "amount": 10000, "currency": "BTC"}}
    assert pack.evaluate(btc).effect == "deny"


# ------------------------------------------------------------------------------------------ live session state
def test_only_identity_tools_raise_verification() -> None:
    pack = load_pack(BANK)
    s = PolicySession.for_pack(pack)
    s.note_tool_result('{"verification_level": "strong"}', tool="get_balance", arguments="{}")
    assert s.verification_level == "none"
    s.note_tool_result('{"verification_level": "basic"}', tool="verify_identity", arguments="{}", ok=False)
    assert s.verification_level == "none"
    s.note_tool_result('{"verification_level": "basic"}', tool="verify_identity", arguments="{}")
    assert s.verification_level == "basic"
    # without the pack's declarations (the call session today) the conventional names apply
    bare = PolicySession()
    bare.note_tool_result('{"verification_level": "strong"}', tool="get_balance")
    bare.note_tool_result('{"verification_level": "strong"}')
    assert bare.verification_level == "none"
    bare.note_tool_result('{"verification_level": "strong"}', tool="verify_identity")
    assert bare.verification_level == "strong"


def test_transferred_counts_successful_transfers_only() -> None:
    s = PolicySession.for_pack(load_pack(BANK))
    args = '{"amount": 400, "from_account": "a", "to_account": "b"}'
    s.note_tool_result('{"status": "ok"}', tool="transfer_funds", arguments=args)
    s.note_tool_result('{"error": "insufficient funds"}', tool="transfer_funds", arguments=args)
    s.note_tool_result('{"status": "failed"}', tool="transfer_funds", arguments=args)
    s.note_tool_result("ok", tool="transfer_funds", arguments=args, ok=False)
    s.note_tool_result('{"status": "ok"}', tool="transfer_funds", arguments='{"amount": "lots"}')
    s.note_tool_result('{"status": "ok"}', tool="get_balance", arguments=args)
    assert s.transferred == 400.0
    assert s.snapshot(0).transferred == 400.0


# ------------------------------------------------------------------------------------------ replay = live
SCRIPT = "This call is recorded for quality, training and compliance purposes."


def test_replay_removes_missing_disclosures() -> None:
    pack = load_pack(BANK)
    c = "call1"
    recs = [
        CallStarted(c, 0.0, "phone", "m", "u"),
        TurnRecord(c, 0, "assistant", "i0", "Hello! " + SCRIPT, "completed", 0.0, 1000.0),
        DisclosureRecord(c, "recording_notice", SCRIPT, 1000.0, "given", 0),
        DisclosureRecord(c, "recording_notice", SCRIPT, 1200.0, "missing", 0),
        ToolCallRecord(c, "t1", "get_balance", '{"account_id":"a"}', 2000.0),
    ]
    [tool] = [e for e in replay(pack, recs).events if e.stage == "tool_call"]
    assert "banking.disclosure.before_account_action" in tool.new.rule_ids


def test_replay_decides_tool_result_before_noting_it(tmp_path: Path) -> None:
    rule = ("rules:\n  - id: tr.unverified_result\n    stage: tool_result\n    tools: [verify_identity]\n"
            "    condition: session.verification_level == \"none\"\n    effect: escalate\n    message: m\n")
    pack = load_pack(copy_pack(tmp_path, extra={"zz.yaml": rule}))
    c = "call2"
    recs = [CallStarted(c, 0.0, "phone", "m", "u"), ToolCallRecord(c, "t2", "verify_identity", "{}", 100.0),
            ToolResultRecord(c, "t2", '{"verification_level": "strong"}', 200.0),
            ToolCallRecord(c, "t3", "get_balance", '{"account_id": "a"}', 300.0)]
    events = replay(pack, recs).events
    [res] = [e for e in events if e.stage == "tool_result"]
    assert res.new.effect == "escalate"  # live: the result is decided with the level before it
    [bal] = [e for e in events if e.stage == "tool_call" and e.subject_id.endswith("t3")] or [events[-1]]
    assert "banking.identity.required_for_balance" not in bal.new.rule_ids  # and noted afterwards


def test_replay_orders_a_turns_disclosure_after_the_turn(tmp_path: Path) -> None:
    rule = ("rules:\n  - id: tr.notice_already_given\n    stage: assistant_text\n"
            "    condition: '\"recording_notice\" in session.disclosures'\n    effect: escalate\n    message: m\n")
    pack = load_pack(copy_pack(tmp_path, extra={"zz.yaml": rule}))
    c = "call3"
    recs = [CallStarted(c, 0.0, "phone", "m", "u"),
            DisclosureRecord(c, "recording_notice", SCRIPT, 1000.0, "given", 0),
            TurnRecord(c, 0, "assistant", "i0", SCRIPT, "completed", 0.0, 1000.0)]
    [turn] = [e for e in replay(pack, recs).events if e.stage == "assistant_text"]
    assert "tr.notice_already_given" not in turn.new.rule_ids


def test_replay_tracks_transferred() -> None:
    pack = load_pack(BANK)
    c = "call4"
    args = '{"from_account": "a", "to_account": "b", "amount": 999, "currency": "GBP"}'
    recs: list = [CallStarted(c, 0.0, "phone", "m", "u"), DisclosureRecord(c, "recording_notice", SCRIPT, 10.0, "given", 0),
                  ToolCallRecord(c, "v", "verify_identity", "{}", 20.0), ToolResultRecord(c, "v", '{"verification_level": "basic"}', 30.0)]
    for i in range(3):
        recs += [ToolCallRecord(c, f"t{i}", "transfer_funds", args, 100.0 + i * 10), ToolResultRecord(c, f"t{i}", '{"status": "ok"}', 105.0 + i * 10)]
    calls = [e for e in replay(pack, recs).events if e.stage == "tool_call" and e.summary.startswith("transfer_funds")]
    assert "banking.transfer.cumulative_basic" not in calls[0].new.rule_ids
    assert "banking.transfer.cumulative_basic" in calls[1].new.rule_ids


# ------------------------------------------------------------------------------------------ loader and lint
def test_pack_without_rules_is_an_error(tmp_path: Path) -> None:
    root = copy_pack(tmp_path)
    for p in (root / "rules").iterdir():
        p.unlink()
    rep = lint(root)
    assert any("no rule files" in i.message for i in rep.errors)
    with pytest.raises(PackError):
        load_pack(root)
    (root / "rules" / "empty.yaml").write_text("rules: []\n")
    assert any("define no rules" in i.message for i in lint(root).errors)


def test_ignored_files_in_rules_are_flagged(tmp_path: Path) -> None:
    root = copy_pack(tmp_path)
    (root / "rules" / "transfers.yaml").rename(root / "rules" / "transfers.YAML")
    (root / "rules" / "identity.yaml").rename(root / "rules" / "identity.yaml.bak")
    rep = lint(root)
    assert any("transfers.YAML" in i.file and "rename it to transfers.yaml" in i.message for i in rep.errors)
    assert any("identity.yaml.bak" in i.file for i in rep.warnings)


def test_pack_on_error_must_be_strong(tmp_path: Path) -> None:
    root = copy_pack(tmp_path)
    text = (root / "pack.yaml").read_text().replace("on_error: deny", "on_error: confirm")
    (root / "pack.yaml").write_text(text)
    assert any("on_error" in i.message for i in lint(root).errors)


# ------------------------------------------------------------------------------------------ CLI and explain
def test_explain_rejects_invalid_utf8_and_deep_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'\xff\xfe{"stage":"user_text"}')
    rc, out, err = cli(capsys, "policy", "explain", str(BANK), "--input", str(bad))
    assert rc == 2 and "not UTF-8" in err and "Traceback" not in err
    deep = '{"stage": "tool_call", "args": {"a": ' + "[" * 3000 + "]" * 3000 + "}}"
    monkeypatch.setattr("sys.stdin", io.StringIO(deep))
    rc, out, err = cli(capsys, "policy", "explain", str(BANK), "--input", "-")
    assert rc == 2 and "too deeply" in err


def test_explain_does_not_evaluate_conditions_of_other_tools() -> None:
    ex = load_pack(BANK).explain({"stage": "tool_call", "tool": "get_balance", "args": {"account_id": "a"},
                                  "session": {"verification_level": "basic", "disclosures": ["recording_notice"]}})
    t = next(t for t in ex.traces if t.rule_id == "banking.transfer.invalid_amount")
    assert t.tools is False and t.condition is None and t.error is None and not t.matched


def test_history_rules_share_the_live_list() -> None:
    pack = load_pack(HEALTH)
    for text in ["I can’t breathe", "she's having a seizure", "I cannot breathe", "my throat is closing", "I want to end my life"]:
        live = pack.evaluate({"stage": "user_text", "text": text})
        later = pack.evaluate({"stage": "tool_call", "tool": "get_appointments", "args": {"patient_id": "p"},
                               "session": {"verification_level": "basic"}, "history": [{"role": "user", "text": text}]})
        assert live.effect == later.effect == "escalate", text

"""Policy engine: loading with file:line errors, lint, evaluation, explain/test CLI, shipped packs."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from hybrid_agent.cli import main
from hybrid_agent.policy import PolicyInput, load, load_pack
from hybrid_agent.policy.lint import lint
from hybrid_agent.policy.loader import content_hash

ROOT = Path(__file__).resolve().parents[1]
PACKS = ROOT / "policies"
BANK = PACKS / "retail-banking"
HEALTH = PACKS / "healthcare"
SHIPPED = [BANK, HEALTH]

MANIFEST = """\
name: mini
description: a small test pack
version: 0.1.0
default_effect: allow
on_error: deny
tools:
  transfer_funds:
    args: {amount: number, to_account: string}
  get_balance:
    args: {account_id: string}
disclosures:
  recording_notice: This call is recorded.
"""

GOOD_RULES = """\
rules:
  - id: mini.transfer.limit
    stage: tool_call
    tools: [transfer_funds]
    condition: args.amount > 1000 && session.verification_level != "strong"
    effect: step_up
    level: strong
    message: big transfer
"""


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def make_pack(tmp_path: Path, rules: dict[str, str] | None = None, manifest: str = MANIFEST, tests: dict[str, str] | None = None) -> Path:
    root = tmp_path / "mini"
    (root / "rules").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pack.yaml").write_text(manifest)
    for name, text in (rules if rules is not None else {"main.yaml": GOOD_RULES}).items():
        (root / "rules" / name).write_text(textwrap.dedent(text))
    for name, text in (tests or {}).items():
        (root / "tests" / name).write_text(textwrap.dedent(text))
    return root


def lint_lines(capsys: pytest.CaptureFixture[str], root: Path) -> tuple[int, list[str], str]:
    rc, out, err = cli(capsys, "policy", "lint", str(root))
    assert "Traceback" not in out + err
    return rc, [ln for ln in out.splitlines() if ": error: " in ln], out


# ------------------------------------------------------------------------------------------ shipped packs
@pytest.mark.parametrize("pack", SHIPPED, ids=lambda p: p.name)
def test_shipped_pack_lints_clean(pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = cli(capsys, "policy", "lint", str(pack))
    assert rc == 0, out + err
    assert ": error: " not in out
    assert lint(pack).ok


@pytest.mark.parametrize("pack", SHIPPED, ids=lambda p: p.name)
def test_shipped_pack_tests_pass(pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = cli(capsys, "policy", "test", str(pack))
    assert rc == 0, out + err
    res = load(pack)
    assert len(res.tests) >= 15
    assert f"{len(res.tests)} passed" in out


def test_explain_unverified_transfer_of_5000(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    inp = {"stage": "tool_call", "tool": "transfer_funds", "args": {"from_account": "a", "to_account": "b", "amount": 5000},
           "session": {"verification_level": "none", "disclosures": ["recording_notice"]}}
    f = tmp_path / "in.json"
    f.write_text(json.dumps(inp))
    rc, out, err = cli(capsys, "policy", "explain", str(BANK), "--input", str(f), "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["effect"] not in ("allow",) and d["effect"] == "step_up"
    assert "banking.identity.required_for_transfer" in d["rule_ids"]
    assert d["pack_version"] == content_hash(BANK)
    by_id = {r["rule_id"]: r for r in d["rules"]}
    assert by_id["banking.identity.required_for_transfer"]["condition"] is True
    assert by_id["banking.transfer.limit_phone"]["condition"] is False
    # human output names the rule and its location
    rc, out, _ = cli(capsys, "policy", "explain", str(BANK), "--input", str(f))
    assert rc == 0 and "decision: step_up" in out and "banking.identity.required_for_transfer" in out and "identity.yaml:" in out


@pytest.mark.parametrize("text,pii", [
    ("Your card number is 4111 1111 1111 1111.", {}),
    ("Your card number is 4111-1111-1111-1111.", {}),
    ("four one one one one one one one one one one one one one one one", {}),
    ("Your card number is [CREDIT_CARD].", {"CREDIT_CARD": 1}),
])
def test_explain_card_number_blocks_speech(text: str, pii: dict[str, int], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"stage": "assistant_text", "text": text, "pii": pii})))
    rc, out, err = cli(capsys, "policy", "explain", str(BANK), "--input", "-", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["effect"] == "block_speech"
    assert any(r.startswith("banking.speech.card_number") for r in d["rule_ids"])


def test_schema_command(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = cli(capsys, "policy", "schema")
    assert rc == 0
    doc = json.loads(out)
    assert {"PackManifest", "RuleFile", "PackTestFile", "PolicyInput"} <= set(doc["$defs"])
    rule = doc["$defs"]["Rule"]
    assert rule["additionalProperties"] is False and "condition" in rule["properties"]
    rc, out, _ = cli(capsys, "policy", "schema", "--kind", "rules")
    assert rc == 0 and json.loads(out)["title"] == "RuleFile"


def test_committed_schema_file_is_current() -> None:
    from hybrid_agent.policy.schema import json_schema

    committed = json.loads((ROOT / "docs" / "policy-pack.schema.json").read_text())
    assert committed == json.loads(json.dumps(json_schema())), "regenerate: hybrid-agent policy schema > docs/policy-pack.schema.json"


# ------------------------------------------------------------------------------------------ broken packs: one line each
BROKEN: list[tuple[str, str, int, str]] = [
    ("yaml syntax", "rules:\n  - id: a.b\n    stage: [user_text\n", 3, "YAML syntax error"),
    ("unknown field", "rules:\n  - id: a.b\n    stage: user_text\n    efect: deny\n    effect: deny\n    message: m\n", 4, "unknown field 'efect'"),
    ("bad effect", "rules:\n  - id: a.b\n    stage: user_text\n    effect: nuke\n    message: m\n", 4, "rules[0].effect"),
    ("missing message", "rules:\n  - id: a.b\n    stage: user_text\n    effect: deny\n", 2, "missing required field 'message'"),
    ("bad id", "rules:\n  - id: NoDots\n    stage: user_text\n    effect: deny\n    message: m\n", 2, "rules[0].id"),
    ("cel syntax", "rules:\n  - id: a.b\n    stage: user_text\n    condition: 'text ==  '\n    effect: deny\n    message: m\n", 4, "CEL syntax error"),
    ("cel type", "rules:\n  - id: a.b\n    stage: user_text\n    condition: text > 1\n    effect: deny\n    message: m\n", 2, "type error"),
    ("non-bool", "rules:\n  - id: a.b\n    stage: user_text\n    condition: text\n    effect: deny\n    message: m\n", 2, "not bool"),
    ("unknown var", "rules:\n  - id: a.b\n    stage: user_text\n    condition: customer.vip\n    effect: deny\n    message: m\n", 2, "unknown variable(s) customer"),
    ("unknown arg", "rules:\n  - id: a.b\n    stage: tool_call\n    tools: [transfer_funds]\n    condition: args.amout > 1\n    effect: deny\n    message: m\n", 2, "not an argument of the tool"),
    ("unknown tool", "rules:\n  - id: a.b\n    stage: tool_call\n    tools: [wire_money]\n    effect: deny\n    message: m\n", 2, "unknown tool 'wire_money'"),
    ("unknown tool in cel", "rules:\n  - id: a.b\n    stage: tool_call\n    condition: tool == \"wire_money\"\n    effect: deny\n    message: m\n", 2, "unknown tool 'wire_money'"),
    ("tools on text stage", "rules:\n  - id: a.b\n    stage: user_text\n    tools: [get_balance]\n    effect: deny\n    message: m\n", 2, "can never match"),
    ("phrases on tool stage", "rules:\n  - id: a.b\n    stage: tool_call\n    phrases: [hello]\n    effect: deny\n    message: m\n", 2, "can never match"),
    ("constant false", "rules:\n  - id: a.b\n    stage: user_text\n    condition: 1 == 2\n    effect: deny\n    message: m\n", 2, "constant false"),
    ("unknown level", "rules:\n  - id: a.b\n    stage: tool_call\n    condition: session.verification_level == \"gold\"\n    effect: deny\n    message: m\n", 2, "unknown verification level 'gold'"),
    ("bad regex", "rules:\n  - id: a.b\n    stage: user_text\n    regex: ['(unclosed']\n    effect: deny\n    message: m\n", 4, "invalid regex"),
    ("disclosure unknown", "rules:\n  - id: a.b\n    stage: session_start\n    effect: require_disclosure\n    disclosure: gdpr\n    message: m\n", 2, "unknown disclosure 'gdpr'"),
    ("on_error allow", "rules:\n  - id: a.b\n    stage: user_text\n    effect: deny\n    on_error: allow\n    message: m\n", 5, "'deny', 'escalate' or 'block_speech'"),
    ("on_error weak", "rules:\n  - id: a.b\n    stage: user_text\n    effect: deny\n    on_error: redact\n    message: m\n", 5, "'deny', 'escalate' or 'block_speech'"),
    ("guarded arg typo", "rules:\n  - id: a.b\n    stage: tool_call\n    tools: [transfer_funds]\n    condition: has(args.amout) && args.amout > 1\n    effect: deny\n    message: m\n", 2, "args.amout is not an argument of the tool"),
    ("level in list", "rules:\n  - id: a.b\n    stage: tool_call\n    condition: session.verification_level in [\"none\", \"Basic\"]\n    effect: deny\n    message: m\n", 2, "unknown verification level 'Basic' in a list"),
    ("tool in list", "rules:\n  - id: a.b\n    stage: tool_call\n    condition: tool in [\"transfer_fund\"]\n    effect: deny\n    message: m\n", 2, "unknown tool 'transfer_fund' in a list"),
    ("stage in list", "rules:\n  - id: a.b\n    stage: tool_call\n    condition: stage in [\"toolcall\"]\n    effect: deny\n    message: m\n", 2, "unknown stage 'toolcall' in a list"),
    ("arg vs literal type", "rules:\n  - id: a.b\n    stage: tool_call\n    tools: [transfer_funds]\n    condition: args.to_account == 1234\n    effect: deny\n    message: m\n", 2, "compared with a number literal"),
    ("unknown function in branch", "rules:\n  - id: a.b\n    stage: user_text\n    condition: session.channel == \"web\" && text.serch(\"x\")\n    effect: deny\n    message: m\n", 2, "unknown function(s) serch"),
    ("disclosure in macro", "rules:\n  - id: a.b\n    stage: tool_call\n    condition: session.disclosures.exists(d, d == \"recording_notise\")\n    effect: deny\n    message: m\n", 2, "unknown disclosure 'recording_notise'"),
    ("unknown phrase list", "rules:\n  - id: a.b\n    stage: user_text\n    phrases: ['@nope']\n    effect: deny\n    message: m\n", 4, "unknown phrase list '@nope'"),
    ("duplicate key", "rules:\n  - id: a.b\n    stage: user_text\n    effect: deny\n    effect: allow\n    message: m\n", 5, "duplicate key"),
    ("not a list", "rules: hello\n", 1, "rules"),
]


@pytest.mark.parametrize("name,text,line,needle", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_rule_file_one_line_error(name: str, text: str, line: int, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_pack(tmp_path, {"ok.yaml": GOOD_RULES, "bad.yaml": text})
    rc, errors, out = lint_lines(capsys, root)
    assert rc == 1, out
    assert errors, out
    first = errors[0]
    assert first.startswith(f"{root / 'rules' / 'bad.yaml'}:{line}: error: ") or f"rules/bad.yaml:{line}: error: " in first, out
    assert needle in first, out
    # the other file's rule is not blamed
    assert all("ok.yaml" not in e for e in errors), out
    # and the pack does not load for evaluation
    with pytest.raises(Exception) as exc:
        load_pack(root)
    assert "bad.yaml" in str(exc.value)


def test_duplicate_ids_across_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_pack(tmp_path, {"a.yaml": GOOD_RULES, "b.yaml": GOOD_RULES})
    rc, errors, out = lint_lines(capsys, root)
    assert rc == 1
    assert len(errors) == 1 and "b.yaml:2: error:" in errors[0] and "duplicate rule id 'mini.transfer.limit'" in errors[0]
    assert "a.yaml:2" in errors[0]


def test_bad_manifest_and_missing_pack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_pack(tmp_path, manifest=MANIFEST.replace("on_error: deny", "on_error: allow\ncolour: red"))
    rc, errors, out = lint_lines(capsys, root)
    assert rc == 1
    assert any("pack.yaml:5: error:" in e and "on_error" in e for e in errors), out
    assert any("pack.yaml:6: error:" in e and "unknown field 'colour'" in e for e in errors), out
    rc, out, err = cli(capsys, "policy", "lint", str(tmp_path / "nope"))
    assert rc == 1 and "not a policy pack folder" in out and "Traceback" not in out + err


def test_warning_for_unguarded_pii_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = "rules:\n  - id: a.b\n    stage: assistant_text\n    condition: pii.CREDIT_CARD > 0\n    effect: block_speech\n    message: m\n"
    root = make_pack(tmp_path, {"r.yaml": rules})
    rc, errors, out = lint_lines(capsys, root)
    assert rc == 0 and not errors
    assert "warning:" in out and "fail closed" in out
    rc, _, _ = cli(capsys, "policy", "lint", str(root), "--strict")
    assert rc == 1


def test_broken_test_file_and_failing_test(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tests = {"t.yaml": """\
        tests:
          - name: big unverified transfer
            input: {stage: tool_call, tool: transfer_funds, args: {amount: 5000, to_account: x}}
            expect: {effect: step_up, rules: [mini.transfer.limit]}
          - name: deliberately wrong
            input: {stage: tool_call, tool: transfer_funds, args: {amount: 5, to_account: x}}
            expect: {effect: deny}
        """}
    root = make_pack(tmp_path, tests=tests)
    rc, out, err = cli(capsys, "policy", "test", str(root))
    assert rc == 1
    assert "1 failed, 1 passed" in out and "FAILED" in out and "deliberately wrong" in out and "expected effect deny, got allow" in out
    (root / "tests" / "t.yaml").write_text("tests:\n  - name: x\n    input: {stage: tool_call, tooll: y}\n    expect: {effect: allow}\n")
    rc, out, err = cli(capsys, "policy", "test", str(root))
    assert rc == 2 and "t.yaml:3: error:" in err and "unknown field 'tooll'" in err and "Traceback" not in err


def test_explain_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "in.json"
    f.write_text('{"stage": "tool_call", "tol": "x"}')
    rc, out, err = cli(capsys, "policy", "explain", str(BANK), "--input", str(f))
    assert rc == 2 and "input tol: unknown field" in err and "Traceback" not in err
    f.write_text('{"stage": ')
    rc, out, err = cli(capsys, "policy", "explain", str(BANK), "--input", str(f))
    assert rc == 2 and "invalid JSON" in err
    rc, out, err = cli(capsys, "policy", "explain", str(BANK), "--input", str(tmp_path / "missing.json"))
    assert rc == 2 and "cannot read input" in err


# ------------------------------------------------------------------------------------------ evaluation
def test_default_decision_and_version(tmp_path: Path) -> None:
    root = make_pack(tmp_path)
    pack = load_pack(root)
    d = pack.evaluate(PolicyInput(stage="user_text", text="hello"))
    assert d.effect == "allow" and d.default and d.rule_ids == () and d.pack_version == pack.version == content_hash(root)
    # tests do not change the version; rules do
    (root / "tests" / "t.yaml").write_text("tests: []\n")
    assert content_hash(root) == pack.version
    (root / "rules" / "main.yaml").write_text(GOOD_RULES.replace("1000", "2000"))
    assert content_hash(root) != pack.version


def test_fail_closed_on_evaluation_error(tmp_path: Path) -> None:
    pack = load_pack(make_pack(tmp_path))
    for args in ({"amount": "lots", "to_account": "x"}, {"to_account": "x"}):
        d = pack.evaluate({"stage": "tool_call", "tool": "transfer_funds", "args": args})
        assert d.effect == "deny" and d.rule_ids == ("mini.transfer.limit",) and d.errors
        assert "failing closed" in d.messages[0]
    # a rule-level on_error overrides the pack's
    rules = GOOD_RULES + "    on_error: escalate\n"
    pack = load_pack(make_pack(tmp_path / "b", {"main.yaml": rules}))
    assert pack.evaluate({"stage": "tool_call", "tool": "transfer_funds", "args": {}}).effect == "escalate"


def test_deny_overrides_and_obligations() -> None:
    pack = load_pack(BANK)
    d = pack.evaluate({"stage": "tool_call", "tool": "transfer_funds", "args": {"from_account": "a", "to_account": "b", "amount": 50000},
                       "session": {"verification_level": "basic"}})
    assert d.effect == "deny" and d.rule_ids == ("banking.transfer.limit_phone",)
    assert d.obligations == ("require_disclosure", "step_up", "confirm")
    assert d.disclosures == ("recording_notice",) and d.level == "strong"


def test_phrase_matching_is_word_based() -> None:
    pack = load_pack(BANK)
    ev = lambda t: pack.evaluate({"stage": "user_text", "text": t}).effect  # noqa: E731
    assert ev("I WANT TO COMPLAIN!!") == "escalate"
    assert ev("I want to complainant") == "allow"
    assert ev("this is   unacceptable,") == "escalate"


def test_determinism() -> None:
    a, b = load_pack(BANK), load_pack(BANK)
    assert a.version == b.version
    inputs = [case.input for _, _, case in load(BANK).tests]
    first = [a.evaluate(i) for i in inputs]
    for _ in range(3):
        assert [a.evaluate(i) for i in inputs] == first
        assert [b.evaluate(i) for i in inputs] == first


def test_engine_does_no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    pack = load_pack(BANK)
    import builtins

    def boom(*a: Any, **k: Any) -> Any:
        raise AssertionError("I/O during evaluation")

    monkeypatch.setattr(builtins, "open", boom)
    monkeypatch.setattr(Path, "read_text", boom)
    monkeypatch.setattr(Path, "read_bytes", boom)
    d = pack.evaluate({"stage": "assistant_text", "text": "card 4111 1111 1111 1111"})
    assert d.effect == "block_speech"
    pack.explain({"stage": "tool_call", "tool": "get_balance", "args": {"account_id": "x"}})


def test_copy_of_pack_lints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dst = tmp_path / "bank"
    shutil.copytree(BANK, dst)
    assert content_hash(dst) == content_hash(BANK)
    (dst / "rules" / "identity.yaml").write_text((dst / "rules" / "identity.yaml").read_text().replace("effect: step_up", "effect: stepup", 1))
    rc, errors, out = lint_lines(capsys, dst)
    assert rc == 1 and len(errors) == 1 and "identity.yaml:" in errors[0] and "stepup" in errors[0]


def test_engine_functions_and_matches_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = """\
        rules:
          - id: a.search
            stage: user_text
            condition: text.search("safe +account") && history.exists(h, h.text.hasPhrase(["police told me"]))
            effect: escalate
            message: m
          - id: a.native
            stage: user_text
            condition: text.matches("(?i)zzz")
            effect: deny
            message: m
        """
    root = make_pack(tmp_path, {"r.yaml": rules})
    rc, errors, out = lint_lines(capsys, root)
    assert rc == 0 and "a.native: CEL matches() compiles its regex" in out and "a.search" not in out
    pack = load_pack(root)
    hist = [{"role": "user", "text": "The POLICE told me, to do it"}]
    assert pack.evaluate({"stage": "user_text", "text": "a Safe  Account", "history": hist}).effect == "escalate"
    assert pack.evaluate({"stage": "user_text", "text": "a safe account", "history": []}).effect == "allow"
    assert pack.evaluate({"stage": "user_text", "text": "ZZZ"}).effect == "deny"

"""``session.keypad``: keypad capture of card numbers and security codes, sans-I/O."""

from __future__ import annotations

import json
from typing import Any

from hybrid_agent.audit.records import GateActionRecord
from hybrid_agent.session.actions import Audit, RunTool, StartTimer
from hybrid_agent.session.keypad import ATTEMPTS, KeypadCapture

FIELDS = {"card_number": "card", "security_code": "security_code"}


def capture() -> tuple[KeypadCapture, list[str], list[tuple[str, str]]]:
    said: list[str] = []
    answers: list[tuple[str, str]] = []
    seq = iter(range(1000))
    k = KeypadCapture("call_k", lambda: next(seq), lambda now: now,
                      say=lambda text, kind, now: said.append(text) or [],  # type: ignore[func-returns-value]
                      answer=lambda cid, out, now: answers.append((cid, out)) or [], mode="hold")  # type: ignore[func-returns-value]
    return k, said, answers


def press(k: KeypadCapture, keys: str) -> list[Any]:
    out: list[Any] = []
    for key in keys:
        out += k.digit(key, 0.0)
    return out


def gate(out: list[Any]) -> list[GateActionRecord]:
    return [a.record for a in out if isinstance(a, Audit) and isinstance(a.record, GateActionRecord)]


def test_both_fields_then_the_tool_runs_with_the_digits_in_memory_only() -> None:
    k, said, _ = capture()
    out = k.start("fc_1", "take_payment", json.dumps({"amount": 25, "card_number": "spoken-by-model"}), FIELDS, 0.0)
    assert k.capturing and any(isinstance(a, StartTimer) for a in out)
    assert said == ["Please use your phone keypad to enter your card number, then press the hash key."]
    press(k, "4111111111111111")  # 16 digits and a card may have 19: waits for #
    out = press(k, "#")
    assert "security code" in said[-1] and k.capturing
    out = press(k, "9876")  # a security code is at most 4 digits: done without #
    [run] = [a for a in out if isinstance(a, RunTool)]
    assert json.loads(run.arguments) == {"amount": 25, "card_number": "4111111111111111", "security_code": "9876"}
    assert not k.capturing
    texts = [r.text for r in gate(out)]
    assert texts == ["security_code: 4 digits"] and "4111" not in repr(gate(out))


def test_a_card_failing_luhn_is_asked_again_and_three_failures_end_it() -> None:
    k, said, answers = capture()
    k.start("fc_1", "take_payment", "{}", FIELDS, 0.0)
    for _attempt in range(ATTEMPTS):
        out = press(k, "4111111111111112#")
    assert said[1].startswith("That didn't look right.")
    assert not k.capturing and answers and json.loads(answers[0][1])["error"]["type"] == "keypad_entry_failed"
    assert [r.status for r in gate(out)] == ["invalid"] and "4111" not in answers[0][1]


def test_star_restarts_the_field_timeout_ends_it_and_keys_outside_a_capture_are_dropped() -> None:
    k, _, answers = capture()
    assert press(k, "123") == [] and k.ignored == 3
    out = k.start("fc_1", "take_payment", "{}", FIELDS, 0.0)
    [timer] = [a for a in out if isinstance(a, StartTimer)]
    press(k, "99*")
    press(k, "4111111111111111#")
    assert k.active is not None and k.active.index == 1  # "*" cleared "99": the card was taken, the code is next
    assert k.timer_fired(timer.name, 1.0) == []  # the first field's timer is stale now
    current = f"keypad:{k.active.serial}"  # type: ignore[union-attr]
    out = k.timer_fired(current, 40_000.0) or []
    assert [r.status for r in gate(out)] == ["timeout"] and not k.capturing and answers

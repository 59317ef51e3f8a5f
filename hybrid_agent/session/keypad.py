"""PCI keypad capture: card numbers and security codes entered on the phone keypad, never spoken.

A sans-I/O part of the call session.  When the gate allowed a server tool whose pack declaration
has ``keypad:`` arguments (``take_payment``: ``card_number: card``, ``security_code:
security_code``), the tool does not run yet: the bridge asks the caller, in its own words, to key
each one in, and captures the digits from the transport's keypad events (Twilio ``dtmf``) until
the expected length or ``#`` (``*`` starts the field again).  Meanwhile ``capturing`` is true and
the session sends silence upstream in place of the caller's audio, so neither the tones nor
anything said reach the model or a transcript.  A card number must pass Luhn; two wrong entries
are allowed, the third ends the capture.  Then the tool runs (``RunTool``) with the digits merged
into its arguments, in memory only.  The model learns only the tool's outcome (the DEMO bank
returns the last four digits), the audit only that a capture happened, its field, its length and
its outcome (PCI DSS: no security code is stored after authorisation; here no digit at all).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hybrid_agent.audit.records import GateActionRecord
from hybrid_agent.pii.recognizers import luhn_ok
from hybrid_agent.session.actions import Action, Audit, RunTool, StartTimer

#: kind -> (fewest digits, most digits, what the caller is asked for)
KINDS: dict[str, tuple[int, int, str]] = {
    "card": (13, 19, "your card number"),
    "security_code": (3, 4, "your card's security code"),
    "digits": (1, 16, "the number"),
}
ATTEMPTS = 3
#: how long the caller has for one field before the capture ends
FIELD_TIMEOUT_MS = 30_000.0
TIMER = "keypad:"


def prompt_for(kind: str, again: bool = False) -> str:
    what = KINDS[kind][2]
    lead = "That didn't look right. " if again else ""
    # "use your phone keypad to enter ...": the wording a pack's no-spoken-security-code rule lets through
    return f"{lead}Please use your phone keypad to enter {what}, then press the hash key."


@dataclass
class _Capture:
    call_id: str  # the model's tool call
    tool: str
    arguments: dict[str, Any]
    fields: list[tuple[str, str]]  # (argument, kind), in order
    index: int = 0
    digits: list[str] = field(default_factory=list)
    captured: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    serial: int = 0  # which field timer is current


class KeypadCapture:
    def __init__(self, call_id: str, next_seq: Callable[[], int], rel: Callable[[float], float],
                 say: Callable[[str, str, float], list[Action]], answer: Callable[[str, str, float], list[Action]],
                 mode: str | None = None) -> None:
        self.call_id = call_id
        self._next_seq = next_seq
        self._rel = rel
        self._say = say  # the bridge's own words to the caller (BridgeTurns.say)
        self._answer = answer  # a function output for the model (ToolOrchestrator.output)
        self.mode = mode
        self.active: _Capture | None = None
        self.ignored = 0  # keypad presses outside a capture (counted, never kept)
        self._timers = 0

    @property
    def capturing(self) -> bool:
        return self.active is not None

    def start(self, call_id: str, tool: str, arguments: str, fields: dict[str, str], now_ms: float) -> list[Action]:
        """The gate allowed ``tool``: capture its keypad arguments before it runs."""
        try:
            args = json.loads(arguments or "{}")
        except ValueError:
            args = {}
        args = {k: v for k, v in (args if isinstance(args, dict) else {}).items() if k not in fields}  # never the model's
        self.active = _Capture(call_id, tool, args, list(fields.items()))
        return self._prompt(now_ms)

    def _prompt(self, now_ms: float, again: bool = False) -> list[Action]:
        capture = self.active
        assert capture is not None
        self._timers += 1
        capture.serial = self._timers
        _, kind = capture.fields[capture.index]
        return [*self._say(prompt_for(kind, again), "keypad", now_ms), StartTimer(f"{TIMER}{capture.serial}", FIELD_TIMEOUT_MS)]

    def digit(self, key: str, now_ms: float) -> list[Action]:
        capture = self.active
        if capture is None:
            self.ignored += 1
            return []
        arg, kind = capture.fields[capture.index]
        low, high, _ = KINDS[kind]
        if key == "*":
            capture.digits.clear()
            return []
        if key == "#":
            return self._field_done(now_ms)
        if not key.isdigit():
            return []
        capture.digits.append(key)
        if len(capture.digits) >= high:
            return self._field_done(now_ms)
        return []

    def _field_done(self, now_ms: float) -> list[Action]:
        capture = self.active
        assert capture is not None
        arg, kind = capture.fields[capture.index]
        low, high, _ = KINDS[kind]
        entered = "".join(capture.digits)
        capture.digits.clear()
        valid = low <= len(entered) <= high and (kind != "card" or luhn_ok(entered))
        if not valid:
            capture.attempts += 1
            if capture.attempts >= ATTEMPTS:
                return self._end("invalid", f"{arg}: {len(entered)} digits, not valid; {ATTEMPTS} attempts", now_ms)
            return [self._record(f"{arg}: {len(entered)} digits, not valid; asked again", "retry", now_ms), *self._prompt(now_ms, again=True)]
        capture.captured[arg] = entered
        out: list[Action] = [self._record(f"{arg}: {len(entered)} digits", "captured", now_ms)]
        capture.index += 1
        capture.attempts = 0
        if capture.index < len(capture.fields):
            return out + self._prompt(now_ms)
        self.active = None  # the caller's audio reaches the model again
        merged = {**capture.arguments, **capture.captured}
        return out + [RunTool(capture.call_id, capture.tool, json.dumps(merged))]

    def timer_fired(self, name: str, now_ms: float) -> list[Action] | None:
        if not name.startswith(TIMER):
            return None
        capture = self.active
        if capture is None or name != f"{TIMER}{capture.serial}":
            return []
        arg, _ = capture.fields[capture.index]
        return self._end("timeout", f"{arg}: nothing entered within {FIELD_TIMEOUT_MS / 1000:.0f} s", now_ms)

    def _end(self, status: str, what: str, now_ms: float) -> list[Action]:
        """The capture failed: the tool does not run; the model hears why (no digits)."""
        capture = self.active
        assert capture is not None
        record = self._record(what, status, now_ms)
        self.active = None
        output = json.dumps({"error": {"type": "keypad_entry_failed", "status": status,
                                       "message": "The caller's keypad entry could not be used; the action did not happen.",
                                       "next": "Tell the caller, and offer to try again or another way to pay."}})
        return [record, *self._answer(capture.call_id, output, now_ms)]

    def _record(self, what: str, status: str, now_ms: float) -> Audit:
        capture = self.active
        return Audit(GateActionRecord(self.call_id, self._next_seq(), self._rel(now_ms), "keypad_capture", mode=self.mode,
                                      item_id=capture.call_id if capture else None, tool=capture.tool if capture else None,
                                      status=status, text=what, redacted=True))

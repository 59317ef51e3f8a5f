"""The policy context of a call as it unfolds: session state in, ``PolicyInput`` out.

One place knows how a call's history becomes the context rules see (verification
level from tool results, disclosures spoken, turn and tool counts, recent history),
so the live gate in the call session and ``policy replay`` build identical inputs.
Pure and synchronous.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from hybrid_agent.policy.schema import VERIFICATION_LEVELS, HistoryTurn, PolicyInput, SessionInput, ToolSpec
from hybrid_agent.policy.text import normalize_text

#: when the session is not given the pack's tool declarations (``tools=None``), the conventional
#: names: only ``verify_identity`` sets the verification level, ``transfer_funds.amount`` is money moved
DEFAULT_TOOLS: dict[str, ToolSpec] = {
    "verify_identity": ToolSpec(verifies_identity=True),
    "transfer_funds": ToolSpec(args={"amount": "number"}, amount_arg="amount"),
}

def json_object(text: str | None) -> dict[str, Any]:
    """``text`` parsed as a JSON object, else ``{}`` (tool arguments and outputs)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, TypeError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


@dataclass
class PolicySession:
    """What the rules know about the call so far."""

    channel: str = ""
    history_turns: int = 6
    disclosure_texts: dict[str, str] = field(default_factory=dict)  # id -> script (from pack.yaml)
    verification_level: str = "none"
    disclosures: list[str] = field(default_factory=list)
    user_turns: int = 0
    assistant_turns: int = 0
    tool_calls: int = 0
    history: deque[HistoryTurn] = field(default_factory=deque)
    tools: dict[str, ToolSpec] | None = None  # the pack's tool declarations (None: DEFAULT_TOOLS)
    transferred: float = 0.0

    @classmethod
    def for_pack(cls, pack: Any, channel: str = "") -> PolicySession:
        """A session for a loaded pack: its history window, disclosure scripts and tool declarations."""
        m = pack.manifest
        return cls(channel=channel, history_turns=m.history_turns, disclosure_texts=dict(m.disclosures), tools=dict(m.tools))

    def __post_init__(self) -> None:
        self.history = deque(self.history, maxlen=self.history_turns or None)
        self._scripts = {d: normalize_text(t) for d, t in self.disclosure_texts.items() if normalize_text(t)}

    # ------------------------------------------------------------------ inputs
    def snapshot(self, at_ms: float) -> SessionInput:
        return SessionInput(
            verification_level=self.verification_level,  # type: ignore[arg-type]
            disclosures=list(self.disclosures),
            elapsed_s=max(0.0, at_ms / 1000.0),
            turns=self.user_turns + self.assistant_turns,
            user_turns=self.user_turns,
            assistant_turns=self.assistant_turns,
            tool_calls=self.tool_calls,
            channel=self.channel,
            transferred=self.transferred,
        )

    def session_start(self) -> PolicyInput:
        return PolicyInput(stage="session_start", session=self.snapshot(0.0))  # type: ignore[arg-type]

    def turn(self, role: str, text: str, at_ms: float, pii: dict[str, int] | None = None) -> PolicyInput:
        stage = "user_text" if role == "user" else "assistant_text"
        return PolicyInput(
            stage=stage, text=text, pii=pii or {}, session=self.snapshot(at_ms), history=list(self.history)  # type: ignore[arg-type]
        )

    def tool_call(self, tool: str, arguments: str, at_ms: float, *, confirmed: bool = False) -> PolicyInput:
        """``confirmed``: the caller's own words confirmed exactly this call (``session.confirmations``)."""
        return PolicyInput(
            stage="tool_call", tool=tool, args=json_object(arguments), confirmed=confirmed,
            session=self.snapshot(at_ms), history=list(self.history),  # type: ignore[arg-type]
        )

    def tool_result(self, tool: str, arguments: str, output: str, at_ms: float, pii: dict[str, int] | None = None) -> PolicyInput:
        return PolicyInput(
            stage="tool_result",  # type: ignore[arg-type]
            text=output or "",
            pii=pii or {},
            tool=tool,
            args=json_object(arguments),
            result=json_object(output),
            session=self.snapshot(at_ms),
            history=list(self.history),
        )

    # ------------------------------------------------------------------ state updates
    def note_turn(self, role: str, text: str | None) -> list[str]:
        """Count a finished turn; returns the ids of disclosures it spoke for the first time."""
        spoken: list[str] = []
        if role == "assistant" and text:
            said = normalize_text(text)
            for did, script in self._scripts.items():
                if did not in self.disclosures and script in said:
                    self.disclosures.append(did)
                    spoken.append(did)
        if text:
            self.history.append(HistoryTurn(role=role, text=text))  # type: ignore[arg-type]
        if role == "user":
            self.user_turns += 1
        else:
            self.assistant_turns += 1
        return spoken

    def note_disclosure(self, disclosure_id: str) -> None:
        if disclosure_id not in self.disclosures:
            self.disclosures.append(disclosure_id)

    def note_tool_call(self) -> None:
        self.tool_calls += 1

    def note_tool_result(
        self, output: str, extra: dict[str, Any] | None = None, ok: bool = True, *, tool: str = "", arguments: str = ""
    ) -> None:
        """State after a tool result (call it after deciding on the result, as the live session does).

        Only a tool declared ``verifies_identity`` sets ``verification_level`` (from
        ``verification_level`` in its JSON output, or ``extra``); a successful call of a tool with an
        ``amount_arg`` adds that amount to ``transferred``.  A result is unsuccessful when ``ok`` is
        false or the output is a JSON object with an ``error``, ``ok: false`` or a failed ``status``.
        """
        result = json_object(output)
        if not ok or result.get("error") or result.get("ok") is False or str(result.get("status", "")).lower() in _FAILED:
            return
        spec = (self.tools if self.tools is not None else DEFAULT_TOOLS).get(tool)
        if spec is None:
            return
        if spec.verifies_identity:
            level = result.get("verification_level", (extra or {}).get("verification_level"))
            if isinstance(level, str) and level in VERIFICATION_LEVELS:
                self.verification_level = level
        if spec.amount_arg:
            amount = json_object(arguments).get(spec.amount_arg)
            if isinstance(amount, (int, float)) and not isinstance(amount, bool) and 0 < amount < float("inf"):
                self.transferred += float(amount)


_FAILED = frozenset({"error", "failed", "failure", "rejected", "denied", "declined", "timeout"})

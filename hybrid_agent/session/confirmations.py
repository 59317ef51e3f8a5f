"""Confirmation of a tool call by the caller's own words.

A ``confirm`` rule (``banking.transfer.confirm``: "read back the amount and the payee and get an
explicit yes") stops the model's call and tells it to ask.  What counts as the caller's yes is
decided here, not by the model: the call is remembered (tool and arguments), the caller's next
turns are read for an explicit yes or no, and only after a yes does the model's next call of the
same tool with the same arguments reach the rules with ``confirmed`` true.  A no, a different
amount, or two turns without an answer drop it.  A sans-I/O part of the call session; bounded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

#: remembered calls awaiting a yes (the newest)
MAX_PENDING = 8
#: caller turns a confirmation request stays open for
MAX_TURNS = 2
#: only the start of a turn is read: a yes comes first, and the window bounds the work on hostile text
WINDOW = 300
_WORDS = re.compile(r"[a-z']+")
_YES = frozenset({"yes", "yeah", "yep", "yup", "correct", "confirm", "confirmed", "sure", "ok", "okay", "affirmative"})
_YES_PHRASES = ("go ahead", "please do", "that's right", "that is right", "do it", "sounds good", "that's correct")
_NO = frozenset({"no", "nope", "not", "don't", "dont", "cancel", "stop", "wait", "wrong", "hold", "never", "actually"})


def canonical_arguments(arguments: str) -> str:
    """The arguments as compact sorted JSON (the same call said twice compares equal)."""
    try:
        return json.dumps(json.loads(arguments), sort_keys=True, separators=(",", ":"))
    except (ValueError, TypeError, RecursionError):
        return arguments.strip()


def answer_of(text: str) -> str | None:
    """``yes``, ``no`` or ``None`` (neither) for what the caller said."""
    window = text[:WINDOW].lower().replace("\u2019", "'")
    words = _WORDS.findall(window)
    if any(w in _NO for w in words):
        return "no"
    if any(w in _YES for w in words) or any(p in window for p in _YES_PHRASES):
        return "yes"
    return None


@dataclass(slots=True)
class _Request:
    tool: str
    arguments: str  # canonical
    turns_left: int = MAX_TURNS
    confirmed: bool = False


@dataclass
class ConfirmationTracker:
    requests: list[_Request] = field(default_factory=list)

    def requested(self, tool: str, arguments: str) -> None:
        """A ``confirm`` rule held this call: the caller must say yes before it runs."""
        key = canonical_arguments(arguments)
        self.requests = [r for r in self.requests if not (r.tool == tool and r.arguments == key)]
        self.requests.append(_Request(tool, key))
        del self.requests[:-MAX_PENDING]

    def caller_said(self, text: str) -> list[str]:
        """A finished caller turn; returns the tools it confirmed."""
        if not self.requests:
            return []
        answer = answer_of(text)
        confirmed: list[str] = []
        kept: list[_Request] = []
        for request in self.requests:
            if request.confirmed:
                kept.append(request)  # already confirmed: waits for the model's call
            elif answer == "yes":
                request.confirmed = True
                confirmed.append(request.tool)
                kept.append(request)
            elif answer is None and request.turns_left > 1:
                request.turns_left -= 1
                kept.append(request)
        self.requests = kept
        return confirmed

    def take(self, tool: str, arguments: str) -> bool:
        """The model calls ``tool``: was exactly this call confirmed by the caller?  (Used once.)"""
        key = canonical_arguments(arguments)
        for request in self.requests:
            if request.confirmed and request.tool == tool and request.arguments == key:
                self.requests.remove(request)
                return True
        return False

"""The evaluation context: what a rule's CEL condition can see, and how it is built from a :class:`PolicyInput`.

=================  =================  =========================================================
name               CEL type           meaning
=================  =================  =========================================================
``stage``          string             ``session_start`` | ``user_text`` | ``assistant_text`` |
                                      ``tool_call`` | ``tool_result``
``text``           string             the utterance (user_text, assistant_text), the raw tool
                                      output (tool_result), else ``""``
``digits``         string             ``text`` with spoken digits as digits and the separators
                                      between digit groups removed (spaces of any kind, ``/ . _ -``),
                                      for number rules: ``digits.search("\\d{13,19}")``
``pii``            map(string, int)   PII entity type -> count in ``text``, from the PII gate
                                      (``CREDIT_CARD``, ``IBAN_CODE``, ``US_BANK_NUMBER``, ...)
``tool``           string             tool_call/tool_result: the tool's name, else ``""``
``args``           map(string, dyn)   tool_call/tool_result: the tool's arguments, else ``{}``
``result``         map(string, dyn)   tool_result: the output parsed as a JSON object, else ``{}``
``confirmed``      bool               tool_call: the caller explicitly confirmed this call
``session``        map                ``verification_level`` (``none``|``basic``|``strong``),
                                      ``disclosures`` (list of ids given), ``elapsed_s``
                                      (double), ``turns``, ``user_turns``, ``assistant_turns``,
                                      ``tool_calls`` (int), ``channel`` (string), ``transferred``
                                      (double: sum of successful transfer amounts so far)
``history``        list(map)          the last ``history_turns`` turns, oldest first, each
                                      ``{"role": "user"|"assistant", "text": string}``
=================  =================  =========================================================

Missing map keys raise (``args.amount`` on a call without ``amount``); guard with
``has(args.amount)`` or ``"CREDIT_CARD" in pii``.  A condition that raises, or that
returns something other than a bool, takes the rule's fail-closed ``on_error`` effect.
"""

from __future__ import annotations

import re
from typing import Any

import cel
from cel import stdlib as cel_stdlib

from hybrid_agent.policy.schema import PolicyInput
from hybrid_agent.policy.text import digits_form

ROOTS: frozenset[str] = frozenset({"stage", "text", "digits", "pii", "tool", "args", "result", "confirmed", "session", "history"})

_RX_CACHE: dict[str, re.Pattern[str]] = {}
_PHRASE_CACHE: dict[tuple[str, ...], re.Pattern[str]] = {}


def _rx(pattern: str) -> re.Pattern[str]:
    rx = _RX_CACHE.get(pattern)
    if rx is None:
        if len(_RX_CACHE) > 1024:
            _RX_CACHE.clear()
        rx = _RX_CACHE[pattern] = re.compile(pattern, re.IGNORECASE)
    return rx


def fn_search(text: str, pattern: str) -> bool:
    """``text.search("a|b")``: case-insensitive regex search (Python ``re``), the pattern compiled once.

    Prefer it to CEL's ``matches``, which compiles its pattern on every evaluation (2-90 us).
    """
    if not isinstance(text, str) or not isinstance(pattern, str):
        raise TypeError("search(string, string)")
    return _rx(pattern).search(text) is not None


def fn_has_phrase(text: str, phrases: list[str]) -> bool:
    """``text.hasPhrase(["safe account", ...])``: the ``phrases`` sugar as a function (whole words, any case)."""
    from hybrid_agent.policy.text import normalize_text, phrase_pattern

    if not isinstance(text, str) or not isinstance(phrases, (list, tuple)):
        raise TypeError("hasPhrase(string, list(string))")
    key = tuple(phrases)
    rx = _PHRASE_CACHE.get(key)
    if rx is None:
        if len(_PHRASE_CACHE) > 1024:
            _PHRASE_CACHE.clear()
        rx = _PHRASE_CACHE[key] = phrase_pattern([str(p) for p in phrases])
    return rx.search(normalize_text(text)) is not None


# Extra functions of this engine, and the extended stdlib (lowerAscii, split, ...); registered
# only when a rule uses them.  ``contains`` is left out so the native string ``contains`` keeps working.
FUNCTIONS: dict[str, Any] = {
    **{k: v for k, v in cel_stdlib.STDLIB_FUNCTIONS.items() if k not in ("contains",)},
    "search": fn_search,
    "hasPhrase": fn_has_phrase,
}
STDLIB = FUNCTIONS

_BINDER = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")


def macro_binders(source: str) -> set[str]:
    """Names bound by comprehension macros (``h`` in ``history.exists(h, ...)``)."""
    return set(_BINDER.findall(source))


def session_dict(inp: PolicyInput) -> dict[str, Any]:
    s = inp.session
    return {
        "verification_level": s.verification_level,
        "disclosures": list(s.disclosures),
        "elapsed_s": float(s.elapsed_s),
        "turns": s.turns,
        "user_turns": s.user_turns,
        "assistant_turns": s.assistant_turns,
        "tool_calls": s.tool_calls,
        "channel": s.channel,
        "transferred": float(s.transferred),
    }


def _value(name: str, inp: PolicyInput, history_turns: int) -> Any:
    if name == "text":
        return inp.text
    if name == "digits":
        return digits_form(inp.text)
    if name == "stage":
        return inp.stage if isinstance(inp.stage, str) else inp.stage.value
    if name == "pii":
        return dict(inp.pii)
    if name == "tool":
        return inp.tool
    if name == "args":
        return dict(inp.args)
    if name == "result":
        return dict(inp.result)
    if name == "confirmed":
        return bool(inp.confirmed)
    if name == "session":
        return session_dict(inp)
    if name == "history":
        turns = inp.history[-history_turns:] if history_turns else []
        return [{"role": h.role, "text": h.text} for h in turns]
    raise KeyError(name)


def context_dict(inp: PolicyInput, history_turns: int, names: frozenset[str] | set[str] = ROOTS) -> dict[str, Any]:
    """The context as plain data (what ``policy explain`` shows)."""
    return {n: _value(n, inp, history_turns) for n in sorted(names)}


def build_cel_context(inp: PolicyInput, history_turns: int, names: frozenset[str] | set[str], functions: frozenset[str]) -> cel.Context:
    """A CEL context with the given variables and functions."""
    ctx = cel.Context()
    for n in names:
        ctx.add_variable(n, _value(n, inp, history_turns))
    for f in functions:
        ctx.add_function(f, FUNCTIONS[f])
    return ctx


class LazyContext:
    """A CEL context filled on demand: each variable is converted once, when a rule first needs it."""

    __slots__ = ("ctx", "inp", "history_turns", "names", "funcs")

    def __init__(self, inp: PolicyInput, history_turns: int) -> None:
        self.ctx = cel.Context()
        self.inp = inp
        self.history_turns = history_turns
        self.names: set[str] = set()
        self.funcs: set[str] = set()

    def ready(self, names: frozenset[str], functions: frozenset[str]) -> cel.Context:
        if not names <= self.names:
            for n in names - self.names:
                if n in ROOTS:
                    self.ctx.add_variable(n, _value(n, self.inp, self.history_turns))
            self.names |= names
        if functions and not functions <= self.funcs:
            for f in functions - self.funcs:
                self.ctx.add_function(f, FUNCTIONS[f])
            self.funcs |= functions
        return self.ctx

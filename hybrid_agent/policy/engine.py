"""Evaluation: pure, synchronous, no I/O.  A loaded :class:`Pack` turns a :class:`PolicyInput` into a :class:`Decision`.

Effect combination (documented in ``docs/policy.md``):

1. Only rules of the input's stage are considered (and, with ``tools``, only for those tools).
2. A rule matches when all of its matchers match: ``tools``, ``phrases`` (any), ``regex`` (any),
   ``condition`` (true).  A condition that raises or is not a bool counts as a match with the
   rule's fail-closed ``on_error`` effect (the pack's ``on_error`` unless the rule overrides it).
3. The decision's effect is the strongest matched effect, in this order::

       deny > block_speech > escalate > require_disclosure > step_up > confirm > redact > allow

   ("deny overrides"); ``rule_ids`` are the rules that produced that effect, in pack order.
   The weaker matched effects are kept as ``obligations`` (e.g. ``escalate`` alongside ``deny``).
4. When no rule matched, the effect is the pack's ``default_effect`` and ``default`` is true.

The result does not depend on rule order, is deterministic, and every evaluation returns a decision.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cel

from hybrid_agent.policy.clips import ClipAudio
from hybrid_agent.policy.context import ROOTS, STDLIB, LazyContext, build_cel_context, context_dict, macro_binders
from hybrid_agent.policy.schema import (
    EFFECT_PRECEDENCE,
    EFFECT_RANK,
    SEVERITY_RANK,
    PackManifest,
    PackTest,
    PolicyInput,
    Rule,
    Stage,
)
from hybrid_agent.policy.text import digits_form, normalize_text, phrase_pattern

TOOL_STAGES = frozenset({Stage.tool_call.value, Stage.tool_result.value})
TEXT_STAGES = frozenset({Stage.user_text.value, Stage.assistant_text.value, Stage.tool_result.value})

__all__ = ["normalize_text", "phrase_pattern", "digits_form", "expand_phrases"]


def expand_phrases(phrases: Sequence[str], lists: Mapping[str, Sequence[str]]) -> list[str]:
    """``@name`` entries replaced by the pack's phrase list ``name``; :class:`KeyError` for an unknown list."""
    out: list[str] = []
    for p in phrases:
        if p.startswith("@"):
            out.extend(lists[p[1:]])
        else:
            out.append(p)
    return out


# ------------------------------------------------------------------------------------------ combination
def strongest(effects: Iterable[str]) -> str | None:
    best = None
    for e in effects:
        if best is None or EFFECT_RANK[e] > EFFECT_RANK[best]:
            best = e
    return best


def combine(matches: Sequence[tuple[str, str]], default_effect: str) -> tuple[str, tuple[str, ...]]:
    """``(rule_id, effect)`` matches -> ``(effect, deciding rule ids)``.  The pure heart of the engine."""
    effect = strongest(e for _, e in matches)
    if effect is None:
        return default_effect, ()
    return effect, tuple(rid for rid, e in matches if e == effect)


# ------------------------------------------------------------------------------------------ decisions
@dataclass(frozen=True, slots=True)
class Match:
    rule_id: str
    effect: str
    severity: str
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "effect": self.effect, "severity": self.severity, "error": self.error}


@dataclass(frozen=True, slots=True)
class Decision:
    """What the pack decided for one event.  ``pack_version`` is the content hash of the pack."""

    effect: str
    rule_ids: tuple[str, ...]
    messages: tuple[str, ...]
    pack_version: str
    pack: str
    stage: str
    utterances: tuple[str, ...] = ()
    severity: str | None = None
    matched: tuple[Match, ...] = ()
    obligations: tuple[str, ...] = ()
    disclosures: tuple[str, ...] = ()
    level: str | None = None
    errors: tuple[str, ...] = ()
    default: bool = False

    @property
    def allowed(self) -> bool:
        return self.effect == "allow"

    @property
    def rule_id(self) -> str:
        """The first deciding rule, or ``default:<effect>`` (for one-column audit records)."""
        return self.rule_ids[0] if self.rule_ids else f"default:{self.effect}"

    def to_json(self) -> dict[str, Any]:
        return {
            "effect": self.effect,
            "rule_ids": list(self.rule_ids),
            "messages": list(self.messages),
            "utterances": list(self.utterances),
            "pack": self.pack,
            "pack_version": self.pack_version,
            "stage": self.stage,
            "severity": self.severity,
            "default": self.default,
            "obligations": list(self.obligations),
            "disclosures": list(self.disclosures),
            "level": self.level,
            "errors": list(self.errors),
            "matched": [m.to_json() for m in self.matched],
        }


# ------------------------------------------------------------------------------------------ compiled rules
@dataclass(slots=True)
class CompiledRule:
    rule: Rule
    file: str
    line: int | None
    on_error: str
    tools: frozenset[str] | None = None
    phrase_re: re.Pattern[str] | None = None
    history_re: re.Pattern[str] | None = None
    regexes: tuple[re.Pattern[str], ...] = ()
    program: Any = None  # cel.Program
    variables: frozenset[str] = frozenset()
    functions: frozenset[str] = frozenset()
    utterance: str | None = None

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def effect(self) -> str:
        return self.rule.effect


class CompileError(Exception):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field_name = field_name


def compile_rule(rule: Rule, file: str, line: int | None, manifest: PackManifest) -> CompiledRule:
    """Compile a validated rule's matchers; :class:`CompileError` names the offending field."""
    cr = CompiledRule(rule=rule, file=file, line=line, on_error=rule.on_error or manifest.on_error)
    if rule.tools is not None:
        cr.tools = frozenset(rule.tools)
    for fname in ("phrases", "history_phrases"):
        raw = getattr(rule, fname)
        if raw is None:
            continue
        unknown = [p for p in raw if p.startswith("@") and p[1:] not in manifest.phrase_lists]
        if unknown:
            raise CompileError(fname, f"unknown phrase list {unknown[0]!r} (declared in pack.yaml phrase_lists: "
                                      f"{', '.join(sorted(manifest.phrase_lists)) or 'none'})")
        phrases = expand_phrases(raw, manifest.phrase_lists)
        if any(not normalize_text(p) for p in phrases):
            raise CompileError(fname, "a phrase has no letters or digits")
        if fname == "phrases":
            cr.phrase_re = phrase_pattern(phrases)
        else:
            cr.history_re = phrase_pattern(phrases)
    if rule.regex is not None:
        pats = []
        for p in rule.regex:
            try:
                pats.append(re.compile(p, re.IGNORECASE))
            except re.error as exc:
                raise CompileError("regex", f"invalid regex {p!r}: {exc}") from None
        cr.regexes = tuple(pats)
    if rule.condition is not None:
        try:
            cr.program = cel.compile(rule.condition)
        except Exception as exc:  # cel raises ValueError with a multi-line caret diagram
            first = str(exc).splitlines()
            msg = next((ln.strip() for ln in first if "ERROR" in ln), first[0] if first else type(exc).__name__)
            msg = msg.split("ERROR: <input>:", 1)[-1]
            raise CompileError("condition", f"CEL syntax error at {msg}") from None
        refs = set(cr.program.variables()) - macro_binders(rule.condition)
        cr.variables = frozenset(refs)
        cr.functions = frozenset(f for f in cr.program.functions() if f in STDLIB)
    if rule.utterance:
        cr.utterance = rule.utterance
    elif rule.disclosure and rule.disclosure in manifest.disclosures:
        cr.utterance = manifest.disclosures[rule.disclosure]
    return cr


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no such key {exc.args[0]!r}" if exc.args else "no such key"
    msg = str(exc).split(". ", 1)[0].strip() or type(exc).__name__
    return msg


# ------------------------------------------------------------------------------------------ traces (explain)
@dataclass(frozen=True, slots=True)
class RuleTrace:
    """How one rule of the stage fared: each matcher's value, and whether it matched."""

    rule_id: str
    file: str
    line: int | None
    effect: str
    matched: bool
    tools: bool | None = None
    phrases: str | None | bool = None  # the phrase found, False if none, None if no phrases
    history_phrases: str | None | bool = None
    regex: str | None | bool = None
    condition: Any = None  # True/False/the non-bool value; None if no condition
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule_id": self.rule_id, "location": f"{self.file}:{self.line}", "effect": self.effect, "matched": self.matched}
        for k in ("tools", "phrases", "history_phrases", "regex", "condition", "error"):
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        return out


@dataclass(frozen=True, slots=True)
class Explanation:
    decision: Decision
    traces: tuple[RuleTrace, ...]
    context: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {**self.decision.to_json(), "rules": [t.to_json() for t in self.traces], "context": self.context}


# ------------------------------------------------------------------------------------------ the pack
@dataclass
class Pack:
    """A loaded, compiled pack.  Immutable after loading; :meth:`evaluate` is pure."""

    root: Path
    manifest: PackManifest
    rules: list[CompiledRule]
    version: str
    tests: list[tuple[str, int | None, PackTest]] = field(default_factory=list)
    clips: dict[str, ClipAudio] = field(default_factory=dict)  # bridge_speech, loaded (policy/clips.py)
    _by_stage: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict, repr=False)
    _by_tool: dict[tuple[str, str], tuple[CompiledRule, ...]] = field(default_factory=dict, repr=False)
    _vars: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _funcs: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for stage in Stage:
            rs = tuple(r for r in self.rules if r.rule.stage == stage.value)
            self._by_stage[stage.value] = rs
            self._vars[stage.value] = frozenset().union(*(r.variables & ROOTS for r in rs)) if rs else frozenset()
            self._funcs[stage.value] = frozenset().union(*(r.functions for r in rs)) if rs else frozenset()
            if stage.value in TOOL_STAGES:
                for tool in self.manifest.tools:
                    self._by_tool[(stage.value, tool)] = tuple(r for r in rs if r.tools is None or tool in r.tools)

    @property
    def name(self) -> str:
        return self.manifest.name

    def rule(self, rule_id: str) -> CompiledRule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def _candidates(self, stage: str, tool: str) -> tuple[CompiledRule, ...]:
        if stage in TOOL_STAGES:
            rs = self._by_tool.get((stage, tool))
            if rs is not None:
                return rs
        return self._by_stage.get(stage, ())

    def _context(self, inp: PolicyInput, stage: str) -> cel.Context:
        return build_cel_context(inp, self.manifest.history_turns, self._vars[stage], self._funcs[stage])

    def evaluate(self, inp: PolicyInput | Mapping[str, Any]) -> Decision:
        """The decision for one event.  Never raises for a valid input; never does I/O."""
        if not isinstance(inp, PolicyInput):
            inp = PolicyInput.model_validate(inp)
        stage = inp.stage if isinstance(inp.stage, str) else inp.stage.value
        text = inp.text
        norm: str | None = None
        hist: list[str] | None = None
        lazy: LazyContext | None = None
        matched: list[tuple[CompiledRule, str, str | None]] = []
        for r in self._candidates(stage, inp.tool):
            if r.tools is not None and inp.tool not in r.tools:
                continue
            if r.phrase_re is not None:
                if norm is None:
                    norm = normalize_text(text)
                if r.phrase_re.search(norm) is None:
                    continue
            if r.regexes and not any(p.search(text) for p in r.regexes):
                continue
            if r.history_re is not None:
                if hist is None:
                    hist = self._user_history(inp)
                if self._history_phrase(r.history_re, hist) is None:
                    continue
            if r.program is not None:
                if lazy is None:
                    lazy = LazyContext(inp, self.manifest.history_turns)
                try:
                    value = r.program.execute(lazy.ready(r.variables, r.functions))
                except Exception as exc:  # noqa: BLE001 - any evaluation failure fails closed
                    matched.append((r, r.on_error, _error_text(exc)))
                    continue
                if value is False:
                    continue
                if value is not True:
                    matched.append((r, r.on_error, f"condition returned {type(value).__name__}, not bool"))
                    continue
            matched.append((r, r.effect, None))
        return self._decide(stage, matched)

    def _user_history(self, inp: PolicyInput) -> list[str]:
        """The caller turns of the history window, normalized for phrase matching."""
        n = self.manifest.history_turns
        return [normalize_text(h.text) for h in (inp.history[-n:] if n else ()) if h.role == "user"]

    @staticmethod
    def _history_phrase(rx: re.Pattern[str], user_turns: list[str]) -> str | None:
        """The first phrase found in a caller turn of the history window, else None."""
        for t in user_turns:
            m = rx.search(t)
            if m is not None:
                return m.group(0)
        return None

    def _decide(self, stage: str, matched: list[tuple[CompiledRule, str, str | None]]) -> Decision:
        effect, rule_ids = combine([(r.id, e) for r, e, _ in matched], self.manifest.default_effect)
        if not matched:
            return Decision(effect=effect, rule_ids=(), messages=(), pack_version=self.version, pack=self.name, stage=stage, default=True)
        deciding = [(r, e, err) for r, e, err in matched if e == effect]
        messages = tuple(
            (f"rule {r.id} could not be evaluated ({err}); failing closed" if err else r.rule.message) for r, _, err in deciding
        )
        utterances = tuple(dict.fromkeys(r.utterance for r, _, err in deciding if r.utterance and not err))
        severity = max((r.rule.severity for r, _, _ in deciding), key=SEVERITY_RANK.__getitem__)
        others = {e for _, e, _ in matched if e != effect}
        obligations = tuple(e.value for e in EFFECT_PRECEDENCE if e.value in others)
        disclosures = tuple(dict.fromkeys(r.rule.disclosure for r, e, err in matched if e == "require_disclosure" and not err and r.rule.disclosure))
        levels = [r.rule.level or "strong" for r, e, err in matched if e == "step_up" and not err]
        level = max(levels, key=("none", "basic", "strong").index) if levels else None
        return Decision(
            effect=effect,
            rule_ids=rule_ids,
            messages=messages,
            pack_version=self.version,
            pack=self.name,
            stage=stage,
            utterances=utterances,
            severity=severity,
            matched=tuple(Match(r.id, e, r.rule.severity, err) for r, e, err in matched),
            obligations=obligations,
            disclosures=disclosures,
            level=level,
            errors=tuple(f"{r.id}: {err}" for r, _, err in matched if err),
            default=False,
        )

    def explain(self, inp: PolicyInput | Mapping[str, Any]) -> Explanation:
        """Like :meth:`evaluate`, plus every matcher's value for every rule of the stage (no short-circuit)."""
        if not isinstance(inp, PolicyInput):
            inp = PolicyInput.model_validate(inp)
        stage = inp.stage if isinstance(inp.stage, str) else inp.stage.value
        decision = self.evaluate(inp)
        norm = normalize_text(inp.text)
        user_hist = self._user_history(inp)
        ctx = self._context(inp, stage)
        traces = []
        for r in self._by_stage.get(stage, ()):
            tools_ok = None if r.tools is None else inp.tool in r.tools
            phrase: str | bool | None = None
            if r.phrase_re is not None:
                m = r.phrase_re.search(norm)
                phrase = m.group(0) if m else False
            rx: str | bool | None = None
            if r.regexes:
                found = next((m.group(0) for p in r.regexes if (m := p.search(inp.text))), None)
                rx = found if found is not None else False
            hist: str | bool | None = None
            if r.history_re is not None:
                hist = self._history_phrase(r.history_re, user_hist) or False
            cond: Any = None
            error = None
            if r.program is not None and tools_ok is not False:  # a rule for other tools is not evaluated
                try:
                    cond = r.program.execute(ctx)
                    if not isinstance(cond, bool):
                        error = f"condition returned {type(cond).__name__}, not bool"
                except Exception as exc:  # noqa: BLE001
                    error = _error_text(exc)
                    cond = "error"
            m = next((mm for mm in decision.matched if mm.rule_id == r.id), None)
            traces.append(
                RuleTrace(
                    rule_id=r.id, file=r.file, line=r.line, effect=m.effect if m else r.effect, matched=m is not None,
                    tools=tools_ok, phrases=phrase, history_phrases=hist, regex=rx, condition=cond, error=error,
                )
            )
        names = set(self._vars[stage]) | {"stage", "text", "pii", "session"} | ({"digits"} if inp.text else set())
        if stage in TOOL_STAGES:
            names |= {"tool", "args"}
        return Explanation(decision, tuple(traces), context_dict(inp, self.manifest.history_turns, names))

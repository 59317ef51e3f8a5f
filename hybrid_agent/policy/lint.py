"""``policy lint``: schema, CEL compile and type check, duplicate ids, rules that can never match, unknown tools.

The CEL implementation (cel-rust) has no static type checker, so the type check
*probes*: each condition is evaluated against typed sample contexts built from the
documented context and the pack's tool declarations (one per tool the rule can see,
with full, empty and alternative values).  A condition that raises or returns a
non-bool on a fully populated sample is an error; one that raises only when an
optional map (``pii``, ``result``) is empty is a warning, because at run time it
would fail closed.  Probing cannot see a branch no sample reaches; such an error
still fails closed at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybrid_agent.policy.context import ROOTS, STDLIB
from hybrid_agent.policy.engine import TEXT_STAGES, TOOL_STAGES, CompiledRule, _error_text
from hybrid_agent.policy.loader import LoadResult, load
from hybrid_agent.policy.schema import VERIFICATION_LEVELS, PackManifest, PolicyInput, Stage
from hybrid_agent.policy.source import Issue

_STRING_LIT = re.compile(r"\"((?:[^\"\\]|\\.)*)\"|'((?:[^'\\]|\\.)*)'")
_LEVEL_CMP = re.compile(r"verification_level\s*[!=]=\s*[\"'](\w*)[\"']|[\"'](\w*)[\"']\s*[!=]=\s*session\.verification_level")
_TOOL_CMP = re.compile(r"(?<![\w.])tool\s*[!=]=\s*[\"']([^\"']*)[\"']|[\"']([^\"']*)[\"']\s*[!=]=\s*tool(?![\w.])")
_STAGE_CMP = re.compile(r"(?<![\w.])stage\s*[!=]=\s*[\"']([^\"']*)[\"']")
_MATCHES = re.compile(r"\.\s*matches\s*\(|(?<![\w.])matches\s*\(")
_DISCLOSURE_IN = re.compile(r"[\"']([^\"']*)[\"']\s+in\s+session\.disclosures")
_DISCLOSURE_MACRO = re.compile(r"session\.disclosures\.\s*(?:exists|all|exists_one|filter)\s*\(\s*(\w+)\s*,([^)]*)\)")
_IN_LIST = re.compile(r"(?<![\w.])(session\.verification_level|tool|stage)\s+in\s+\[([^\]]*)\]")
_ARG_REF = re.compile(r"(?<![\w.])args\.([A-Za-z_]\w*)|(?<![\w.])args\s*\[\s*[\"']([^\"']*)[\"']\s*\]")
_NUM = r"-?\d+(?:\.\d+)?u?"
_ARG_CMP = re.compile(
    rf"(?<![\w.])args\.(\w+)\s*(?:[!=]=|[<>]=?)\s*(\"[^\"]*\"|'[^']*'|{_NUM}|true|false)(?![\w.])"
    rf"|(\"[^\"]*\"|'[^']*'|{_NUM}|true|false)\s*(?:[!=]=|[<>]=?)\s*args\.(\w+)(?![\w(])"
)
#: functions cel-rust provides (besides operators, which start with _ ! or @)
CEL_BUILTINS = frozenset({
    "size", "has", "contains", "startsWith", "endsWith", "matches", "int", "uint", "double", "string", "bytes", "bool",
    "dyn", "type", "duration", "timestamp", "max", "min", "exists", "all", "exists_one", "map", "filter",
    "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getHours", "getMinutes",
    "getSeconds", "getMilliseconds",
})

_SAMPLE = {
    "full": {"string": "x", "number": 1.5, "integer": 1, "boolean": True, "list": ["x"], "map": {"x": "x"}, "any": "x"},
    "alt": {"string": "yy", "number": 100000, "integer": 100000, "boolean": False, "list": [], "map": {}, "any": 1},
    "empty": {"string": "", "number": 0.0, "integer": 0, "boolean": False, "list": [], "map": {}, "any": ""},
}


@dataclass
class LintReport:
    issues: list[Issue]
    load: LoadResult

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


def _literals(source: str) -> list[str]:
    return [a if a else b for a, b in _STRING_LIT.findall(source)]


def _samples(r: CompiledRule, m: PackManifest) -> list[tuple[str, str, PolicyInput]]:
    """(variant, tool, input) probes for one rule."""
    stage = r.rule.stage
    lits = _literals(r.rule.condition or "")
    if stage in TOOL_STAGES:
        tools = sorted(r.tools) if r.tools is not None else sorted(m.tools) or [""]
    else:
        tools = [""]
    out = []
    for tool in tools:
        spec = m.tools.get(tool)
        for variant, vals in _SAMPLE.items():
            full = variant != "empty"
            args = {k: vals[t] for k, t in spec.args.items()} if spec else {}
            data: dict[str, Any] = {
                "stage": stage,
                "text": {"full": "sample text", "alt": "4111 1111 1111 1111", "empty": ""}[variant],
                "pii": ({k: 1 for k in lits} | {"CREDIT_CARD": 1}) if full else {},
                "tool": tool,
                "args": args,
                "result": {k: "x" for k in lits} if full else {},
                "confirmed": variant == "full",
                "session": {
                    "verification_level": {"full": "strong", "alt": "basic", "empty": "none"}[variant],
                    "disclosures": list(m.disclosures) if full else [],
                    "elapsed_s": 120.0 if full else 0.0,
                    "turns": 10 if full else 0,
                    "user_turns": 5 if full else 0,
                    "assistant_turns": 5 if full else 0,
                    "tool_calls": 2 if full else 0,
                    "channel": "phone" if full else "",
                },
                "history": [{"role": "user", "text": "hello"}, {"role": "assistant", "text": "hi"}] if full else [],
            }
            out.append((variant, tool, PolicyInput.model_validate(data)))
    return out


def _check_condition(r: CompiledRule, m: PackManifest, history_turns: int) -> list[Issue]:
    from hybrid_agent.policy.context import build_cel_context

    issues: list[Issue] = []
    where = r.file
    line = r.line

    def add(msg: str, level: str = "error") -> None:
        issues.append(Issue(where, line, f"rule {r.id}: {msg}", level=level, rule_id=r.id))  # type: ignore[arg-type]

    unknown = sorted(r.variables - ROOTS)
    if unknown:
        add(f"condition uses unknown variable(s) {', '.join(unknown)} (the context has: {', '.join(sorted(ROOTS))})")
        return issues
    if not r.variables:
        try:
            value = r.program.execute({})
        except Exception as exc:  # noqa: BLE001
            add(f"condition cannot be evaluated: {_error_text(exc)}")
            return issues
        if value is False:
            add("condition is constant false: the rule can never match")
        elif value is True:
            add("condition is constant true (omit it)", "warning")
        else:
            add(f"condition returns {type(value).__name__}, not bool")
        return issues
    reported: set[str] = set()
    for variant, tool, inp in _samples(r, m):
        ctx = build_cel_context(inp, history_turns, r.variables & ROOTS, r.functions)
        on = f" (tool {tool})" if tool else ""
        try:
            value = r.program.execute(ctx)
        except Exception as exc:  # noqa: BLE001
            msg = _error_text(exc)
            if variant == "empty" and isinstance(exc, KeyError):
                text = f"condition raises '{msg}' when pii/result/args are empty{on}; it would fail closed (guard with has() or 'in')"
                if text not in reported:
                    reported.add(text)
                    add(text, "warning")
            else:
                if isinstance(exc, KeyError) and tool and "args" in r.variables:
                    text = f"type error: {msg}{on}: not an argument of the tool (declared: {', '.join(m.tools[tool].args) or 'none'})"
                else:
                    text = f"type error: {msg}{on}"
                if text not in reported:
                    reported.add(text)
                    add(text)
            continue
        if not isinstance(value, bool):
            text = f"type error: condition returns {type(value).__name__}, not bool{on}"
            if text not in reported:
                reported.add(text)
                add(text)
    return issues


_TYPE_OF_LITERAL = {"string": ("string",), "number": ("number", "integer"), "boolean": ("boolean",)}


def _check_args(r: CompiledRule, m: PackManifest, add: Any) -> None:
    """``args.x`` must be an argument of a tool the rule can see (also inside ``has()``), and a
    comparison of an argument with a literal must not mix types (CEL's ``"1234" == 1234`` is false)."""
    src = r.rule.condition or ""
    if r.rule.stage not in TOOL_STAGES:
        return
    tools = sorted(r.tools) if r.tools is not None else sorted(m.tools)
    specs = [m.tools[t] for t in tools if t in m.tools]
    if not specs:
        return
    declared = {a for s in specs for a in s.args}
    for name in dict.fromkeys(a or b for a, b in _ARG_REF.findall(src)):
        if name not in declared:
            add(r, f"args.{name} is not an argument of the tool {', '.join(tools)} (declared: {', '.join(sorted(declared)) or 'none'})")
    for a1, lit1, lit2, a2 in _ARG_CMP.findall(src):
        name, lit = (a1, lit1) if a1 else (a2, lit2)
        kind = "string" if lit[:1] in "\"'" else ("boolean" if lit in ("true", "false") else "number")
        types = {s.args[name] for s in specs if name in s.args}
        if types and not any(t == "any" or t in _TYPE_OF_LITERAL[kind] for t in types):
            add(r, f"type error: args.{name} ({'/'.join(sorted(types))}) compared with a {kind} literal {lit}: "
                   "CEL compares values of different types as unequal")


#: effects that stop speech or an action: a stage with such rules should not fail open
_STOPPING_EFFECTS = ("block_speech", "deny")


def _check_gate(res: LoadResult, m: PackManifest, issues: list[Issue]) -> None:
    """``gate.on_failure``: a stage that fails open while rules there block speech or deny."""
    doc = next((d for d in res.docs.values() if Path(d.path).name == "pack.yaml"), None)
    where = doc.path if doc is not None else (res.root or m.name)
    for stage in m.gate.on_failure.open_stages():
        stopping = [r.id for r in res.rules if r.rule.stage == stage and r.rule.effect in _STOPPING_EFFECTS]
        if not stopping:
            continue
        line = doc.line_of(("gate", "on_failure", stage)) if doc is not None else None
        shown = ", ".join(stopping[:3]) + (f" and {len(stopping) - 3} more" if len(stopping) > 3 else "")
        issues.append(Issue(
            where, line,
            f"gate.on_failure.{stage} is open, but {len(stopping)} rule(s) at {stage} block speech or deny ({shown}): "
            "a failed or slow check lets the event through unchecked (keep it closed unless the stage must never stall)",
            level="warning",
        ))


def lint_result(res: LoadResult) -> LintReport:
    issues = list(res.issues)
    m = res.manifest
    if m is None:
        return LintReport(issues, res)
    known_tools = set(m.tools)

    def add(r: CompiledRule, msg: str, level: str = "error") -> None:
        issues.append(Issue(r.file, r.line, f"rule {r.id}: {msg}", level=level, rule_id=r.id))  # type: ignore[arg-type]

    for r in res.rules:
        rule = r.rule
        stage = rule.stage
        if rule.tools is not None:
            if stage not in TOOL_STAGES:
                add(r, f"'tools' only applies to tool_call/tool_result; at stage {stage} the rule can never match")
            for t in rule.tools:
                if t not in known_tools:
                    add(r, f"unknown tool {t!r} (declared in pack.yaml: {', '.join(sorted(known_tools)) or 'none'})")
        if (rule.phrases or rule.regex) and stage not in TEXT_STAGES:
            add(r, f"phrases/regex match the text, which is always empty at stage {stage}: the rule can never match")
        if rule.disclosure and rule.disclosure not in m.disclosures:
            add(r, f"unknown disclosure {rule.disclosure!r} (declared in pack.yaml: {', '.join(sorted(m.disclosures)) or 'none'})")
        if rule.effect == "block_speech" and stage != Stage.assistant_text.value:
            add(r, "block_speech only makes sense at stage assistant_text", "warning")
        if rule.effect in ("confirm", "step_up") and stage not in (Stage.tool_call.value,):
            add(r, f"{rule.effect} usually belongs at stage tool_call", "warning")
        src = rule.condition
        if src is None:
            continue
        for a, b in _LEVEL_CMP.findall(src):
            lvl = a or b
            if lvl not in VERIFICATION_LEVELS:
                add(r, f"unknown verification level {lvl!r} (one of {', '.join(VERIFICATION_LEVELS)})")
        for a, b in _TOOL_CMP.findall(src):
            t = a or b
            if stage not in TOOL_STAGES:
                add(r, f"compares tool with {t!r} but tool is always empty at stage {stage}")
            elif t not in known_tools:
                add(r, f"condition names unknown tool {t!r} (declared in pack.yaml: {', '.join(sorted(known_tools)) or 'none'})")
        if _MATCHES.search(src):
            add(r, "CEL matches() compiles its regex on every evaluation (up to ~100 us); use text.search(\"...\") "
                   "(case-insensitive, compiled once) or the regex/phrases sugar", "warning")
        for s in _STAGE_CMP.findall(src):
            if s not in {st.value for st in Stage}:
                add(r, f"condition compares stage with unknown stage {s!r}")
        disclosure_refs = list(_DISCLOSURE_IN.findall(src))
        for var, body in _DISCLOSURE_MACRO.findall(src):
            disclosure_refs += [a or b for a, b in re.findall(
                rf"(?<![\w.]){re.escape(var)}\s*[!=]=\s*(?:\"([^\"]*)\"|'([^']*)')", body)]
            disclosure_refs += [a or b for a, b in re.findall(
                rf"(?:\"([^\"]*)\"|'([^']*)')\s*[!=]=\s*{re.escape(var)}(?![\w.])", body)]
        for lst_var, items in _IN_LIST.findall(src):
            for lit in _literals(items):
                if lst_var == "tool" and lit not in known_tools:
                    add(r, f"condition names unknown tool {lit!r} in a list (declared in pack.yaml: {', '.join(sorted(known_tools)) or 'none'})")
                elif lst_var == "stage" and lit not in {st.value for st in Stage}:
                    add(r, f"condition compares stage with unknown stage {lit!r} in a list")
                elif lst_var == "session.verification_level" and lit not in VERIFICATION_LEVELS:
                    add(r, f"unknown verification level {lit!r} in a list (one of {', '.join(VERIFICATION_LEVELS)})")
        _check_args(r, m, add)
        unknown_fns = sorted(f for f in r.program.functions() if f not in CEL_BUILTINS and f not in STDLIB and f[:1] not in "_!@") if r.program else []
        if unknown_fns:
            add(r, f"condition calls unknown function(s) {', '.join(unknown_fns)}")
        for d in disclosure_refs:
            if d not in m.disclosures:
                add(r, f"condition names unknown disclosure {d!r} (declared in pack.yaml: {', '.join(sorted(m.disclosures)) or 'none'})")
        if r.program is not None:
            issues.extend(_check_condition(r, m, m.history_turns))

    _check_gate(res, m, issues)

    rule_ids = {r.id for r in res.rules}
    rules_broken = any(i.level == "error" for i in res.issues)  # don't cascade: a rule that failed to load is not "unknown"
    for file, line, case in res.tests:
        inp = case.input
        if inp.tool and inp.tool not in known_tools:
            issues.append(Issue(file, line, f"test {case.name!r}: tool {inp.tool!r} is not declared in pack.yaml", level="warning"))
        for rid in (case.expect.rules or []) + (case.expect.not_rules or []) + (case.expect.exact_rules or []):
            if rid not in rule_ids and not rules_broken:
                issues.append(Issue(file, line, f"test {case.name!r}: unknown rule id {rid!r}"))
    if res.manifest is not None and not res.tests:
        issues.append(Issue(res.root or res.manifest.name, None, "the pack has no tests (tests/*.yaml)", level="warning"))
    issues.sort(key=lambda i: (i.file, i.line or 0))
    return LintReport(issues, res)


def lint(root: str | Path) -> LintReport:
    return lint_result(load(root, with_tests=True))

"""``policy test``: run a pack's test cases (``tests/*.yaml``), like ``opa test``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TextIO

from hybrid_agent.policy.engine import Decision, Pack
from hybrid_agent.policy.schema import PackTest


@dataclass
class CaseResult:
    file: str
    line: int | None
    name: str
    ok: bool
    decision: Decision
    failures: list[str] = field(default_factory=list)

    @property
    def nodeid(self) -> str:
        return f"{self.file}::{self.name}"


def check(case: PackTest, decision: Decision) -> list[str]:
    exp = case.expect
    failures = []
    if decision.effect != exp.effect:
        failures.append(f"expected effect {exp.effect}, got {decision.effect} (rules: {', '.join(decision.rule_ids) or 'none, default'})")
    matched = {m.rule_id for m in decision.matched}
    for rid in exp.rules or []:
        if rid not in matched:
            failures.append(f"expected rule {rid} to match; matched: {', '.join(sorted(matched)) or 'none'}")
    for rid in exp.not_rules or []:
        if rid in matched:
            failures.append(f"expected rule {rid} not to match, but it did")
    if exp.exact_rules is not None and sorted(exp.exact_rules) != sorted(decision.rule_ids):
        failures.append(f"expected deciding rules {sorted(exp.exact_rules)}, got {sorted(decision.rule_ids)}")
    if decision.errors and not exp.errors:
        failures.append("evaluation errors: " + "; ".join(decision.errors))
    if exp.errors and not decision.errors:
        failures.append("expected an evaluation error (fail closed), got none")
    return failures


def run_tests(pack: Pack, *, match: str | None = None) -> list[CaseResult]:
    results = []
    for file, line, case in pack.tests:
        if match and match.lower() not in case.name.lower():
            continue
        decision = pack.evaluate(case.input)
        failures = check(case, decision)
        results.append(CaseResult(file, line, case.name, not failures, decision, failures))
    return results


def report(results: list[CaseResult], elapsed: float, out: TextIO, *, verbose: bool = False, header: str = "") -> int:
    """pytest-like output; returns the exit code (0 all passed, 1 failures, 5 no tests)."""
    if header:
        out.write(header + "\n")
    if verbose:
        for r in results:
            out.write(f"{r.nodeid} {'PASSED' if r.ok else 'FAILED'}\n")
    else:
        by_file: dict[str, list[CaseResult]] = {}
        for r in results:
            by_file.setdefault(r.file, []).append(r)
        for file, rs in by_file.items():
            out.write(f"{file} {''.join('.' if r.ok else 'F' for r in rs)}\n")
    failed = [r for r in results if not r.ok]
    if failed:
        out.write("\n" + " FAILURES ".center(72, "=") + "\n")
        for r in failed:
            out.write(f" {r.name} ".center(72, "_") + "\n")
            out.write(f"{r.file}:{r.line}\n")
            for f in r.failures:
                out.write(f"E   {f}\n")
        out.write(" short test summary info ".center(72, "=") + "\n")
        for r in failed:
            out.write(f"FAILED {r.nodeid} - {r.failures[0]}\n")
    passed = len(results) - len(failed)
    parts = []
    if failed:
        parts.append(f"{len(failed)} failed")
    if passed or not failed:
        parts.append(f"{passed} passed")
    out.write(f" {', '.join(parts)} in {elapsed:.2f}s ".center(72, "=") + "\n")
    if not results:
        return 5
    return 1 if failed else 0


def timed_run(pack: Pack, *, match: str | None = None) -> tuple[list[CaseResult], float]:
    t0 = time.perf_counter()
    results = run_tests(pack, match=match)
    return results, time.perf_counter() - t0

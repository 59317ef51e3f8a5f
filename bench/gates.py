"""``hybrid-agent bench gates`` and ``bench audit``: the existing middle-layer benchmarks, one report each.

Nothing is measured twice: ``gates`` runs the PII benchmark (``bench/pii_bench.py``: corpus
recall and precision, latency per utterance and per streaming delta), the policy benchmark
(``bench/policy_bench.py``: evaluation latency) and the gate-mode benchmark
(``bench/gate_bench.py``: time to first audio, leaks and CPU in observe / monitor / hold, the
middle-layer issue's figures) as they are, each in its own process; ``audit`` runs the audit
writer's throughput benchmark (``bench/audit_bench.py``, PostgreSQL and SQLite).  The JSON
keeps each benchmark's own figures under its name.

    hybrid-agent bench gates [--quick] [--json]
    hybrid-agent bench audit [--calls 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import report

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], want_json: bool) -> tuple[dict[str, Any] | None, str]:
    """One benchmark in its own process: its JSON figures (when it prints them) and its text."""
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    if not want_json:
        return None, proc.stdout
    return json.loads(proc.stdout[_json_start(proc.stdout):]), proc.stdout


def _json_start(text: str) -> int:
    """Where the JSON a benchmark printed last begins (its own text may come first)."""
    return 0 if text.startswith("{") else text.find("\n{") + 1


def gates(quick: bool) -> tuple[dict[str, Any], str]:
    pii, _ = _run(["-m", "bench.pii_bench", "--json", "--rounds", "3" if quick else "20"], True)
    policy, _ = _run(["-m", "bench.policy_bench", "--json", "--rounds", "50" if quick else "200"], True)
    _, modes = _run(["-m", "bench.gate_bench", "--calls", "4" if quick else "10", "--leak-calls", "2" if quick else "3"], False)
    assert pii is not None and policy is not None
    figures = {"pii": pii, "policy": policy, "gate_modes_report": modes}
    lines = ["gates: the PII, policy and gate-mode benchmarks of one run", ""]
    lines.append("PII (bench/pii_bench.py): " + _pii_summary(pii))
    lines.append("policy (bench/policy_bench.py): " + ", ".join(f"{k} {v}" for k, v in _flat(policy, ("p99",))))
    lines += ["", "gate modes (bench/gate_bench.py):", "", "```", modes.strip(), "```"]
    return figures, "\n".join(lines)


def audit(calls: int) -> tuple[dict[str, Any], str]:
    figures, text = _run(["bench/audit_bench.py", "--json", "throughput", "--calls", str(calls)], True)
    assert figures is not None
    body = text[: _json_start(text)].strip()
    return figures, "audit writer (bench/audit_bench.py throughput): PostgreSQL and SQLite\n\n```\n" + body + "\n```"


def _pii_summary(pii: dict[str, Any]) -> str:
    """The worst recall and precision over the corpus' types and forms, and the latency p99s."""
    quality = {k: v for k, v in pii.get("quality", {}).items() if k.endswith("/all")}
    parts = []
    for figure in ("recall", "precision"):
        worst = min(quality.items(), key=lambda kv: kv[1].get(figure, 1.0), default=None)
        if worst is not None:
            parts.append(f"lowest {figure} {worst[1].get(figure)} ({worst[0].split('/')[0]})")
    for name, lat in pii.get("latency", {}).items():
        parts.append(f"{name} p99 {lat.get('p99_ms')} ms")
    return ", ".join(parts) + f" ({pii.get('utterances')} utterances)"


def _flat(d: dict[str, Any], wanted: tuple[str, ...], prefix: str = "") -> list[tuple[str, Any]]:
    """The figures whose key mentions one of ``wanted``, as dotted names (for the one-line summary)."""
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out += _flat(v, wanted, name + ".")
        elif isinstance(v, (int, float)) and any(w in k for w in wanted):
            out.append((name, round(v, 4) if isinstance(v, float) else v))
    return out[:12]


def main(argv: list[str] | None = None, name: str = "gates") -> int:
    parser = argparse.ArgumentParser(prog=f"hybrid-agent bench {name}", description=__doc__.split("\n\n")[0])
    if name == "gates":
        parser.add_argument("--quick", action="store_true", help="fewer rounds and calls")
    else:
        parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures, text = gates(args.quick) if name == "gates" else audit(args.calls)
    report.write(name, figures, text, as_json=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[2:], sys.argv[1]) if sys.argv[1:2] in (["gates"], ["audit"]) else main())

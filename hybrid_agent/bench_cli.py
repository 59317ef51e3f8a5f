"""``hybrid-agent bench NAME``: the benchmarks of ``bench/``, run from the source checkout.

The benchmarks are not part of the installed package (they start simulators, bridges and
third-party frameworks, and write ``bench/results/``); they live beside ``hybrid_agent/`` in
the checkout, which an editable install (``make venv``) points at.  Each runs in its own
process with the checkout on ``PYTHONPATH``, so its exit code and output are its own.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]

#: name -> (module args, what it measures)
BENCHMARKS: dict[str, tuple[list[str], str]] = {
    "relay": (["-m", "bench.relay"], "one paced workload direct, through a bare relay and through the bridge (observe/monitor/hold)"),
    "capacity": (["-m", "bench.capacity"], "the most paced calls one bridge process carries on one core"),
    "peers": (["-m", "bench.peers"], "the same workload through openai-agents and pipecat, as ratios against the bridge"),
    "hot_path": (["-m", "bench.hot_path"], "CallSession's cost per audio event, in-process"),
    "gates": (["-m", "bench.gates", "gates"], "the PII, policy and gate-mode benchmarks"),
    "audit": (["-m", "bench.gates", "audit"], "the audit writer's throughput on PostgreSQL and SQLite"),
}


def _cmd_bench(args: argparse.Namespace) -> int:
    if not (CHECKOUT / "bench" / "__init__.py").is_file():
        print(f"error: the benchmarks ship with the source checkout (bench/ beside hybrid_agent/), not found under "
              f"{CHECKOUT}: run from a clone after `make venv`", file=sys.stderr)
        return 2
    module, _ = BENCHMARKS[args.name]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(CHECKOUT), os.environ.get("PYTHONPATH", "")) if p)}
    rest = [a for a in args.rest if a != "--"]
    return subprocess.call([sys.executable, *module, *rest], env=env)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    listing = "; ".join(f"{name}: {what}" for name, (_, what) in BENCHMARKS.items())
    p = sub.add_parser("bench", help="run a benchmark of bench/ (writes bench/results/NAME.json and .md)",
                       description=f"Benchmarks: {listing}.  Arguments after NAME go to the benchmark (--json, --calls, ...).")
    p.add_argument("name", choices=sorted(BENCHMARKS), metavar="NAME", help=", ".join(sorted(BENCHMARKS)))
    p.add_argument("rest", nargs=argparse.REMAINDER, help="the benchmark's own arguments, e.g. --json")
    p.set_defaults(func=_cmd_bench)

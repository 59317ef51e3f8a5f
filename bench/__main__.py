"""``make bench``: every benchmark's quick form, one after another, each writing ``bench/results/NAME.json``
and ``NAME.md`` and printing its table (``hybrid-agent bench NAME`` runs one, at full length).

The 1M-turn audit query benchmark takes minutes to build its database; run it on its own:
``.venv/bin/python bench/audit_bench.py queries --db URL --build-calls 100000``.
"""

from __future__ import annotations

import subprocess
import sys

RUNS = [
    ("relay: direct, bare relay and the bridge, one workload", ["-m", "bench.relay", "--calls", "10", "--seconds", "10"]),
    ("capacity: paced calls on one core", ["-m", "bench.capacity", "--steps", "10,25,50", "--seconds", "10"]),
    ("hot path: CallSession per audio event", ["-m", "bench.hot_path"]),
    ("peers: openai-agents and pipecat against the bridge", ["-m", "bench.peers", "--calls", "5", "--seconds", "10"]),
    ("gates: PII, policy and gate modes", ["-m", "bench.gates", "gates", "--quick"]),
    ("audit writer: PostgreSQL and SQLite", ["-m", "bench.gates", "audit", "--calls", "2000"]),
]


def main() -> int:
    failed = 0
    for title, args in RUNS:
        print(f"\n=== {title} ===", flush=True)
        failed += subprocess.call([sys.executable, *args]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

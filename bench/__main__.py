"""``make bench``: every benchmark's quick form, one after another, each printing its own side-by-side table.

The 1M-turn audit query benchmark takes minutes to build its database; run it on its own:
``.venv/bin/python bench/audit_bench.py queries --db URL --build-calls 100000``.
"""

from __future__ import annotations

import subprocess
import sys

RUNS = [
    ("relay: bridge vs direct", ["-m", "bench.relay", "--rounds", "200"]),
    ("audit writer: PostgreSQL and SQLite", ["bench/audit_bench.py", "throughput", "--calls", "2000"]),
    ("PII gate: corpus precision/recall and latency", ["-m", "bench.pii_bench"]),
    ("policy: evaluation latency", ["-m", "bench.policy_bench"]),
    ("gate modes: TTFA, leaks and CPU in observe / monitor / hold", ["-m", "bench.gate_bench", "--calls", "10", "--leak-calls", "3"]),
]


def main() -> int:
    failed = 0
    for title, args in RUNS:
        print(f"\n=== {title} ===", flush=True)
        failed += subprocess.call([sys.executable, *args]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

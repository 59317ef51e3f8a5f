"""``make bench``: every benchmark's quick form, one after another, each writing ``bench/results/NAME.json``
and ``NAME.md`` and printing its table (``hybrid-agent bench NAME`` runs one, at full length).

The 1M-turn audit query benchmark takes minutes to build its database; run it on its own:
``.venv/bin/python bench/audit_bench.py queries --db URL --build-calls 100000``.

``python -m bench NAME [ARGS]`` runs one of ``SUBCOMMANDS`` instead (long runs kept out of ``make bench``):
``python -m bench db-outage`` (``make db-outage``) stops the audit database for a minute under load.
"""

from __future__ import annotations

import importlib
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

#: ``python -m bench NAME``: module whose ``main(argv)`` runs it
SUBCOMMANDS = {
    "db-outage": "bench.db_outage",
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        if args[0] not in SUBCOMMANDS:
            print(f"usage: python -m bench [{' | '.join(SUBCOMMANDS)}] [ARGS]  (no NAME: every quick benchmark)",
                  file=sys.stderr)
            return 2
        return int(importlib.import_module(SUBCOMMANDS[args[0]]).main(args[1:]) or 0)
    failed = 0
    for title, cmd in RUNS:
        print(f"\n=== {title} ===", flush=True)
        failed += subprocess.call([sys.executable, *cmd]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

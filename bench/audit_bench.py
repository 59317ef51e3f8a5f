"""Audit store benchmarks (not unit tests).

    .venv/bin/python bench/audit_bench.py throughput [--calls 5000] [--pg URL] [--sqlite]
    .venv/bin/python bench/audit_bench.py queries --db URL [--build-calls 100000] [--turns-per-call 10] [--runs 100]

``throughput``: sustained audited turns per second through the batched
AuditWriter (the bridge's path: record API -> enqueue -> batches -> chain) into a
fresh PostgreSQL schema and a fresh SQLite file.  Records per second counts every
record (turns, decisions, tool calls, disclosures, call start/end).

``queries``: builds (if ``--build-calls`` and the database is empty) a database
with ``hybrid-agent audit generate`` and reports p50/p95 of ``audit calls``
(several filters), ``audit show`` (random calls) and ``audit violations``,
measured in-process through the CLI entry point with output discarded.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybrid_agent.audit.generate import generate  # noqa: E402
from hybrid_agent.audit.store import make_engine, upgrade  # noqa: E402

PG_BASE = os.environ.get("HYBRID_AGENT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_schema(create: bool, schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}" if create else f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def throughput(args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {}
    if not args.no_pg:
        schema = f"audit_bench_{secrets.token_hex(4)}"
        _pg_schema(True, schema)
        try:
            url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
            upgrade(url)
            out["postgresql"] = generate(url, calls=args.calls, turns_per_call=args.turns_per_call, batch_size=args.batch_size)
        finally:
            _pg_schema(False, schema)
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{d}/bench.db"
        upgrade(url)
        out["sqlite"] = generate(url, calls=args.calls, turns_per_call=args.turns_per_call, batch_size=args.batch_size)
    for name, s in out.items():
        print(f"{name:10} {s['turns_per_s']:8.0f} turns/s  {s['records_per_s']:8.0f} records/s  "  # type: ignore[index]
              f"({s['turns']} turns, {s['records']} records in {s['seconds']:.1f}s)")  # type: ignore[index]
    return out


def _time_cli(argv: list[str]) -> float:
    from hybrid_agent.cli import main

    buf = io.StringIO()
    t = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        rc = main(argv)
    dt = time.perf_counter() - t
    if rc != 0:
        raise SystemExit(f"{argv} failed: {rc}")
    return dt * 1000


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def queries(args: argparse.Namespace) -> dict[str, object]:
    from sqlalchemy import text

    upgrade(args.db)
    engine = make_engine(args.db)
    with engine.connect() as conn:
        n_turns = conn.execute(text("SELECT count(*) FROM turns")).scalar_one()
    if n_turns == 0 and args.build_calls:
        print(f"building {args.build_calls} calls x {args.turns_per_call} turns ...", file=sys.stderr)
        stats = generate(args.db, calls=args.build_calls, turns_per_call=args.turns_per_call, batch_size=args.batch_size, progress=True)
        print(f"built in {stats['seconds']:.0f}s ({stats['turns_per_s']:.0f} turns/s)", file=sys.stderr)
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("ANALYZE"))
            else:
                conn.execute(text("ANALYZE"))
            conn.commit()
    with engine.connect() as conn:
        n_turns = conn.execute(text("SELECT count(*) FROM turns")).scalar_one()
        ids = list(conn.execute(text("SELECT id FROM calls")).scalars())
        t0, t1 = conn.execute(text("SELECT min(started_at), max(started_at) FROM calls")).one()
    engine.dispose()
    rng = random.Random(7)
    db = ["--db", args.db]
    mid = str((t0 + t1) / 2)
    cases = {
        "audit calls": lambda: ["audit", "calls", *db],
        "audit calls --since (mid) --channel web": lambda: ["audit", "calls", "--since", mid, "--channel", "web", *db],
        "audit calls --has-violation": lambda: ["audit", "calls", "--has-violation", *db],
        "audit calls --outcome error --policy-version c0ffee42": lambda: ["audit", "calls", "--outcome", "error", "--policy-version", "c0ffee42", *db],
        "audit show CALL (random)": lambda: ["audit", "show", rng.choice(ids), *db],
        "audit violations": lambda: ["audit", "violations", *db],
        "audit violations --rule tool.transfer_funds": lambda: ["audit", "violations", "--rule", "tool.transfer_funds", *db],
        "audit violations --since (mid)": lambda: ["audit", "violations", "--since", mid, *db],
    }
    results: dict[str, object] = {"turns": n_turns, "calls": len(ids)}
    print(f"{n_turns} turns, {len(ids)} calls; {args.runs} runs each (in-process CLI, includes connect + schema check)")
    for name, argv in cases.items():
        _time_cli(argv())  # warm
        times = [_time_cli(argv()) for _ in range(args.runs)]
        results[name] = {"p50_ms": statistics.median(times), "p95_ms": _pct(times, 95), "max_ms": max(times)}
        print(f"  {name:55} p50 {statistics.median(times):7.1f} ms   p95 {_pct(times, 95):7.1f} ms")
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("throughput")
    p.add_argument("--calls", type=int, default=5000)
    p.add_argument("--turns-per-call", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--no-pg", action="store_true")
    p = sub.add_parser("queries")
    p.add_argument("--db", required=True)
    p.add_argument("--build-calls", type=int, default=0)
    p.add_argument("--turns-per-call", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--runs", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = throughput(args) if args.cmd == "throughput" else queries(args)
    if args.json:
        print(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()

"""``hybrid-agent audit cost``: what the calls cost, and what a cascade would have cost for the same calls."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hybrid_agent.cost.estimate import GROUPINGS, call_costs, summarize
from hybrid_agent.cost.prices import PriceFileError, load_prices


def _usd(v: Any) -> str:
    return "-" if v is None else f"${v:,.4f}"


def cmd_cost(args: argparse.Namespace) -> int:
    from hybrid_agent.audit.cli import dump_json, open_db, print_table
    from hybrid_agent.settings import load_settings

    try:
        prices = load_prices(args.prices or load_settings().prices_file)
    except PriceFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with open_db(args) as conn:
        costs = call_costs(conn, prices, since=args.since, until=args.until)
    report = summarize(costs, args.by, prices)
    if args.json:
        dump_json(report, sys.stdout)
        return 0
    names = list(prices.cascades)
    rows = []
    for r in [*report["rows"], {args.by: "TOTAL", **report["total"]}]:
        line = {"key": r[args.by], "calls": r["calls"], "speech": f"{r['caller_speech_s']:.0f}s / {r['answer_audio_s']:.0f}s",
                "realtime": _usd(r["realtime_usd"]) + (f" (+{r['unpriced_responses']} unpriced)" if r["unpriced_responses"] else "")}
        for i, name in enumerate(names):
            c = r["cascades"][name]
            ratio = f" ({c['ratio_to_realtime']:.2f}x)" if c["ratio_to_realtime"] is not None else ""
            line[f"c{i}"] = _usd(c["usd"]) + ratio
        rows.append(line)
    columns = [("key", args.by.upper()), ("calls", "CALLS"), ("speech", "CALLER/ANSWER AUDIO"), ("realtime", "REALTIME")]
    columns += [(f"c{i}", name.upper()) for i, name in enumerate(names)]
    print_table(rows, columns, sys.stdout, width=48)
    print(f"(prices as of {prices.as_of} in {prices.currency}; cascades estimated from the calls' audio and transcripts: "
          "docs/observability.md)")
    return 0


def register(asub: Any, add_db: Any, run: Any, parse_time: Any) -> None:
    p = asub.add_parser("cost", help="what the calls cost on their Realtime model, beside what each cascade would have cost")
    p.add_argument("--since", type=parse_time, help="calls started at/after (2026-01-31, ISO time, epoch, or 7d/12h)")
    p.add_argument("--until", type=parse_time, help="calls started before")
    p.add_argument("--by", choices=GROUPINGS, default="call", help="one row per call (default), day (UTC), pack or model")
    p.add_argument("--prices", metavar="FILE", help="price table (YAML or JSON) merged over the defaults; env HYBRID_AGENT_PRICES_FILE")
    p.add_argument("--json", action="store_true")
    add_db(p)
    p.set_defaults(func=run(cmd_cost))

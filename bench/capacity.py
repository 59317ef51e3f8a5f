"""``hybrid-agent bench capacity``: how many paced calls one bridge process carries on one core.

Steps N up (``--steps``); at each N the same paced workload as ``bench relay`` runs directly
against the simulator and then through one ``hybrid-agent serve`` (pinned to core 0; the
simulator and the load generator on the other cores).  A step passes when the audio events'
p99 latency added by the bridge stays under ``--budget-ms`` (20) and no frame is dropped or
call lost.  ``max_calls`` is the largest passing N before the first failure;
``cpu_s_per_call_minute`` and ``kb_per_call`` are read at that N.

The load generator is Python too: when its own core is saturated (``load_cpu`` near 1.0) the
direct latency grows as well, and the step measures the load generator, not the bridge; the
table shows both so such a step can be read for what it is.

    hybrid-agent bench capacity [--mode observe] [--steps 10,25,50,100,150,200,250,300,400] [--seconds 20] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from bench import report
from bench.loadgen import StampedSimulator, pct, run_load
from bench.middle import direct_headers, pin_load_process, start_bridge, stop, workdir

DEFAULT_STEPS = (10, 25, 50, 100, 150, 200, 250, 300, 400)
BUDGET_MS = 20.0
#: the load generator's core this busy, or direct latency this high, and the step measures the load generator
LOAD_SATURATED = 0.75


async def step(sim: StampedSimulator, wd: str, mode: str | None, calls: int, seconds: float) -> dict[str, Any]:
    direct_url = f"{sim.ws_url}/realtime?model=gpt-realtime"
    t0, c0 = time.monotonic(), os.times()
    direct = await run_load(sim, direct_url, direct_headers(sim), calls, seconds)
    c1 = os.times()
    load_cpu = (c1.user + c1.system - c0.user - c0.system) / (time.monotonic() - t0)
    bridge = await start_bridge(sim.ws_url, mode, wd)
    try:
        await run_load(sim, bridge.url, bridge.headers, 1, 3.0)  # warm-up
        cpu0, rss0 = bridge.cpu(), bridge.rss_kb()
        result = await run_load(sim, bridge.url, bridge.headers, calls, seconds)
        cpu, rss = bridge.cpu() - cpu0, bridge.rss_kb() - rss0
    finally:
        await stop(bridge)
    direct_p99, bridge_p99 = pct(direct.audio_ms, 0.99), pct(result.audio_ms, 0.99)
    lost = result.dropped_frames + len(result.errors)
    return {
        "calls": calls,
        "direct_p99_ms": direct_p99, "bridge_p50_ms": pct(result.audio_ms, 0.5), "bridge_p99_ms": bridge_p99,
        "added_p99_ms": bridge_p99 - direct_p99,
        "dropped": result.dropped_frames, "errors": result.errors[:3],
        "cpu_s_per_call_minute": cpu / result.call_minutes if result.call_minutes else float("nan"),
        "bridge_cpu": cpu / result.seconds if result.seconds else float("nan"),  # cores the bridge used
        "load_cpu": load_cpu,
        "kb_per_call": max(0, rss) / calls,
        "passed": bridge_p99 - direct_p99 < BUDGET_MS and lost == 0,
    }


async def run(steps: tuple[int, ...], seconds: float, mode: str | None) -> dict[str, Any]:
    pin_load_process()
    rows: list[dict[str, Any]] = []
    with workdir() as wd:
        async with StampedSimulator() as sim:
            for n in steps:
                row = await step(sim, wd, mode, n, seconds)
                rows.append(row)
                if not row["passed"]:
                    break
    passing = [r for r in rows if r["passed"]]
    best = passing[-1] if passing else None
    return {
        "mode": mode or "no pack",
        "budget_ms": BUDGET_MS,
        "max_calls": best["calls"] if best else 0,
        "cpu_s_per_call_minute": best["cpu_s_per_call_minute"] if best else float("nan"),
        "kb_per_call": best["kb_per_call"] if best else float("nan"),
        "limited_by": limited_by(rows, len(passing) == len(rows)),
        "steps": rows,
    }


def limited_by(rows: list[dict[str, Any]], all_passed: bool) -> str:
    """What stopped the stepping: the steps ran out, the bridge, or the load generator's own core."""
    if all_passed:
        return "the steps tried (raise --steps)"
    last = rows[-1]
    if last["load_cpu"] > LOAD_SATURATED or last["direct_p99_ms"] > BUDGET_MS / 2:
        return (f"the load generator as much as the bridge at {last['calls']} calls (its core {last['load_cpu']:.0%} busy, "
                f"direct p99 {last['direct_p99_ms']:.0f} ms; the bridge's core {last['bridge_cpu']:.0%})")
    return f"the bridge at {last['calls']} calls (added p99 {last['added_p99_ms']:.0f} ms, {last['dropped']} dropped)"


def markdown(fig: dict[str, Any], seconds: float) -> str:
    cols = ["calls", "direct p99", "bridge p50", "bridge p99", "added p99", "dropped", "CPU s/call-min", "bridge cores",
            "load cores", "KB/call", "passed"]
    rows = [[r["calls"], r["direct_p99_ms"], r["bridge_p50_ms"], r["bridge_p99_ms"], r["added_p99_ms"], r["dropped"],
             r["cpu_s_per_call_minute"], r["bridge_cpu"], r["load_cpu"], r["kb_per_call"], "yes" if r["passed"] else "no"]
            for r in fig["steps"]]
    return (f"capacity ({fig['mode']}): {seconds:g} s per step, pass = added p99 < {fig['budget_ms']:g} ms and nothing lost; "
            f"max_calls {fig['max_calls']} ({fig['limited_by']})\n\n" + report.table(cols, rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hybrid-agent bench capacity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", default="observe", help="gate mode of the retail-banking pack, or 'none' for no pack")
    parser.add_argument("--steps", default=",".join(map(str, DEFAULT_STEPS)), help="comma separated call counts")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    try:
        steps = tuple(sorted({int(s) for s in args.steps.split(",") if s.strip()}))
    except ValueError:
        parser.error(f"--steps must be comma separated numbers, not {args.steps!r}")
    mode = None if args.mode == "none" else args.mode
    fig = asyncio.run(run(steps, args.seconds, mode))
    report.write("capacity", {"seconds": args.seconds, **fig}, markdown(fig, args.seconds), as_json=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

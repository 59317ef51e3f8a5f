"""``make soak``: one bridge process under paced calls for a long time, its resources sampled.

Waves of ``--calls`` paced phone-like calls (the load of ``bench relay`` and ``bench capacity``:
20 ms appends, an answer every 5 s) of ``--wave-seconds`` each run back to back through one
``hybrid-agent serve`` (observe mode, SQLite audit) for ``--minutes``.  After each wave, with no
call open, the bridge is read from ``/proc`` and ``/healthz``: resident memory, open file
descriptors (sockets included), threads, the calls and asyncio tasks the bridge still counts.  The first wave warms up
(imports, caches, the analyzer); every later reading is compared with the reading after it:

- RSS may grow at most ``--rss-growth-mb`` (default 32 MB) over the whole run;
- open descriptors come back to the warm-up's count (+2 of slack for the SQLite journal and a
  listening socket in flux); threads stay within the warm-up's count plus the policy gate's pool
  (``GATE_WORKERS``: its threads start lazily, as checks overlap);
- ``/healthz`` says 0 calls between waves (no leaked call registrations), and its event loop's
  tasks come back to the warm-up's count (+``TASK_SLACK``: the health request's own);
- no frame dropped, no call error.

    .venv/bin/python -m bench.soak [--minutes 30] [--calls 60] [--wave-seconds 60] [--json]

``--calls`` should be what ``hybrid-agent bench capacity`` measured on the same machine (the
default, 60, is what one core of the 2026-12-04 machine carried with room to spare).

Exit 1 when a bound is broken: a leak is a failure, not a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.loadgen import StampedSimulator, pct, run_load
from bench.middle import pin_load_process, start_bridge, stop, workdir
from hybrid_agent.server.runner import GATE_WORKERS

FD_SLACK = 2
TASK_SLACK = 2


def _reading(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_kb": int(fields["VmRSS"].split()[0]),
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


async def _health(url: str, headers: dict[str, str]) -> dict[str, int]:
    """What the bridge itself counts: calls registered, tasks on its event loop (-1: not reported)."""
    base = url.replace("ws://", "http://").split("/v1", 1)[0]
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
        body = (await http.get("/healthz")).json()
    return {"calls_open": int(body.get("calls", -1)), "tasks": int(body.get("tasks", -1))}


def _slope_mb_per_10_min(waves: list[dict[str, Any]]) -> float:
    """Least-squares RSS slope over the second half of the run: a leak keeps it up, settling brings it to 0."""
    half = waves[len(waves) // 2:]
    if len(half) < 2:
        return 0.0
    xs, ys = [w["at_s"] for w in half], [w["rss_kb"] / 1024 for w in half]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return round(600 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var, 2) if var else 0.0


async def soak(minutes: float, calls: int, wave_s: float, rss_growth_mb: float) -> dict[str, Any]:
    pin_load_process()
    waves: list[dict[str, Any]] = []
    deadline = time.monotonic() + minutes * 60
    with workdir() as wd:
        async with StampedSimulator() as sim:
            bridge = await start_bridge(sim.ws_url, "observe", wd)
            try:
                while True:
                    result = await run_load(sim, bridge.url, bridge.headers, calls, wave_s)
                    await asyncio.sleep(1.0)  # the calls' last records are written, their sockets closed
                    row = {
                        "wave": len(waves), "at_s": round(minutes * 60 - (deadline - time.monotonic()), 1),
                        **_reading(bridge.proc.pid), **await _health(bridge.url, bridge.headers),
                        "p99_ms": round(pct(result.audio_ms, 0.99), 2), "dropped": result.dropped_frames,
                        "errors": len(result.errors),
                    }
                    waves.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
                    if time.monotonic() + wave_s > deadline and len(waves) >= 2:
                        break
            finally:
                await stop(bridge)
    base, last = waves[0], waves[-1]
    later = waves[1:]
    problems = []
    growth_mb = (max(w["rss_kb"] for w in later) - base["rss_kb"]) / 1024
    if growth_mb > rss_growth_mb:
        problems.append(f"RSS grew {growth_mb:.1f} MB after the warm-up wave (bound {rss_growth_mb:g} MB)")
    if any(w["fds"] > base["fds"] + FD_SLACK for w in later):
        problems.append(f"open descriptors {base['fds']} -> {max(w['fds'] for w in later)}")
    if any(w["threads"] > base["threads"] + GATE_WORKERS for w in later):  # the gate's pool fills up lazily
        problems.append(f"threads {base['threads']} -> {max(w['threads'] for w in later)} (bound +{GATE_WORKERS})")
    if any(w["calls_open"] != 0 for w in waves):
        problems.append("calls still counted open between waves")
    if any(w["tasks"] < 0 or w["tasks"] > base["tasks"] + TASK_SLACK for w in later):
        problems.append(f"asyncio tasks {base['tasks']} -> {max(w['tasks'] for w in later)} (bound +{TASK_SLACK})")
    if any(w["dropped"] or w["errors"] for w in waves):
        problems.append("frames dropped or calls failed")
    return {
        "minutes": minutes, "calls": calls, "wave_seconds": wave_s, "waves": waves,
        "rss_growth_mb": round(growth_mb, 1), "rss_bound_mb": rss_growth_mb,
        "rss_late_slope_mb_per_10_min": _slope_mb_per_10_min(waves), "tasks": [base["tasks"], last["tasks"]],
        "fds": [base["fds"], last["fds"]], "threads": [base["threads"], last["threads"]],
        "problems": problems, "passed": not problems,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--calls", type=int, default=60, help="calls per wave: the capacity `bench capacity` measured here")
    ap.add_argument("--wave-seconds", type=float, default=60.0)
    ap.add_argument("--rss-growth-mb", type=float, default=32.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    res = asyncio.run(soak(args.minutes, args.calls, args.wave_seconds, args.rss_growth_mb))
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"soak: {len(res['waves'])} waves of {args.calls} calls x {args.wave_seconds:g} s over {args.minutes:g} min")
        print(f"  RSS growth after warm-up: {res['rss_growth_mb']} MB (bound {res['rss_bound_mb']:g} MB); "
              f"second half {res['rss_late_slope_mb_per_10_min']:+g} MB per 10 min; "
              f"fds {res['fds'][0]} -> {res['fds'][1]}; threads {res['threads'][0]} -> {res['threads'][1]}; "
              f"tasks {res['tasks'][0]} -> {res['tasks'][1]}")
        print("  PASSED" if res["passed"] else "  FAILED: " + "; ".join(res["problems"]))
    return 0 if res["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

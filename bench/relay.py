"""``hybrid-agent bench relay``: one workload direct, through a bare relay (the floor) and through the bridge.

The workload (``bench/loadgen.py``): N paced calls at once, each a caller sending a 20 ms frame every
20 ms and the simulator answering every utterance in real time.  The same workload, in the same run,
goes to the simulator directly, through ``bench/bare_relay.py`` and through ``hybrid-agent serve``
without a pack and with the retail-banking pack in observe, monitor and hold mode (one fresh
process each, pinned to core 0; the load and the simulator on the other cores).

Per path: the audio events' latency (caller frames in, model audio out) p50 / p99, the latency
the path adds to the direct one, dropped frames, the middle process's CPU-seconds per call-minute
and its ratio to the floor's, resident memory per call; and the throughput of one unpaced call
(model audio events per second, caller frames per second) as a ratio to direct.

    hybrid-agent bench relay [--calls 10] [--seconds 30] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect as ws_connect

from bench import report
from bench.loadgen import LoadResult, StampedSimulator, frames_b64, paced_scenario_yaml, pct, run_load
from bench.middle import Middle, direct_headers, pin_load_process, start_bare_relay, start_bridge, stop, workdir
from hybrid_agent.simulator.scenario import parse_scenario

PATHS = ("direct", "bare relay", "bridge", "bridge observe", "bridge monitor", "bridge hold")
#: measured on request only: the same bridge on a bare websockets server (bench/native_ws.py, asyncio's
#: loop), and serve on asyncio's own event loop instead of uvloop
EXTRA_PATHS = ("bridge native", "bridge native observe", "bridge asyncio", "bridge observe asyncio",
               "bridge observe no-telemetry", "bridge observe traced")
#: the telemetry paths (docs/observability.md): metrics and tracing both off; tracing on, OTLP over HTTP
#: to a receiver in the load process that takes and drops every export
TELEMETRY_ENV = {
    "no-telemetry": {"HYBRID_AGENT_METRICS": "0", "HYBRID_AGENT_OTEL_EXPORTER": "none"},
    "traced": {"HYBRID_AGENT_OTEL_EXPORTER": "otlp-http", "HYBRID_AGENT_OTEL_METRIC_INTERVAL_S": "5"},
}
BURST_REPLY = " ".join(["Your payment went through today."] * 3)  # 15 words, 6 s at 150 wpm: 60 deltas
BURST_REPLY_DELTAS = 60
BURST_FRAMES = 2000
BURST_DELTAS = 1800  # 30 answers


@dataclass
class BridgeOptions:
    """How the bridge paths' ``serve`` is started: extra arguments, environment, another checkout."""

    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    src: str | None = None


async def start_path(path: str, sim: StampedSimulator, wd: str, opts: BridgeOptions) -> Middle | None:
    if path == "direct":
        return None
    if path == "bare relay":
        return await start_bare_relay(sim.ws_url, wd)
    words = path.split()
    mode = next((w for w in words if w in ("observe", "monitor", "hold")), None)
    env = {**opts.env, **({"HYBRID_AGENT_EVENT_LOOP": "asyncio"} if "asyncio" in words else {})}
    for word, extra in TELEMETRY_ENV.items():
        if word in words:
            env.update(extra)
            if word == "traced":
                env["HYBRID_AGENT_OTEL_ENDPOINT"] = otlp_sink()
    return await start_bridge(sim.ws_url, mode, wd, args=opts.args, extra_env=env, src=opts.src, native="native" in words)


_OTLP_SINK: str | None = None


def otlp_sink() -> str:
    """A local OTLP/HTTP receiver (in this process, off the bridge's core) that answers 200 and drops the data."""
    global _OTLP_SINK
    if _OTLP_SINK is None:
        import http.server
        import threading

        class Sink(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        _OTLP_SINK = f"http://127.0.0.1:{server.server_address[1]}"
    return _OTLP_SINK


def endpoint(middle: Middle | None, sim: StampedSimulator) -> tuple[str, dict[str, str]]:
    if middle is None:
        return f"{sim.ws_url}/realtime?model=gpt-realtime", direct_headers(sim)
    return middle.url, middle.headers


async def burst(url: str, headers: dict[str, str], sim: StampedSimulator) -> dict[str, float]:
    """One unpaced call: answers back to back as fast as the path carries them, then caller frames as fast
    as it takes them.  Each answer is 6 s of audio, under hold mode's ``max_hold_ms`` (an answer arriving
    faster than real time is held whole until its text is checked), so every mode carries it."""
    out: dict[str, float] = {}
    async with ws_connect(url, additional_headers=headers, compression=None, max_size=2**24) as ws:
        await ws.send('{"type":"session.update","session":{"type":"realtime","audio":{"input":{"turn_detection":null}}}}')
        deltas, responses = 0, 0
        t0 = time.monotonic()
        await ws.send('{"type":"response.create"}')
        while deltas < BURST_DELTAS and responses < 4 * BURST_DELTAS // BURST_REPLY_DELTAS:
            message = await asyncio.wait_for(ws.recv(), 30)
            head = message[:200]
            if '"response.output_audio.delta"' in head:
                deltas += 1
            elif '"response.done"' in head:
                responses += 1
                if deltas < BURST_DELTAS:
                    await ws.send('{"type":"response.create"}')
        out["events_per_s"] = deltas / (time.monotonic() - t0)
        frames = frames_b64(BURST_FRAMES * 20, False)
        sim.reset()
        t0 = time.monotonic()
        for f in frames:
            await ws.send(f'{{"type":"input_audio_buffer.append","audio":"{f}"}}')
        while sim.appends < len(frames) and time.monotonic() - t0 < 60:
            await asyncio.sleep(0.002)
        out["frames_per_s"] = sim.appends / (time.monotonic() - t0)
    return out


async def measure_path(path: str, sim: StampedSimulator, fast_scenario: Any, wd: str, calls: int, seconds: float,
                       opts: BridgeOptions) -> dict[str, Any]:
    middle = await start_path(path, sim, wd, opts)
    try:
        url, headers = endpoint(middle, sim)
        await run_load(sim, url, headers, 1, 3.0)  # warm-up: imports, first connections, the gate's analyzer
        cpu0 = middle.cpu() if middle else 0.0
        rss0 = middle.rss_kb() if middle else 0
        peak = [rss0]

        async def sample() -> None:
            while middle is not None:
                peak[0] = max(peak[0], middle.rss_kb())
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample())
        result = await run_load(sim, url, headers, calls, seconds)
        sampler.cancel()
        cpu = (middle.cpu() - cpu0) if middle else 0.0
        paced = sim.scenario
        sim.scenario = fast_scenario  # the burst's call gets the unpaced answer
        try:
            thr = await burst(url, headers, sim)
        finally:
            sim.scenario = paced
    finally:
        if middle is not None:
            await stop(middle)
    return summarize(path, result, cpu, (peak[0] - rss0) / max(1, calls), thr)


def summarize(path: str, r: LoadResult, cpu_s: float, kb_per_call: float, thr: dict[str, float]) -> dict[str, Any]:
    lat = r.audio_ms
    return {
        "path": path,
        "calls": r.calls,
        "call_minutes": round(r.call_minutes, 3),
        "p50_ms": pct(lat, 0.50), "p99_ms": pct(lat, 0.99),
        "up_p50_ms": pct(r.up_ms, 0.50), "up_p99_ms": pct(r.up_ms, 0.99),
        "down_p50_ms": pct(r.down_ms, 0.50), "down_p99_ms": pct(r.down_ms, 0.99),
        "frames_sent": r.frames_sent, "frames_received": r.frames_received,
        "deltas_sent": r.deltas_sent, "deltas_received": r.deltas_received,
        "dropped": r.dropped_frames, "errors": r.errors[:5],
        "cpu_s": round(cpu_s, 3),
        "cpu_s_per_call_minute": cpu_s / r.call_minutes if r.call_minutes else float("nan"),
        "kb_per_call": round(kb_per_call, 1),
        "burst_events_per_s": thr["events_per_s"], "burst_frames_per_s": thr["frames_per_s"],
    }


def figures(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    direct, floor = rows["direct"], rows.get("bare relay")
    for row in rows.values():
        row["added_p50_ms"] = row["p50_ms"] - direct["p50_ms"]
        row["added_p99_ms"] = row["p99_ms"] - direct["p99_ms"]
        row["throughput_ratio"] = min(row["burst_events_per_s"] / direct["burst_events_per_s"],
                                      row["burst_frames_per_s"] / direct["burst_frames_per_s"])
        if row is direct:  # nothing in the middle: no CPU or memory of its own
            row["cpu_s_per_call_minute"] = row["kb_per_call"] = float("nan")
        elif floor is not None and floor["cpu_s_per_call_minute"]:
            row["cpu_ratio_vs_floor"] = row["cpu_s_per_call_minute"] / floor["cpu_s_per_call_minute"]
    head = rows.get("bridge observe") or rows.get("bridge") or next(iter(rows.values()))
    return {
        "direct_p50_ms": direct["p50_ms"], "direct_p99_ms": direct["p99_ms"],
        "bridge_p50_ms": head["p50_ms"], "bridge_p99_ms": head["p99_ms"],
        "added_p99_ms": head["added_p99_ms"], "throughput_ratio": head["throughput_ratio"],
        "cpu_ratio_vs_floor": head.get("cpu_ratio_vs_floor", float("nan")),
        "bridge_path": head["path"],
        "paths": list(rows.values()),
    }


def markdown(fig: dict[str, Any], calls: int, seconds: float) -> str:
    cols = ["path", "p50 ms", "p99 ms", "added p50", "added p99", "up p99", "down p99", "dropped", "CPU s/call-min",
            "x floor", "KB/call", "throughput x direct"]
    rows = [[r["path"], r["p50_ms"], r["p99_ms"], r["added_p50_ms"], r["added_p99_ms"], r["up_p99_ms"], r["down_p99_ms"],
             r["dropped"],
             r["cpu_s_per_call_minute"], r.get("cpu_ratio_vs_floor", float("nan")), r["kb_per_call"],
             r["throughput_ratio"]] for r in fig["paths"]]
    return (f"relay: {calls} paced calls x {seconds:g} s per path (20 ms caller frames, real-time 100 ms answers)\n\n"
            + report.table(cols, rows))


async def run(calls: int, seconds: float, paths: tuple[str, ...] = PATHS,
              opts: BridgeOptions | None = None) -> dict[str, Any]:
    pin_load_process()
    fast = parse_scenario(paced_scenario_yaml(0.0, BURST_REPLY), "burst")
    rows: dict[str, dict[str, Any]] = {}
    with workdir() as wd:
        async with StampedSimulator() as sim:
            for path in ("direct", *[p for p in paths if p != "direct"]):
                rows[path] = await measure_path(path, sim, fast, wd, calls, seconds, opts or BridgeOptions())
    return figures(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hybrid-agent bench relay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--paths", default=",".join(PATHS), help="comma separated, of: " + ", ".join(PATHS + EXTRA_PATHS))
    parser.add_argument("--bridge-src", help="run the bridge from another checkout (a before/after run of a change)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    paths = tuple(p.strip() for p in args.paths.split(",") if p.strip())
    unknown = [p for p in paths if p not in PATHS + EXTRA_PATHS]
    if unknown:
        parser.error(f"unknown path {unknown[0]!r}")
    fig = asyncio.run(run(args.calls, args.seconds, paths, BridgeOptions(src=args.bridge_src)))
    fig["bridge_src"] = args.bridge_src
    report.write("relay", {"calls": args.calls, "seconds": args.seconds, **fig}, markdown(fig, args.calls, args.seconds),
                 as_json=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

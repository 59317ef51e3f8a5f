"""``python -m bench.peers``: one paced call workload through our bridge, openai-agents and pipecat; CPU and latency.

Each "middle" sits between N callers and the same embedded simulator (the bench process, with the
simulator, pinned off core 0; each middle's process pinned to core 0):

- **ours**: ``hybrid-agent serve`` with the retail-banking pack in observe mode, its callers raw
  WebSockets from the load generator in the bench process (``bench/loadgen.py``);
- **openai-agents** / **pipecat**: the framework is the middle, so it runs in a child process of its
  own venv (``bench/peer_clients/``), in one of two workload shapes (``--shape``):

  - **socket** (the default): the child is the app those frameworks' telephony examples are (Twilio
    Media Streams, WebSocket bots): a WebSocket server the load generator's callers connect to exactly
    as they connect to ours, one framework session per caller, each caller frame received from the
    socket and sent to the simulator, each model audio chunk sent back (``peer_clients/front.py``).
    Every middle then pays the same two hops per frame and the load generator is outside every
    measured process: a peer's CPU is reported raw, and net = raw;
  - **feeder** (the earlier shape, kept so its numbers stay reproducible): N sessions connected
    straight to the simulator, each an app feeding it 20 ms PCM16 24 kHz frames in real time (1.2 s of
    speech every 5 s) and consuming its audio.  The app making the frames is inside a peer's process
    but outside ours, so each peer's venv also runs the **feeder baseline** (the same pacing loop making
    and dropping the same frames, no framework, same N); net = raw - feeder.  Only one hop per frame
    is the framework's here, against ours' two: this shape flatters the peers.

The ratios (ours / theirs) use net.

Latency is stamped into the audio itself, the same way on every path (the frameworks expose no event
ids): the caller's send time in the first 8 bytes of each frame, read by the simulator as the append
arrives; the simulator's send time in the first 8 bytes of each output chunk, read by the caller on
arrival (feeder shape: by the app, in process).  Added latency is over the same workload sent directly
to the simulator.

    python -m bench.peers [--calls 10] [--seconds 20] [--shape socket|feeder] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from bench import report
from bench.compat.run import VENVS
from bench.loadgen import FRAME_MS, AudioStampedSimulator, LoadResult, pct, run_audio_stamped_load
from bench.middle import (AUTH, MIDDLE_CORES, cpu_seconds, direct_headers, free_port, pin_load_process, rss_kb,
                          start_bridge, stop, workdir)
from bench.peer_clients.common import PREFIX, SPEECH
from hybrid_agent.simulator.synth import speech

CLIENTS = Path(__file__).resolve().parent / "peer_clients"
PEERS = {"openai-agents": "openai_agents_peer.py", "pipecat": "pipecat_peer.py"}
OURS = "ours"
WARMUP_S = 3.0
SHAPES = {
    "socket": ("socket-fronted: caller WebSocket -> app -> framework -> simulator, the shape of openai-agents' "
               "Twilio Media Streams example and pipecat's WebSocket telephony bots; each peer's app a plain "
               "`websockets` server the load generator's callers connect to as they connect to ours, one "
               "framework session per caller"),
    "feeder": ("in-process feeder: app-made caller frames -> framework -> simulator; each peer's app makes its "
               "callers' frames in the measured process (one socket hop per frame against ours' two)"),
}
CPU_BASIS = {
    "socket": ("CPU-seconds of the middle's process per call-minute. The load generator is outside every measured "
               "process, ours and the peers' alike, so nothing is subtracted: net = raw. Ratios are ours / theirs "
               "(0.5: we use half)."),
    "feeder": ("CPU-seconds of the middle's process per call-minute; a peer's net of its feeder baseline (the same "
               "app pacing loop making and dropping the same frames, no framework, same venv and N): net = raw - "
               "feeder. Ratios are ours / theirs on the net figures (0.5: we use half)."),
}


class Peak:
    """Resident memory at the start of a run and its peak (sampled every 0.5 s)."""

    def __init__(self, read: Callable[[], int]) -> None:
        self.read = read
        self.base = self.peak = read()

    def per_call(self, calls: int) -> float:
        return round((self.peak - self.base) / max(1, calls), 1)


@contextlib.asynccontextmanager
async def rss_peak(read: Callable[[], int]) -> AsyncIterator[Peak]:
    peak = Peak(read)

    async def sample() -> None:
        while True:
            with contextlib.suppress(OSError):
                peak.peak = max(peak.peak, read())
            await asyncio.sleep(0.5)

    task = asyncio.create_task(sample())
    try:
        yield peak
    finally:
        task.cancel()


def thread_cores(pid: int) -> list[int]:
    """The cores any thread of ``pid`` may run on."""
    cores: set[int] = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            cores |= os.sched_getaffinity(int(tid))
    return sorted(cores)


def pin(pid: int) -> None:
    """Core 0, as ``bench.middle`` pins the bridge (done as the child starts: no thread exists yet)."""
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(pid, MIDDLE_CORES)


def peer_python(name: str) -> Path:
    return VENVS / name / "bin" / "python"


async def measure_direct(sim: AudioStampedSimulator, calls: int, seconds: float) -> dict[str, Any]:
    url = f"{sim.ws_url}/realtime?model=gpt-realtime"
    await run_audio_stamped_load(sim, url, direct_headers(sim), 1, WARMUP_S)
    r = await run_audio_stamped_load(sim, url, direct_headers(sim), calls, seconds)
    return row("direct", r, float("nan"), float("nan"), {})


async def measure_ours(sim: AudioStampedSimulator, wd: str, calls: int, seconds: float) -> dict[str, Any]:
    middle = await start_bridge(sim.ws_url, "observe", wd)
    try:
        await run_audio_stamped_load(sim, middle.url, middle.headers, 1, WARMUP_S)  # imports, first connection
        cpu0 = middle.cpu()
        async with rss_peak(middle.rss_kb) as mem:
            r = await run_audio_stamped_load(sim, middle.url, middle.headers, calls, seconds)
        cpu = middle.cpu() - cpu0
        info = {"command": "hybrid-agent serve --policy policies/retail-banking --gate observe",
                "cores": thread_cores(middle.proc.pid)}
    finally:
        await stop(middle)
    return row(OURS, r, cpu, mem.per_call(calls), info)


async def _line(proc: asyncio.subprocess.Process, kind: str, timeout_s: float, log: Path) -> dict[str, Any]:
    assert proc.stdout is not None

    async def read() -> dict[str, Any]:
        while line := (await proc.stdout.readline()).decode(errors="replace"):  # type: ignore[union-attr]
            if line.startswith(PREFIX):
                doc = json.loads(line[len(PREFIX):])
                if doc.get("kind") == kind:
                    return doc
        raise RuntimeError(f"{log.stem} exited before its {kind!r} line: {log.read_text(errors='replace')[-2000:]}")

    return await asyncio.wait_for(read(), timeout_s)


async def _say(proc: asyncio.subprocess.Process, word: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(f"{word}\n".encode())
    await proc.stdin.drain()


@contextlib.asynccontextmanager
async def child(venv: str, script: str, sim: AudioStampedSimulator, log: Path,
                args: list[str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """``script`` in ``venv``'s python, pinned to the middle's core; ended by closing its stdin."""
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            str(peer_python(venv)), str(CLIENTS / script),
            "--url", f"{sim.ws_url}/realtime", "--api-key", sim.api_key or "sim", *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err)
    pin(proc.pid)
    assert proc.stdin is not None
    try:
        yield proc
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def measure_socket_peer(name: str, sim: AudioStampedSimulator, wd: str, calls: int,
                              seconds: float) -> dict[str, Any]:
    """Socket shape: the load generator's callers through the peer's app, as through ours.

    Each CPU reading follows a ``drain`` (every call closed, its session torn down), so they bracket whole
    calls; the app's stdin protocol is in ``peer_clients/front.py``."""
    log, port = Path(wd) / f"{name}.log", free_port()
    url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
    async with child(name, PEERS[name], sim, log, ["--listen", str(port)]) as proc:
        await _line(proc, "ready", 120, log)
        await run_audio_stamped_load(sim, url, AUTH, 1, WARMUP_S)  # imports, first connection
        await _say(proc, "drain")
        warm = await _line(proc, "drained", 60, log)
        cpu0 = cpu_seconds(proc.pid)
        async with rss_peak(lambda: rss_kb(proc.pid)) as mem:
            r = await run_audio_stamped_load(sim, url, AUTH, calls, seconds)
            await _say(proc, "drain")
            res = await _line(proc, "drained", 60, log)
        cpu = cpu_seconds(proc.pid) - cpu0
        cores = thread_cores(proc.pid)
    r.errors += warm["errors"][:2] + res["errors"]
    return row(name, r, cpu, mem.per_call(calls), {**res["info"], "cores": cores, "log_bytes": log.stat().st_size})


async def measure_child(name: str, venv: str, script: str, sim: AudioStampedSimulator, wd: str, calls: int,
                        seconds: float) -> dict[str, Any]:
    """Feeder shape: one child process in ``venv``, its own warm-up, then the measured run between two CPU readings."""
    log = Path(wd) / f"{name}.log"
    args = ["--calls", str(calls), "--seconds", str(seconds), "--warmup", str(WARMUP_S)]
    async with child(venv, script, sim, log, args) as proc:
        ready = await _line(proc, "ready", 120, log)
        sim.reset()
        cpu0 = cpu_seconds(proc.pid)
        async with rss_peak(lambda: rss_kb(proc.pid)) as mem:
            await _say(proc, "go")
            res = await _line(proc, "result", seconds + 120, log)
        cpu = cpu_seconds(proc.pid) - cpu0
        cores = thread_cores(proc.pid)
    r = LoadResult(calls=calls, seconds=seconds, call_minutes=res["call_minutes"], up_ms=list(sim.up_ms),
                   down_ms=res["down_ms"], frames_sent=res["frames_sent"], frames_received=sim.appends,
                   deltas_sent=sim.deltas_sent, deltas_received=res["chunks"], errors=ready["errors"][:2] + res["errors"])
    return row(name, r, cpu, mem.per_call(calls), {**res["info"], "cores": cores, "log_bytes": log.stat().st_size})


def row(middle: str, r: LoadResult, cpu_s: float, kb_per_call: float, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "middle": middle, "calls": r.calls, "call_minutes": round(r.call_minutes, 3), "cpu_s": round(cpu_s, 3),
        "cpu_s_per_call_minute": cpu_s / r.call_minutes if r.call_minutes else float("nan"),
        "up_p50_ms": pct(r.up_ms, 0.50), "up_p99_ms": pct(r.up_ms, 0.99),
        "down_p50_ms": pct(r.down_ms, 0.50), "down_p99_ms": pct(r.down_ms, 0.99),
        "p99_ms": pct(r.audio_ms, 0.99),
        "frames_sent": r.frames_sent, "frames_received": r.frames_received, "up_stamps": len(r.up_ms),
        "deltas_sent": r.deltas_sent, "deltas_received": r.deltas_received, "down_stamps": len(r.down_ms),
        "dropped": r.dropped_frames, "errors": r.errors[:5], "kb_per_call": kb_per_call, **info,
    }


def _key(name: str) -> str:
    return name.replace("-", "_")


def figures(rows: dict[str, dict[str, Any]], shape: str) -> dict[str, Any]:
    direct = rows["direct"]
    for r in rows.values():
        for k in ("up_p50_ms", "up_p99_ms", "down_p50_ms", "down_p99_ms", "p99_ms"):
            r[f"added_{k}"] = r[k] - direct[k]
    ours = rows[OURS]
    ours["net_cpu_s_per_call_minute"] = ours["cpu_s_per_call_minute"]
    fig: dict[str, Any] = {"shape": shape, "shape_text": SHAPES[shape],
                           "ours_cpu_s_per_call_minute": ours["cpu_s_per_call_minute"],
                           "ours_added_p99_ms": ours["added_p99_ms"]}
    for name in PEERS:
        peer = rows[name]
        raw = peer["cpu_s_per_call_minute"]
        if shape == "feeder":
            feeder = rows[f"{name} feeder"]["cpu_s_per_call_minute"]
            peer["feeder_cpu_s_per_call_minute"], peer["net_cpu_s_per_call_minute"] = feeder, raw - feeder
        else:  # the load generator is outside the peer's process, as outside ours: nothing to subtract
            peer["feeder_cpu_s_per_call_minute"], peer["net_cpu_s_per_call_minute"] = float("nan"), raw
        k = _key(name)
        fig[f"{k}_cpu_s_per_call_minute"] = peer["net_cpu_s_per_call_minute"]
        fig[f"{k}_raw_cpu_s_per_call_minute"] = peer["cpu_s_per_call_minute"]
        fig[f"{k}_feeder_cpu_s_per_call_minute"] = peer["feeder_cpu_s_per_call_minute"]
        fig[f"{k}_cpu_ratio"] = _ratio(ours["cpu_s_per_call_minute"], peer["net_cpu_s_per_call_minute"])
        fig[f"{k}_added_p99_ms"] = peer["added_p99_ms"]
        fig[f"{k}_added_p99_ratio"] = _ratio(ours["added_p99_ms"], peer["added_p99_ms"])
    fig["pipecat_pipeline"] = rows["pipecat"].get("pipeline", {})
    fig["cpu_basis"] = CPU_BASIS[shape]
    fig["latency_basis"] = ("send time stamped in the first 8 bytes of each 20 ms caller frame and each 100 ms model "
                            "audio chunk; added = the middle's p99 (up and down events together) - the direct run's")
    fig["middles"] = list(rows.values())
    return fig


def _ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs > 0 else float("nan")


def pipeline_text(shape: dict[str, Any]) -> str:
    if not shape:
        return "n/a"
    return (f"{shape['framework']}: PipelineWorker [{' -> '.join(shape['processors'])}], observers "
            f"{', '.join(shape['observers'])}; in {shape['audio_in_sample_rate']} Hz (no resampling), "
            f"out {shape['audio_out_sample_rate']} Hz; {shape['input_frame']}")


def markdown(fig: dict[str, Any], calls: int, seconds: float) -> str:
    rows = fig["middles"]
    direct = rows[0]
    cols = ["middle", "call-min", "CPU s", "CPU s/call-min raw", "feeder", "net", "added up p50", "added up p99",
            "added down p50", "added down p99", "added p99", "stamps up", "stamps down", "dropped", "KB/call"]
    body = [[r["middle"], r["call_minutes"], r["cpu_s"], r["cpu_s_per_call_minute"],
             r.get("feeder_cpu_s_per_call_minute", float("nan")), r.get("net_cpu_s_per_call_minute", float("nan")),
             r["added_up_p50_ms"], r["added_up_p99_ms"], r["added_down_p50_ms"], r["added_down_p99_ms"],
             r["added_p99_ms"], f"{r['up_stamps']}/{r['frames_received']}", f"{r['down_stamps']}/{r['deltas_received']}",
             r["dropped"], r["kb_per_call"]] for r in rows[1:] if not r["middle"].endswith("feeder")]
    ratios = "; ".join(f"{n}: CPU {fig[f'{_key(n)}_cpu_ratio']:.2f}, added p99 {fig[f'{_key(n)}_added_p99_ratio']:.2f}"
                       for n in PEERS)
    ext = ", ".join(f"{r['middle']} {'+'.join(r.get('ws_extensions') or ['none'])}" for r in rows if r["middle"] in PEERS)
    callers = ("; on the callers' sockets (the load generator offers none): none on every path"
               if fig["shape"] == "socket" else "")
    return (f"peers: {calls} paced calls x {seconds:g} s per middle (20 ms PCM16 24 kHz caller frames, 1.2 s of "
            f"speech per 5 s; real-time 100 ms answers), each middle's process on core 0\n\n"
            f"shape: {fig['shape_text']}\n\n"
            f"direct: up p50 {direct['up_p50_ms']:.2f} / p99 {direct['up_p99_ms']:.2f} ms, down p50 "
            f"{direct['down_p50_ms']:.2f} / p99 {direct['down_p99_ms']:.2f} ms\n\n"
            + report.table(cols, body)
            + f"\n\nours / theirs (0.5: we use half): {ratios}\n\n{fig['cpu_basis']}\n\n"
            f"pipecat pipeline measured: {pipeline_text(fig['pipecat_pipeline'])}\n\n"
            f"peer WebSocket extensions to the simulator (their defaults; ours: none): {ext}{callers}")


async def run(calls: int, seconds: float, shape: str) -> dict[str, Any]:
    if SPEECH != speech(FRAME_MS):
        raise RuntimeError("bench/peer_clients/common.py's caller frames are not the load generator's")
    pin_load_process()
    rows: dict[str, dict[str, Any]] = {}
    with workdir() as wd:
        async with AudioStampedSimulator() as sim:
            rows["direct"] = await measure_direct(sim, calls, seconds)
            rows[OURS] = await measure_ours(sim, wd, calls, seconds)
            for name, script in PEERS.items():
                if shape == "socket":
                    rows[name] = await measure_socket_peer(name, sim, wd, calls, seconds)
                    continue
                rows[f"{name} feeder"] = await measure_child(f"{name} feeder", name, "common.py", sim, wd, calls, seconds)
                rows[f"{name} feeder"]["dropped"] = None  # its frames go nowhere
                rows[name] = await measure_child(name, name, script, sim, wd, calls, seconds)
    return figures(rows, shape)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--shape", choices=tuple(SHAPES), default="socket",
                        help="socket: callers reach each peer's app over a WebSocket, as ours (default); "
                             "feeder: the app makes its callers' frames in process (the earlier shape)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    missing = [n for n in PEERS if not peer_python(n).exists()]
    if missing:
        print(f"bench.peers: no venv for {', '.join(missing)} under {VENVS}; build them with `make compat` or "
              f"`{sys.executable} -m bench.compat.run --venvs-only`", file=sys.stderr)
        return 2
    fig = asyncio.run(run(args.calls, args.seconds, args.shape))
    report.write("peers", {"calls": args.calls, "seconds": args.seconds, **fig}, markdown(fig, args.calls, args.seconds),
                 as_json=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

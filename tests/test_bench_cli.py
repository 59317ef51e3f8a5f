"""``hybrid-agent bench NAME --json`` through the real entry point (figures' names and shape, never timings)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid_agent.server import event_loop

ROOT = Path(__file__).resolve().parents[1]


def bench(*args: str, results: Path, timeout: float = 240) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYBRID_AGENT_")}
    env["HYBRID_AGENT_BENCH_RESULTS"] = str(results)  # not over the checkout's own bench/results
    run = subprocess.run([sys.executable, "-m", "hybrid_agent", "bench", *args, "--json"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (results / f"{args[0]}.json").is_file() and (results / f"{args[0]}.md").is_file()
    return json.loads(run.stdout)


def test_bench_relay_json_has_the_side_by_side_figures(tmp_path: Path) -> None:
    fig = bench("relay", "--calls", "2", "--seconds", "3", "--paths", "direct,bare relay,bridge observe", results=tmp_path)
    for key in ("direct_p50_ms", "direct_p99_ms", "bridge_p50_ms", "bridge_p99_ms", "added_p99_ms", "throughput_ratio",
                "cpu_ratio_vs_floor"):
        assert isinstance(fig[key], (int, float)) and math.isfinite(fig[key]), key
    assert [p["path"] for p in fig["paths"]] == ["direct", "bare relay", "bridge observe"]
    observe = fig["paths"][2]
    assert observe["dropped"] == 0 and observe["frames_sent"] == observe["frames_received"] > 0
    assert observe["deltas_received"] > 0 and observe["cpu_s_per_call_minute"] > 0
    assert fig["paths"][0]["cpu_s_per_call_minute"] is None  # nothing in the middle: null, not NaN, in JSON
    assert fig["machine"]["cpus"] >= 1


def test_bench_capacity_json_has_max_calls_and_cpu_per_call_minute(tmp_path: Path) -> None:
    fig = bench("capacity", "--steps", "2", "--seconds", "3", "--mode", "none", results=tmp_path)
    assert fig["max_calls"] in (0, 2) and len(fig["steps"]) == 1
    assert fig["steps"][0]["calls"] == 2 and fig["steps"][0]["dropped"] == 0
    if fig["max_calls"]:
        assert fig["cpu_s_per_call_minute"] > 0


def test_bench_rejects_an_unknown_name() -> None:
    run = subprocess.run([sys.executable, "-m", "hybrid_agent", "bench", "nope"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "invalid choice" in run.stderr


def test_event_loop_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert event_loop.loop_factory("asyncio") is None
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if not installed
    assert event_loop.loop_factory("auto") is None
    with pytest.raises(event_loop.EventLoopUnavailable, match="not installed"):
        event_loop.loop_factory("uvloop")


def test_event_loop_runs_on_uvloop_when_installed() -> None:
    import uvloop  # noqa: F401  (a dependency on Linux: a missing one fails here, never skips)

    async def which() -> str:
        import asyncio

        return type(asyncio.get_running_loop()).__module__

    assert event_loop.run(which(), "auto").startswith("uvloop")
    assert event_loop.run(which(), "asyncio").startswith("asyncio")

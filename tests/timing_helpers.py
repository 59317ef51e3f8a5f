"""Timing for the linear-time tests: the best of a few runs with the garbage collector paused.

Used for scaling ratios only (t(64k) / t(8k)), never as a wall-clock limit: latency figures belong
in ``bench/`` (``bench.pii_bench`` times the whole analyzer per utterance and per delta)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable


def best_time(fn: Callable[[str], object], text: str, runs: int = 3) -> float:
    best = float("inf")
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            fn(text)
            best = min(best, time.perf_counter() - t0)
    finally:
        if gc_was:
            gc.enable()
    return best

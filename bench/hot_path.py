"""The sans-I/O cost of the two audio events, per event, in-process (no sockets).

    python -m bench.hot_path [--json]          # this checkout
    PYTHONPATH=/tmp/before python -m bench.hot_path   # another checkout (a before/after of a change)

``CallSession.receive_client_frame`` on a 20 ms ``input_audio_buffer.append`` (the openai SDK's
shape, with an ``event_id``) and ``receive_upstream_frame`` on a 100 ms
``response.output_audio.delta`` (bytes, as the upstream socket hands them over), with no pack,
in observe and in monitor mode (the speech gate on, releasing at once).  The relay benchmark
shows what this is worth next to the sockets' own cost.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from pathlib import Path
from typing import Any

from hybrid_agent.session import CallConfig, CallSession, GateConfig

ROOT = Path(__file__).resolve().parents[1]
FRAMES = 20_000
DELTAS = 5_000
PER_RESPONSE = 50


def _session(mode: str | None) -> CallSession:
    gate = None
    if mode is not None:
        gate = GateConfig("retail-banking", "bench", mode, 6, {})
    s = CallSession(CallConfig(call_id="call_bench", gate=gate))
    s.start(0.0, time.time())
    return s


def client_us(mode: str | None) -> float:
    s = _session(mode)
    audio = base64.b64encode(b"\x01\x02" * 480).decode()  # 20 ms of PCM16 at 24 kHz
    frames = [json.dumps({"type": "input_audio_buffer.append", "event_id": f"event_{i}", "audio": audio}) for i in range(FRAMES)]
    t0 = time.perf_counter()
    for i, f in enumerate(frames):
        s.receive_client_frame(f, float(i * 20))
    return (time.perf_counter() - t0) / FRAMES * 1e6


def _response(n: int, k: int) -> tuple[list[bytes], list[bytes], list[bytes]]:
    rid, iid = f"resp_{k}", f"item_{k}"
    head = [json.dumps(e).encode() for e in (
        {"event_id": f"e{k}a", "type": "response.created", "response": {"id": rid, "object": "realtime.response", "status": "in_progress"}},
        {"event_id": f"e{k}b", "type": "response.output_item.added", "response_id": rid, "output_index": 0,
         "item": {"id": iid, "object": "realtime.item", "type": "message", "role": "assistant", "status": "in_progress", "content": []}},
    )]
    delta = base64.b64encode(b"\x01\x02" * 2400).decode()  # 100 ms
    body: list[bytes] = []
    words: list[bytes] = []
    for j in range(n):
        words.append(json.dumps({"event_id": f"e{k}w{j}", "type": "response.output_audio_transcript.delta", "response_id": rid,
                                 "item_id": iid, "output_index": 0, "content_index": 0, "delta": "word "}).encode())
        body.append(json.dumps({"event_id": f"e{k}d{j}", "type": "response.output_audio.delta", "response_id": rid,
                                "item_id": iid, "output_index": 0, "content_index": 0, "delta": delta}).encode())
    return head, words, body


def upstream_us(mode: str | None) -> float:
    s = _session(mode)
    spent = 0.0
    now = 0.0
    for k in range(DELTAS // PER_RESPONSE):
        head, words, body = _response(PER_RESPONSE, k)
        for h in head:
            s.receive_upstream_frame(h, now)
        for w, d in zip(words, body):
            now += 100
            s.receive_upstream_frame(w, now)
            t0 = time.perf_counter()
            s.receive_upstream_frame(d, now)
            spent += time.perf_counter() - t0
        s.receive_upstream_frame(json.dumps({"event_id": f"e{k}z", "type": "response.done", "response": {
            "id": f"resp_{k}", "object": "realtime.response", "status": "completed", "output": []}}).encode(), now)
    return spent / DELTAS * 1e6


def run() -> dict[str, Any]:
    rows = []
    for mode in (None, "observe", "monitor"):
        client_us(mode)  # warm-up
        rows.append({"mode": mode or "no pack", "append_us": round(min(client_us(mode) for _ in range(3)), 2),
                     "delta_us": round(min(upstream_us(mode) for _ in range(3)), 2)})
    return {"rows": rows}


def markdown(fig: dict[str, Any]) -> str:
    from bench import report

    return ("hot path: CallSession per event, in-process (20 ms append in, 100 ms audio delta out)\n\n"
            + report.table(["mode", "append µs", "delta µs"], [[r["mode"], r["append_us"], r["delta_us"]] for r in fig["rows"]]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hybrid-agent bench hot_path", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    fig = run()
    try:
        from bench import report
    except ImportError:  # run from another checkout's PYTHONPATH without this bench package: print only
        print(json.dumps(fig) if args.json else fig)
        return 0
    report.write("hot_path", fig, markdown(fig), as_json=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Policy benchmark: evaluation latency per event with the retail-banking pack (p50 / p99).

The event mix is the pack's own test inputs (every stage, every tool, matching and
non-matching) plus realistic assistant/user utterances of a few sentences with a
6-turn history.  Two figures per event:

- ``evaluate``: ``Pack.evaluate(PolicyInput)`` — what the session pays when it already
  holds a validated input;
- ``validate+evaluate``: from a plain dict (pydantic validation of the input included).

Target: p99 under 1 ms.

    .venv/bin/python -m bench.policy_bench [--rounds 200] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from pathlib import Path
from typing import Any

from hybrid_agent.policy import PolicyInput, load
from hybrid_agent.policy.loader import load_pack

PACK = Path(__file__).resolve().parents[1] / "policies" / "retail-banking"

HISTORY = [
    {"role": "user", "text": "Hi, I'd like to check my balance and then move some money to my savings."},
    {"role": "assistant", "text": "Of course. Before I can do that I need to verify your identity. What's your date of birth?"},
    {"role": "user", "text": "It's the third of March, nineteen eighty-two."},
    {"role": "assistant", "text": "Thank you, you're verified. Your current account balance is 2,431.18 pounds."},
    {"role": "user", "text": "Great, please move five hundred pounds to savings."},
    {"role": "assistant", "text": "Just to confirm: five hundred pounds from current to savings, is that right?"},
]
SESSION = {"verification_level": "basic", "disclosures": ["recording_notice"], "elapsed_s": 95.0, "turns": 6, "user_turns": 3,
           "assistant_turns": 3, "tool_calls": 2, "channel": "phone"}
EXTRA: list[dict[str, Any]] = [
    {"stage": "assistant_text", "text": "Your transfer of 500 pounds to your savings account ending 4821 is complete. "
     "Your new current account balance is 1,931.18 pounds. Is there anything else I can help you with today?"},
    {"stage": "assistant_text", "text": "I can see three card payments yesterday: 12.50 at the coffee shop, 45.00 at the "
     "supermarket and 9.99 for a subscription."},
    {"stage": "user_text", "text": "No that's everything, thanks very much for your help, have a good day."},
    {"stage": "user_text", "text": "Actually my mother passed away last month and I need to sort out her account."},
    {"stage": "tool_call", "tool": "transfer_funds", "args": {"from_account": "cur-1", "to_account": "sav-1", "amount": 500.0,
                                                          "currency": "GBP", "reference": "savings"}, "confirmed": True},
    {"stage": "tool_result", "tool": "get_balance", "args": {"account_id": "cur-1"}, "text": '{"balance": 2431.18}',
     "result": {"balance": 2431.18}},
]


def events() -> list[dict[str, Any]]:
    out = []
    for _, _, case in load(PACK).tests:
        out.append(case.input.model_dump(mode="json"))
    for e in EXTRA:
        out.append({"session": SESSION, "history": HISTORY, **e})
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run(rounds: int) -> dict[str, Any]:
    pack = load_pack(PACK)
    raw = events()
    validated = [PolicyInput.model_validate(e) for e in raw]
    for inp in validated * 20:  # warm-up
        pack.evaluate(inp)
    results: dict[str, Any] = {"pack": pack.name, "pack_version": pack.version, "rules": len(pack.rules), "events": len(raw) * rounds}
    gc.collect()
    gc.disable()
    try:
        for label, fn, items in (
            ("evaluate", pack.evaluate, validated),
            ("validate+evaluate", lambda d: pack.evaluate(PolicyInput.model_validate(d)), raw),
        ):
            lat: list[float] = []
            clock = time.perf_counter_ns
            for _ in range(rounds):
                for item in items:
                    t0 = clock()
                    fn(item)
                    lat.append((clock() - t0) / 1000.0)
            results[label] = {
                "p50_us": round(pct(lat, 50), 1), "p90_us": round(pct(lat, 90), 1), "p99_us": round(pct(lat, 99), 1),
                "max_us": round(max(lat), 1), "mean_us": round(statistics.fmean(lat), 1),
            }
    finally:
        gc.enable()
    by_stage: dict[str, list[float]] = {}
    for inp in validated:
        lat = []
        for _ in range(max(20, rounds // 4)):
            t0 = time.perf_counter_ns()
            pack.evaluate(inp)
            lat.append((time.perf_counter_ns() - t0) / 1000.0)
        by_stage.setdefault(inp.stage, []).extend(lat)
    results["by_stage_p99_us"] = {k: round(pct(v, 99), 1) for k, v in sorted(by_stage.items())}
    results["target_p99_us"] = 1000.0
    results["ok"] = results["validate+evaluate"]["p99_us"] < 1000.0
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = run(args.rounds)
    if args.json:
        print(json.dumps(r, indent=2))
        return
    print(f"policy pack {r['pack']} ({r['rules']} rules, version {r['pack_version']}), {r['events']} events per figure")
    for label in ("evaluate", "validate+evaluate"):
        s = r[label]
        print(f"  {label:<18} p50 {s['p50_us']:7.1f} us   p90 {s['p90_us']:7.1f} us   p99 {s['p99_us']:7.1f} us   max {s['max_us']:8.1f} us")
    print("  p99 by stage (evaluate): " + ", ".join(f"{k} {v:.1f} us" for k, v in r["by_stage_p99_us"].items()))
    print(f"  target p99 < 1 ms: {'ok' if r['ok'] else 'MISSED'}")


if __name__ == "__main__":
    main()

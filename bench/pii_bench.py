"""PII gate benchmark: precision/recall per entity type and form on the labeled corpus,
and latency p50/p99 per utterance and per streaming delta.

    .venv/bin/python -m bench.pii_bench [--corpus tests/data/pii_corpus.jsonl] [--rounds 20] [--errors] [--json]

Latency: every corpus utterance is analyzed ``--rounds`` times (after a warm-up pass);
"per 20-word utterance" is the subset with 15 to 25 words.  Streaming: each utterance
is split into deltas of 1 to 4 words (fixed seed) and fed to a fresh
``StreamingScanner``; the time of each ``feed`` is one sample.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from hybrid_agent.pii import StreamingScanner, get_analyzer
from hybrid_agent.pii.evaluate import evaluate, load_corpus

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "pii_corpus.jsonl"
TARGET_TYPES = ("CREDIT_CARD", "US_SSN", "US_BANK_NUMBER")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def split_deltas(text: str, rng: random.Random) -> list[str]:
    words = text.split(" ")
    out, i = [], 0
    while i < len(words):
        k = rng.randint(1, 4)
        chunk = " ".join(words[i : i + k])
        out.append(chunk if i == 0 else " " + chunk)
        i += k
    return out


def run(corpus: Path, rounds: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    analyzer = get_analyzer()
    build_s = time.perf_counter() - t0
    rows = load_corpus(corpus)
    report = evaluate(analyzer, rows)  # also the warm-up pass

    quality = {}
    for t in report.types():
        for form in ("written", "spoken", None):
            c = report.counts(t, form)
            if c.tp + c.fn + c.fp == 0:
                continue
            quality[f"{t}/{form or 'all'}"] = {
                "precision": round(c.precision, 4), "recall": round(c.recall, 4),
                "tp": c.tp, "fp": c.fp, "fn": c.fn, "leaks": c.leaks,
            }

    overall = {}
    for form in ("written", "spoken", None):
        c = report.total(form)
        overall[form or "all"] = {"precision": round(c.precision, 4), "recall": round(c.recall, 4),
                                  "tp": c.tp, "fp": c.fp, "fn": c.fn, "leaks": c.leaks}
    negatives = {"utterances": report.negatives, "flagged": report.negatives_flagged,
                 "flagged_per_100": round(100 * report.negatives_flagged / report.negatives, 2) if report.negatives else 0.0}

    per_utt: list[float] = []
    per_20w: list[float] = []
    for _ in range(rounds):
        for row in rows:
            text = row["text"]
            s = time.perf_counter()
            analyzer.analyze(text)
            dt = (time.perf_counter() - s) * 1000
            per_utt.append(dt)
            if 15 <= len(text.split()) <= 25:
                per_20w.append(dt)
    # synthetic 20-word utterances: two corpus utterances joined, trimmed to 20 words
    rng = random.Random(7)
    for _ in range(rounds * 50):
        a, b = rng.sample(rows, 2)
        text = " ".join((a["text"] + " and " + b["text"]).split()[:20])
        s = time.perf_counter()
        analyzer.analyze(text)
        per_20w.append((time.perf_counter() - s) * 1000)

    per_delta: list[float] = []
    rng = random.Random(11)
    for _ in range(max(1, rounds // 4)):
        for row in rows:
            sc = StreamingScanner(analyzer)
            for d in split_deltas(row["text"], rng):
                s = time.perf_counter()
                sc.feed(d)
                per_delta.append((time.perf_counter() - s) * 1000)
            sc.finish()

    def lat(xs: list[float]) -> dict[str, float]:
        return {"n": len(xs), "p50_ms": round(pct(xs, 0.5), 3), "p99_ms": round(pct(xs, 0.99), 3),
                "mean_ms": round(statistics.fmean(xs), 3), "max_ms": round(max(xs), 3)}

    return {
        "corpus": str(corpus),
        "utterances": len(rows),
        "gold_entities": sum(len(r["entities"]) for r in rows),
        "analyzer_build_s": round(build_s, 3),
        "ner_model": analyzer.spacy_model,
        "quality": quality,
        "overall": overall,
        "negatives": negatives,
        "latency": {"per_utterance": lat(per_utt), "per_20_word_utterance": lat(per_20w), "per_delta": lat(per_delta)},
        "errors": report.errors,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--errors", action="store_true", help="list false positives and negatives")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    res = run(args.corpus, args.rounds)
    if args.json:
        if not args.errors:
            res.pop("errors")
        print(json.dumps(res, indent=2))
        return 0
    print(f"corpus {res['corpus']}: {res['utterances']} utterances, {res['gold_entities']} labeled entities; "
          f"analyzer built in {res['analyzer_build_s']} s (NER model: {res['ner_model'] or 'none'})")
    print(f"{'type/form':34} {'precision':>9} {'recall':>7} {'tp':>4} {'fp':>4} {'fn':>4} {'leaks':>5}")
    for k, q in res["quality"].items():
        mark = " *" if k.split("/")[0] in TARGET_TYPES and not k.endswith("/all") else ""
        print(f"{k:34} {q['precision']:9.3f} {q['recall']:7.3f} {q['tp']:4} {q['fp']:4} {q['fn']:4} {q['leaks']:5}{mark}")
    print("(* target: recall >= 0.97, precision >= 0.95)")
    for k, q in res["overall"].items():
        print(f"{'ALL/' + k:34} {q['precision']:9.3f} {q['recall']:7.3f} {q['tp']:4} {q['fp']:4} {q['fn']:4} {q['leaks']:5}")
    n = res["negatives"]
    print(f"negatives: {n['flagged']} of {n['utterances']} negative utterances flagged ({n['flagged_per_100']} per 100)")
    for name, l in res["latency"].items():
        print(f"latency {name:22} n={l['n']:6}  p50 {l['p50_ms']:.3f} ms  p99 {l['p99_ms']:.3f} ms  max {l['max_ms']:.3f} ms")
    if args.errors:
        for e in res["errors"]:
            print(f"{e['kind']} {e['type']:18} {e['span']!r}  <<  {e['text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

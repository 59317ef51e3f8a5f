"""Scoring the analyzer against a labeled corpus (used by ``bench/pii_bench.py`` and the tests).

Corpus lines (JSONL): ``{"id", "form": "written"|"spoken", "text", "entities": [{"type", "start", "end", "form"}]}``.

Matching: a found entity is a true positive when it has the gold type and overlaps the
gold span (each gold entity matches at most once); every other found entity is a false
positive; every unmatched gold entity a false negative.  ``leaks`` counts gold entities
whose letters and digits are not all covered by *some* found span (of any type): what a
redaction would have let through.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybrid_agent.pii.analyzer import PiiAnalyzer, PiiEntity


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    leaks: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass
class Report:
    by_type: dict[tuple[str, str], Counts] = field(default_factory=lambda: defaultdict(Counts))
    errors: list[dict[str, Any]] = field(default_factory=list)
    utterances: int = 0
    negatives: int = 0  # utterances with no labeled entity
    negatives_flagged: int = 0  # ... of which the analyzer flagged something

    def counts(self, entity_type: str, form: str | None = None) -> Counts:
        total = Counts()
        for (t, f), c in self.by_type.items():
            if t == entity_type and (form is None or f == form):
                total.tp += c.tp
                total.fp += c.fp
                total.fn += c.fn
                total.leaks += c.leaks
        return total

    def total(self, form: str | None = None) -> Counts:
        """All types together (per form, or both)."""
        total = Counts()
        for (_t, f), c in self.by_type.items():
            if form is None or f == form:
                total.tp += c.tp
                total.fp += c.fp
                total.fn += c.fn
                total.leaks += c.leaks
        return total

    def types(self) -> list[str]:
        return sorted({t for t, _ in self.by_type})


def load_corpus(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _covered(text: str, start: int, end: int, found: Iterable[PiiEntity]) -> bool:
    spans = [(e.start, e.end) for e in found]
    return all(any(s <= i < e for s, e in spans) for i in range(start, end) if text[i].isalnum())


def score_one(report: Report, row: dict[str, Any], found: list[PiiEntity]) -> None:
    report.utterances += 1
    text, form = row["text"], row["form"]
    if not row["entities"]:
        report.negatives += 1
        report.negatives_flagged += bool(found)
    matched: set[int] = set()
    for g in row["entities"]:
        hit = None
        for i, e in enumerate(found):
            if i not in matched and e.type == g["type"] and e.start < g["end"] and g["start"] < e.end:
                hit = i
                break
        c = report.by_type[(g["type"], g.get("form", form))]
        if hit is None:
            c.fn += 1
            report.errors.append({"id": row["id"], "kind": "FN", "type": g["type"], "text": text, "span": text[g["start"] : g["end"]]})
        else:
            matched.add(hit)
            c.tp += 1
        if not _covered(text, g["start"], g["end"], found):
            c.leaks += 1
    for i, e in enumerate(found):
        if i not in matched:
            report.by_type[(e.type, form)].fp += 1
            report.errors.append({"id": row["id"], "kind": "FP", "type": e.type, "text": text, "span": text[e.start : e.end]})


def evaluate(analyzer: PiiAnalyzer, rows: list[dict[str, Any]]) -> Report:
    report = Report()
    for row in rows:
        score_one(report, row, analyzer.analyze(row["text"]))
    return report

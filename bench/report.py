"""Where a benchmark's figures go: ``bench/results/NAME.json`` and ``NAME.md``, and the terminal.

Each run writes its JSON (the figures and the machine they were measured on) and the same
figures as a markdown table, so ``docs/performance.md`` can quote one run's table as it is.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

#: where the figures go (HYBRID_AGENT_BENCH_RESULTS: elsewhere, e.g. a test's temporary folder)
RESULTS = Path(os.environ.get("HYBRID_AGENT_BENCH_RESULTS") or Path(__file__).resolve().parent / "results")


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "n/a" if v != v else f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    """NaN (a figure that does not apply) as JSON null: strict JSON readers refuse NaN."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write(name: str, figures: dict[str, Any], markdown: str, *, as_json: bool, out_dir: Path | None = None) -> None:
    """Save both forms; print the JSON (``--json``) or the table."""
    out = out_dir or RESULTS
    out.mkdir(parents=True, exist_ok=True)
    doc = _plain({"benchmark": name, "machine": machine(), **figures})
    (out / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown + "\n")
    if as_json:
        json.dump(doc, sys.stdout, indent=2)
        print()
    else:
        print(markdown)
        print(f"\n(written to {out / name}.json and .md)")

"""Helpers the audit tests share: write records through a real writer, run the CLI in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hybrid_agent.audit.writer import AuditWriter
from hybrid_agent.cli import main


async def record(db_url: str, records: list[Any], tmp_path: Path, *, pseudonym_key: str = "k", **kw: Any) -> AuditWriter:
    """Write ``records`` through an ``AuditWriter`` and close it; none may have gone to the spool."""
    writer = AuditWriter(db_url, spool_path=tmp_path / "w.spool", pseudonym_key=pseudonym_key, **kw)
    await writer.start()
    for r in records:
        writer.enqueue(r)
    await writer.close()
    assert writer.stats["spooled"] == 0, writer.stats
    return writer


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    rc, out, err = cli(capsys, *argv, "--json")
    assert rc == 0, err
    return json.loads(out)

"""Append-only local spool for audit rows the database could not take.

One JSON object per line: ``{"sha256": ..., "t": table, "r": row}``, where
``sha256`` is the hash of the row's canonical encoding (the same value the ledger
stores as ``record_hash``).  Every append is flushed and ``fsync``'d before the
writer reports the rows durable.  Rows are spooled after pseudonymization and
redaction, so the spool holds no more personal data than the database would.

Replay reads the file in order, in batches, in constant memory.  A line that does
not parse or whose checksum does not match (a torn write, disk corruption) is
moved to ``<spool>.quarantine`` with the reason and logged; the rest replay.  The
spool is truncated only after every line landed, and the store skips rows it
already has, so a replay interrupted halfway is simply run again.

One spool file belongs to one writer process.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from hybrid_agent.audit.encoding import Row, canonical, record_hash
from hybrid_agent.audit.models import TABLES

log = logging.getLogger(__name__)

Item = tuple[str, Row]


class Spool:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.quarantine_path = self.path.with_name(self.path.name + ".quarantine")
        self.quarantined = 0
        self._checked = 0  # leading bytes of the spool already swept (whole, valid lines) ...
        self._checked_lines = 0  # ... and how many lines they hold (line numbers stay the file's own)

    # ------------------------------------------------------------------ writing
    def append(self, items: Sequence[Item]) -> None:
        """Append rows durably (write, flush, fsync).

        A torn last line (a crash mid-append) is quarantined first, so the new lines
        start on a line of their own instead of being glued onto the fragment.
        """
        if not items:
            return
        data = "".join(self._line(table, row) for table, row in items).encode("utf-8")
        self.repair_tail()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:  # os.write may write less than asked
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)

    def repair_tail(self) -> bool:
        """If the spool does not end in a newline, move the torn last line to the quarantine
        file and truncate it away.  Returns True if there was one."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return False
        if size == 0:
            return False
        with open(self.path, "r+b") as f:
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return False
            # find the start of the torn line: the byte after the last newline
            pos, start = size, 0
            while pos > 0:
                step = min(65536, pos)
                f.seek(pos - step)
                chunk = f.read(step)
                nl = chunk.rfind(b"\n")
                if nl >= 0:
                    start = pos - step + nl + 1
                    break
                pos -= step
            f.seek(start)
            torn = f.read()
            self._quarantine_lines([(None, torn, "truncated line (no newline: torn write)")])
            f.truncate(start)
            f.flush()
            os.fsync(f.fileno())
        self.quarantined += 1
        return True

    def _quarantine_lines(self, bad: Sequence[tuple[int | None, bytes, str]]) -> None:
        with open(self.quarantine_path, "a", encoding="utf-8") as q:
            for n, line, reason in bad:
                q.write(json.dumps({"at": time.time(), "spool": str(self.path), "line_no": n, "reason": reason,
                                    "line": line.decode("utf-8", "replace")}) + "\n")
                log.error("audit spool %s line %s is corrupt (%s): moved to %s", self.path, n if n is not None else "(last)",
                          reason, self.quarantine_path)
            q.flush()
            os.fsync(q.fileno())

    @staticmethod
    def _line(table: str, row: Row) -> str:
        return json.dumps({"sha256": record_hash(canonical(table, row)), "t": table, "r": row}, ensure_ascii=False, allow_nan=False) + "\n"

    # ------------------------------------------------------------------ reading
    def pending(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def count(self) -> int:
        if not self.pending():
            return 0
        with open(self.path, "rb") as f:
            return sum(1 for _ in f)

    @staticmethod
    def parse(line: bytes) -> Item:
        """One spool line -> (table, row); ``ValueError`` with a reason if it is corrupt."""
        if not line.endswith(b"\n"):
            raise ValueError("truncated line (no newline: torn write)")
        try:
            obj = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("r"), dict) or obj.get("t") not in TABLES:
            raise ValueError("not a spool record")
        table, row = obj["t"], obj["r"]
        if not isinstance(row.get("id"), str):
            raise ValueError("record has no id")
        if record_hash(canonical(table, row)) != obj.get("sha256"):
            raise ValueError("checksum mismatch")
        return table, row

    def _sweep(self) -> int:
        """Move corrupt lines to the quarantine file; returns how many were moved.

        Only the lines appended since the last sweep are checked (``_checked`` bytes are known
        good): the writer retries a replay every few seconds through a database outage, and
        re-hashing a spool of thousands of lines each time held the GIL for tens of milliseconds.
        """
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            self._checked = self._checked_lines = 0
            return 0
        if size < self._checked:  # rewritten behind our back: check it all again
            self._checked = self._checked_lines = 0
        bad: list[tuple[int, bytes, str]] = []
        pos, lines = self._checked, self._checked_lines
        with open(self.path, "rb") as f:
            f.seek(pos)
            for n, line in enumerate(f, lines + 1):
                try:
                    self.parse(line)
                except ValueError as exc:
                    bad.append((n, line, str(exc)))
                pos += len(line)
                lines = n
        if not bad:
            self._checked, self._checked_lines = pos, lines
            return 0
        self._quarantine_lines(bad)
        bad_lines = {n for n, _, _ in bad}
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(self.path, "rb") as src, open(tmp, "wb") as dst:
            dst.write(src.read(self._checked))
            for n, line in enumerate(src, self._checked_lines + 1):
                if n not in bad_lines:
                    dst.write(line)
            dst.flush()
            os.fsync(dst.fileno())
            self._checked, self._checked_lines = dst.tell(), lines - len(bad)
        os.replace(tmp, self.path)
        self.quarantined += len(bad)
        return len(bad)

    def batches(self, size: int) -> Iterator[list[Item]]:
        batch: list[Item] = []
        with open(self.path, "rb") as f:
            for line in f:
                batch.append(self.parse(line))
                if len(batch) >= size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def replay(self, write: Callable[[list[Item]], Any], batch_size: int = 500) -> int:
        """Write every spooled row, in order, through ``write``; then empty the spool.

        ``write`` raising leaves the spool as it is (replay again later).  Returns rows replayed.
        """
        if not self.pending():
            return 0
        self._sweep()
        n = 0
        for batch in self.batches(batch_size):
            write(batch)
            n += len(batch)
        self.clear()
        return n

    def clear(self) -> None:
        with open(self.path, "r+b") as f:
            f.truncate(0)
            f.flush()
            os.fsync(f.fileno())
        self._checked = self._checked_lines = 0

    def quarantine(self, item: Item, reason: str) -> None:
        """Set aside a row the database refuses (not a connectivity problem), so the rest can land."""
        table, row = item
        with open(self.quarantine_path, "a", encoding="utf-8") as q:
            q.write(json.dumps({"at": time.time(), "reason": reason, "t": table, "r": row}, ensure_ascii=False) + "\n")
            q.flush()
            os.fsync(q.fileno())
        self.quarantined += 1
        log.error("audit row %s/%s rejected by the database (%s): moved to %s", table, row.get("id"), reason, self.quarantine_path)

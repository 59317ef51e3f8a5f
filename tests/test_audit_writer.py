"""The batched writer and the spool: outages lose nothing, order is kept, replay is idempotent."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from hybrid_agent.audit.models import LEDGER
from hybrid_agent.audit.records import CallEnded, CallStarted, TurnRecord
from hybrid_agent.audit.spool import Spool
from hybrid_agent.audit.store import make_engine
from hybrid_agent.audit.writer import AuditWriter

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/test"  # nothing listens on port 1: a stopped server


def turns(call_id: str, start: int, stop: int) -> list[TurnRecord]:
    return [TurnRecord(call_id, i, "user" if i % 2 == 0 else "assistant", f"item{i}", f"turn {i}", "completed",
                       i * 1000.0, i * 1000.0 + 900, redacted=True) for i in range(start, stop)]


def ledger_ids(db_url: str) -> list[str]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        ids = list(conn.execute(select(LEDGER.c.row_id).order_by(LEDGER.c.seq)).scalars())
    engine.dispose()
    return ids


def outage() -> None:
    raise OperationalError("INSERT ...", {}, ConnectionError("server closed the connection unexpectedly"))


def writer_for(db_url: str, spool: Path, **kw: Any) -> AuditWriter:
    kw.setdefault("flush_interval_s", 0.02)
    kw.setdefault("retry_interval_s", 0.05)
    return AuditWriter(db_url, spool_path=spool, pseudonym_key="k", **kw)


async def test_outage_mid_call_spools_and_lands_in_order_once(db_url: str, tmp_path: Path) -> None:
    spool = tmp_path / "audit.spool"
    w = writer_for(db_url, spool, batch_size=4)
    await w.start()
    records = [CallStarted("c", 1.0e9, "twilio", "m", "sim"), *turns("c", 0, 10)]
    for r in records[:5]:
        w.enqueue(r)
    await w.flush()
    assert w.stats["written"] == 5 and not spool.exists() or spool.stat().st_size == 0

    w.fault_hook = outage  # the database goes away mid-call
    for r in records[5:9]:
        w.enqueue(r)
    await w.flush()
    assert not w.db_available and Spool(spool).count() == 4
    later = [*turns("c", 10, 13), CallEnded("c", 20_000.0, "completed")]
    for r in later:  # still down: queued behind the spool
        w.enqueue(r)
    await w.flush()
    assert Spool(spool).count() == 8

    w.fault_hook = None  # the database is back
    for r in records[9:]:
        w.enqueue(r)
    await w.close()
    expected = [r.record_id for r in records[:9]] + [r.record_id for r in later] + [r.record_id for r in records[9:]]
    assert ledger_ids(db_url) == expected
    assert Spool(spool).count() == 0 and w.stats["replayed"] >= 8


async def test_restart_replays_spool_idempotently(db_url: str, tmp_path: Path) -> None:
    spool = tmp_path / "audit.spool"
    down = writer_for(UNREACHABLE, spool)
    await down.start()  # unreachable is not fatal: it spools
    records = [CallStarted("r", 1.0e9, "web", "m", "sim"), *turns("r", 0, 6), CallEnded("r", 9_000.0, "completed")]
    for r in records:
        down.enqueue(r)
    await down.close()
    assert Spool(spool).count() == len(records)
    saved = spool.read_bytes()

    up = writer_for(db_url, spool)
    await up.start()  # process start: replay
    await up.close()
    assert ledger_ids(db_url) == [r.record_id for r in records]

    spool.write_bytes(saved + saved)  # a crash mid-replay leaves rows that already landed in the spool
    again = writer_for(db_url, spool)
    await again.start()
    await again.close()
    assert ledger_ids(db_url) == [r.record_id for r in records]
    assert Spool(spool).count() == 0


async def test_corrupt_spool_line_is_quarantined(db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool_path = tmp_path / "audit.spool"
    down = writer_for(UNREACHABLE, spool_path)
    await down.start()
    records = [CallStarted("q", 1.0e9, "web", "m", "sim"), *turns("q", 0, 4)]
    for r in records:
        down.enqueue(r)
    await down.close()
    lines = spool_path.read_bytes().splitlines(keepends=True)
    tampered = json.loads(lines[2])
    tampered["r"]["text"] = "bit rot"
    lines[2] = (json.dumps(tampered) + "\n").encode()
    lines[3] = b'{"sha256": "abc", "t": "tur\n'
    spool_path.write_bytes(b"".join(lines) + b'{"torn": ')  # and a torn last write

    up = writer_for(db_url, spool_path)
    await up.start()
    await up.close()
    ids = ledger_ids(db_url)
    assert ids == [records[0].record_id, records[1].record_id, records[4].record_id]
    quarantine = Spool(spool_path).quarantine_path.read_text().splitlines()
    reasons = [json.loads(q)["reason"] for q in quarantine]
    assert reasons == ["checksum mismatch", reasons[1], "truncated line (no newline: torn write)"] and len(reasons) == 3
    assert "corrupt" in caplog.text


def test_a_retried_replay_checks_only_the_lines_spooled_since_the_last(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Through a database outage the writer retries the replay every few seconds: the sweep must not
    re-hash the whole spool each time, and a corrupt line appended later is still caught, by its own number."""
    def calls(start: int, stop: int) -> list[tuple[str, dict[str, Any]]]:
        return [("calls", {"id": f"c{i}", "started_at": 1.0, "channel": "web", "model": "m", "upstream": "u",
                           "caller_pseudonym": None, "account_pseudonym": None, "policy_pack": None,
                           "policy_version": None, "gate_mode": None}) for i in range(start, stop)]

    spool = Spool(tmp_path / "audit.spool")
    spool.append(calls(0, 50))
    parsed: list[bytes] = []
    real_parse = Spool.parse
    monkeypatch.setattr(Spool, "parse", staticmethod(lambda line: (parsed.append(line), real_parse(line))[1]))

    def down(batch: list[Any]) -> None:
        outage()

    for _ in range(3):
        with pytest.raises(OperationalError):
            spool.replay(down, batch_size=10)
    assert len(parsed) == 50 + 3 * 10  # one sweep of the 50 lines, then each retry's first batch
    spool.append(calls(50, 52))
    with open(spool.path, "ab") as f:
        f.write(b'{"sha256": "abc", "t": "calls", "r": {"id": "x"}}\n')
    parsed.clear()
    with pytest.raises(OperationalError):
        spool.replay(down, batch_size=10)
    assert len(parsed) == 3 + 10
    bad = [json.loads(q) for q in spool.quarantine_path.read_text().splitlines()]
    assert [(b["line_no"], b["reason"]) for b in bad] == [(53, "checksum mismatch")]
    landed: list[str] = []
    spool.replay(lambda batch: landed.extend(row["id"] for _, row in batch), batch_size=10)
    assert len(landed) == 52 and spool.count() == 0


async def test_enqueue_never_blocks_and_overflow_spools(db_url: str, tmp_path: Path) -> None:
    spool = tmp_path / "audit.spool"
    w = writer_for(db_url, spool, batch_size=50, max_queue=200)
    await w.start()

    db_released = threading.Event()

    def stuck_db() -> None:  # the database hangs until the test lets it go
        db_released.wait(30)

    w.fault_hook = stuck_db
    records = [CallStarted("s", 1.0e9, "web", "m", "sim"), *turns("s", 0, 2000)]
    for r in records:  # would deadlock here if enqueue ever waited for the database
        w.enqueue(r)
    assert not db_released.is_set() and w.queued <= len(records)
    w.fault_hook = None
    db_released.set()
    await w.close()
    assert w.stats["spooled"] > 0  # the backlog went to disk instead of growing in memory
    assert ledger_ids(db_url) == [r.record_id for r in records]


async def test_schema_outdated_on_start(empty_db_url: str, tmp_path: Path) -> None:
    from hybrid_agent.audit.store import SchemaOutdated

    w = writer_for(empty_db_url, tmp_path / "s.spool")
    with pytest.raises(SchemaOutdated, match="run hybrid-agent db upgrade"):
        await w.start()


async def test_a_bad_object_does_not_take_its_batch_with_it(db_url: str, tmp_path: Path) -> None:
    w = writer_for(db_url, tmp_path / "b.spool")
    await w.start()
    good = [CallStarted("b", 1.0e9, "web", "m", "sim"), *turns("b", 0, 3)]
    w.enqueue(good[0])
    w.enqueue("not a record")  # type: ignore[arg-type]
    for r in good[1:]:
        w.enqueue(r)
    await w.close()
    assert ledger_ids(db_url) == [r.record_id for r in good]


async def test_one_spool_per_writer(db_url: str, tmp_path: Path) -> None:
    from hybrid_agent.audit.store import AuditStoreError

    first = writer_for(db_url, tmp_path / "shared.spool")
    await first.start()
    second = writer_for(db_url, tmp_path / "shared.spool")
    with pytest.raises(AuditStoreError, match="in use by another writer"):
        await second.start()
    await first.close()
    await second.start()  # free again once the first writer closed
    await second.close()

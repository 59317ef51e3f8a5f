"""Crash safety at scale (issue 15): ``serve`` SIGKILLed with ~30 calls mid-turn, on PostgreSQL.

A real ``hybrid-agent serve`` process takes the paced phone-like calls of the relay and capacity
benchmarks (``bench/loadgen.py``: a 20 ms frame every 20 ms, the simulator answering every utterance
in real time), with its own audit spool.  Mid-call it is frozen (SIGSTOP) and what it has
*acknowledged* is read: the rows committed in the database (the ledger) and the complete lines of
its spool (the writer fsyncs the spool before it reports records durable; a torn last line is not
acknowledged).  Then it is SIGKILLed, started again on the same database and the same spool, and
once ready:

- every acknowledged record is in the database exactly once, with the ledger ``record_hash`` it
  was acknowledged with (no loss, no duplicate, nothing changed by the replay);
- the spool is empty (or gone) and nothing was quarantined;
- every call open at the kill is closed in the audit with outcome ``interrupted``, calls that had
  ended before the kill keep their own outcome, and no call is left open;
- ``hybrid-agent audit verify --db URL`` (the real CLI) exits 0.

Twice: with the database up all along, and with the database made unreachable to the first
process mid-call (a TCP relay in front of PostgreSQL is cut), so that records are acknowledged into
the spool and the restarted process replays them.  A third test checks in-process what the closing
relies on: the calls the spool's previous owner listed open (``<spool>.calls``) are closed at once,
another bridge's live call on the same database is not, and a restart while the database is still
down keeps the list for the next start.

PostgreSQL: ``HYBRID_AGENT_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``); each
test makes a database of its own and drops it.  Unreachable PostgreSQL is a failure, never a skip.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the load generator lives in bench/, beside the package
    sys.path.insert(0, str(ROOT))

from bench.loadgen import CYCLE_MS, LoadResult, StampedSimulator, paced_call  # noqa: E402
from hybrid_agent.audit.spool import Spool  # noqa: E402

PG_BASE = os.environ.get("HYBRID_AGENT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
PACK = ROOT / "policies" / "retail-banking"  # observe mode: every turn's policy decisions are records too
TOKEN = "crash-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LONG_CALLS = 30  # in flight at the kill
SHORT_CALLS = 3  # hang up before the kill: their own outcome must survive the restart
SHORT_CALL_S = 2.0
KILL_AFTER_S = 8.0  # after the first caller connected: every caller has spoken at least once


# ---------------------------------------------------------------------------- PostgreSQL
def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(_psycopg_url(PG_BASE), autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


@pytest.fixture
def pg_db() -> Iterator[str]:
    """A fresh, upgraded audit database of its own on the shared server (dropped afterwards)."""
    from sqlalchemy.engine import make_url

    name = f"crash_{secrets.token_hex(6)}"
    try:
        _admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - a crash-safety test that silently skips proves nothing
        pytest.fail(f"PostgreSQL at {PG_BASE} is unreachable or refuses CREATE DATABASE: {exc}")
    url = make_url(_psycopg_url(PG_BASE)).set(database=name).render_as_string(hide_password=False)
    try:
        from hybrid_agent.audit.store import upgrade

        upgrade(url)  # what `hybrid-agent db upgrade --db URL` does
        yield url
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _query(url: str, *sql: str) -> Any:
    """The rows of each query, all read in one REPEATABLE READ snapshot; one query: its rows."""
    import psycopg

    with psycopg.connect(_psycopg_url(url), connect_timeout=5) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        results = [list(conn.execute(q).fetchall()) for q in sql]
    return results[0] if len(sql) == 1 else results


# ---------------------------------------------------------------------------- a database that goes away
class PgRelay:
    """A TCP relay to PostgreSQL that the test can cut: open connections are dropped and new ones
    closed at once (the server is gone, as far as the bridge can tell), while the test itself still
    reads the database directly."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.up = True
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> PgRelay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()

    def url(self, db_url: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(db_url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def cut(self) -> None:
        self.up = False
        for w in list(self._pipes):
            w.transport.abort()
        self._pipes.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._pipes.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, ConnectionError):
                pass
            finally:
                dst.transport.abort()
                self._pipes.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


# ---------------------------------------------------------------------------- the bridge process
@dataclass
class Serve:
    proc: subprocess.Popen[bytes]
    log: Path
    url: str = ""
    http: str = ""
    ready_s: float = 0.0  # Popen -> /readyz 200

    def output(self) -> str:
        return self.log.read_text(errors="replace")


async def start_serve(tmp: Path, db_url: str, spool: Path, upstream: str, name: str) -> Serve:
    env = {**os.environ, "HYBRID_AGENT_BRIDGE_TOKENS": TOKEN, "HYBRID_AGENT_AUDIT_SPOOL": str(spool),
           "HYBRID_AGENT_PSEUDONYM_KEY": "crash-pseudonym-key-0123456789", "HYBRID_AGENT_DRAIN_S": "0",
           "OPENAI_API_KEY": "sim"}
    env.pop("HYBRID_AGENT_DATABASE_URL", None)
    log = tmp / f"{name}.log"
    t0 = time.monotonic()
    with log.open("wb") as out:  # a file, not a pipe: a chatty bridge never blocks on a full pipe
        proc = subprocess.Popen([sys.executable, "-m", "hybrid_agent", "serve", "--host", "127.0.0.1", "--port", "0",
                                 "--upstream", upstream, "--db", db_url, "--policy", str(PACK), "--gate", "observe"], env=env, cwd=tmp, stdout=out,
                                stderr=subprocess.STDOUT)
    serve = Serve(proc, log)
    deadline = t0 + 60
    try:
        while not serve.url:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{name} did not start (exit {proc.poll()}):\n{serve.output()[-3000:]}")
            m = re.search(r"bridge listening on (ws://\S+)", serve.output())
            if m:
                serve.url = m.group(1) + "?model=gpt-realtime"
                serve.http = m.group(1).replace("ws://", "http://").split("/v1", 1)[0]
            else:
                await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=serve.http, headers=AUTH, timeout=5) as http:
            while (await http.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, f"{name} never became ready:\n{serve.output()[-3000:]}"
                await asyncio.sleep(0.05)
    except BaseException:
        kill(serve)
        raise
    serve.ready_s = time.monotonic() - t0
    return serve


def kill(serve: Serve | None) -> None:
    if serve is not None and serve.proc.poll() is None:
        serve.proc.kill()  # SIGKILL works on a stopped process too
        serve.proc.wait(10)


# ---------------------------------------------------------------------------- what was acknowledged
@dataclass
class Acknowledged:
    records: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, id) -> record_hash
    in_db: int = 0
    in_spool: int = 0  # complete spool lines
    spool_only: int = 0  # acknowledged only by the spool (not yet in the database)
    torn: bool = False
    calls: set[str] = field(default_factory=set)
    endings: dict[str, str] = field(default_factory=dict)  # call -> outcome

    @property
    def open_calls(self) -> set[str]:
        return self.calls - set(self.endings)


def snapshot(db_url: str, spool: Path) -> Acknowledged:
    """Read what the frozen bridge has acknowledged: committed ledger rows, complete spool lines."""
    ack = Acknowledged()
    ledger, calls, endings = _query(db_url, "SELECT table_name, row_id, record_hash FROM ledger ORDER BY seq",
                                    "SELECT id FROM calls", "SELECT call_id, outcome FROM call_endings")
    for table, row_id, h in ledger:
        assert (table, row_id) not in ack.records, f"{table}/{row_id} twice in the ledger before the kill"
        ack.records[(table, row_id)] = h
    ack.in_db = len(ack.records)
    ack.calls = {cid for (cid,) in calls}
    ack.endings = dict(endings)
    data = spool.read_bytes() if spool.exists() else b""
    lines = data.splitlines(keepends=True)
    if lines and not lines[-1].endswith(b"\n"):
        lines.pop()  # a torn last append: never reported durable
        ack.torn = True
    for line in lines:
        table, row = Spool.parse(line)  # a complete line that does not parse would be a writer bug
        h = json.loads(line)["sha256"]
        key = (table, row["id"])
        if key in ack.records:  # a replay that committed but had not yet truncated the spool
            assert ack.records[key] == h, f"{key}: spool and database disagree"
        else:
            ack.records[key] = h
            ack.spool_only += 1
        if table == "calls":
            ack.calls.add(row["id"])
        elif table == "call_endings":
            ack.endings[row["call_id"]] = row["outcome"]
    ack.in_spool = len(lines)
    return ack


# ---------------------------------------------------------------------------- the scenario
def _answering(sess: Any) -> bool:
    """The simulator is streaming an answer on this connection."""
    resp = getattr(sess, "response", None)
    return resp is not None and not getattr(resp, "finished", True)


async def crash_and_restart(tmp: Path, db_url: str, *, outage: bool) -> dict[str, Any]:
    spool = tmp / "audit.spool"
    first: Serve | None = None
    second: Serve | None = None
    callers: list[asyncio.Task[float]] = []
    async with contextlib.AsyncExitStack() as stack:
        sim = await stack.enter_async_context(StampedSimulator())
        bridge_db = db_url
        relay: PgRelay | None = None
        if outage:
            from sqlalchemy.engine import make_url

            u = make_url(db_url)
            relay = await stack.enter_async_context(PgRelay(u.host or "127.0.0.1", u.port or 5432))
            bridge_db = relay.url(db_url)  # the bridge reaches the database only through the relay
        try:
            first = await start_serve(tmp, bridge_db, spool, sim.ws_url, "first")
            load = LoadResult(calls=LONG_CALLS + SHORT_CALLS, seconds=0, call_minutes=0)
            open_ws: set[Any] = set()

            async def on_open(ws: Any) -> None:
                open_ws.add(ws)

            stagger = CYCLE_MS / 1000 / LONG_CALLS  # utterances spread over one cycle: always someone mid-turn
            callers = [asyncio.create_task(paced_call(first.url, AUTH, 120, i * stagger, load, on_open))
                       for i in range(LONG_CALLS)]
            callers += [asyncio.create_task(paced_call(first.url, AUTH, SHORT_CALL_S, 0.1 * i, load, on_open))
                        for i in range(SHORT_CALLS)]
            t_calls = time.monotonic()
            if outage:
                await asyncio.sleep(3.5)  # every call started, the first turns stored
                assert relay is not None
                relay.cut()
                await asyncio.sleep(KILL_AFTER_S - 3.5)  # what the calls record now is acknowledged into the spool
            else:
                await asyncio.sleep(KILL_AFTER_S)  # every caller has spoken at least once; answers are playing

            first.proc.send_signal(signal.SIGSTOP)
            t_stop = time.monotonic()
            in_flight = sum(1 for ws in open_ws if ws.state.name == "OPEN")
            # the simulator runs on: a call is mid-turn if its caller is speaking or its answer is streaming
            mid_turn = sum(1 for sess in list(sim.sessions) if not sess.closed and (
                _answering(sess) or getattr(sess, "_in_speech", False)))
            ack = snapshot(db_url, spool)
            first.proc.kill()
            first.proc.wait(10)
            for c in callers:
                c.cancel()
            await asyncio.gather(*callers, return_exceptions=True)
            first_log = first.output()
            if relay is not None:
                relay.up = True  # the database is back (for the next process)

            second = await start_serve(tmp, bridge_db, spool, sim.ws_url, "second")
            spool_pending = Spool(spool).pending()
            quarantine = Spool(spool).quarantine_path
            quarantined = quarantine.read_text() if quarantine.exists() else ""
            t_term = time.monotonic()
            second.proc.send_signal(signal.SIGTERM)  # drains at once (no calls), flushes, exits 0
            code = await asyncio.to_thread(second.proc.wait, 30)
            stop_s = time.monotonic() - t_term
            second_log = second.output()
            assert code == 0, second_log[-3000:]
        finally:
            kill(first)  # first: a caller closing its socket would wait for a stopped bridge's answer
            kill(second)
            for c in callers:
                c.cancel()
            await asyncio.gather(*callers, return_exceptions=True)

    # ---- the assertions
    assert in_flight >= LONG_CALLS - 2, f"only {in_flight} calls in flight at the kill"
    assert mid_turn >= LONG_CALLS // 2, f"only {mid_turn} calls mid-turn at the kill"
    assert load.responses_done > 0 and load.deltas_received > 0, "the calls never got an answer before the kill"
    open_at_kill = ack.open_calls
    assert len(open_at_kill) >= LONG_CALLS - 2, f"only {len(open_at_kill)} calls open in the audit at the kill"
    ended_before = dict(ack.endings)
    assert len(ended_before) >= 1, "no short call had ended before the kill"
    if outage:
        assert ack.spool_only > 0, "the outage left nothing in the spool: the replay is not exercised"
        assert "audit database unavailable" in first_log, first_log[-3000:]
    assert not spool_pending, "the spool still holds rows after the restart"
    assert not [q for q in quarantined.splitlines() if "torn write" not in q], quarantined[:3000]

    ledger = _query(db_url, "SELECT table_name, row_id, record_hash FROM ledger ORDER BY seq")
    stored: dict[tuple[str, str], str] = {}
    duplicates = []
    for table, row_id, h in ledger:
        if (table, row_id) in stored:
            duplicates.append((table, row_id))
        stored[(table, row_id)] = h
    assert not duplicates, f"{len(duplicates)} records stored twice: {duplicates[:5]}"
    lost = [k for k in ack.records if k not in stored]
    assert not lost, f"{len(lost)} acknowledged records lost: {lost[:5]}"
    changed = [k for k, h in ack.records.items() if stored[k] != h]
    assert not changed, f"{len(changed)} acknowledged records stored with another hash: {changed[:5]}"
    for table in {t for t, _ in stored}:  # every ledger entry has its row, and no row lacks its entry
        rows = _query(db_url, f"SELECT count(*) FROM {table}")[0][0]
        assert rows == sum(1 for t, _ in stored if t == table), table

    endings = dict(_query(db_url, "SELECT call_id, outcome FROM call_endings"))
    not_closed = [c for c in open_at_kill if endings.get(c) != "interrupted"]
    assert not not_closed, (f"{len(not_closed)} of {len(open_at_kill)} calls open at the kill are not closed as "
                            f"interrupted: {[(c, endings.get(c)) for c in not_closed[:5]]}\n{second_log[-2000:]}")
    assert all(endings[c] == o for c, o in ended_before.items()), "a call that had ended before the kill changed outcome"
    still_open = _query(db_url, "SELECT count(*) FROM calls c WHERE NOT EXISTS "
                                "(SELECT 1 FROM call_endings e WHERE e.call_id = c.id)")[0][0]
    assert still_open == 0, f"{still_open} calls left open after the restart"

    t_verify = time.monotonic()
    verify = subprocess.run([sys.executable, "-m", "hybrid_agent", "audit", "verify", "--db", db_url],
                            capture_output=True, text=True, timeout=60)
    verify_s = time.monotonic() - t_verify
    assert verify.returncode == 0, verify.stdout[-2000:] + verify.stderr[-2000:]

    replayed = re.search(r"replayed (\d+) spooled rows", second_log)
    figures = {
        "variant": "database cut mid-call" if outage else "database up",
        "calls_in_flight_at_kill": in_flight,
        "calls_mid_turn_at_kill": mid_turn,
        "calls_open_in_audit_at_kill": len(open_at_kill),
        "calls_ended_before_kill": len(ended_before),
        "records_acknowledged": len(ack.records),
        "acknowledged_in_db": ack.in_db,
        "acknowledged_in_spool_only": ack.spool_only,
        "spool_lines_at_kill": ack.in_spool,
        "torn_spool_tail": ack.torn,
        "replayed_from_spool": int(replayed.group(1)) if replayed else 0,
        "closed_as_interrupted": sum(1 for c in open_at_kill if endings.get(c) == "interrupted"),
        "records_after_restart": len(stored),
        "landed_unacknowledged": len(stored) - len(ack.records) - len(open_at_kill),
        "acknowledged_by_table": dict(sorted(collections.Counter(t for t, _ in ack.records).items())),
        "first_ready_s": round(first.ready_s, 2),
        "restart_to_ready_s": round(second.ready_s, 2),
        "kill_after_s": round(t_stop - t_calls, 1),
        "second_stop_s": round(stop_s, 2),
        "verify_s": round(verify_s, 2),
        "responses_done_before_kill": load.responses_done,
    }
    print("crash-safety figures:", json.dumps(figures))
    return figures


async def test_sigkill_mid_call_at_scale_loses_and_duplicates_nothing(pg_db: str, tmp_path: Path) -> None:
    figures = await crash_and_restart(tmp_path, pg_db, outage=False)
    assert figures["acknowledged_in_db"] > 0


async def test_sigkill_while_the_database_is_down_replays_the_spool_on_restart(pg_db: str, tmp_path: Path) -> None:
    figures = await crash_and_restart(tmp_path, pg_db, outage=True)
    assert figures["acknowledged_in_spool_only"] > 0 and figures["replayed_from_spool"] >= figures["acknowledged_in_spool_only"]


async def test_a_restart_closes_at_once_only_the_calls_its_spool_held_open(pg_db: str, tmp_path: Path) -> None:
    """What the restart relies on, in-process: ``<spool>.calls`` names the calls a spool's previous owner held open.

    On a PostgreSQL several bridges share, a recent open call may be live in another process, so without the
    list only calls idle for the grace period (5 min) could be closed; the calls listed by the spool's
    previous owner (a process that is gone: the new writer holds the spool's lock) are closed at once, and
    another process's live call is not touched.  A restart while the database is still down keeps the list.
    """
    from hybrid_agent.audit.records import CallEnded, CallStarted, TurnRecord
    from hybrid_agent.audit.writer import AuditWriter

    def writer(url: str, spool: str) -> AuditWriter:
        return AuditWriter(url, spool_path=tmp_path / spool, pseudonym_key="k", flush_interval_s=0.02,
                           retry_interval_s=0.05)

    t0 = time.time()
    first = writer(pg_db, "a.spool")
    await first.start()
    for call in ("gone", "done"):
        first.enqueue(CallStarted(call, t0, "web", "m", "sim"))
        first.enqueue(TurnRecord(call, 0, "user", "i0", "hello", "completed", 100.0, 900.0, redacted=True))
    first.enqueue(CallEnded("done", 1000.0, "completed"))
    await first.close()  # the process is gone with "gone" open
    assert (tmp_path / "a.spool.calls").read_text().count("gone") == 1

    other = writer(pg_db, "b.spool")  # another bridge on the same database, its call live
    await other.start()
    other.enqueue(CallStarted("live", t0, "web", "m", "sim"))
    await other.flush()

    down = writer("postgresql://postgres@127.0.0.1:1/test", "a.spool")  # restarted while the database is down
    await down.start()
    assert await down.close_interrupted_calls() == []
    await down.close()

    again = writer(pg_db, "a.spool")
    await again.start()
    closed = await again.close_interrupted_calls()  # the default: several bridges share this database
    assert [(r.call_id, r.outcome, r.at_ms) for r in closed] == [("gone", "interrupted", 900.0)]
    assert await again.close_interrupted_calls() == []
    await again.close()
    assert "gone" not in (tmp_path / "a.spool.calls").read_text()
    other.enqueue(CallEnded("live", 500.0, "completed"))
    await other.close()
    assert dict(_query(pg_db, "SELECT call_id, outcome FROM call_endings")) == {
        "gone": "interrupted", "done": "completed", "live": "completed"}

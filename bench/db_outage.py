"""``make db-outage``: the audit database stopped for a minute under load, and what the bridge did about it.

Issue 15, "database outage under load".  One PostgreSQL cluster of the benchmark's own
(``bench/pg_cluster.py``: ``initdb`` into a temporary directory, a free port, never the shared
server on 5432) holds the audit.  Two runs of the same workload go through one fresh
``hybrid-agent serve`` each (observe mode of the retail-banking pack, pinned to core 0; the load
generator, the simulator and PostgreSQL on the other cores), each into a fresh database:

- **baseline**: ``--calls`` paced phone-like calls of ``--call-seconds`` (the load of ``bench relay``
  and ``bench soak``: a 20 ms append every 20 ms, an answer every 5 s), the database up throughout;
- **outage**: the same, with PostgreSQL stopped (``pg_ctl stop -m fast``: connections cut)
  ``--outage-start`` seconds into the load, for ``--outage-seconds``, then started again.

Throughout both runs ``/healthz`` and ``/readyz`` are sampled every ``--sample-interval`` (0.5 s)
and the bridge's spool file is read (its lines as they are appended, and every time it is emptied).
After the calls end and the spool drains, the database is checked against what the load generator
knows of every call.  Each call is tagged by the model it asks for (``gpt-realtime-1999-HH-LL``, a
dated snapshot of the configured model, which the bridge accepts and records in ``calls.model``),
so its rows are found by ``call_id`` without guessing:

- **expected** per call: one ``calls`` and one ``call_endings`` row; a turn per caller utterance the
  caller saw transcribed and per answer it saw created (``response.created``); a
  ``response_metrics`` row per answer; a policy decision at session start and one per turn (the
  pack's observe mode checks every turn).  The sum is also compared with the bridge's own count
  of records it made durable (``hybrid_agent_audit_lag_milliseconds_count`` on ``/metrics``);
- **lost** = expected rows not found; **duplicated** = a ledger entry twice for one row, one
  ``record_hash`` twice, a turn ``seq`` twice, more rows than the call produced, or a table's rows
  and its ledger entries disagreeing; ``audit verify`` (the whole chain) must pass and nothing may
  be quarantined;
- **spool drained in order**: every spooled line (each time the spool filled) is in the ledger with
  the spooled ``sha256`` as its ``record_hash``, in the spool's order, as one contiguous block of
  the chain (nothing overtook the spool), and the spool is empty at the end;
- **health honest**: with the database up and the spool empty, ``/healthz`` says ``ok``
  (``database_reachable``, not ``spooling``); from ``--detect-grace`` (2 s) after the stop until the
  start, ``degraded`` with ``database_reachable`` false and ``spooling`` true; while the spool holds
  lines, ``spooling`` true; from ``--recover-grace`` (15 s) after the start with the spool empty,
  ``ok`` again.  ``/readyz`` answers 200 throughout (the spool takes every record: a 503 would say
  records cannot be stored while they can), and both always answer.

The audio path: p50 / p99 of every audio event's latency (caller frames in, model audio out), as
``bench relay`` measures it, over the whole run and over the outage window (the same seconds of the
baseline), the outage run's as a ratio to the baseline's.  The ratio is a benchmark figure (target:
within 10 %), printed, not asserted.

    .venv/bin/python -m bench db-outage [--calls 50] [--outage-seconds 60] [--call-seconds 100] [--json]
    DB_OUTAGE_CALLS=50 DB_OUTAGE_SECONDS=60 DB_OUTAGE_CALL_SECONDS=100 make db-outage

Why this module is long: the tagged load, the spool watcher, the health judge and the record count
are one experiment and share its clock; split, each would need the others' state.

Exit 1 when a record is lost or duplicated, the spool did not drain in order, health lied, or a
call failed; exit 2 when the cluster or the bridge cannot start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed

from bench import report
from bench.loadgen import (CYCLE_MS, FRAME_MS, SPEECH_FRAMES, STAMP, EventIdStamps, StampedSimulator, event_head,
                           paced_frames, pct)
from bench.middle import Middle, pin_load_process, start_bridge, stop, workdir
from bench.pg_cluster import PgCluster, PgClusterError

#: one core of this machine type carries about 50 paced calls with room (docs/reliability.md: the soak ran 50)
DEFAULT_CALLS = 50
DEFAULT_OUTAGE_S = 60.0
DEFAULT_OUTAGE_START_S = 15.0
DEFAULT_TAIL_S = 25.0  # calls go on this long after the database is back (the spool replays under load)
SAMPLE_INTERVAL_S = 0.5
DETECT_GRACE_S = 2.0  # the writer writes every 0.2 s under load: it must have noticed the outage by then
RECOVER_GRACE_S = 15.0  # replay every 2 s; the whole spool lands well within this
DRAIN_TIMEOUT_S = 180.0
P99_TARGET = 1.10
MODEL = "gpt-realtime"
WARMUP_TAG = 9999
#: the tables a call of this workload writes to, and the ones it must leave empty
CALL_TABLES = ("calls", "call_endings", "turns", "response_metrics", "policy_decisions")
OTHER_TABLES = ("turn_interruptions", "tool_calls", "tool_results", "disclosures", "call_events", "gate_actions")


def tag_model(i: int) -> str:
    """Call ``i``'s model: a dated snapshot of the configured model, which the bridge allows and records."""
    return f"{MODEL}-1999-{i // 100:02d}-{i % 100:02d}"


# ---------------------------------------------------------------------------- the load, every call tagged
class TimedSimulator(StampedSimulator):
    """The stamped simulator, keeping when each caller frame arrived as well as its latency."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.up: list[tuple[int, float]] = []  # (arrival monotonic ns, ms)

    def client_event_received(self, event: dict) -> None:
        if event.get("type") != "input_audio_buffer.append":
            return
        self.appends += 1
        event_id = event.get("event_id")
        if isinstance(event_id, str) and event_id.startswith(STAMP):
            now = time.monotonic_ns()
            self.up.append((now, (now - int(event_id[len(STAMP):])) / 1e6))

    def reset(self) -> None:
        super().reset()
        self.up = []


@dataclass
class CallLog:
    """What one caller saw of its call: the facts the audit must hold."""

    index: int
    model: str
    frames_sent: int = 0
    deltas_received: int = 0
    user_transcripts: int = 0  # conversation.item.input_audio_transcription.completed
    responses_created: int = 0
    responses_done: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def utterances_spoken(self) -> int:
        """Utterances the caller finished saying (each cycle's speech frames all sent)."""
        per_cycle = CYCLE_MS // FRAME_MS
        full, rest = divmod(self.frames_sent, per_cycle)
        return full + (1 if rest >= len(SPEECH_FRAMES) else 0)

    def expected(self) -> dict[str, int]:
        turns = self.user_transcripts + self.responses_created
        return {"calls": 1, "call_endings": 1, "turns": turns, "response_metrics": self.responses_created,
                "policy_decisions": 1 + turns}


@dataclass
class Load:
    up: list[tuple[int, float]] = field(default_factory=list)
    down: list[tuple[int, float]] = field(default_factory=list)
    calls: list[CallLog] = field(default_factory=list)
    frames_received: int = 0
    deltas_sent: int = 0
    t0_ns: int = 0
    seconds: float = 0.0

    @property
    def frames_sent(self) -> int:
        return sum(c.frames_sent for c in self.calls)

    @property
    def deltas_received(self) -> int:
        return sum(c.deltas_received for c in self.calls)

    @property
    def dropped(self) -> int:
        return max(0, self.frames_sent - self.frames_received) + max(0, self.deltas_sent - self.deltas_received)

    @property
    def errors(self) -> list[str]:
        return [f"call {c.index}: {e}" for c in self.calls for e in c.errors]

    def latencies(self, window: tuple[float, float] | None = None) -> list[float]:
        """Every audio event's ms; ``window``: only those that arrived in ``(from_s, to_s)`` after the load began."""
        if window is None:
            return [ms for _, ms in self.up] + [ms for _, ms in self.down]
        lo, hi = self.t0_ns + int(window[0] * 1e9), self.t0_ns + int(window[1] * 1e9)
        return [ms for t, ms in self.up if lo <= t < hi] + [ms for t, ms in self.down if lo <= t < hi]


async def tagged_call(url: str, headers: dict[str, str], seconds: float, start_delay_s: float, log: CallLog,
                      down: list[tuple[int, float]]) -> None:
    """``bench.loadgen.paced_call`` (the same frames, pacing and stamps), counting what the caller saw."""
    await paced_frames(url, headers, seconds, start_delay_s, log, lambda ws: _read(ws, log, down))


async def _read(ws: Any, log: CallLog, down: list[tuple[int, float]]) -> None:
    try:
        async for message in ws:
            now = time.monotonic_ns()
            kind, head = event_head(message)
            if kind == "response.output_audio.delta":
                log.deltas_received += 1
                ms = EventIdStamps.down_ms(message, head, now)
                if ms is not None:
                    down.append((now, ms))
            elif kind == "conversation.item.input_audio_transcription.completed":
                log.user_transcripts += 1
            elif kind == "response.created":
                log.responses_created += 1
            elif kind == "response.done":
                log.responses_done += 1
            elif kind == "error":
                log.errors.append(message[:300])
    except ConnectionClosed:
        pass


def call_url(bridge: Middle, model: str) -> str:
    return re.sub(r"model=[^&]*", f"model={model}", bridge.url)


async def run_tagged_load(sim: TimedSimulator, bridge: Middle, calls: int, seconds: float, load: Load) -> None:
    """``calls`` paced calls at once, their utterances staggered over one cycle, as ``bench.loadgen.run_load``."""
    sim.reset()
    load.calls = [CallLog(i, tag_model(i)) for i in range(calls)]
    load.t0_ns = time.monotonic_ns()
    stagger = CYCLE_MS / 1000 / max(1, calls)
    await asyncio.gather(*(
        tagged_call(call_url(bridge, c.model), bridge.headers, seconds, c.index * stagger, c, load.down) for c in load.calls
    ))
    load.seconds = (time.monotonic_ns() - load.t0_ns) / 1e9
    load.up = list(sim.up)
    load.frames_received = sim.appends
    load.deltas_sent = sim.deltas_sent


# ---------------------------------------------------------------------------- the spool, as the writer fills it
class SpoolWatcher:
    """Reads the bridge's spool file as lines are appended; a shrunk file starts a new generation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.quarantine = path.with_name(path.name + ".quarantine")
        self.offset = 0
        self.generations: list[list[tuple[str, str, str]]] = []  # [(table, row id, sha256)] in spool order
        self.raw: list[bytearray] = []  # each generation's lines as spooled
        self.bad_lines = 0
        self.max_lines = 0
        self.max_bytes = 0
        self.last_lines = 0

    def poll(self) -> int:
        """Read what was appended since the last poll; returns the lines the spool holds now."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size < self.offset:  # replayed and emptied
            self.offset = 0
        if size == 0:
            self.last_lines = 0
            return 0
        self.max_bytes = max(self.max_bytes, size)
        if self.offset == 0 or not self.generations:
            self.generations.append([])
            self.raw.append(bytearray())
        if size > self.offset:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(size - self.offset)
            end = data.rfind(b"\n") + 1  # a line being written is read at the next poll
            self.raw[-1] += data[:end]
            for line in data[:end].splitlines():
                try:
                    obj = json.loads(line)
                    self.generations[-1].append((obj["t"], obj["r"]["id"], obj["sha256"]))
                except (ValueError, KeyError, TypeError):
                    self.bad_lines += 1
            self.offset += end
        self.last_lines = len(self.generations[-1])
        self.max_lines = max(self.max_lines, self.last_lines)
        return self.last_lines

    def replay_attempt_ms(self) -> float | None:
        """What one failed replay costs the bridge's writer thread at the largest spool seen: the product's
        ``Spool.replay`` on a copy, its write refused at once (as while the database is down)."""
        import tempfile

        from hybrid_agent.audit.spool import Spool

        biggest = max(self.raw, key=len, default=b"")
        if not biggest:
            return None

        def refuse(batch: Any) -> None:
            raise ConnectionRefusedError("database down")

        with tempfile.TemporaryDirectory(prefix="hybrid-agent-spool-") as d:
            path = Path(d) / "spool"
            path.write_bytes(bytes(biggest))
            spool = Spool(path)
            t0 = time.perf_counter()
            for _ in range(3):
                with contextlib.suppress(ConnectionRefusedError):
                    spool.replay(refuse, 500)
            return (time.perf_counter() - t0) / 3 * 1000

    def quarantined(self) -> int:
        try:
            return sum(1 for line in self.quarantine.read_bytes().splitlines() if line.strip())
        except FileNotFoundError:
            return 0


# ---------------------------------------------------------------------------- health, sampled and judged
@dataclass
class OutageClock:
    """When the database went down and came back, in seconds since the load began."""

    stop_begin: float | None = None
    stop_done: float | None = None
    start_begin: float | None = None
    start_done: float | None = None

    def down(self, t_from: float, t_to: float) -> bool:
        """The database was down for the whole of ``[t_from, t_to]``."""
        return self.stop_done is not None and self.stop_done <= t_from and (self.start_begin is None or t_to <= self.start_begin)

    def up(self, t_from: float, t_to: float, recover_grace: float) -> bool:
        """The database was up for the whole interval (and back for ``recover_grace`` if it was stopped)."""
        if self.stop_begin is None or t_to < self.stop_begin:
            return True
        return self.start_done is not None and t_from >= self.start_done + recover_grace


class HealthSampler:
    """GET /healthz and /readyz every ``interval`` s, the spool read around each pair."""

    def __init__(self, bridge: Middle, spool: SpoolWatcher, t0_ns: int, interval: float = SAMPLE_INTERVAL_S) -> None:
        self.base = bridge.url.replace("ws://", "http://").split("/v1", 1)[0]
        self.headers = bridge.headers
        self.spool = spool
        self.t0_ns = t0_ns
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self._stop = asyncio.Event()

    def now(self) -> float:
        return (time.monotonic_ns() - self.t0_ns) / 1e9

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, headers=self.headers, timeout=3.0) as http:
            while not self._stop.is_set():
                started = time.monotonic()
                self.samples.append(await self.sample(http))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), max(0.0, self.interval - (time.monotonic() - started)))

    async def sample(self, http: httpx.AsyncClient) -> dict[str, Any]:
        before = self.spool.poll()
        t_req = self.now()
        s: dict[str, Any] = {"t": round(t_req, 3), "spool_before": before}
        try:
            h = await http.get("/healthz")
            body = h.json()
            audit = body.get("audit") or {}
            s.update(healthz=h.status_code, status=body.get("status"), calls=body.get("calls"),
                     reachable=audit.get("database_reachable"), spooling=audit.get("spooling"), ready=audit.get("ready"),
                     queued=audit.get("queued"), last_error=audit.get("last_error"))
        except (httpx.HTTPError, ValueError) as exc:
            s.update(healthz=None, status=f"no answer ({type(exc).__name__})")
        try:
            r = await http.get("/readyz")
            s.update(readyz=r.status_code, readyz_status=r.json().get("status"))
        except (httpx.HTTPError, ValueError) as exc:
            s.update(readyz=None, readyz_status=f"no answer ({type(exc).__name__})")
        s["t_end"] = round(self.now(), 3)
        s["spool_after"] = self.spool.poll()
        return s

    def stop(self) -> None:
        self._stop.set()


def judge(s: dict[str, Any], clock: OutageClock, detect_grace: float, recover_grace: float) -> tuple[str, str | None]:
    """(phase, the lie or None) for one sample; the phases: up, detecting, down, spooled, recovering."""
    t, t_end = s["t"], s["t_end"]
    if s.get("healthz") != 200 or s.get("readyz") is None:
        return "unanswered", f"health did not answer: /healthz {s.get('status')}, /readyz {s.get('readyz_status')}"
    lie = None
    if s["readyz"] != 200:
        lie = f"/readyz {s['readyz']} {s.get('readyz_status')} while the spool took every record"
    says_down = s.get("status") == "degraded" and s.get("reachable") is False and s.get("spooling") is True
    says_ok = s.get("status") == "ok" and s.get("reachable") is True and s.get("spooling") is False
    spool_held = s["spool_before"] > 0 and s["spool_after"] > 0
    spool_empty = s["spool_before"] == 0 and s["spool_after"] == 0
    if clock.down(t, t_end):
        if clock.stop_done is not None and t < clock.stop_done + detect_grace:
            return "detecting", lie
        if not says_down:
            lie = lie or (f"database down, /healthz said {s.get('status')} (database_reachable {s.get('reachable')}, "
                          f"spooling {s.get('spooling')})")
        return "down", lie
    if spool_held:
        if not (s.get("spooling") is True and s.get("status") == "degraded"):
            lie = lie or f"{s['spool_before']} spooled lines, /healthz said {s.get('status')} (spooling {s.get('spooling')})"
        return "spooled", lie
    if spool_empty and clock.up(t, t_end, recover_grace):
        if not says_ok:
            lie = lie or (f"database up and spool empty, /healthz said {s.get('status')} "
                          f"(database_reachable {s.get('reachable')}, spooling {s.get('spooling')})")
        return "up", lie
    return "recovering", lie


def health_summary(samples: list[dict[str, Any]], clock: OutageClock, detect_grace: float, recover_grace: float) -> dict[str, Any]:
    phases: dict[str, int] = {}
    lies: list[str] = []
    down_said: dict[str, int] = {}
    detecting_said: dict[str, int] = {}
    for s in samples:
        phase, lie = judge(s, clock, detect_grace, recover_grace)
        s["phase"] = phase
        phases[phase] = phases.get(phase, 0) + 1
        if lie:
            s["lie"] = lie
            lies.append(f"t={s['t']:.1f}s: {lie}")
        if phase in ("detecting", "down"):  # detecting: the first --detect-grace seconds, not judged
            key = (f"healthz {s.get('status')} (reachable {s.get('reachable')}, spooling {s.get('spooling')}); "
                   f"readyz {s.get('readyz')} {s.get('readyz_status')}")
            said = down_said if phase == "down" else detecting_said
            said[key] = said.get(key, 0) + 1
    out: dict[str, Any] = {"samples": len(samples), "phases": phases, "lies": lies, "while_down": down_said,
                           "while_detecting": detecting_said}
    if clock.stop_done is not None:
        after_stop = [s for s in samples if s["t"] >= clock.stop_begin]
        first_down = next((s for s in after_stop if s.get("reachable") is False), None)
        out["detected_after_s"] = round(first_down["t"] - clock.stop_done, 2) if first_down else None
        if clock.start_done is not None:
            after = [s for s in samples if s["t"] >= clock.start_done]
            first_ok = next((s for s in after if s.get("status") == "ok"), None)
            first_empty = next((s for s in after if s["spool_before"] == 0), None)
            out["ok_again_after_s"] = round(first_ok["t"] - clock.start_done, 2) if first_ok else None
            out["spool_empty_after_s"] = round(first_empty["t"] - clock.start_done, 2) if first_empty else None
        down = [s for s in samples if s.get("phase") == "down"]
        if not down:
            lies.append("no sample fell in the outage after the detection grace: nothing was checked (outage too short?)")
    if samples:  # the last sample: calls over, database up, spool drained: the bridge must say so
        last = samples[-1]
        said = (last.get("status"), last.get("reachable"), last.get("spooling"), last.get("readyz"))
        out["at_rest"] = f"healthz {said[0]} (reachable {said[1]}, spooling {said[2]}); readyz {said[3]}"
        if said != ("ok", True, False, 200) and last["spool_before"] == 0:
            lies.append(f"at rest (database up, spool empty): {out['at_rest']}")
    return out


# ---------------------------------------------------------------------------- the database, checked against the load
def count_records(url: str, calls: list[CallLog], spool: SpoolWatcher) -> dict[str, Any]:
    """Expected vs found per call and table, duplicates, the chain, the spool's order."""
    import psycopg

    from hybrid_agent.audit.queries import verify_chain
    from hybrid_agent.audit.store import connect, make_engine

    res: dict[str, Any] = {}
    lost: list[str] = []
    extra: list[str] = []
    dup: list[str] = []
    with psycopg.connect(url, connect_timeout=10) as conn:
        q = conn.execute
        by_model = {m: cid for cid, m in q("SELECT id, model FROM calls").fetchall()}
        models = [m for (m,) in q("SELECT model FROM calls").fetchall()]
        if len(models) != len(set(models)):
            dup.append(f"{len(models) - len(set(models))} call(s) recorded twice under one tag")
        counts: dict[str, dict[str, int]] = {}
        for table in (*CALL_TABLES, *OTHER_TABLES):
            key = "id" if table == "calls" else "call_id"
            counts[table] = {cid: n for cid, n in q(f"SELECT {key}, count(*) FROM {table} GROUP BY {key}").fetchall()}
        expected_total = found_total = 0
        tagged = set()
        for c in calls:
            cid = by_model.get(c.model)
            exp = c.expected()
            expected_total += sum(exp.values())
            if cid is None:
                lost.append(f"call {c.index} ({c.model}): no calls row ({sum(exp.values())} records)")
                continue
            tagged.add(cid)
            for table, n in exp.items():
                got = counts[table].get(cid, 0)
                found_total += min(got, n)
                if got < n:
                    lost.append(f"call {c.index} {cid}: {table} {got} of {n}")
                elif got > n:
                    extra.append(f"call {c.index} {cid}: {table} {got}, expected {n}")
            for table in OTHER_TABLES:
                if counts[table].get(cid):
                    extra.append(f"call {c.index} {cid}: {counts[table][cid]} unexpected {table} row(s)")
            seqs = [s for (s,) in q("SELECT seq FROM turns WHERE call_id = %s ORDER BY seq", (cid,)).fetchall()]
            if seqs != list(range(1, len(seqs) + 1)):
                (dup if len(seqs) != len(set(seqs)) else lost).append(f"call {c.index} {cid}: turn seqs {seqs[:40]}")
        strangers = set(by_model.values()) - tagged
        if strangers:
            extra.append(f"{len(strangers)} call(s) in the database no caller made: {sorted(strangers)[:5]}")
        ledger_total = q("SELECT count(*) FROM ledger").fetchone()[0]
        dup_entries = q("SELECT count(*) - count(DISTINCT (table_name, row_id)) FROM ledger").fetchone()[0]
        dup_hashes = q("SELECT count(*) - count(DISTINCT record_hash) FROM ledger").fetchone()[0]
        dup_turns = q("SELECT count(*) - count(DISTINCT (call_id, seq)) FROM turns").fetchone()[0]
        if dup_entries:
            dup.append(f"{dup_entries} ledger entries for a row already in the ledger")
        if dup_hashes:
            dup.append(f"{dup_hashes} ledger entries repeating a record_hash")
        if dup_turns:
            dup.append(f"{dup_turns} turns repeating a (call, seq)")
        per_table_ledger = dict(q("SELECT table_name, count(*) FROM ledger GROUP BY table_name").fetchall())
        rows_total = 0
        for table in (*CALL_TABLES, *OTHER_TABLES):
            rows = q(f"SELECT count(*), count(DISTINCT id) FROM {table}").fetchone()
            rows_total += rows[0]
            if rows[0] != rows[1]:
                dup.append(f"{table}: {rows[0] - rows[1]} rows repeating an id")
            if rows[0] != per_table_ledger.get(table, 0):
                (dup if rows[0] > per_table_ledger.get(table, 0) else lost).append(
                    f"{table}: {rows[0]} rows, {per_table_ledger.get(table, 0)} ledger entries")
        # the spool, generation by generation: every line in the ledger, in order, one contiguous block
        ledger = {(t, rid): (seq, h) for seq, t, rid, h in q("SELECT seq, table_name, row_id, record_hash FROM ledger").fetchall()}
        order: list[str] = []
        spooled = 0
        for g, lines in enumerate(spool.generations):
            spooled += len(lines)
            seqs = []
            for table, rid, sha in lines:
                entry = ledger.get((table, rid))
                if entry is None:
                    lost.append(f"spooled {table} {rid} is not in the ledger")
                    continue
                if entry[1] != sha:
                    order.append(f"spool generation {g}: {table} {rid} landed with another hash")
                seqs.append(entry[0])
            if any(b <= a for a, b in zip(seqs, seqs[1:])):
                order.append(f"spool generation {g}: replayed out of order (ledger seqs not increasing)")
            if seqs and seqs[-1] - seqs[0] + 1 != len(seqs):
                order.append(f"spool generation {g}: {seqs[-1] - seqs[0] + 1 - len(seqs)} other ledger entries interleaved "
                             f"with its {len(seqs)} spooled rows (something overtook the spool)")
        if spool.bad_lines:
            order.append(f"{spool.bad_lines} spool lines could not be read")
    engine = make_engine(url)
    try:
        with connect(engine) as conn:
            v = verify_chain(conn)
    finally:
        engine.dispose()
    res.update(
        calls_found=len(tagged), expected=expected_total, found=found_total, ledger=ledger_total, rows=rows_total,
        lost=len(lost), duplicated=len(dup), unexpected=len(extra), problems={"lost": lost[:20], "duplicated": dup[:20],
                                                                                "unexpected": extra[:20], "order": order[:20]},
        spooled_lines=spooled, spool_generations=len(spool.generations), spool_in_order=not order,
        verify_ok=v.problem_count == 0, verify_checked=v.checked,
        verify_problems=[f"{p.kind} {p.table} {p.row_id}" for p in v.problems[:5]],
    )
    return res


# ---------------------------------------------------------------------------- one run
@dataclass
class Params:
    calls: int = DEFAULT_CALLS
    call_s: float = DEFAULT_OUTAGE_START_S + DEFAULT_OUTAGE_S + DEFAULT_TAIL_S
    outage_s: float = DEFAULT_OUTAGE_S
    outage_start_s: float = DEFAULT_OUTAGE_START_S
    mode: str | None = "observe"
    sample_interval: float = SAMPLE_INTERVAL_S
    detect_grace: float = DETECT_GRACE_S
    recover_grace: float = RECOVER_GRACE_S
    drain_timeout: float = DRAIN_TIMEOUT_S
    warmup: bool = True


async def _audit_lag_count(http: httpx.AsyncClient) -> tuple[float | None, float | None]:
    """(records the bridge made durable, records it spooled), from its /metrics."""
    try:
        text = (await http.get("/metrics")).text
    except httpx.HTTPError:
        return None, None
    durable = spooled = None
    for line in text.splitlines():
        if line.startswith("hybrid_agent_audit_lag_milliseconds_count"):
            durable = float(line.rsplit(" ", 1)[1])
        elif line.startswith("hybrid_agent_audit_spooled_records_total"):
            spooled = float(line.rsplit(" ", 1)[1])
    return durable, spooled


async def _wait_drained(http: httpx.AsyncClient, spool: SpoolWatcher, timeout_s: float) -> tuple[bool, float, dict[str, Any]]:
    """Until no call is open, nothing is queued or spooled, and the bridge's durable count stands still."""
    t0 = time.monotonic()
    last: dict[str, Any] = {}
    prev = None
    while time.monotonic() - t0 < timeout_s:
        try:
            body = (await http.get("/healthz")).json()
        except (httpx.HTTPError, ValueError):
            body = {}
        audit = body.get("audit") or {}
        last = body
        durable, _ = await _audit_lag_count(http)
        if (body.get("calls") == 0 and audit.get("queued") == 0 and audit.get("spooling") is False
                and spool.poll() == 0 and durable is not None and durable == prev):
            return True, time.monotonic() - t0, last
        prev = durable
        await asyncio.sleep(0.5)
    return False, time.monotonic() - t0, last


def _bridge_log_facts(log: Path) -> dict[str, Any]:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return {}
    replayed = [int(m) for m in re.findall(r"replayed (\d+) spooled rows", text)]
    return {"errors_logged": sum(1 for ln in text.splitlines() if ln.startswith(("ERROR", "CRITICAL"))),
            "replays": len(replayed), "rows_replayed": sum(replayed),
            "quarantine_logged": text.count("quarantine"), "tail": text[-1500:]}


async def one_run(name: str, pg: PgCluster, sim: TimedSimulator, wd: str, p: Params, outage: bool) -> dict[str, Any]:
    from hybrid_agent.audit.store import upgrade

    db = f"audit_{name}_{os.getpid()}"
    url = await asyncio.to_thread(pg.create_database, db)
    await asyncio.to_thread(upgrade, url)
    bridge = await start_bridge(sim.ws_url, p.mode, wd, db=url)
    log_path = next(Path(wd).glob(f"bridge-*-{bridge.url.split(':')[2].split('/')[0]}.log"), None)
    load = Load()
    clock = OutageClock()
    fig: dict[str, Any] = {"run": name, "database": db}
    base = bridge.url.replace("ws://", "http://").split("/v1", 1)[0]
    try:
        async with httpx.AsyncClient(base_url=base, headers=bridge.headers, timeout=10) as http:
            spool_path = Path((await http.get("/healthz")).json()["audit"]["spool_path"])
            spool = SpoolWatcher(spool_path)
            warm: list[CallLog] = []
            if p.warmup:  # imports, caches, the analyzer: not measured, but its records are counted like the rest
                warm = [CallLog(WARMUP_TAG, tag_model(WARMUP_TAG))]
                await tagged_call(call_url(bridge, warm[0].model), bridge.headers, 3.0, 0.0, warm[0], [])
                await asyncio.sleep(1.0)
            cpu0 = bridge.cpu()
            sim.reset()
            t0_ns = time.monotonic_ns()
            sampler = HealthSampler(bridge, spool, t0_ns, p.sample_interval)
            sampling = asyncio.create_task(sampler.run())
            chaos = asyncio.create_task(_outage(pg, clock, t0_ns, p)) if outage else None
            try:
                await run_tagged_load(sim, bridge, p.calls, p.call_s, load)
                load.t0_ns = t0_ns
                if chaos is not None:
                    await chaos  # the database is back before the drain is judged
                drained, drain_s, last = await _wait_drained(http, spool, p.drain_timeout)
                durable, spooled_metric = await _audit_lag_count(http)
                await asyncio.sleep(p.sample_interval * 2)  # a last sample or two, everything at rest
            finally:
                sampler.stop()
                await sampling
                if chaos is not None and not chaos.done():
                    chaos.cancel()
                    await asyncio.gather(chaos, return_exceptions=True)
                if not pg.running:
                    await asyncio.to_thread(pg.start)
            cpu = bridge.cpu() - cpu0
    finally:
        await stop(bridge)
    records = await asyncio.to_thread(count_records, url, warm + load.calls, spool)
    health = health_summary(sampler.samples, clock, p.detect_grace, p.recover_grace)
    window = None
    if outage and clock.stop_done is not None and clock.start_begin is not None:
        window = (clock.stop_done, clock.start_begin)
    fig.update(
        calls=p.calls, call_seconds=p.call_s, frames_sent=load.frames_sent, dropped=load.dropped, call_errors=load.errors[:5],
        p50_ms=pct(load.latencies(), 0.5), p99_ms=pct(load.latencies(), 0.99), events=len(load.latencies()),
        bridge_cpu_s=round(cpu, 2),
        outage={k: (round(v, 3) if v is not None else None) for k, v in vars(clock).items()} if outage else None,
        drained=drained, drain_s=round(drain_s, 2), healthz_at_end=last.get("status"),
        bridge_durable_records=durable, bridge_spooled_records=spooled_metric,
        spool_lines_max=spool.max_lines, spool_bytes_max=spool.max_bytes, spool_lines_at_end=spool.poll(),
        quarantined=spool.quarantined(), replay_attempt_ms=spool.replay_attempt_ms(),
        records=records, health=health,
        utterances_spoken=sum(c.utterances_spoken for c in load.calls),
        user_transcripts=sum(c.user_transcripts for c in load.calls),
        responses_created=sum(c.responses_created for c in load.calls),
        bridge_log=_bridge_log_facts(log_path) if log_path else {},
        samples=sampler.samples,
    )
    fig["window"] = window
    fig["_load"] = load
    return fig


async def _outage(pg: PgCluster, clock: OutageClock, t0_ns: int, p: Params) -> None:
    def now() -> float:
        return (time.monotonic_ns() - t0_ns) / 1e9

    await asyncio.sleep(max(0.0, p.outage_start_s - now()))
    clock.stop_begin = now()
    await asyncio.to_thread(pg.stop, "fast")
    clock.stop_done = now()
    print(f"  database stopped at {clock.stop_done:.1f} s", file=sys.stderr, flush=True)
    await asyncio.sleep(max(0.0, clock.stop_done + p.outage_s - now()))
    clock.start_begin = now()
    await asyncio.to_thread(pg.start)
    clock.start_done = now()
    print(f"  database started at {clock.start_done:.1f} s", file=sys.stderr, flush=True)


def problems_of(fig: dict[str, Any]) -> list[str]:
    """Why a run failed: records lost or duplicated, the spool, health, the calls themselves."""
    out: list[str] = []
    r = fig["records"]
    if r["lost"]:
        out.append(f"{r['lost']} record shortfall(s): " + "; ".join(r["problems"]["lost"][:3]))
    if r["duplicated"]:
        out.append(f"{r['duplicated']} duplicate(s): " + "; ".join(r["problems"]["duplicated"][:3]))
    if r["unexpected"]:
        out.append(f"{r['unexpected']} unexpected record(s): " + "; ".join(r["problems"]["unexpected"][:3]))
    if not r["spool_in_order"]:
        out.append("spool not drained in order: " + "; ".join(r["problems"]["order"][:3]))
    if not r["verify_ok"]:
        out.append("audit verify failed: " + "; ".join(r["verify_problems"]))
    if fig["bridge_durable_records"] is not None and fig["bridge_durable_records"] != r["ledger"]:
        out.append(f"the bridge made {fig['bridge_durable_records']:g} records durable, the ledger holds {r['ledger']}")
    if not fig["drained"]:
        out.append(f"the spool did not drain within {fig['drain_s']:.0f} s (healthz {fig['healthz_at_end']}, "
                   f"{fig['spool_lines_at_end']} lines left)")
    if fig["spool_lines_at_end"]:
        out.append(f"{fig['spool_lines_at_end']} lines left in the spool")
    if fig["quarantined"]:
        out.append(f"{fig['quarantined']} rows quarantined")
    if fig["health"]["lies"]:
        out.append(f"health lied {len(fig['health']['lies'])} time(s): " + "; ".join(fig["health"]["lies"][:3]))
    if fig["dropped"] or fig["call_errors"]:
        out.append(f"{fig['dropped']} frames dropped, call errors: {fig['call_errors'][:2]}")
    if fig["outage"] is not None and not fig["bridge_spooled_records"]:
        out.append("the outage run spooled nothing: the outage did not happen under load")
    return out


# ---------------------------------------------------------------------------- both runs, side by side
async def run(p: Params, *, baselines: int = 2, pin: bool = True, pg: PgCluster | None = None) -> dict[str, Any]:
    """The outage run between ``baselines`` identical runs without it (2: one before, one after; the
    second shows how far two identical runs differ on this machine, the noise the ratio sits in).

    ``pg``: a started cluster of the caller's (a test's fixture); else one is started here and removed after.
    ``pin``: keep this process off the bridge's core (the benchmark; a test leaves its process alone)."""
    if pin:
        pin_load_process()  # before PostgreSQL starts: it inherits the load's cores, off the bridge's
    order = (["baseline 1"] if baselines >= 1 else []) + ["outage"] + (["baseline 2"] if baselines >= 2 else [])
    runs: list[dict[str, Any]] = []
    with (contextlib.nullcontext(pg) if pg is not None else PgCluster()) as pg, workdir() as wd:
        async with TimedSimulator() as sim:
            for name in order:
                outage = name == "outage"
                what = (f"database down at {p.outage_start_s:g} s for {p.outage_s:g} s" if outage else "database up")
                print(f"{name}: {p.calls} calls x {p.call_s:g} s, {what}", file=sys.stderr, flush=True)
                runs.append(await one_run(name.replace(" ", ""), pg, sim, wd, p, outage=outage))
                runs[-1]["run"] = name
    out = next(r for r in runs if r["outage"] is not None)
    base = [r for r in runs if r["outage"] is None]
    fig: dict[str, Any] = {"params": dict(vars(p)), "runs": runs}
    window = out["window"]  # the seconds the database was down, and the same seconds of the baselines
    for r in runs:
        lat = r["_load"].latencies(window) if window else []
        r["window_p50_ms"], r["window_p99_ms"] = pct(lat, 0.5), pct(lat, 0.99)
    if base:  # the baselines' events pooled: one figure for "without the outage"
        pooled = [ms for r in base for ms in r["_load"].latencies()]
        pooled_w = [ms for r in base for ms in r["_load"].latencies(window)] if window else []
        fig["baseline_p50_ms"], fig["baseline_p99_ms"] = pct(pooled, 0.5), pct(pooled, 0.99)
        fig["baseline_window_p99_ms"] = pct(pooled_w, 0.99)
        fig["p50_ratio"] = out["p50_ms"] / fig["baseline_p50_ms"]
        fig["p99_ratio"] = out["p99_ms"] / fig["baseline_p99_ms"]
        fig["window_p99_ratio"] = out["window_p99_ms"] / fig["baseline_window_p99_ms"] if pooled_w else float("nan")
        fig["p99_within_target"] = fig["p99_ratio"] <= P99_TARGET
        if len(base) == 2:  # A/A: the same run twice, no outage in either
            fig["baseline_aa_p99_ratio"] = base[1]["p99_ms"] / base[0]["p99_ms"]
    for r in runs:
        r["problems"] = problems_of(r)
        r.pop("_load", None)
    fig["passed"] = not any(r["problems"] for r in runs)
    return fig


def markdown(fig: dict[str, Any]) -> str:
    p = fig["params"]
    runs = fig["runs"]
    ratios = "p99_ratio" in fig
    cols = ["", *[r["run"] for r in runs]] + (["baselines pooled", "outage / baselines"] if ratios else [])

    def row(label: str, key: Any, pooled: str | None = None, ratio: str | None = None) -> list[Any]:
        vals = [key(r) if callable(key) else r.get(key) for r in runs]
        extra = [fig.get(pooled, "") if pooled else "", fig.get(ratio, "") if ratio else ""] if ratios else []
        return [label, *vals, *extra]

    def health_down(r: dict[str, Any]) -> str:
        if r["outage"] is None:
            return "-"
        h = r["health"]
        said = "; ".join(f"{n} x {k}" for k, n in h["while_down"].items()) or "none"
        grace = "; ".join(f"{n} x {k}" for k, n in h["while_detecting"].items())
        return said + (f" (first {fig['params']['detect_grace']:g} s, not judged: {grace})" if grace else "")

    rows = [
        row("frame latency p50 (ms)", "p50_ms", "baseline_p50_ms", "p50_ratio"),
        row("frame latency p99 (ms)", "p99_ms", "baseline_p99_ms", "p99_ratio"),
        row("p99 in the outage window (ms)", "window_p99_ms", "baseline_window_p99_ms", "window_p99_ratio"),
        row("audio events timed", "events"),
        row("frames dropped / call errors", lambda r: f"{r['dropped']} / {len(r['call_errors'])}"),
        row("bridge CPU-s", "bridge_cpu_s"),
        row("records expected", lambda r: r["records"]["expected"]),
        row("records found", lambda r: r["records"]["found"]),
        row("records lost", lambda r: r["records"]["lost"]),
        row("records duplicated", lambda r: r["records"]["duplicated"]),
        row("ledger entries / bridge's durable count", lambda r: f"{r['records']['ledger']} / {r['bridge_durable_records']:g}"
            if r["bridge_durable_records"] is not None else r["records"]["ledger"]),
        row("audit verify", lambda r: f"ok ({r['records']['verify_checked']})" if r["records"]["verify_ok"] else "FAILED"),
        row("spool lines max (bytes)", lambda r: f"{r['spool_lines_max']} ({r['spool_bytes_max']})"),
        row("one failed replay attempt at the largest spool (ms)", "replay_attempt_ms"),
        row("spooled by the bridge / replayed", lambda r: f"{(r['bridge_spooled_records'] or 0):g} / "
            f"{r['bridge_log'].get('rows_replayed', 0)} in {r['bridge_log'].get('replays', 0)} replay(s)"),
        row("spool drained in order", lambda r: "yes" if r["records"]["spool_in_order"] and r["drained"] else "NO"),
        row("quarantined", "quarantined"),
        row("health samples (lies)", lambda r: f"{r['health']['samples']} ({len(r['health']['lies'])})"),
        row("health while the DB was down", health_down),
        row("outage noticed after (s)", lambda r: r["health"].get("detected_after_s", "-")),
        row("healthz ok again after restart (s)", lambda r: r["health"].get("ok_again_after_s", "-")),
        row("spool empty after restart (s)", lambda r: r["health"].get("spool_empty_after_s", "-")),
        row("health at rest", lambda r: r["health"].get("at_rest", "-")),
        row("passed", lambda r: "yes" if not r["problems"] else "NO"),
    ]
    head = (f"db-outage: {p['calls']} calls x {p['call_s']:g} s ({p['mode'] or 'no pack'}), PostgreSQL stopped at "
            f"{p['outage_start_s']:g} s for {p['outage_s']:g} s; health sampled every {p['sample_interval']:g} s")
    text = head + "\n\n" + report.table(cols, rows)
    if ratios:
        text += (f"\n\naudio p99 outage / baselines {fig['p99_ratio']:.3f} (target <= {P99_TARGET:.2f}: "
                 f"{'within' if fig['p99_within_target'] else 'OUTSIDE'}); in the outage window {fig['window_p99_ratio']:.3f}")
        if "baseline_aa_p99_ratio" in fig:
            text += f"; baseline 2 / baseline 1 (no outage in either) {fig['baseline_aa_p99_ratio']:.3f}"
    for r in runs:
        for prob in r["problems"]:
            text += f"\n{r['run']}: FAILED: {prob}"
    return text


def _env_float(name: str, default: float) -> float:
    v = os.environ.get(name, "").strip()
    return float(v) if v else default


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench db-outage", description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=int(_env_float("DB_OUTAGE_CALLS", DEFAULT_CALLS)),
                    help="concurrent calls (DB_OUTAGE_CALLS; default %(default)s: what one core carries here)")
    ap.add_argument("--outage-seconds", type=float, default=_env_float("DB_OUTAGE_SECONDS", DEFAULT_OUTAGE_S),
                    help="how long PostgreSQL stays down (DB_OUTAGE_SECONDS)")
    ap.add_argument("--outage-start", type=float, default=_env_float("DB_OUTAGE_START", DEFAULT_OUTAGE_START_S),
                    help="seconds into the load the database stops (DB_OUTAGE_START)")
    ap.add_argument("--call-seconds", type=float, default=None,
                    help="length of every call (DB_OUTAGE_CALL_SECONDS; default: outage start + outage + 25 s)")
    ap.add_argument("--mode", default="observe", help="gate mode of the retail-banking pack, or 'none' for no pack")
    ap.add_argument("--sample-interval", type=float, default=SAMPLE_INTERVAL_S)
    ap.add_argument("--detect-grace", type=float, default=DETECT_GRACE_S)
    ap.add_argument("--recover-grace", type=float, default=RECOVER_GRACE_S)
    ap.add_argument("--baselines", type=int, choices=(0, 1, 2), default=2,
                    help="runs without the outage: 2 = one before and one after it (their ratio is the noise), "
                         "1 = before only, 0 = none (no p99 ratio)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    call_s = args.call_seconds or _env_float("DB_OUTAGE_CALL_SECONDS", 0.0) or (
        args.outage_start + args.outage_seconds + DEFAULT_TAIL_S)
    if call_s < args.outage_start + args.outage_seconds + 5:
        ap.error(f"calls of {call_s:g} s end before the database is back and replayed "
                 f"(need at least outage start + outage + 5 s = {args.outage_start + args.outage_seconds + 5:g})")
    if args.outage_start < CYCLE_MS / 1000:
        ap.error("--outage-start must leave the calls time to connect (at least 5 s)")
    p = Params(calls=args.calls, call_s=call_s, outage_s=args.outage_seconds, outage_start_s=args.outage_start,
               mode=None if args.mode == "none" else args.mode, sample_interval=args.sample_interval,
               detect_grace=args.detect_grace, recover_grace=args.recover_grace)
    try:
        fig = asyncio.run(run(p, baselines=args.baselines))
    except PgClusterError as exc:
        print(f"error: the benchmark's own PostgreSQL cluster failed: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the bridge did not start
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report.write("db_outage", fig, markdown(fig), as_json=args.json)
    return 0 if fig["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

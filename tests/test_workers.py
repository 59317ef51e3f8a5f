"""``serve --workers N``: N processes on one port, calls spread over them, one PostgreSQL, a clean stop."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as ws_connect

from hybrid_agent.server.workers import worker_spool

TOKEN = "workers-token"


@pytest.fixture
def pg_url() -> object:
    from conftest import _fresh_pg

    yield from _fresh_pg(upgraded=True)


def _sockets_on(pid: int, port: int, state: str) -> int:
    """Sockets of process ``pid`` in TCP ``state`` whose local port is ``port`` (from /proc: the fds' socket inodes)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            local, inode = cols[1], cols[9]
            if cols[3] == state and int(local.rsplit(":", 1)[1], 16) == port and inode in inodes:
                count += 1
    return count


def _established_on(pid: int, port: int) -> int:
    return _sockets_on(pid, port, "01")


def _listening_on(pid: int, port: int) -> bool:
    return _sockets_on(pid, port, "0A") > 0


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


async def _both_listening(proc: subprocess.Popen[str], lines: list[str], replaced: int | None = None) -> tuple[int, list[int]]:
    """The supervisor's port and its two workers (``replaced`` not among them), once both listen on it.

    Read from /proc rather than from the workers' 'listening' lines: a CI run once saw only worker
    0's line arrive in time.
    """
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        head = next((line for line in list(lines) if line.startswith("bridge supervisor")), None)
        if head is not None:
            port = int(re.search(r":(\d+)/v1/realtime", head).group(1))  # type: ignore[union-attr]
            workers = _children(proc.pid)
            if len(workers) == 2 and replaced not in workers and all(_listening_on(pid, port) for pid in workers):
                return port, workers
        assert proc.poll() is None, f"serve --workers ended early: {''.join(lines)}"
        await asyncio.sleep(0.1)
    raise AssertionError(f"serve --workers did not get both workers listening in 90 s: {''.join(lines)}")


@pytest.mark.postgres
async def test_workers_share_one_port_and_one_database(pg_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "HYBRID_AGENT_BRIDGE_TOKENS": TOKEN, "HYBRID_AGENT_DATABASE_URL": pg_url,
           "HYBRID_AGENT_AUDIT_SPOOL": str(tmp_path / "spool")}
    env.pop("HYBRID_AGENT_WORKERS", None)
    proc = subprocess.Popen([sys.executable, "-m", "hybrid_agent", "serve", "--upstream", "sim", "--port", "0", "--workers", "2"],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []  # everything the supervisor and both workers printed, read by a thread
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        port, workers = await _both_listening(proc, lines)

        url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
        sockets = [await ws_connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) for _ in range(16)]
        for ws in sockets:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.created"
        spread = [_established_on(pid, port) for pid in workers]
        assert sum(spread) == 16 and all(spread), spread  # the kernel spread the calls over both (1 in 32768 it would not)
        for ws in sockets:
            await ws.close()

        # every call of both workers is in the one database
        audit = [sys.executable, "-m", "hybrid_agent", "audit", "calls", "--json", "--limit", "100"]
        calls: list[dict] = []
        for _ in range(50):
            run = subprocess.run(audit, env=env, capture_output=True, text=True, timeout=60)
            calls = json.loads(run.stdout) if run.returncode == 0 else []
            if len(calls) == 16 and all(c.get("outcome") for c in calls):
                break
            await asyncio.sleep(0.3)
        assert len(calls) == 16 and all(c["outcome"] == "completed" for c in calls), calls[:2]

        # a worker that dies is replaced on the same port
        os.kill(workers[0], signal.SIGKILL)
        await _both_listening(proc, lines, replaced=workers[0])
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)
        await asyncio.to_thread(reader.join, 10)  # the pipe closes when the supervisor and workers are gone
    out = "".join(lines)
    assert proc.returncode == 0, out[-2000:]
    assert "Traceback" not in out
    # each worker said where it listens (worker 0 twice: once more after its restart)
    said = sorted(re.search(r"worker (\d)\)", line).group(1) for line in lines if "bridge listening on" in line)  # type: ignore[union-attr]
    assert said == ["0", "0", "1"], out[-2000:]


def test_workers_refuse_sqlite(tmp_path: Path) -> None:
    env = {**os.environ, "HYBRID_AGENT_BRIDGE_TOKENS": TOKEN, "HYBRID_AGENT_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}
    run = subprocess.run([sys.executable, "-m", "hybrid_agent", "serve", "--upstream", "sim", "--port", "0", "--workers", "2"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "needs a shared PostgreSQL" in run.stderr


def test_bad_worker_count_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "HYBRID_AGENT_BRIDGE_TOKENS": TOKEN, "HYBRID_AGENT_WORKERS": "two"}
    run = subprocess.run([sys.executable, "-m", "hybrid_agent", "serve", "--upstream", "sim", "--port", "0"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "at least 1" in run.stderr and "Traceback" not in run.stderr


def test_each_worker_has_its_own_spool() -> None:
    spool = Path("/var/lib/bridge/audit.spool")
    assert worker_spool(spool, 0) != worker_spool(spool, 1)
    assert worker_spool(spool, 1).parent == spool.parent

"""What sits between the callers and the simulator, in its own process: the bare relay or the bridge.

Each is started as a child process (pinned to core 0 where the machine has two or more, the
load generator and the simulator staying on the others), and its CPU time (``utime + stime`` of
all its threads, from ``/proc``) and resident memory are read around a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "policies" / "retail-banking"
TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: the bridge and the relay get core 0; the simulator and load generator the rest
MIDDLE_CORES = {0}


def load_cores() -> set[int]:
    cores = os.sched_getaffinity(0)
    return (cores - MIDDLE_CORES) or cores


def pin_load_process() -> None:
    """Keep the load generator and the simulator off the middle's core."""
    if len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, load_cores())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Middle:
    """A started middle process: where callers connect, and its pid for the readings."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str  # the caller's WebSocket URL (…/v1/realtime)
    headers: dict[str, str]

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def rss_kb(self) -> int:
        return rss_kb(self.proc.pid)


async def _wait_listening(proc: subprocess.Popen[bytes], port: int, what: str, log: Path, timeout_s: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout_s:.0f} s")


def _pin(proc: subprocess.Popen[bytes]) -> None:
    if len(os.sched_getaffinity(0) | MIDDLE_CORES) > 1 and os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
        with contextlib.suppress(OSError):
            os.sched_setaffinity(proc.pid, MIDDLE_CORES)


def _log_file(workdir: str, name: str) -> tuple[Path, Any]:
    path = Path(workdir) / f"{name}.log"  # a file, not a pipe: a chatty child never blocks on a full pipe
    return path, path.open("wb")


async def start_bare_relay(sim_ws_url: str, workdir: str) -> Middle:
    port = free_port()
    log, out = _log_file(workdir, f"bare-relay-{port}")
    with out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "bare_relay.py"), str(port), sim_ws_url, TOKEN],
            stdout=out, stderr=subprocess.STDOUT,
        )
    _pin(proc)
    await _wait_listening(proc, port, "bare relay", log)
    return Middle("bare relay", proc, f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime", AUTH)


async def start_bridge(sim_ws_url: str, mode: str | None, workdir: str, *, db: str | None = None,
                       extra_env: dict[str, str] | None = None, args: list[str] | None = None,
                       src: str | None = None, native: bool = False) -> Middle:
    """``hybrid-agent serve`` against the simulator; ``mode`` None: no pack (relay and audit only).

    ``src``: another checkout whose ``hybrid_agent`` runs instead of this one (a before/after run
    of a change: ``git worktree add /tmp/before <commit>``, then ``--bridge-src /tmp/before``).
    ``native``: ``bench/native_ws.py`` instead of ``serve`` (the uvicorn + Starlette comparison)."""
    port = free_port()
    env = {
        **os.environ,
        **({"PYTHONPATH": str(Path(src).resolve())} if src else {}),
        "HYBRID_AGENT_BRIDGE_TOKENS": TOKEN,
        "HYBRID_AGENT_DATABASE_URL": db or f"sqlite:///{workdir}/audit-{mode or 'plain'}-{port}.db",
        "HYBRID_AGENT_AUDIT_SPOOL": f"{workdir}/spool-{port}",
        "HYBRID_AGENT_PSEUDONYM_KEY": "bench-pseudonym-key-0123456789",
        "OPENAI_API_KEY": "sim",
        **(extra_env or {}),
    }
    if native:  # bench/native_ws.py: the same call on a bare websockets server (settings from the environment)
        cmd = [sys.executable, str(ROOT / "bench" / "native_ws.py"), str(port), sim_ws_url]
        if mode is not None:
            env.update({"HYBRID_AGENT_POLICY_PACK": str(PACK), "HYBRID_AGENT_GATE_MODE": mode})
    else:
        cmd = [sys.executable, "-m", "hybrid_agent", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--upstream", sim_ws_url, *(args or [])]
        if mode is not None:
            cmd += ["--policy", str(PACK), "--gate", mode]
    log, out = _log_file(workdir, f"bridge-{mode or 'plain'}-{port}")
    with out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    _pin(proc)
    await _wait_listening(proc, port, f"bridge ({mode or 'no pack'})", log)
    name = ("bridge native" if native else "bridge") + (f" {mode}" if mode else "")
    return Middle(name, proc, f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime", AUTH)


async def stop(middle: Middle) -> None:
    middle.proc.terminate()
    try:
        await asyncio.to_thread(middle.proc.wait, 30)
    except subprocess.TimeoutExpired:
        middle.proc.kill()
        await asyncio.to_thread(middle.proc.wait)


def workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="hybrid-agent-bench-")


def direct_headers(sim: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.api_key}"} if sim.api_key else {}

"""``serve --workers N``: N bridge processes on one port, sharing nothing but the audit database.

One Python process runs one event loop on one core, so a bridge scales across cores the way
it scales across machines: more processes.  Each worker is a whole ``hybrid-agent serve``
with its own listening socket on the same port (``SO_REUSEPORT``: the kernel spreads new
connections across them); a call lives in the worker that accepted it, start to end, so no
state crosses processes.  Each worker has its own audit spool (``<spool>.worker-<i>``, kept
by the same index across restarts, so a restarted worker replays its own); all write to one
PostgreSQL (SQLite is one process's database, and is refused here).

The supervisor (this module) reserves the port, starts the workers, restarts one that dies
(a crash must not shrink capacity for good), and on SIGTERM or SIGINT passes the signal on
and waits for every worker to finish its calls and flush its audit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from hybrid_agent.settings import Settings

#: a worker that exits with an error (not a signal) within this long of starting failed to start
#: (a bad setting, the database's schema): stop everything rather than restart it in a loop
STARTUP_GRACE_S = 20.0
#: pause before restarting a worker that died after starting
RESTART_DELAY_S = 1.0


def worker_spool(spool: Path, index: int) -> Path:
    return spool.with_name(f"{spool.name}.worker-{index}")


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound (not listening) SO_REUSEPORT socket: holds ``port`` (a free one for 0) for the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def worker_command(args: argparse.Namespace, port: int) -> list[str]:
    """``serve`` with this invocation's flags, on the reserved port, one worker."""
    cmd = [sys.executable, "-m", "hybrid_agent"]
    if getattr(args, "verbose", False):
        cmd.append("-v")
    cmd.append("serve")
    flags = {"host": "--host", "upstream": "--upstream", "model": "--model", "sim_scenario": "--sim-scenario",
             "policy_pack": "--policy", "gate_mode": "--gate", "db": "--db",
             "tls_cert_file": "--tls-cert", "tls_key_file": "--tls-key"}  # each worker terminates TLS itself
    for name, flag in flags.items():
        value = getattr(args, name, None)
        if value is not None:
            cmd += [flag, str(value)]
    return cmd + ["--port", str(port)]


class Supervisor:
    """Starts N workers, restarts the ones that die, stops them all on a signal."""

    def __init__(self, n: int, args: argparse.Namespace, settings: Settings) -> None:
        self.n = n
        self.args = args
        self.settings = settings
        self.stopping = False
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.started_at: dict[int, float] = {}

    def _spawn(self, index: int, port: int) -> None:
        env = {**os.environ, "HYBRID_AGENT_REUSE_PORT": "1", "HYBRID_AGENT_WORKER_INDEX": str(index),
               "HYBRID_AGENT_AUDIT_SPOOL": str(worker_spool(self.settings.audit_spool, index))}
        self.procs[index] = subprocess.Popen(worker_command(self.args, port), env=env)
        self.started_at[index] = time.monotonic()

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = True
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)

    def run(self) -> int:
        holder = reserve_port(self.settings.host, self.settings.port)
        port = holder.getsockname()[1]
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        try:
            for i in range(self.n):
                self._spawn(i, port)
            scheme = "wss" if self.settings.tls_cert_file is not None else "ws"
            print(f"bridge supervisor: {self.n} workers on {scheme}://{self.settings.host}:{port}/v1/realtime "
                  f"(pids {', '.join(str(p.pid) for p in self.procs.values())})", flush=True)
            return self._watch(port)
        finally:
            holder.close()

    def _watch(self, port: int) -> int:
        failed = 0
        while self.procs:
            time.sleep(0.2)
            for index, proc in list(self.procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                del self.procs[index]
                if self.stopping:
                    failed = failed or (code not in (0, -signal.SIGTERM, -signal.SIGINT))
                    continue
                if code > 0 and time.monotonic() - self.started_at[index] < STARTUP_GRACE_S:
                    print(f"error: worker {index} exited with {code} while starting: stopping all workers", file=sys.stderr)
                    self._stop(signal.SIGTERM, None)
                    failed = 1
                    continue
                print(f"bridge supervisor: worker {index} (pid {proc.pid}) exited with {code}; restarting it",
                      file=sys.stderr, flush=True)
                time.sleep(RESTART_DELAY_S)
                self._spawn(index, port)
        return 2 if failed else 0


def serve_workers(n: int, args: argparse.Namespace, settings: Settings) -> int:
    from hybrid_agent.audit.store import to_url

    if to_url(settings.database_url).get_backend_name() == "sqlite":
        print("error: --workers needs a shared PostgreSQL audit database (HYBRID_AGENT_DATABASE_URL or --db); "
              "SQLite is one process's database", file=sys.stderr)
        return 2
    return Supervisor(n, args, settings).run()

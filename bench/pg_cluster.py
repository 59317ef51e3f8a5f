"""A throw-away PostgreSQL cluster of one's own, on a free port, that can be stopped and started at will.

The database-outage benchmark (``bench/db_outage.py``) and its short test (``tests/test_db_outage.py``)
stop the audit database under load.  They must never touch the shared server on 5432 that other
tests use, so each starts its own cluster: ``initdb --auth=trust`` into a temporary directory,
``pg_ctl start`` on a free port of 127.0.0.1 with its Unix socket in that directory, and
``pg_ctl stop -m fast`` / ``start`` for the outage.  Run as root, the server runs as the ``postgres``
user (``runuser -u postgres --``; PostgreSQL refuses to run as root) and the directory is chowned to
it; run as anyone else, as that user.

    with PgCluster() as pg:          # initdb + start; stopped and deleted on exit, even on an error
        url = pg.create_database("audit")     # postgresql://postgres@127.0.0.1:PORT/audit
        pg.stop()                    # the outage: fast shutdown, connections cut
        pg.start()

Anything that goes wrong raises :class:`PgClusterError` with the server's log tail: a caller that
needs the cluster fails loudly, it never skips.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

SUPERUSER = "postgres"


class PgClusterError(RuntimeError):
    """The cluster could not be created, started or stopped (the message ends with the server log's tail)."""


def _version_key(path: str) -> tuple[int, ...]:
    parts = Path(path).parts
    for p in parts:
        if p.isdigit():
            return (int(p),)
    return (0,)


def pg_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/*/bin`` holding ``pg_ctl`` and ``initdb``, else where ``PATH`` has them."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version_key)
    for pg_ctl in reversed(found):
        d = Path(pg_ctl).parent
        if (d / "initdb").exists():
            return d
    which = shutil.which("pg_ctl")
    if which and shutil.which("initdb"):
        return Path(os.path.realpath(which)).parent
    raise PgClusterError("PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/pg_ctl, no pg_ctl on PATH)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """One PostgreSQL cluster in a temporary directory, listening on ``127.0.0.1:port`` only."""

    def __init__(self, port: int | None = None, *, base_dir: str | Path | None = None, settings: dict[str, str] | None = None) -> None:
        self.bin = pg_bin_dir()
        self.port = port or free_port()
        self._fixed_port = port is not None
        self.base = Path(tempfile.mkdtemp(prefix="hybrid-agent-pg-", dir=base_dir))
        self.data = self.base / "data"
        self.sock = self.base / "sock"
        self.log = self.base / "server.log"
        self.settings = dict(settings or {})
        self.as_root = os.geteuid() == 0
        self.running = False
        self._closed = False
        self.sock.mkdir()
        if self.as_root:
            import pwd

            pw = pwd.getpwnam(SUPERUSER)
            for p in (self.base, self.sock):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        atexit.register(self.close)  # a benchmark interrupted with Ctrl-C still leaves no server behind

    # ------------------------------------------------------------------ commands
    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", SUPERUSER, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.base)

    def _fail(self, what: str, proc: subprocess.CompletedProcess[str] | None = None) -> PgClusterError:
        out = ((proc.stdout + proc.stderr).strip() if proc is not None else "")[-1500:]
        try:
            log = self.log.read_text(errors="replace")[-1500:]
        except OSError:
            log = "(no server log)"
        return PgClusterError(f"PostgreSQL cluster {self.data} port {self.port}: {what}\n{out}\n--- server log ---\n{log}")

    def init(self) -> None:
        """``initdb --auth=trust`` (once)."""
        if (self.data / "PG_VERSION").exists():
            return
        proc = self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", SUPERUSER, "-E", "UTF8",
                         "--no-instructions", "--locale=C")
        if proc.returncode != 0:
            raise self._fail("initdb failed", proc)

    def _options(self) -> str:
        opts = {"port": str(self.port), "unix_socket_directories": str(self.sock), "listen_addresses": "127.0.0.1",
                **self.settings}
        return " ".join(f"-c {k}={v}" for k, v in opts.items())

    def start(self) -> None:
        """Start the server and wait until it accepts connections (``pg_ctl -w``).

        The first start picks another free port if the chosen one was taken meanwhile."""
        self.init()
        for attempt in range(3):
            proc = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self._options(), "-w", "-t", "60",
                             "start")
            if proc.returncode == 0:
                self.running = True
                return
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            if "Address already in use" in log and not self._fixed_port and not self.running and attempt < 2:
                self.port = free_port()
                continue
            raise self._fail("pg_ctl start failed", proc)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: open connections are cut, as in a crash of the database host's service)."""
        proc = self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        if proc.returncode != 0 and self.is_running():
            raise self._fail(f"pg_ctl stop -m {mode} failed", proc)
        self.running = False

    def is_running(self) -> bool:
        proc = self._run("pg_ctl", "-D", str(self.data), "status", timeout=30)
        return proc.returncode == 0

    def close(self) -> None:
        """Stop the server (fast, then immediate) and delete the directory.  Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            if (self.data / "postmaster.pid").exists():
                try:
                    self.stop("fast")
                except Exception:
                    self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)

    def __enter__(self) -> PgCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ databases
    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres", **kw: Any) -> Any:
        import psycopg

        return psycopg.connect(self.url(database), connect_timeout=5, **kw)

    def create_database(self, name: str) -> str:
        """``CREATE DATABASE name``; returns its URL."""
        with self.connect(autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Until a connection succeeds (after ``start``, ``pg_ctl -w`` already waited; this double-checks TCP)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.connect().close()
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise self._fail(f"no connection within {timeout_s:g} s: {exc}") from None
                time.sleep(0.1)

"""Start ``hybrid-agent serve --upstream sim`` as a real process for the shutdown and drain tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

TOKEN = "shutdown-token"


async def start_serve(tmp_path: Path, drain_s: float) -> tuple[subprocess.Popen[str], dict[str, str], str]:
    """``hybrid-agent serve --upstream sim`` on a free port with its own SQLite audit: (process, env, ws URL)."""
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    env = {**os.environ, "HYBRID_AGENT_BRIDGE_TOKENS": TOKEN, "HYBRID_AGENT_DATABASE_URL": db,
           "HYBRID_AGENT_AUDIT_SPOOL": str(tmp_path / "spool"), "HYBRID_AGENT_DRAIN_S": str(drain_s)}
    server = subprocess.Popen([sys.executable, "-m", "hybrid_agent", "serve", "--upstream", "sim", "--port", "0"],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = await asyncio.to_thread(server.stdout.readline)  # type: ignore[union-attr]
    if "listening on" not in line:
        server.kill()
        raise AssertionError(line + server.stderr.read())  # type: ignore[union-attr]
    return server, env, line.split("listening on ", 1)[1].split(" ", 1)[0]

"""``make compat``: real third-party Realtime clients, at their defaults, through the bridge.

Run with the project's own interpreter: ``.venv/bin/python -m bench.compat.run``.

1. Creates or reuses one venv per framework under ``$HYBRID_AGENT_COMPAT_VENVS/<name>``
   (default ``~/.cache/hybrid-agent/compat-venvs``: outside the checkout, so a fresh clone
   on the same machine reuses it) from its
   fully pinned ``requirements-<name>.txt`` (reused while the file's hash, stamped in the
   venv, is unchanged).  These pins are never the product's dependencies.
2. Starts ``hybrid-agent serve --upstream sim`` on a free port with a fresh SQLite audit
   database, a bridge token and ``bench/compat/scenario.yaml`` (a function tool, spoken
   answers, a barge-in).
3. Runs each client script (``clients/``) in its venv, one after the other; each prints a
   JSON summary of what it received and exits non-zero on failure.
4. Stops the bridge (flushing the audit) and checks ``hybrid-agent audit calls --json`` and
   ``audit show CALL --json`` for each client's call.

Artifacts of the last run (summaries, every frame each client sent and received, the bridge
log, the audit of each call) are left in ``bench/compat/.last-run/``.  Exit 0 when every check
of every client passed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent
#: outside the checkout, so CI's fresh clones reuse them while the pins are unchanged
VENVS = Path(os.environ.get("HYBRID_AGENT_COMPAT_VENVS") or Path.home() / ".cache" / "hybrid-agent" / "compat-venvs")
RESULTS = HERE / ".last-run"
SCENARIO = HERE / "scenario.yaml"
TOKEN = "compat-suite-token"
STAMP = ".compat-requirements.sha256"
TOOL_NAME = "get_balance"
TOOL_OUTPUT_MARKER = "1234.56"
CLIENT_TIMEOUT_S = 120


@dataclass(frozen=True)
class Client:
    name: str
    script: str
    requirements: str | None  # None: the project's own .venv

    def python(self) -> Path:
        if self.requirements is None:
            return Path(sys.executable)
        return VENVS / self.name / "bin" / "python"


CLIENTS = [
    Client("openai", "openai_sdk_client.py", None),
    Client("openai-agents", "openai_agents_client.py", "requirements-openai-agents.txt"),
    Client("pipecat", "pipecat_client.py", "requirements-pipecat.txt"),
]


def log(msg: str) -> None:
    print(f"compat: {msg}", flush=True)


# ---------------------------------------------------------------------------- venvs
def _digest(req: Path) -> str:
    h = hashlib.sha256(req.read_bytes())
    h.update(f"\npython {sys.version_info[0]}.{sys.version_info[1]}".encode())
    return h.hexdigest()


def venv_is_current(client: Client) -> bool:
    assert client.requirements is not None
    stamp = VENVS / client.name / STAMP
    return client.python().exists() and stamp.exists() and stamp.read_text().strip() == _digest(HERE / client.requirements)


def start_venv_build(client: Client, logdir: Path) -> subprocess.Popen[bytes]:
    """Recreate the client's venv from scratch and install its pins (in the background)."""
    assert client.requirements is not None
    venv = VENVS / client.name
    shutil.rmtree(venv, ignore_errors=True)
    VENVS.mkdir(parents=True, exist_ok=True)
    req = HERE / client.requirements
    # --no-deps: the file is the whole resolved set, so nothing unpinned can sneak in;
    # `pip check` then proves the set is complete and consistent.
    script = (
        f'set -e; "{sys.executable}" -m venv "{venv}"; '
        f'"{venv}/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "{req}"; '
        f'"{venv}/bin/python" -m pip check --disable-pip-version-check'
    )
    out = open(logdir / f"venv-{client.name}.log", "wb")
    return subprocess.Popen(["bash", "-c", script], stdout=out, stderr=subprocess.STDOUT)


def ensure_venvs(clients: list[Client], logdir: Path) -> list[str]:
    """Build the stale venvs in parallel; the names of those that failed."""
    builds = {}
    for c in clients:
        if c.requirements is None:
            continue
        if venv_is_current(c):
            log(f"venv {c.name}: reused ({VENVS / c.name})")
        else:
            log(f"venv {c.name}: creating from {c.requirements} ...")
            builds[c] = (start_venv_build(c, logdir), time.monotonic())
    failed = []
    for c, (proc, t0) in builds.items():
        rc = proc.wait()
        if rc == 0:
            (VENVS / c.name / STAMP).write_text(_digest(HERE / c.requirements) + "\n")  # type: ignore[operator]
            log(f"venv {c.name}: created in {time.monotonic() - t0:.0f} s")
        else:
            failed.append(c.name)
            log(f"venv {c.name}: FAILED (see {logdir / f'venv-{c.name}.log'}):")
            print((logdir / f"venv-{c.name}.log").read_text(errors="replace")[-3000:])
    return failed


# ---------------------------------------------------------------------------- bridge
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hybrid_agent(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("hybrid-agent")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "hybrid_agent"]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, cwd=PROJECT)
    if check and proc.returncode != 0:
        raise RuntimeError(f"hybrid-agent {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


class Bridge:
    def __init__(self, db_url: str, logdir: Path) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/v1"
        self.db_url = db_url
        self.log_path = logdir / "bridge.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "HYBRID_AGENT_BRIDGE_TOKENS": TOKEN,
               "HYBRID_AGENT_PSEUDONYM_KEY": "compat-suite-pseudonym-key"}
        exe = Path(sys.executable).with_name("hybrid-agent")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "hybrid_agent"]
        self.proc = subprocess.Popen(
            [*cmd, "serve", "--upstream", "sim", "--host", "127.0.0.1", "--port", str(self.port),
             "--sim-scenario", str(SCENARIO), "--db", self.db_url],
            stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT, env=env, cwd=PROJECT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the bridge exited {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{self.port}/healthz",
                                             headers={"Authorization": f"Bearer {TOKEN}"})
                with urllib.request.urlopen(req, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the bridge did not answer /healthz within 30 s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # graceful: the audit writer flushes
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------------------- checks
@dataclass
class Result:
    client: str
    version: str = "?"
    seconds: float = 0.0
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append((name, bool(ok), detail))

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(ok for _, ok, _ in self.checks)


def run_client(client: Client, bridge: Bridge, logdir: Path) -> tuple[dict[str, Any] | None, int, float, float]:
    out = logdir / f"{client.name}.summary.json"
    frames = logdir / f"{client.name}.frames.jsonl"
    cmd = [str(client.python()), str(HERE / "clients" / client.script), "--url", bridge.url, "--token", TOKEN,
           "--out", str(out), "--frames", str(frames)]
    t0 = time.time()
    with open(logdir / f"{client.name}.log", "wb") as err:
        try:
            rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=err, timeout=CLIENT_TIMEOUT_S,
                                cwd=PROJECT).returncode
        except subprocess.TimeoutExpired:
            rc = -1
    t1 = time.time()
    summary = json.loads(out.read_text()) if out.exists() else None
    return summary, rc, t0, t1


def check_client(res: Result, summary: dict[str, Any] | None, rc: int, log_path: Path) -> None:
    if summary is None:
        tail = log_path.read_text(errors="replace")[-1500:] if log_path.exists() else ""
        res.check("client ran", False, f"exit {rc}, no summary; log tail:\n{tail}")
        return
    res.version = summary.get("version", "?")
    res.check("client ran to the end", rc == 0 and not summary.get("exception"),
              summary.get("exception") or ("; ".join(summary.get("failures") or []) if rc else ""))
    res.check("audio received", summary.get("audio_bytes", 0) > 0, f"{summary.get('audio_bytes', 0)} bytes")
    ran = [c for c in summary.get("tool_calls") or [] if c.get("name") == TOOL_NAME]
    res.check("tool ran in the client", bool(ran), json.dumps(ran)[:200])
    outs = summary.get("tool_output_function_call_outputs_sent") or []
    said = summary.get("assistant_transcripts") or []
    res.check("tool output reached the upstream",
              any(TOOL_OUTPUT_MARKER in (o or "") for o in outs) and any(TOOL_OUTPUT_MARKER in (t or "") for t in said),
              f"function_call_output sent: {outs}; replies: {said[:2]}")
    errors = summary.get("errors") or []
    res.check("no Realtime error event", not errors, "; ".join(json.dumps(e) for e in errors)[:1500])
    barge = bool(summary.get("truncates_sent") or summary.get("cancels_sent") or summary.get("cancelled_responses"))
    res.check("barge-in (truncate/cancel)", barge,
              f"truncates: {summary.get('truncates_sent')}, cancels: {summary.get('cancels_sent')}, "
              f"cancelled responses: {summary.get('cancelled_responses')}")
    res.check("instructions reached the upstream", summary.get("instructions_in_session_updated", False),
              "the upstream's session.updated (relayed to the client) carries the client's instructions")


def check_audit(res: Result, call: dict[str, Any] | None, shown: dict[str, Any] | None) -> None:
    if call is None or shown is None:
        res.check("audit: call recorded", False, "no call in `audit calls` within the client's run")
        return
    res.check("audit: call recorded", True, f"{call['call_id']} outcome={call.get('outcome')} turns={call.get('turns')}")
    turns = shown.get("turns") or []
    roles = [t.get("role") for t in turns]
    res.check("audit: user and assistant turns", roles.count("user") >= 3 and roles.count("assistant") >= 3,
              f"roles: {roles}")
    res.check("audit: interrupted turn", any(t.get("interrupted") for t in turns),
              "; ".join(f"heard {t.get('heard_text')!r} at {t.get('audio_end_ms')} ms"
                        for t in turns if t.get("interrupted")))
    tools = [t for t in shown.get("tool_calls") or [] if t.get("name") == TOOL_NAME]
    res.check("audit: tool call with its result",
              any(TOOL_OUTPUT_MARKER in str((t.get("result") or {}).get("output")) for t in tools),
              json.dumps([{"name": t.get("name"), "arguments": t.get("arguments"), "result": t.get("result")}
                          for t in tools])[:400])
    events = shown.get("events") or []
    # call_events also hold bridge facts (source "bridge": a model mapped, a session.update field
    # rewritten); only upstream errors and refusals are failures
    bad = [e for e in events if e.get("refused") or e.get("source") != "bridge"]
    res.check("audit: no upstream error or refusal", not bad and not shown.get("config_refused"),
              f"config_refused={shown.get('config_refused')} events={json.dumps(bad)[:1500]}")
    res.check("audit: call completed", call.get("outcome") == "completed", f"outcome={call.get('outcome')}")
    res.check("audit: errors count is 0", call.get("errors") == 0, f"errors={call.get('errors')}")
    configured = [e for e in events if e.get("kind") == "session_configured"]
    res.check("audit: the accepted configuration has the client's instructions and tool",
              any("instructions sha256:" in (e.get("message") or "") and TOOL_NAME in (e.get("message") or "") for e in configured),
              "; ".join(str(e.get("message")) for e in configured)[:400])
    for e in events:
        if e not in bad:
            res.notes.append(f"audit fact: {e.get('kind')}: {e.get('message')}")


def report(results: list[Result]) -> None:
    print()
    width = max(len(name) for r in results for name, _, _ in r.checks) if any(r.checks for r in results) else 20
    for r in results:
        print(f"== {r.client} {r.version}: {'PASS' if r.ok else 'FAIL'} ({r.seconds:.1f} s)")
        for name, ok, detail in r.checks:
            line = f"   {'ok  ' if ok else 'FAIL'} {name:<{width}}"
            if not ok and detail:
                line += f"  {detail}"
            print(line)
        for note in r.notes:
            print(f"   note: {note}")
    print()
    print("compat: " + ", ".join(f"{r.client} {'PASS' if r.ok else 'FAIL'}" for r in results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compat.run", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=[c.name for c in CLIENTS],
                        help="run only this client (repeatable)")
    parser.add_argument("--venvs-only", action="store_true", help="create or refresh the client venvs, run nothing")
    args = parser.parse_args(argv)
    clients = [c for c in CLIENTS if not args.only or c.name in args.only]
    t_start = time.monotonic()

    if not args.venvs_only:
        shutil.rmtree(RESULTS, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    failed_venvs = ensure_venvs(clients, RESULTS)
    if args.venvs_only:
        return 1 if failed_venvs else 0

    tmp = Path(tempfile.mkdtemp(prefix="hybrid-agent-compat-"))
    db_url = f"sqlite:///{tmp / 'audit.db'}"
    hybrid_agent("db", "upgrade", "--db", db_url)
    bridge = Bridge(db_url, RESULTS)
    results: list[Result] = []
    runs: list[tuple[Client, dict[str, Any] | None, int, float, float]] = []
    try:
        bridge.start()
        log(f"bridge on {bridge.url} (upstream sim, scenario {SCENARIO.name}, audit {db_url})")
        for c in clients:
            if c.name in failed_venvs:
                runs.append((c, None, -2, 0.0, 0.0))
                continue
            log(f"running {c.name} ...")
            summary, rc, t0, t1 = run_client(c, bridge, RESULTS)
            runs.append((c, summary, rc, t0, t1))
            log(f"{c.name}: exit {rc} in {t1 - t0:.1f} s")
    finally:
        bridge.stop()

    calls = json.loads(hybrid_agent("audit", "calls", "--json", "--db", db_url).stdout or "[]")
    matched: dict[str, list[dict[str, Any]]] = {
        c.name: [k for k in calls if t0 - 1.0 <= float(k.get("started_at") or 0) <= t1] for c, _, _, t0, t1 in runs}
    with concurrent.futures.ThreadPoolExecutor() as pool:  # one `audit show` per call, side by side
        shows = {name: pool.submit(hybrid_agent, "audit", "show", mine[0]["call_id"], "--json", "--db", db_url,
                                   check=False)
                 for name, mine in matched.items() if len(mine) == 1}
    for c, summary, rc, t0, t1 in runs:
        res = Result(c.name, seconds=t1 - t0)
        results.append(res)
        if rc == -2:
            res.check("venv created", False, f"see {RESULTS / f'venv-{c.name}.log'}")
            continue
        check_client(res, summary, rc, RESULTS / f"{c.name}.log")
        mine = matched[c.name]
        if len(mine) > 1:
            res.notes.append(f"{len(mine)} calls recorded during the run: {[k['call_id'] for k in mine]}")
        call, shown = (mine[0] if len(mine) == 1 else None), None
        if c.name in shows:
            proc = shows[c.name].result()
            shown = json.loads(proc.stdout) if proc.returncode == 0 else None
            (RESULTS / f"{c.name}.audit.json").write_text(proc.stdout or proc.stderr)
        check_audit(res, call, shown)
    shutil.rmtree(tmp, ignore_errors=True)
    report(results)
    log(f"artifacts in {RESULTS.relative_to(PROJECT)}; total {time.monotonic() - t_start:.1f} s")
    return 0 if results and all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

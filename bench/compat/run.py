"""``make compat``: real third-party Realtime clients, at their defaults, through the bridge.

Run with the project's own interpreter: ``.venv/bin/python -m bench.compat.run``.

1. Creates or reuses one venv per framework under ``$HYBRID_AGENT_COMPAT_VENVS/<name>``
   (default ``~/.cache/hybrid-agent/compat-venvs``: outside the checkout, so a fresh clone
   on the same machine reuses it) from its
   fully pinned ``requirements-<name>.txt`` (reused while the file's hash, stamped in the
   venv, is unchanged).  These pins are never the product's dependencies.
2. Starts two ``hybrid-agent serve --upstream sim`` bridges on free ports, each with a fresh
   SQLite audit database and a bridge token:
   phase 1 (``client-tool``): ``bench/compat/scenario.yaml`` (a function tool the client
   declares and runs, spoken answers, a barge-in), no policy pack;
   phase 2 (``server-tool``): ``bench/compat/scenario_hold.yaml``, ``--policy
   policies/retail-banking --gate hold`` and ``HYBRID_AGENT_SERVER_TOOLS=1``: the bridge runs
   the pack's tools (DEMO bank) itself, and the client must never see them.
3. Runs each client script (``clients/``) in its venv, one after the other, phase 1 then phase 2
   (``--mode server-tool``); each prints a JSON summary of what it received and exits non-zero
   on failure.
4. Stops the bridges (flushing the audit) and checks ``hybrid-agent audit calls --json`` and
   ``audit show CALL --json`` for each client's call in each phase.

Artifacts of the last run (summaries, every frame each client sent and received, the bridge
log, the audit of each call) are left in ``bench/compat/.last-run/``.  Exit 0 when every check
of every client passed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
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
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent
#: outside the checkout, so CI's fresh clones reuse them while the pins are unchanged
VENVS = Path(os.environ.get("HYBRID_AGENT_COMPAT_VENVS") or Path.home() / ".cache" / "hybrid-agent" / "compat-venvs")
RESULTS = HERE / ".last-run"
SCENARIO = HERE / "scenario.yaml"
SCENARIO_HOLD = HERE / "scenario_hold.yaml"
PACK = PROJECT / "policies" / "retail-banking"
TOKEN = "compat-suite-token"
STAMP = ".compat-requirements.sha256"
TOOL_NAME = "get_balance"
TOOL_OUTPUT_MARKER = "1234.56"
CLIENT_TIMEOUT_S = 120
# phase 2: the retail-banking pack's tools, run by the bridge; the client declares only its own
SERVER_TOOLS = ("verify_identity", "get_balance", "transfer_funds", "block_card")
CLIENT_TOOL = "get_branch_hours"
BALANCE_MARKER = "1234.56"  # the DEMO bank's balance of DEMO-ACC-0001-CUR
DISCLOSURE = "This call is recorded for quality, training and compliance purposes."  # the pack's recording notice
GREETING_MARKER = "How can I help?"  # the end of scenario_hold.yaml's greeting
#: settings the bridges get only from their phase, never from the caller's environment
PHASE_ENV = ("HYBRID_AGENT_POLICY_PACK", "HYBRID_AGENT_GATE_MODE", "HYBRID_AGENT_SERVER_TOOLS", "HYBRID_AGENT_SIM_SCENARIO",
             "HYBRID_AGENT_AUDIT_SPOOL")


@dataclass(frozen=True)
class Phase:
    mode: str  # the clients' --mode
    title: str
    scenario: Path
    tag: str  # artifact name suffix: <client><tag>.summary.json, bridge<tag>.log
    serve_args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()


PHASES = [
    Phase("client-tool", "phase 1: client tool, barge-in, no policy", SCENARIO, ""),
    Phase("server-tool", "phase 2: server tools, gate hold", SCENARIO_HOLD, ".hold",
          serve_args=("--policy", str(PACK), "--gate", "hold"), env=(("HYBRID_AGENT_SERVER_TOOLS", "1"),)),
]


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


T_START = time.monotonic()


def log(msg: str) -> None:
    print(f"compat: [{time.monotonic() - T_START:5.1f} s] {msg}", flush=True)


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
    def __init__(self, phase: Phase, db_path: Path, logdir: Path) -> None:
        self.phase = phase
        self.spool = db_path.with_suffix(".spool")
        db_url = f"sqlite:///{db_path}"
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/v1"
        self.db_url = db_url
        self.log_path = logdir / f"bridge{phase.tag}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        """Start the process (``wait_ready`` then waits for it: the bridges start side by side)."""
        env = {k: v for k, v in os.environ.items() if k not in PHASE_ENV}
        env.update({"HYBRID_AGENT_BRIDGE_TOKENS": TOKEN, "HYBRID_AGENT_PSEUDONYM_KEY": "compat-suite-pseudonym-key",
                    # one spool per bridge process, beside its database (not the checkout's default)
                    "HYBRID_AGENT_AUDIT_SPOOL": str(self.spool), **dict(self.phase.env)})
        exe = Path(sys.executable).with_name("hybrid-agent")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "hybrid_agent"]
        self.proc = subprocess.Popen(
            [*cmd, "serve", "--upstream", "sim", "--host", "127.0.0.1", "--port", str(self.port),
             "--sim-scenario", str(self.phase.scenario), "--db", self.db_url, *self.phase.serve_args],
            stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT, env=env, cwd=PROJECT,
        )

    def prepare(self) -> None:
        """A fresh audit database, then the bridge, answering /healthz."""
        hybrid_agent("db", "upgrade", "--db", self.db_url)
        self.launch()
        self.wait_ready()

    def wait_ready(self) -> None:
        assert self.proc is not None
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


class Run(NamedTuple):
    bridge: Bridge
    client: Client
    summary: dict[str, Any] | None
    rc: int  # -2: its venv could not be built
    t0: float
    t1: float


#: a client's calls in the audit (``audit calls``) and, when there is exactly one, its ``audit show``
Audited = tuple[list[dict[str, Any]], dict[str, Any] | None]


def read_audit(bridge: Bridge, runs: list[Run]) -> dict[tuple[str, str], Audited]:
    """The audit of a stopped bridge's calls, by (phase, client); each ``audit show`` saved in .last-run."""
    calls = json.loads(hybrid_agent("audit", "calls", "--json", "--db", bridge.db_url).stdout or "[]")
    matched = {r.client.name: [k for k in calls if r.t0 - 1.0 <= float(k.get("started_at") or 0) <= r.t1]
               for r in runs if r.rc != -2}
    with concurrent.futures.ThreadPoolExecutor() as pool:  # one `audit show` per call, side by side
        shows = {name: pool.submit(hybrid_agent, "audit", "show", mine[0]["call_id"], "--json", "--db", bridge.db_url,
                                   check=False)
                 for name, mine in matched.items() if len(mine) == 1}
    out: dict[tuple[str, str], Audited] = {}
    for name, mine in matched.items():
        shown = None
        if name in shows:
            proc = shows[name].result()
            shown = json.loads(proc.stdout) if proc.returncode == 0 else None
            (RESULTS / f"{name}{bridge.phase.tag}.audit.json").write_text(proc.stdout or proc.stderr)
        out[(bridge.phase.mode, name)] = (mine, shown)
    return out


# ---------------------------------------------------------------------------- checks
@dataclass
class Result:
    client: str
    phase: str = ""
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
    tag = bridge.phase.tag
    out = logdir / f"{client.name}{tag}.summary.json"
    frames = logdir / f"{client.name}{tag}.frames.jsonl"
    cmd = [str(client.python()), str(HERE / "clients" / client.script), "--url", bridge.url, "--token", TOKEN,
           "--out", str(out), "--frames", str(frames), "--mode", bridge.phase.mode]
    t0 = time.time()
    with open(logdir / f"{client.name}{tag}.log", "wb") as err:
        try:
            rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=err, timeout=CLIENT_TIMEOUT_S,
                                cwd=PROJECT).returncode
        except subprocess.TimeoutExpired:
            rc = -1
    t1 = time.time()
    summary = json.loads(out.read_text()) if out.exists() else None
    return summary, rc, t0, t1


def client_ran(res: Result, summary: dict[str, Any] | None, rc: int, log_path: Path, label: str) -> bool:
    """The checks every client run starts with: it left a summary, ran to the end, got audio."""
    if summary is None:
        tail = log_path.read_text(errors="replace")[-1500:] if log_path.exists() else ""
        res.check("client ran", False, f"exit {rc}, no summary; log tail:\n{tail}")
        return False
    res.version = summary.get("version", "?")
    res.check(label, rc == 0 and not summary.get("exception"),
              summary.get("exception") or ("; ".join(summary.get("failures") or []) if rc else ""))
    res.check("audio received", summary.get("audio_bytes", 0) > 0, f"{summary.get('audio_bytes', 0)} bytes")
    return True


def audit_call_clean(res: Result, call: dict[str, Any], shown: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The audit checks every call shares: no upstream error or refusal, completed, no errors; its
    events and the bad ones among them."""
    events = shown.get("events") or []
    # call_events also hold bridge facts (source "bridge": a model mapped, a session.update field
    # rewritten); only upstream errors and refusals are failures
    bad = [e for e in events if e.get("refused") or e.get("source") != "bridge"]
    res.check("audit: no upstream error or refusal", not bad and not shown.get("config_refused"),
              f"config_refused={shown.get('config_refused')} events={json.dumps(bad)[:1500]}")
    res.check("audit: call completed", call.get("outcome") == "completed", f"outcome={call.get('outcome')}")
    res.check("audit: errors count is 0", call.get("errors") == 0, f"errors={call.get('errors')}")
    return events, bad


def check_client(res: Result, summary: dict[str, Any] | None, rc: int, log_path: Path) -> None:
    if not client_ran(res, summary, rc, log_path, "client ran to the end") or summary is None:
        return
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
    events, bad = audit_call_clean(res, call, shown)
    configured = [e for e in events if e.get("kind") == "session_configured"]
    res.check("audit: the accepted configuration has the client's instructions and tool",
              any("instructions sha256:" in (e.get("message") or "") and TOOL_NAME in (e.get("message") or "") for e in configured),
              "; ".join(str(e.get("message")) for e in configured)[:400])
    for e in events:
        if e not in bad:
            res.notes.append(f"audit fact: {e.get('kind')}: {e.get('message')}")


def check_client_hold(res: Result, summary: dict[str, Any] | None, rc: int, log_path: Path) -> None:
    """Phase 2, what the client saw: a whole call, the balance the bridge's tool read, and nothing
    about that tool."""
    if not client_ran(res, summary, rc, log_path, "client ran to the end (call completed)") or summary is None:
        return
    said = summary.get("assistant_transcripts") or []
    res.check("recording notice heard", any(DISCLOSURE in (t or "") for t in said), f"replies: {said[:2]}")
    res.check("the greeting the client asked for was spoken", any(GREETING_MARKER in (t or "") for t in said),
              f"replies: {said[:2]}; response.create sent: {(summary.get('client_events') or {}).get('response.create', 0)}")
    leaks = summary.get("server_tool_leaks")
    res.check("no event about the server tools reached the client", leaks == [],
              "not checked (no server_tool_leaks in the summary)" if leaks is None else "; ".join(leaks)[:1500])
    counts = summary.get("server_events") or {}
    fc = {k: v for k, v in counts.items() if "function_call" in k}
    res.check("no function_call_arguments events received", not fc, json.dumps(fc))
    res.check("the client ran no tool", not summary.get("tool_calls") and not summary.get("tool_output_function_call_outputs_sent"),
              f"ran: {summary.get('tool_calls')}; outputs sent: {summary.get('tool_output_function_call_outputs_sent')}")
    res.check("balance from the server tool heard", any(BALANCE_MARKER in (t or "") for t in said), f"replies: {said}")
    errors = summary.get("errors") or []
    res.check("no Realtime error event", not errors, "; ".join(json.dumps(e) for e in errors)[:1500])
    tools = summary.get("session_updated_tools") or []
    res.check("session.updated: the client's own tool, none of the bridge's",
              any(CLIENT_TOOL in names for names in tools) and not any(n in SERVER_TOOLS for names in tools for n in names),
              f"session.updated tools: {tools}")
    res.check("instructions reached the upstream", summary.get("instructions_in_session_updated", False),
              "the upstream's session.updated (relayed to the client) ends with the client's instructions")
    if summary.get("truncates_sent") or summary.get("cancels_sent"):
        res.notes.append(f"sent without a scripted barge-in: truncates {summary.get('truncates_sent')}, "
                         f"cancels {summary.get('cancels_sent')}")
    named = summary.get("server_tools_named_in_session_instructions")
    res.check("session.instructions: the client's own, never the pack's (which name the server tools)", not named,
              f"server tools named in session.instructions: {(named or [])[:3]}")


def check_audit_hold(res: Result, call: dict[str, Any] | None, shown: dict[str, Any] | None) -> None:
    """Phase 2, what the audit says: the bridge's tool calls with their results, decided and run by
    the gate in hold mode, after the recording notice."""
    if call is None or shown is None:
        res.check("audit: call recorded", False, "no call in `audit calls` within the client's run")
        return
    res.check("audit: call recorded", True, f"{call['call_id']} outcome={call.get('outcome')} turns={call.get('turns')}")
    head = shown.get("call") or {}
    res.check("audit: gate mode hold, pack retail-banking",
              head.get("gate_mode") == "hold" and head.get("policy_pack") == "retail-banking",
              f"gate_mode={head.get('gate_mode')} policy_pack={head.get('policy_pack')}")
    turns = shown.get("turns") or []
    roles = [t.get("role") for t in turns]
    res.check("audit: user and assistant turns", roles.count("user") >= 2 and roles.count("assistant") >= 3,
              f"roles: {roles}")
    given = [d for d in shown.get("disclosures") or [] if d.get("status") == "given"]
    res.check("audit: recording notice given", any(d.get("disclosure_id") == "recording_notice" for d in given),
              json.dumps(shown.get("disclosures"))[:400])
    tools = shown.get("tool_calls") or []
    shown_tools = json.dumps([{"name": t.get("name"), "arguments": t.get("arguments"), "result": t.get("result")}
                              for t in tools])[:800]
    res.check("audit: server tool calls verify_identity, get_balance", [t.get("name") for t in tools] == ["verify_identity", "get_balance"],
              shown_tools)
    results = {t.get("name"): (t.get("result") or {}) for t in tools}
    res.check("audit: their results (ok; verified basic; the balance)",
              all(r.get("status") == "ok" for r in results.values()) and len(results) == 2
              and "basic" in str(results.get("verify_identity", {}).get("output"))
              and BALANCE_MARKER in str(results.get("get_balance", {}).get("output")), shown_tools)
    actions = shown.get("gate_actions") or []
    summary = [(a.get("action"), a.get("tool"), a.get("status"), a.get("mode")) for a in actions]
    want = [(kind, tool, status) for tool in ("verify_identity", "get_balance")
            for kind, status in (("tool_decided", "allow"), ("tool_run", "ok"))]
    res.check("audit: gate actions tool_decided (allow) and tool_run (ok), mode hold",
              all(any(a[:3] == w and a[3] == "hold" for a in summary) for w in want), json.dumps(summary)[:800])
    clamped = [a for a in actions if a.get("action") == "truncate_clamped"]
    res.check("audit: no truncate_clamped (no barge-in scripted)", not clamped, json.dumps(clamped)[:800])
    res.check("audit: no speech blocked", not shown.get("blocked"),
              json.dumps([a for a in actions if a.get("action") == "speech_blocked"])[:800])
    events, bad = audit_call_clean(res, call, shown)
    configured = [str(e.get("message") or "") for e in events if e.get("kind") == "session_configured"]
    res.check("audit: the accepted configuration has the client's tool", any(CLIENT_TOOL in m for m in configured),
              "; ".join(configured)[:600])
    res.check("audit: the accepted configuration names the bridge's tools too",
              any(all(n in m for n in SERVER_TOOLS) for m in configured), "; ".join(configured)[:400])
    other = [a for a in actions if a.get("action") not in ("tool_decided", "tool_run", "speech_held")]
    if other:
        res.notes.append(f"other gate actions: {json.dumps(other)[:600]}")
    held = [a.get("held_ms") for a in actions if a.get("action") == "speech_held"]
    if held:
        res.notes.append(f"speech held {len(held)}x, ms: {held}")
    for e in events:
        if e not in bad:
            res.notes.append(f"audit fact: {e.get('kind')}: {e.get('message')}")


def report(results: list[Result]) -> None:
    print()
    width = max(len(name) for r in results for name, _, _ in r.checks) if any(r.checks for r in results) else 20
    for r in results:
        print(f"== {r.phase}: {r.client} {r.version}: {'PASS' if r.ok else 'FAIL'} ({r.seconds:.1f} s)")
        for name, ok, detail in r.checks:
            line = f"   {'ok  ' if ok else 'FAIL'} {name:<{width}}"
            if not ok and detail:
                line += f"  {detail}"
            print(line)
        for note in r.notes:
            print(f"   note: {note}")
    print()
    for phase in dict.fromkeys(r.phase for r in results):
        print(f"compat: {phase}: " + ", ".join(f"{r.client} {'PASS' if r.ok else 'FAIL'}" for r in results if r.phase == phase))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compat.run", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=[c.name for c in CLIENTS],
                        help="run only this client (repeatable)")
    parser.add_argument("--phase", action="append", choices=[p.mode for p in PHASES],
                        help="run only this phase (repeatable): client-tool (1) or server-tool (2)")
    parser.add_argument("--venvs-only", action="store_true", help="create or refresh the client venvs, run nothing")
    args = parser.parse_args(argv)
    clients = [c for c in CLIENTS if not args.only or c.name in args.only]
    phases = [p for p in PHASES if not args.phase or p.mode in args.phase]

    if not args.venvs_only:
        shutil.rmtree(RESULTS, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    failed_venvs = ensure_venvs(clients, RESULTS)
    if args.venvs_only:
        return 1 if failed_venvs else 0

    tmp = Path(tempfile.mkdtemp(prefix="hybrid-agent-compat-"))
    # one bridge, and one audit database, per phase
    bridges = [Bridge(phase, tmp / f"audit-{i + 1}.db", RESULTS) for i, phase in enumerate(phases)]
    runs: list[Run] = []
    audits: list[concurrent.futures.Future[dict[tuple[str, str], Audited]]] = []
    # Every `hybrid-agent` command takes seconds to start, so they overlap the clients: phase 2's
    # bridge starts while phase 1 runs; phase 1's audit is read while phase 2 runs.
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(bridges) * 2) as pool:
        ready = [pool.submit(bridge.prepare) for bridge in bridges]
        try:
            for bridge, started in zip(bridges, ready):
                started.result()
                log(f"{bridge.phase.title}: bridge on {bridge.url} (upstream sim, scenario {bridge.phase.scenario.name}"
                    f"{', ' + ' '.join(bridge.phase.serve_args) if bridge.phase.serve_args else ''}, audit {bridge.db_url})")
                mine: list[Run] = []
                for c in clients:
                    if c.name in failed_venvs:
                        mine.append(Run(bridge, c, None, -2, 0.0, 0.0))
                        continue
                    log(f"{bridge.phase.mode}: running {c.name} ...")
                    summary, rc, t0, t1 = run_client(c, bridge, RESULTS)
                    mine.append(Run(bridge, c, summary, rc, t0, t1))
                    log(f"{bridge.phase.mode}: {c.name}: exit {rc} in {t1 - t0:.1f} s")
                bridge.stop()  # flushes its audit
                runs += mine
                audits.append(pool.submit(read_audit, bridge, mine))
        finally:
            for bridge, started in zip(bridges, ready):
                with contextlib.suppress(Exception):
                    started.result()  # a bridge still starting is stopped once it started
                bridge.stop()
        audited = {key: value for future in audits for key, value in future.result().items()}
    results: list[Result] = []
    for bridge, c, summary, rc, t0, t1 in runs:
        key = (bridge.phase.mode, c.name)
        res = Result(c.name, phase=bridge.phase.title, seconds=t1 - t0)
        results.append(res)
        if rc == -2:
            res.check("venv created", False, f"see {RESULTS / f'venv-{c.name}.log'}")
            continue
        hold = bridge.phase.mode == "server-tool"
        (check_client_hold if hold else check_client)(res, summary, rc, RESULTS / f"{c.name}{bridge.phase.tag}.log")
        calls, shown = audited[key]
        if len(calls) > 1:
            res.notes.append(f"{len(calls)} calls recorded during the run: {[k['call_id'] for k in calls]}")
        call = calls[0] if len(calls) == 1 else None
        (check_audit_hold if hold else check_audit)(res, call, shown)
    shutil.rmtree(tmp, ignore_errors=True)
    report(results)
    log(f"artifacts in {RESULTS.relative_to(PROJECT)}; total {time.monotonic() - T_START:.1f} s")
    return 0 if results and all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

"""``hybrid-agent`` command line.  Flags override ``HYBRID_AGENT_*`` environment variables."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from hybrid_agent.settings import Settings, TlsUnavailable, check_tls, load_settings


def _settings(args: argparse.Namespace, **extra: object) -> Settings:
    names = ("host", "port", "upstream", "model", "sim_scenario", "policy_pack", "gate_mode", "tls_cert_file", "tls_key_file")
    fields = {name: getattr(args, name, None) for name in names}
    if getattr(args, "db", None) is not None:
        fields["database_url"] = args.db
    fields.update(extra)
    return load_settings(**fields)


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", help="audit database (SQLAlchemy URL); env HYBRID_AGENT_DATABASE_URL")


def _add_gate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", dest="policy_pack", metavar="PACK", help="policy pack folder; env HYBRID_AGENT_POLICY_PACK")
    p.add_argument(
        "--gate", dest="gate_mode", choices=("off", "observe", "monitor", "hold"),
        help="gate mode with --policy (default observe: decide and record, never block); env HYBRID_AGENT_GATE_MODE",
    )


def _cmd_serve(args: argparse.Namespace) -> int:
    from hybrid_agent.server.runner import BridgeServer, EscalationUnavailable, GateUnavailable, check_escalation_settings

    settings = _settings(args)
    if not settings.bridge_tokens:
        print("error: no bridge tokens configured; set HYBRID_AGENT_BRIDGE_TOKENS (comma separated)", file=sys.stderr)
        return 2
    workers = args.workers if args.workers is not None else os.environ.get("HYBRID_AGENT_WORKERS") or "1"
    if not str(workers).isdigit() or int(workers) < 1:
        print(f"error: --workers / HYBRID_AGENT_WORKERS must be a whole number of at least 1, not {workers!r}", file=sys.stderr)
        return 2
    try:
        check_tls(settings)  # both or neither, readable PEM, the certificate's own key: refused before any worker starts
    except TlsUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if int(workers) > 1 and settings.worker_index is None:
        from hybrid_agent.server.workers import serve_workers

        return serve_workers(int(workers), args, settings)
    from hybrid_agent.audit.store import AuditStoreError
    from hybrid_agent.upstream.connector import UpstreamError

    try:
        check_escalation_settings(settings)  # before anything touches the database
        _first_run_schema(settings.database_url)
        server = BridgeServer(settings)
    except (AuditStoreError, GateUnavailable, EscalationUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        # uvicorn shuts down gracefully on SIGTERM, then raises the signal again with the handler it
        # found; with the default one the process died right there, before the audit writer below
        # was flushed and closed (the calls' last records lost, exit -15)
        def on_sigterm(signum: int, frame: object) -> None:
            if server._server is None or not server._server.started:
                raise KeyboardInterrupt  # still starting: stop now, as Ctrl-C would
            # else uvicorn passing it on after its graceful shutdown: serve's own cleanup follows

        signal.signal(signal.SIGTERM, on_sigterm)
        try:
            await server.connector.check()  # say what is wrong with the upstream before taking calls
        except BaseException:
            await server.connector.stop()
            raise
        await server.start()
        worker = f", worker {settings.worker_index}" if settings.worker_index is not None else ""
        print(f"bridge listening on {server.ws_base_url}/realtime (upstream: {settings.upstream}{worker})", flush=True)
        traces = "off" if settings.otel_exporter == "none" else f"{settings.otel_exporter} {settings.otel_endpoint or '(default endpoint)'}"
        metrics = "GET /metrics" if settings.metrics else "off"
        print(f"telemetry: traces {traces}; metrics {metrics} (docs/observability.md)", flush=True)
        assert server._task is not None and server._server is not None
        uvicorn_server = server._server
        draining: list[asyncio.Task[None]] = []

        async def drain_then_exit() -> None:
            ended = await server.drain()  # no new calls; those in progress finish, up to HYBRID_AGENT_DRAIN_S
            print(f"bridge drained ({ended} call(s) ended at the deadline)", flush=True)
            uvicorn_server.should_exit = True

        def on_drain_signal() -> None:
            # rolling deploys send SIGTERM: drain first (uvicorn's own handler would close every call
            # at once with 1012); a second SIGTERM ends the calls now
            if draining:
                draining.append(asyncio.ensure_future(server.drain(0)))
                return
            draining.append(asyncio.ensure_future(drain_then_exit()))

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_drain_signal)
        try:
            await server._task
        finally:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
            await server.stop()

    from hybrid_agent.server.event_loop import EventLoopUnavailable, run as run_on_loop

    try:
        run_on_loop(run(), settings.event_loop)
    except KeyboardInterrupt:
        pass
    except (AuditStoreError, UpstreamError, EventLoopUnavailable, TlsUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _first_run_schema(database_url: str) -> None:
    """The embedded SQLite default needs no set-up: ``serve`` creates or upgrades its schema.

    PostgreSQL keeps the explicit ``hybrid-agent db upgrade`` (a shared production database
    is migrated by its operator, not by whichever bridge process starts first).
    """
    from hybrid_agent.audit.store import to_url, upgrade

    if to_url(database_url).get_backend_name() == "sqlite":
        upgrade(database_url)


def _cmd_simulator(args: argparse.Namespace) -> int:
    from hybrid_agent.simulator.scenario import ScenarioError, load_scenario
    from hybrid_agent.simulator.server import serve_simulator

    try:
        scenario = load_scenario(args.scenario) if args.scenario else None
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    api_key = args.api_key or os.environ.get("HYBRID_AGENT_SIM_API_KEY") or None
    try:
        asyncio.run(serve_simulator(args.host, args.port, scenario, api_key=api_key))
    except KeyboardInterrupt:
        pass
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from hybrid_agent.demo import run_demo

    return asyncio.run(run_demo(_settings(args), scenario=args.scenario, all_decisions=args.all, twilio=args.twilio))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hybrid-agent", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the Realtime bridge server")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--upstream", help="openai | azure | sim | ws(s)://URL")
    p.add_argument("--model")
    p.add_argument("--sim-scenario", dest="sim_scenario", help="scenario file for --upstream sim")
    p.add_argument("--workers", type=int, metavar="N",
                   help="N bridge processes on one port (SO_REUSEPORT), each with its own audit spool, one shared "
                   "PostgreSQL; env HYBRID_AGENT_WORKERS (docs/scaling.md)")
    p.add_argument("--tls-cert", dest="tls_cert_file", metavar="FILE",
                   help="PEM certificate (chain): serve https:// and wss:// on the port, TLS 1.2 at least; needs --tls-key; "
                   "env HYBRID_AGENT_TLS_CERT_FILE (docs/reliability.md, TLS)")
    p.add_argument("--tls-key", dest="tls_key_file", metavar="FILE",
                   help="the certificate's unencrypted PEM private key; env HYBRID_AGENT_TLS_KEY_FILE")
    _add_gate(p)
    _add_db(p)
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("simulator", help="run the embedded Realtime simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--scenario", help="scenario YAML (default: answer every utterance)")
    p.add_argument(
        "--api-key", dest="api_key", metavar="KEY",
        help="require 'Authorization: Bearer KEY' (else HTTP 401); env HYBRID_AGENT_SIM_API_KEY. "
        "Without one the simulator is open to any local process (a warning says so)",
    )
    p.set_defaults(func=_cmd_simulator)

    p = sub.add_parser("demo", help="a scripted call through the bridge and the simulator (no keys, no network)")
    p.add_argument("--scenario", help="scenario YAML or shipped name (default: bank_enforced in hold mode, then bank_monitor "
                   "in monitor mode, the bridge running the pack's tools)")
    p.add_argument("--all", action="store_true", help="list every decision, also those where no rule matched (default allow)")
    p.add_argument("--twilio", action="store_true", help="one scripted phone call over Twilio Media Streams instead "
                   "(signed voice webhook, mu-law media with marks, keypad capture of a card, a barge-in)")
    _add_gate(p)
    _add_db(p)
    p.set_defaults(func=_cmd_demo)

    from hybrid_agent.audit.cli import register as register_audit

    register_audit(sub)
    from hybrid_agent.policy.cli import register as register_policy
    register_policy(sub)
    from hybrid_agent.pii.cli import register as register_pii
    register_pii(sub)
    from hybrid_agent.bench_cli import register as register_bench
    register_bench(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from hybrid_agent.logs import install_log_redaction

    install_log_redaction()  # no log line carries frame contents, at any level
    try:
        return int(args.func(args) or 0)
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"error: invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

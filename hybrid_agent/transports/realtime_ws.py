"""Callers that speak the Realtime protocol themselves (the openai SDK, a browser client).

Why this module is long: the executor owns every socket a call has (the caller's, the live upstream,
a reconnect's and a rollover's standby) and the timers; the switch between upstream links must see
all of them under one task, so splitting it would pass the sockets across modules.

This is the thin asyncio adapter around ``CallSession``: two pumps (caller ->
session, model -> session) and an executor for the returned actions.  The
caller's events are already Realtime events, so conversion is the identity;
other transports (Twilio) translate here before feeding the session.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.exceptions import ConnectionClosed

from hybrid_agent.server.drain import ActiveCalls
from hybrid_agent.audit.sink import AuditSink
from hybrid_agent.policy.gate import PolicyCheck, PolicyGate
from hybrid_agent.policy.speech import SpeechCheck
from hybrid_agent.protocol.events import error_event
from hybrid_agent.session import (
    Action,
    Audit,
    CallConfig,
    CallSession,
    CheckPolicy,
    CheckSpeech,
    ReconnectUpstream,
    RunTool,
    CloseClient,
    CloseUpstream,
    SendClient,
    SendUpstream,
    GateConfig,
    NotifyEscalation,
    OpenStandbyUpstream,
    StartTimer,
    SwitchUpstream,
)
from hybrid_agent.settings import Settings
from hybrid_agent.upstream.connector import UpstreamConnector, UpstreamError
from hybrid_agent.upstream.link import UpstreamLink
from hybrid_agent.upstream.models import choose_model

if TYPE_CHECKING:
    from hybrid_agent.server.escalation import EscalationSink
    from hybrid_agent.telemetry import Telemetry

log = logging.getLogger(__name__)


#: pauses before the first attempts to reopen a dropped upstream; after them, every RECONNECT_EVERY_S
#: until the reconnect window (``HYBRID_AGENT_RECONNECT_WINDOW_S``) is spent: a provider back within
#: the window is found again within half a second
RECONNECT_DELAYS_S = (0.05, 0.1, 0.25)
RECONNECT_EVERY_S = 0.5


def _now_ms() -> float:
    return time.monotonic() * 1000.0


class CallRunner:
    """Carries out a CallSession's actions against the two sockets of one call."""

    def __init__(
        self,
        session: CallSession,
        client: WebSocket,
        upstream: UpstreamLink,
        audit: AuditSink,
        policy_gate: PolicyGate | None = None,
        gate_executor: concurrent.futures.Executor | None = None,
        connector: UpstreamConnector | None = None,
        tools: Any = None,
        escalations: EscalationSink | None = None,
        telemetry: Telemetry | None = None,
        idle_timeout_s: float = 0.0,
        reconnect_window_s: float = 15.0,
    ) -> None:
        self.session = session
        self.reconnect_window_s = reconnect_window_s
        self.telemetry = telemetry
        self.idle_timeout_s = idle_timeout_s  # no frame either way for this long ends the call (0: never)
        self._last_frame = time.monotonic()
        played = getattr(client, "played_ms", None)  # a transport that owns playback (Twilio marks)
        if callable(played):
            session.set_playback(played)
        self.escalations = escalations  # the escalation webhook's notifier (server/escalation.py), if configured
        self.tools = tools  # hybrid_agent.tools.ToolRegistry of the server tools this call runs
        self.connector = connector
        self.policy_gate = policy_gate
        self.gate_executor = gate_executor
        self._checks: set[asyncio.Task[None]] = set()
        self.client = client
        self.upstream = upstream
        self._standby: UpstreamLink | None = None  # the next upstream session, opened before a rollover
        self.audit = audit
        self.client_open = True
        self.upstream_open = True
        self.done = asyncio.Event()
        self._timers: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()

    async def shutdown(self, reason: str) -> None:
        """The bridge is draining and the deadline passed: the call ends cleanly (server/drain.py)."""
        await self.execute(self.session.shutdown(_now_ms(), reason))

    async def execute(self, actions: list[Action]) -> None:
        # audit records and escalations first: neither blocks (the webhook is posted by the notifier's
        # own tasks), and a send that is cancelled mid-call (the caller hung up) must not take them with it
        for action in actions:
            if isinstance(action, Audit):
                self.audit.enqueue(action.record)
            elif isinstance(action, NotifyEscalation):
                if self.escalations is not None:
                    try:
                        self.escalations.notify(action)
                    except Exception as exc:  # a notifier's failure never ends the call
                        log.warning("call %s: escalation notifier failed (%s)", self.session.call_id, type(exc).__name__)
                escalate = getattr(self.client, "escalate", None)  # a transport that can hand the call to a person
                if callable(escalate):
                    escalate(lambda status: self.execute(self.session.feed_transfer(status, _now_ms())))
        # one call's sends go out in the order the session produced them: a verdict releasing held
        # audio and the upstream pump must not interleave their chunks
        async with self._send_lock:
            for action in actions:
                if isinstance(action, SendClient):
                    if self.client_open:
                        try:
                            await self.client.send_text(action.text())
                        except (WebSocketDisconnect, RuntimeError, ConnectionClosed):
                            self.client_open = False
                elif isinstance(action, SendUpstream):
                    if self.upstream_open:
                        try:
                            await self.upstream.send_raw(action.text())
                        except ConnectionClosed:
                            self.upstream_open = False
                elif isinstance(action, CloseClient):
                    if self.client_open:
                        self.client_open = False
                        with contextlib.suppress(Exception):
                            await self.client.close(action.code, action.reason)
                    self.done.set()
                elif isinstance(action, CloseUpstream):
                    if self.upstream_open:
                        self.upstream_open = False
                        with contextlib.suppress(Exception):
                            await self.upstream.close(code=action.code, reason=action.reason)
                    self.done.set()
                elif isinstance(action, CheckPolicy):
                    task = asyncio.create_task(self._decide(action.check))
                    self._checks.add(task)
                    task.add_done_callback(self._checks.discard)
                elif isinstance(action, CheckSpeech):
                    task = asyncio.create_task(self._decide_speech(action.check))
                    self._checks.add(task)
                    task.add_done_callback(self._checks.discard)
                elif isinstance(action, RunTool):
                    task = asyncio.create_task(self._run_tool(action))
                    self._checks.add(task)
                    task.add_done_callback(self._checks.discard)
                elif isinstance(action, SwitchUpstream):
                    self._switch_upstream()
                elif isinstance(action, OpenStandbyUpstream):
                    task = asyncio.create_task(self._open_standby())
                    self._checks.add(task)
                    task.add_done_callback(self._checks.discard)
                elif isinstance(action, StartTimer):
                    task = asyncio.create_task(self._timer(action))
                    self._timers.add(task)
                    task.add_done_callback(self._timers.discard)

    async def _decide(self, check: PolicyCheck) -> None:
        """PII analysis and policy evaluation run on the gate's worker thread, never on the event loop."""
        if self.policy_gate is None:
            return
        started = time.time_ns()
        try:
            outcome = await asyncio.get_running_loop().run_in_executor(self.gate_executor, self.policy_gate.decide, check)
        except Exception as exc:
            log.exception("call %s: policy check %s (%s) failed", self.session.call_id, check.check_id, check.stage)
            # a check that cannot be decided is recorded with the pack's fail-closed effect, never dropped
            actions = self.session.feed_policy_failure(check, f"{type(exc).__name__}: {exc}", _now_ms())
            if self.telemetry is not None:
                self.telemetry.policy_check(self.session.call_id, check, None, started, time.time_ns(), actions)
            await self.execute(actions)
            return
        ended = time.time_ns()
        actions = self.session.feed_policy_outcome(outcome, _now_ms())
        if self.telemetry is not None:
            self.telemetry.policy_check(self.session.call_id, check, outcome, started, ended, actions)
        await self.execute(actions)

    async def _decide_speech(self, check: SpeechCheck) -> None:
        """Hold and monitor modes: may this much of the answer be spoken?  Decided on a gate worker."""
        if self.policy_gate is None:
            return
        try:
            verdict = await asyncio.get_running_loop().run_in_executor(self.policy_gate.speech_executor, self.policy_gate.decide_speech, check)
        except Exception as exc:
            log.exception("call %s: speech check %s failed", self.session.call_id, check.check_id)
            await self.execute(self.session.feed_speech_failure(check, type(exc).__name__, _now_ms()))
            return
        await self.execute(self.session.feed_speech_verdict(verdict, _now_ms()))

    async def _run_tool(self, action: RunTool) -> None:
        """A server tool: validated, refused when regulated and the audit cannot record, run with its timeout."""
        from hybrid_agent.tools import ToolContext, outcome_for_argument_error, run_call
        from hybrid_agent.tools.registry import ToolArgumentError

        started = time.monotonic()
        started_ns = time.time_ns()
        if self.tools is None:
            status, output = "error", json.dumps({"error": {"type": "unknown_tool", "message": "no server tools here"}})
        else:
            checked = self.tools.validate(action.name, action.arguments)
            status_fn = getattr(self.audit, "status", None)
            audit_ready = bool(status_fn().get("ready", True)) if callable(status_fn) else True
            if isinstance(checked, ToolArgumentError):
                outcome = outcome_for_argument_error(checked)
                status, output = outcome.status, outcome.output
            elif checked.tool.regulated and not audit_ready:
                # a regulated action whose decision cannot be recorded does not happen
                status, output = "error", json.dumps({"error": {"type": "audit_unavailable",
                                                                "message": "This action is unavailable right now."}})
            else:
                policy = self.session.policy
                context = ToolContext(call_id=self.session.call_id,
                                      verification_level=policy.verification_level if policy is not None else "none")
                try:
                    outcome = await run_call(checked, context)
                    status, output = outcome.status, outcome.output
                except Exception as exc:  # the runner catches tool errors; this is the bridge's own failure
                    log.exception("call %s: server tool %s failed", self.session.call_id, action.name)
                    status, output = "error", json.dumps({"error": {"type": "tool_failed", "message": type(exc).__name__}})
        latency = (time.monotonic() - started) * 1000
        if self.telemetry is not None:
            self.telemetry.tool_run(self.session.call_id, action.call_id, action.name, status, started_ns, time.time_ns())
        await self.execute(self.session.feed_tool_result(action.call_id, status, output, latency, _now_ms()))

    def _switch_upstream(self) -> None:
        """The session moves the call to the standby upstream (a rollover): later sends go there."""
        if self._standby is None:
            log.error("call %s: asked to switch upstream with no standby open", self.session.call_id)
            return
        old, self.upstream, self._standby = self.upstream, self._standby, None
        self.upstream_open = True
        task = asyncio.create_task(self._close_quietly(old, "session rollover"))
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    @staticmethod
    async def _close_quietly(link: UpstreamLink, reason: str) -> None:
        with contextlib.suppress(Exception):
            await link.close(code=1000, reason=reason)

    async def _open_standby(self) -> None:
        """Open the next upstream session in the background (``session.rollover``)."""
        if self.connector is None:
            await self.execute(self.session.standby_failed(_now_ms(), "no connector"))
            return
        try:
            link = await self.connector.connect(self.session.config.model)
        except UpstreamError as exc:
            log.warning("call %s: cannot open the next upstream session: %s", self.session.call_id, exc)
            await self.execute(self.session.standby_failed(_now_ms(), str(exc)))
            return
        self._standby = link
        actions = self.session.standby_ready(_now_ms())
        if actions is None:  # no longer wanted: the call ended or reconnected meanwhile
            self._standby = None
            await self._close_quietly(link, "not needed")
            return
        log.info("call %s: next upstream session open", self.session.call_id)
        await self.execute(actions)

    async def _timer(self, action: StartTimer) -> None:
        await asyncio.sleep(action.delay_ms / 1000.0)
        await self.execute(self.session.timer_fired(action.name, _now_ms()))

    async def client_pump(self) -> None:
        # tracing on: each caller frame's time in the bridge, summed per caller turn (telemetry/spans.py);
        # asked here, not in __init__: the call's trace opens with its CallStarted, executed by then
        stats = self.telemetry.frame_stats(self.session.call_id) if self.telemetry is not None else None
        while True:
            message = await self.client.receive()
            self._last_frame = time.monotonic()
            if message["type"] == "websocket.disconnect":
                self.client_open = False
                await self.execute(self.session.client_closed(_now_ms()))
                return
            if message["type"] == "keypad":  # a transport with a keypad (Twilio dtmf): never a frame, never logged
                await self.execute(self.session.feed_keypad(str(message.get("digit")), _now_ms()))
                continue
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            if stats is None:
                await self.execute(self.session.receive_client_frame(data, _now_ms()))
            else:
                t0 = time.perf_counter_ns()
                await self.execute(self.session.receive_client_frame(data, _now_ms()))
                stats.add(time.perf_counter_ns() - t0)

    async def upstream_pump(self) -> None:
        while True:
            link = self.upstream
            try:
                data = await link.recv_bytes()
                self._last_frame = time.monotonic()
            except ConnectionClosed as exc:
                if link is not self.upstream:
                    continue  # the session rolled over to a new upstream: this one was closed by the bridge
                self.upstream_open = False
                reason = f"code {exc.rcvd.code}" if exc.rcvd else "connection lost"
                actions = self.session.upstream_closed(_now_ms(), reason)
                await self.execute(actions)
                if self.upstream is not link and self.upstream_open:
                    continue  # a standby was ready: the call moved to it
                if any(isinstance(a, ReconnectUpstream) for a in actions) and await self._reconnect():
                    continue
                return
            if link is not self.upstream:
                continue  # a late event of the session left behind (the switch happens at a quiet moment)
            await self.execute(self.session.receive_upstream_frame(data, _now_ms()))

    async def _reconnect(self) -> bool:
        """Open a new upstream (a few tries, backing off) and let the session replay the call on it."""
        last = "no connector"
        dropped_ns = time.time_ns()
        give_up = time.monotonic() + self.reconnect_window_s
        attempt = 0
        while True:
            delay = RECONNECT_DELAYS_S[attempt] if attempt < len(RECONNECT_DELAYS_S) else RECONNECT_EVERY_S
            attempt += 1
            if time.monotonic() + delay > give_up and attempt > 1:
                break
            await asyncio.sleep(delay)
            if self.connector is None or not self.client_open:
                break
            try:
                self.upstream = await self.connector.connect(self.session.config.model)
            except UpstreamError as exc:
                last = str(exc)
                log.warning("call %s: reconnect failed: %s", self.session.call_id, exc)
                continue
            self.upstream_open = True
            log.info("call %s: upstream reconnected (attempt %d)", self.session.call_id, self.session.reconnects)
            if self.telemetry is not None:
                self.telemetry.reconnect(self.session.call_id, self.session.reconnects, True, dropped_ns, time.time_ns())
            await self.execute(self.session.upstream_reconnected(_now_ms()))
            return True
        if self.telemetry is not None:
            self.telemetry.reconnect(self.session.call_id, self.session.reconnects, False, dropped_ns, time.time_ns())
        await self.execute(self.session.upstream_reconnect_failed(_now_ms(), last))
        return False

    async def idle_watchdog(self) -> None:
        """Ends a call on which neither side sent a frame for ``idle_timeout_s`` (a client that
        stays connected and silent holds a call slot and an upstream session)."""
        while True:
            left = self._last_frame + self.idle_timeout_s - time.monotonic()
            if left <= 0:
                await self.execute(self.session.idle_timeout(_now_ms(), self.idle_timeout_s))
                return
            await asyncio.sleep(left)

    async def run(self) -> None:
        tasks = [asyncio.create_task(self.client_pump()), asyncio.create_task(self.upstream_pump())]
        if self.idle_timeout_s > 0:
            tasks.append(asyncio.create_task(self.idle_watchdog()))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in [*tasks, *self._timers]:
                task.cancel()
            failure: BaseException | None = None
            for task in tasks:
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                except Exception as exc:  # a pump failed: log it, then end the call cleanly
                    log.exception("call %s: %s failed", self.session.call_id, task.get_coro().__name__)
                    failure = failure or exc
            if not self.session.closed:
                reason = type(failure).__name__ if failure else "pump ended"
                with contextlib.suppress(Exception):
                    await self.execute(self.session.abort(_now_ms(), reason))
            if self.upstream_open:
                self.upstream_open = False
                with contextlib.suppress(Exception):
                    await self.upstream.close()
            if self._standby is not None:
                await self._close_quietly(self._standby, "call ended")
                self._standby = None
            if self._checks:  # decisions still being taken land in the audit trail, after the call ended
                await asyncio.wait(list(self._checks), timeout=10)


def server_tools(policy_gate: PolicyGate | None, settings: Settings) -> tuple[Any, dict[str, Any] | None]:
    """The call's server tools (a fresh demo backend per call for the shipped packs) and the bridge's
    own session configuration built from the pack (instructions, the tools' declarations, transcription)."""
    if policy_gate is None:
        return None, None
    from hybrid_agent.policy.session_config import bridge_session_update
    from hybrid_agent.tools import registry_for_pack

    registry = registry_for_pack(policy_gate.pack.name) if settings.server_tools else None
    declared = [n for n in policy_gate.pack.manifest.tools if registry is not None and n in registry]
    session = bridge_session_update(
        policy_gate.pack.manifest,
        transcription_model=settings.transcription_model or None,
        tool_declarations=registry.declarations(declared) if registry is not None else [],
    )
    if registry is not None and not declared:
        registry = None
    session.pop("type", None)
    return registry, session


def gate_config(policy_gate: PolicyGate | None, mode: str | None) -> GateConfig | None:
    """The call's gate: the pack's ``gate:`` section, its mode overridden by ``serve --gate``."""
    if policy_gate is None:
        return None
    pack = policy_gate.pack
    gate = pack.manifest.gate
    return GateConfig(
        pack=pack.name,
        version=pack.version,
        mode=mode or str(getattr(gate.mode, "value", gate.mode)),
        history_turns=pack.manifest.history_turns,
        disclosures=dict(pack.manifest.disclosures),
        tools=dict(pack.manifest.tools),
        on_error=str(pack.manifest.on_error),
        fallback_utterance=gate.fallback_utterance,
        check_timeout_ms=float(gate.check_timeout_ms),
        speech_fail_open=gate.on_failure.for_stage("assistant_text") == "open",
        user_text_fail_open=gate.on_failure.for_stage("user_text") == "open",
        max_hold_ms=float(gate.max_hold_ms),
        user_turn=str(getattr(gate.user_turn, "value", gate.user_turn)),
        escalation_utterance=gate.escalation_utterance,
        clips=dict(pack.clips),
        outage_after_ms=float(pack.manifest.bridge_speech.outage_after_ms),
    )


async def serve_realtime_client(
    websocket: WebSocket,
    *,
    settings: Settings,
    connector: UpstreamConnector,
    audit: AuditSink,
    policy_gate: PolicyGate | None = None,
    gate_executor: concurrent.futures.Executor | None = None,
    escalations: EscalationSink | None = None,
    calls: ActiveCalls | None = None,
) -> None:
    """Run one call for an authenticated Realtime-protocol caller."""
    await websocket.accept()

    async def refuse(message: str) -> None:
        with contextlib.suppress(Exception):  # the caller may already be gone
            await websocket.send_json(error_event(message, code="upstream_unavailable", error_type="server_error"))
            await websocket.close(1011, "upstream unavailable")

    await run_bridged_call(
        websocket, channel="realtime", requested_model=websocket.query_params.get("model"), refuse=refuse,
        settings=settings, connector=connector, audit=audit, policy_gate=policy_gate, gate_executor=gate_executor,
        escalations=escalations, calls=calls,
    )


async def run_bridged_call(
    client: Any,
    *,
    channel: str,
    requested_model: str | None,
    refuse: Callable[[str], Awaitable[None]],
    settings: Settings,
    connector: UpstreamConnector,
    audit: AuditSink,
    policy_gate: PolicyGate | None = None,
    gate_executor: concurrent.futures.Executor | None = None,
    escalations: EscalationSink | None = None,
    caller_id: str | None = None,
    call_metadata: dict[str, str] | None = None,
    first_client_events: list[dict[str, Any]] | None = None,
    calls: ActiveCalls | None = None,
) -> None:
    """One call between ``client`` (anything with ``receive()``, ``send_text()`` and ``close()``, as a
    Starlette WebSocket has) and the upstream: the session built from settings and pack, the upstream
    connected, the runner's pumps until either side ends.  ``first_client_events``: what the
    transport itself asks for at the start (its audio formats, the opening answer)."""
    choice = choose_model(requested_model, settings.model, settings.models)
    registry, bridge_session = server_tools(policy_gate, settings)
    session = CallSession(
        CallConfig(
            call_id=f"call_{uuid.uuid4().hex}",
            channel=channel,
            model=choice.used,
            requested_model=choice.requested if choice.mapped else None,
            bridge_session=bridge_session,
            server_tools=frozenset(registry.names()) if registry is not None else frozenset(),
            upstream=connector.label,
            max_message_bytes=settings.max_message_bytes,
            gate=gate_config(policy_gate, settings.gate_mode),
            transcription_model=settings.transcription_model or None,
            max_reconnects=settings.max_reconnects,
            rollover_after_ms=settings.rollover_after_s(connector.target) * 1000.0,
            caller_id=caller_id,
            call_metadata=call_metadata or {},
            keypad_tools=registry.keypad_fields() if registry is not None else {},
            latency_budgets=settings.latency_budgets,
        )
    )
    try:
        upstream = await connector.connect(choice.used)
    except UpstreamError as exc:
        log.warning("call %s: %s", session.call_id, exc)
        # a refused call is still a call: it leaves a start and an end in the audit trail
        for action in [*session.start(_now_ms(), time.time()), *session.abandon(_now_ms(), "upstream_unavailable", str(exc))]:
            if isinstance(action, Audit):  # nothing else to do: no upstream, and the caller gets the error below
                audit.enqueue(action.record)
        await refuse(str(exc))
        return
    runner = CallRunner(
        session, client, upstream, audit, policy_gate, gate_executor, connector, tools=registry, escalations=escalations,
        telemetry=getattr(audit, "telemetry", None),  # a TelemetrySink carries the process's telemetry
        idle_timeout_s=settings.idle_timeout_s,
        reconnect_window_s=settings.reconnect_window_s,
    )
    if calls is not None:
        calls.add(runner)  # a drain (SIGTERM) waits for it, then ends it at the deadline
    try:
        await runner.execute(session.start(_now_ms(), time.time()))
        for event in first_client_events or []:
            await runner.execute(session.feed_client(event, _now_ms()))
        await runner.run()
    finally:
        if calls is not None:
            calls.discard(runner)

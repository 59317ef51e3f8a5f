"""``CallSession``: the sans-I/O core of one call.

Why this module is longer than 500 lines: it is the router, and routing has two sides (the
caller's events, checked and relayed; the model's events, tracked and delivered through the
gate) plus the call's lifecycle: reconnect, session rollover, the bridge's own clips; every
concern with state of its own is a part elsewhere, listed below.

It takes events from either side (caller and model) and returns actions.  It
never awaits, touches a socket, reads a clock or writes to a database: the
adapter passes ``now_ms`` (a monotonic clock in milliseconds) and carries out
the returned actions in order.  Modelled on ``h11`` and ``websockets``' protocol
classes.

``CallSession`` routes events between small sans-I/O parts, each with its own state and
tests: ``turns`` (turn tracking and records), ``client_config`` (the caller's session
configuration), ``call_events`` (errors as audit facts), ``replay`` (reconnect, hidden items),
``disclosures``, ``speech_gate`` (monitor/hold), ``bridge_turns`` (the bridge's own responses,
the gated user turn), ``decisions`` (what a policy decision does), ``tool_calls`` with
``tool_orchestrator`` (server tools), ``client_tools`` (held client calls),
``confirmations``, ``rollover`` (the next upstream session before the provider's limit) and
``bridge_speech`` (the pack's outage apology and goodbye clips).
"""

from __future__ import annotations

import binascii
import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hybrid_agent.audit.records import (
    GateActionRecord,
    CallEnded,
    CallStarted,
    ToolCallRecord,
    TurnRecord,
)
from hybrid_agent.protocol.audio import b64_decoded_len, duration_ms, silence_b64
from hybrid_agent.protocol.events import EventValidationError, error_event, new_id, validate_client_event
from hybrid_agent.protocol.fast_path import MIN_BLOB_CHARS, base64_len, fast_append, loads_with_blob
from hybrid_agent.policy.gate import PolicyCheck, PolicyOutcome
from hybrid_agent.policy.live import PolicySession
from hybrid_agent.policy.schema import PolicyInput
from hybrid_agent.session.actions import (
    Action,
    Audit,
    CheckPolicy,
    CloseClient,
    CloseUpstream,
    OpenStandbyUpstream,
    ReconnectUpstream,
    SendClient,
    SendUpstream,
    StartTimer,
    SwitchUpstream,
)
from hybrid_agent.session.bridge_speech import BRIDGE_ITEM_PREFIX, GOODBYE_TAIL_MS, BridgeSpeech
from hybrid_agent.session.bridge_turns import ARM_AFTER_MS, ARM_TIMER, NOTE_ITEM_PREFIX, BridgeTurns
from hybrid_agent.session.call_events import CallEventLog
from hybrid_agent.session.client_tools import ClientToolHold
from hybrid_agent.session.decisions import DecisionRouter
from hybrid_agent.session.keypad import KeypadCapture
from hybrid_agent.session.rollover import (
    CARRY_AUDIO_MS,
    CHECK_EVERY_MS,
    RETRY_AFTER_MS,
    ROLLOVER_CHECK_TIMER,
    ROLLOVER_TIMER,
    UpstreamRollover,
)
from hybrid_agent.session.tool_calls import ToolCallFlow
from hybrid_agent.session.disclosures import DisclosureTracker
from hybrid_agent.policy.speech import SpeechCheck, SpeechVerdict
from hybrid_agent.session.speech_gate import SpeechGate
from hybrid_agent.session.tool_orchestrator import ToolOrchestrator
from hybrid_agent.session.response_timing import ResponseTiming
from hybrid_agent.session.replay import REPLAY_ITEM_PREFIX, HiddenItems, ConversationLog, ReconnectQueue
from hybrid_agent.session.client_config import ClientSessionConfig, describe_session
from hybrid_agent.session.turns import (
    UPSTREAM_FIELD_ERRORS,
    AssistantTurn,
    ToolCallState,
    TurnFact,
    TurnTracker,
    UserTurn,
)


@dataclass(frozen=True, slots=True)
class GateConfig:
    """The policy pack a call runs under.  ``observe``: every turn, tool call and tool result is
    decided and recorded, nothing is blocked; ``monitor`` and ``hold`` also gate the assistant's
    speech (``session.speech_gate``)."""

    pack: str
    version: str
    mode: str = "observe"
    history_turns: int = 6
    disclosures: Mapping[str, str] = field(default_factory=dict)  # id -> script to speak
    tools: Mapping[str, Any] | None = None  # the pack's tool declarations (ToolSpec); None: conventional defaults
    on_error: str = "deny"  # the pack's fail-closed effect, recorded when a check cannot be decided
    fallback_utterance: str = "I'm sorry, I can't help with that. Is there anything else?"
    check_timeout_ms: float = 1500.0  # a speech check not decided by then is a gate failure
    speech_fail_open: bool = False  # the pack's gate.on_failure.assistant_text is "open"
    user_text_fail_open: bool = False  # the pack's gate.on_failure.user_text is "open"
    max_hold_ms: float = 10_000.0  # hold mode: the most audio of one answer held before the gate fails
    user_turn: str = "immediate"  # gated: the bridge creates the model's answer once user_text passed
    escalation_utterance: str = "I'm going to pass you to a colleague who can help with this. Please stay on the line."
    #: the pack's bridge_speech clips, loaded (``policy/clips.py``): outage_apology, goodbye
    clips: Mapping[str, Any] = field(default_factory=dict)
    outage_after_ms: float = 1500.0  # an upstream outage this long plays the outage_apology clip

    @property
    def enforcing(self) -> bool:
        return self.mode in ("monitor", "hold")


@dataclass(frozen=True, slots=True)
class CallConfig:
    call_id: str
    channel: str = "realtime"
    model: str = ""
    upstream: str = ""
    max_message_bytes: int = 1 << 20
    gate: GateConfig | None = None
    #: ids of the events the bridge itself emits; pass a counter for bit-for-bit reproducible actions
    id_factory: Callable[[str], str] = new_id
    #: the middle layer reads what the caller said, so the bridge turns input transcription on
    #: (and keeps it on); ``None`` leaves the session as the client configures it
    transcription_model: str | None = "gpt-4o-transcribe"
    #: times an upstream drop is survived by reconnecting and replaying the call so far as text
    max_reconnects: int = 2
    #: the model the client asked for when the bridge mapped it to ``model`` (None: it got what it asked for)
    requested_model: str | None = None
    #: the bridge's own ``session`` payload at call start (the pack's instructions, the server tools'
    #: declarations, transcription); ``None``: only turn transcription on
    bridge_session: Mapping[str, Any] | None = None
    #: names of the tools the bridge runs itself (``session.tool_orchestrator``)
    server_tools: frozenset[str] = frozenset()
    #: who called (a phone number): the audit store keeps only its keyed pseudonym
    caller_id: str | None = None
    #: what the transport knows of the call (Twilio: its CallSid, StreamSid, the number dialled): a note in the audit
    call_metadata: Mapping[str, str] = field(default_factory=dict)
    #: server tools with arguments the caller keys in (tool -> {argument: kind}; ``session.keypad``)
    keypad_tools: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: latency budgets in ms by stage (``session.response_timing.RESPONSE_STAGES``): a response over one is marked
    latency_budgets: Mapping[str, float] = field(default_factory=dict)
    #: upstream session age at which the call moves to a new session (``session.rollover``; 0: never)
    rollover_after_ms: float = 55 * 60_000.0


BRIDGE_UPDATE_EVENT_ID = "event_bridge_transcription"
#: a strict rollover boundary needs this long without an upstream event (other than the ones below) or a
#: caller event other than audio: a response.create sent and not yet answered must not be lost
ROLLOVER_QUIET_MS = 300.0
OUTAGE_TIMER = "bridge_outage_apology"
GOODBYE_TIMER = "bridge_goodbye"
_BACKGROUND_EVENTS = frozenset({"rate_limits.updated", "input_audio_buffer.append"})

class CallSession:
    """State machine of one call between a caller and the model."""

    def __init__(self, config: CallConfig) -> None:
        self.config = config
        self.call_id = config.call_id
        self.input_audio_ms = 0.0  # caller audio forwarded upstream
        self.tracker = TurnTracker(config.call_id)
        self.timing = ResponseTiming(
            config.call_id, config.model, dict(config.latency_budgets),
            audio_ms_of=lambda rid: sum(t.audio_ms for t in self.tracker.answer_of(rid)),
        )
        self.closed = False
        self._started_ms = 0.0
        gate = config.gate
        self.policy: PolicySession | None = (
            PolicySession(
                channel=config.channel,
                history_turns=gate.history_turns,
                disclosure_texts=dict(gate.disclosures),
                tools=dict(gate.tools) if gate.tools is not None else None,
            )
            if gate is not None and gate.mode != "off"
            else None
        )
        self._checks = 0
        self.disclosures = DisclosureTracker(config.call_id, self.policy) if self.policy is not None else None
        self._gate_seq = 0
        self.speech: SpeechGate | None = None
        if self.policy is not None and gate is not None and gate.mode in ("monitor", "hold"):
            policy = self.policy
            self.speech = SpeechGate(
                config.call_id,
                gate.mode,  # type: ignore[arg-type]
                output_format=lambda: self.output_format,
                rate=self.tracker.fastest_rate,
                typical_rate=self.tracker.typical_rate,
                policy_input=lambda now_ms: policy.turn("assistant", "", self._rel(now_ms)),
                fallback_utterance=gate.fallback_utterance,
                check_timeout_ms=gate.check_timeout_ms,
                max_hold_ms=gate.max_hold_ms,
                fail_open=gate.speech_fail_open,
                next_seq=self._next_gate_seq,
                rel=self._rel,
            )
        enforcing = self.policy is not None and gate is not None and gate.enforcing
        self.bridge_turns: BridgeTurns | None = None
        if enforcing and gate is not None:
            self.bridge_turns = BridgeTurns(
                config.call_id, self._next_gate_seq, self._rel, busy=lambda: self.tracker.active_response_id is not None,
                mode=gate.mode, gated=gate.user_turn == "gated", fail_open=gate.user_text_fail_open,
                check_timeout_ms=gate.check_timeout_ms, fallback_utterance=gate.fallback_utterance,
                escalation_utterance=gate.escalation_utterance,
            )
        self._own_updates = 0  # session.update events the bridge sent whose answer the caller must not see
        self.malformed_upstream: list[str] = []  # upstream events whose fields could not be used (relayed anyway)
        # reconnect and replay
        self.reconnecting = False
        self.reconnects = 0
        self.reconnect_queue = ReconnectQueue()  # what the caller sent while the upstream was being reopened
        bridge_session = dict(config.bridge_session or {})
        self.client_config = ClientSessionConfig(
            config.model, config.transcription_model,
            bridge_tools=list(bridge_session.get("tools") or []), bridge_instructions=bridge_session.get("instructions"),
            gated_turns=self.bridge_turns is not None and self.bridge_turns.gated,
        )
        # the orchestrator runs the server tools and, in the enforcing modes, answers refused client calls
        self.tools = (
            ToolOrchestrator(config.call_id, config.server_tools, self._next_gate_seq, self._rel,
                             mode=config.gate.mode if config.gate else None)
            if config.server_tools or enforcing else None
        )
        self.client_tools = ClientToolHold() if enforcing else None
        self.events = CallEventLog(config.call_id)
        self.history = ConversationLog()  # the conversation so far, as items to replay
        self._hidden_items = HiddenItems()  # the bridge's own items: the client's view of the order skips them
        self.tool_flow = ToolCallFlow(
            config.call_id, policy=self.policy, tracker=self.tracker, history=self.history, hidden=self._hidden_items,
            tools=self.tools, client_tools=self.client_tools, check=self._check, gate_action=self._gate_action,
            deliver=self._deliver, rel=self._rel, enforcing=enforcing,
            check_timeout_ms=gate.check_timeout_ms if gate is not None else 1500.0,
        )
        self.keypad: KeypadCapture | None = None
        if config.keypad_tools and self.tools is not None and self.bridge_turns is not None:
            bridge_turns, tools = self.bridge_turns, self.tools
            self.keypad = KeypadCapture(config.call_id, self._next_gate_seq, self._rel, say=bridge_turns.say,
                                        answer=tools.output, mode=gate.mode if gate else None)
            self.tool_flow.keypad = self.keypad
            self.tool_flow.keypad_tools = {k: dict(v) for k, v in config.keypad_tools.items()}
        self.decisions = DecisionRouter(config.call_id, gate, self.policy, self.bridge_turns, self.tool_flow, self._gate_action)
        self._hide_session_created = False
        self.rollover = UpstreamRollover(config.rollover_after_ms)
        self._switched_at_seq = 0  # turns up to this seq belong to an upstream session left behind
        self.bridge_speech = BridgeSpeech(dict(gate.clips) if gate is not None else {})
        self._outage_since_ms: float | None = None  # the upstream dropped then; None while it is up
        self._ending: str | None = None  # the bridge is saying goodbye before it ends the call (why)
        self._wall_started = 0.0
        self._last_activity_ms = 0.0

    # the tracker's state, under the names the adapters and tests read
    @property
    def input_format(self) -> str:
        return self.tracker.input_format

    @property
    def output_format(self) -> str:
        return self.tracker.output_format

    @property
    def user_turns(self) -> dict[str, UserTurn]:
        return self.tracker.user_turns

    @property
    def assistant_turns(self) -> dict[str, AssistantTurn]:
        return self.tracker.assistant_turns

    @property
    def tool_calls(self) -> dict[str, ToolCallState]:
        return self.tracker.tool_calls

    @property
    def active_response_id(self) -> str | None:
        return self.tracker.active_response_id

    @property
    def turns(self) -> list[UserTurn | AssistantTurn]:
        """All turns in the order speech started."""
        return self.tracker.turns

    # ------------------------------------------------------------------ lifecycle
    def start(self, now_ms: float, wall_time: float) -> list[Action]:
        """Open the call; ``wall_time`` is epoch seconds for the audit record."""
        self._started_ms = now_ms
        self._wall_started = wall_time
        gate = self.config.gate
        out: list[Action] = [
            Audit(
                CallStarted(
                    call_id=self.call_id,
                    started_at=wall_time,
                    channel=self.config.channel,
                    model=self.config.model,
                    upstream=self.config.upstream,
                    caller_id=self.config.caller_id,
                    policy_pack=gate.pack if gate else None,
                    policy_version=gate.version if gate else None,
                    gate_mode=gate.mode if gate else None,
                )
            )
        ]
        if self.config.requested_model and self.config.requested_model != self.config.model:
            self._audit_event(
                out, "bridge", "model_mapped", 0.0, param="model", redacted=True,
                message=f"the client asked for model {self.config.requested_model!r}; "
                f"the call runs on {self.config.model!r} (not in the bridge's allowed models)",
            )
        if self.config.call_metadata:
            described = ", ".join(f"{k} {str(v)[:64]}" for k, v in sorted(self.config.call_metadata.items()))
            self._audit_event(out, "bridge", "call_metadata", 0.0, redacted=False, message=f"{self.config.channel}: {described}")
        if self.config.transcription_model or self.config.bridge_session:
            self._own_updates += 1
            out.append(SendUpstream(self._bridge_update()))
        if self.policy is not None:
            if self.bridge_turns is not None and gate is not None and gate.disclosures:
                self.bridge_turns.start_holding()  # a required disclosure is spoken before the model's first answer
                out.append(StartTimer(ARM_TIMER, ARM_AFTER_MS))
            out.append(self._check(self.call_id, self.policy.session_start(), 0.0))
        return out

    def _bridge_update(self) -> dict[str, Any]:
        """The bridge's own session.update: the pack's configuration, or just transcription on."""
        if self.config.bridge_session:
            session = {"type": "realtime", **dict(self.config.bridge_session)}
        else:
            session = {"type": "realtime", "audio": {"input": {"transcription": {"model": self.config.transcription_model}}}}
        return {"type": "session.update", "event_id": BRIDGE_UPDATE_EVENT_ID, "session": session}

    def client_closed(self, now_ms: float) -> list[Action]:
        outcome = "completed" if self._ending is None else "shutdown"  # hung up during the bridge's goodbye
        return self._end(now_ms, outcome, [CloseUpstream(1000, "caller hung up")])

    def upstream_closed(self, now_ms: float, reason: str = "") -> list[Action]:
        """The model's socket ended mid-call.

        While reconnects remain: fail the response in progress towards the caller and ask the
        adapter to reconnect (the caller stays connected).  Otherwise: tell the caller why, then
        close cleanly.
        """
        if self.closed:
            return []
        if self.rollover.state == "ready":  # the standby is open already: the call moves to it now
            return self._switch_upstream(now_ms, forced=True)
        expired = self.rollover.expired  # the session's age limit, not a fault: the reconnect budget is kept
        if self._ending is not None:
            return []  # saying goodbye: the call ends at the end of the clip, no reconnect
        if expired or self.reconnects < self.config.max_reconnects:
            self.reconnects += 0 if expired else 1
            self.reconnecting = True
            self._outage_since_ms = now_ms
            out = self._fail_active_response(now_ms)
            out.append(ReconnectUpstream(self.reconnects, reason))
            if self.bridge_speech.has("outage_apology") and self.config.gate is not None:
                out.append(StartTimer(OUTAGE_TIMER, self.config.gate.outage_after_ms))
            return out
        return self._close_for_upstream(now_ms, reason)

    def upstream_reconnect_failed(self, now_ms: float, reason: str = "") -> list[Action]:
        self.reconnecting = False
        out = self._outage_fact(now_ms, "upstream_lost", "the upstream did not come back")
        return out + self._close_for_upstream(now_ms, reason)

    def upstream_reconnected(self, now_ms: float) -> list[Action]:
        """A new upstream is open: restore the session, replay the conversation as text, flush what waited."""
        self.reconnecting = False
        out = self._outage_fact(now_ms, "upstream_resumed", "the upstream was back")
        out.extend(self._restore_upstream())
        # the old session's input buffer died with it: what it had not committed, then what waited
        out.extend(SendUpstream(None, raw) for raw in self.rollover.carried(last_ms=None)[0])
        for queued in self.reconnect_queue.drain():
            out.extend(self._on_client_event(queued, now_ms, None))
        return out

    def _outage_fact(self, now_ms: float, kind: str, what: str) -> list[Action]:
        """The gap a reconnect left, for the audit: how long, whether the caller heard the apology,
        what became of the caller's audio meanwhile."""
        out: list[Action] = []
        if self._outage_since_ms is None:
            return out
        gap, self._outage_since_ms = now_ms - self._outage_since_ms, None
        q = self.reconnect_queue
        apology = "the outage apology was played" if "outage_apology" in self.bridge_speech.played else "no apology played"
        self._audit_event(out, "bridge", kind, self._rel(now_ms), redacted=True,
                          message=f"{what} after {gap:.0f} ms (drop {self.reconnects}); {apology}; "
                          f"{q.held_audio_ms:.0f} ms of caller audio held for it, {q.dropped_audio_ms:.0f} ms dropped")
        return out

    def _play(self, name: str, now_ms: float) -> list[Action]:
        """A pack clip to the caller (``session.bridge_speech``), and the words it said to the audit."""
        events = self.bridge_speech.events(name, self.output_format)
        if not events:
            return []
        out: list[Action] = [SendClient({"event_id": self.config.id_factory("event"), **e}) for e in events]
        clip = self.bridge_speech.clips[name]
        self._audit_event(out, "bridge", name, self._rel(now_ms), redacted=True,
                          message=f"the bridge said ({clip.duration_ms / 1000:.1f} s clip): {clip.text}")
        return out

    def _restore_upstream(self) -> list[Action]:
        """On a new upstream socket: the bridge's and the client's configuration, then the conversation as text."""
        self._hide_session_created = True
        out: list[Action] = []
        if self.config.transcription_model or self.config.bridge_session:
            self._own_updates += 1
            out.append(SendUpstream(self._bridge_update()))
        restored = self.client_config.replay_update()
        if restored is not None:
            self._own_updates += 1
            out.append(SendUpstream({"type": "session.update", "event_id": "event_bridge_replay_session", "session": restored}))
        out.extend(SendUpstream(event) for event in self.history.replay_events())
        return out

    # ------------------------------------------------------------------ session rollover
    def standby_ready(self, now_ms: float) -> list[Action] | None:
        """The standby upstream (``OpenStandbyUpstream``) is open: switch at a turn boundary.
        ``None``: it is no longer wanted (the call moved on or ended); the adapter closes it."""
        if self.closed or self.reconnecting or self.rollover.state != "opening":
            return None
        self.rollover.standby_ready()
        if self.rollover.expired:  # the old session ended while the standby was opening
            return self._switch_upstream(now_ms, forced=True)
        return self._try_rollover(now_ms)

    def standby_failed(self, now_ms: float, reason: str) -> list[Action]:
        """The standby could not be opened: recorded, tried again later (the session may still expire first)."""
        if self.closed:
            return []
        self.rollover.standby_failed()
        out: list[Action] = []
        self._audit_event(out, "bridge", "rollover_failed", self._rel(now_ms), redacted=True,
                          message=f"cannot open the next upstream session: {reason}"[:500])
        out.append(StartTimer(ROLLOVER_TIMER, RETRY_AFTER_MS))
        return out

    def _plan_rollover(self, event: dict[str, Any], now_ms: float) -> list[Action]:
        """A new upstream session began (its ``session.created``): when to roll it over."""
        session = event.get("session") if isinstance(event.get("session"), dict) else {}
        expires_at = session.get("expires_at")
        wall_now = self._wall_started + self._rel(now_ms) / 1000.0
        expires_in = float(expires_at) - wall_now if isinstance(expires_at, (int, float)) and expires_at > 0 else None
        delay = self.rollover.session_created(now_ms, expires_in)
        return [] if delay is None else [StartTimer(ROLLOVER_TIMER, delay)]

    def _rollover_due(self, now_ms: float) -> list[Action]:
        if self.reconnecting or not self.rollover.due(now_ms):
            return []
        return [OpenStandbyUpstream("session limit")]

    def _try_rollover(self, now_ms: float) -> list[Action]:
        if self.closed or self.rollover.state != "ready":
            return []
        if not self._at_turn_boundary(now_ms, strict=self.rollover.strict(now_ms)):
            return [StartTimer(ROLLOVER_CHECK_TIMER, CHECK_EVERY_MS)]
        return self._switch_upstream(now_ms, forced=False)

    def _at_turn_boundary(self, now_ms: float, *, strict: bool) -> bool:
        """Nobody speaking, no answer streaming, no transcript to come; strict: nothing outstanding
        either (a tool output, a held answer, a bridge utterance, the last answer's playback, a fresh
        request)."""
        t = self.tracker
        if self.reconnecting or t.active_response_id is not None:
            return False
        last_user = max(t.user_turns.values(), key=lambda u: u.seq, default=None)
        if last_user is not None and not last_user.recorded:
            return False  # the caller is speaking, or its transcript would come on the old socket
        if not strict:
            return True
        if now_ms - self._last_activity_ms < ROLLOVER_QUIET_MS or self.tool_flow.busy:
            return False
        if (self.speech is not None and self.speech.busy) or (self.bridge_turns is not None and self.bridge_turns.waiting):
            return False
        last_answer = max(t.assistant_turns.values(), key=lambda a: a.seq, default=None)
        return last_answer is None or last_answer.playback_position_ms(self._rel(now_ms)) >= last_answer.audio_ms

    def _switch_upstream(self, now_ms: float, *, forced: bool) -> list[Action]:
        """Move the call to the standby upstream: restore it, replay the call, carry the caller's latest audio."""
        out = self._fail_active_response(now_ms) if forced else []
        switch = self.rollover.switched(now_ms, forced)
        # expired: the old input buffer is gone, all of it goes; at a boundary only the newest, a word's onset
        carried, carried_ms = self.rollover.carried(None if forced else CARRY_AUDIO_MS)
        self._switched_at_seq = self.tracker.last_seq  # answers up to this one are text on the new session
        why = "the session expired before a turn boundary came" if forced else "at a turn boundary"
        age = f"{switch.age_ms / 60_000:.1f} min" if switch.age_ms >= 120_000 else f"{switch.age_ms / 1000:.1f} s"
        self._audit_event(
            out, "bridge", "upstream_rollover", self._rel(now_ms), redacted=True,
            message=f"upstream session {switch.session_no} after {age}, {why} "
            f"(waited {switch.waited_ms / 1000:.1f} s); {len(self.history)} items replayed, "
            f"{carried_ms:.0f} ms of caller audio carried",
        )
        out.append(SwitchUpstream(forced))
        out.extend(self._restore_upstream())
        out.extend(SendUpstream(None, raw) for raw in carried)
        return out

    def _fail_active_response(self, now_ms: float, code: str = "upstream_reconnected") -> list[Action]:
        """The response that was streaming is lost (with the socket, or ended by the bridge): close it for the caller."""
        rid, facts = self.tracker.fail_active_response(self._rel(now_ms))
        if rid is None:
            return []
        out: list[Action] = []
        self._turn_facts(facts, now_ms, out)
        if self.speech is not None:  # what the gate held of it is dropped; the answers after it may go
            out.extend(self.speech.abandon(rid, now_ms))
        done = {
            "type": "response.done",
            "event_id": self.config.id_factory("event"),
            "response": {
                "id": rid,
                "object": "realtime.response",
                "status": "failed",
                "status_details": {"type": "failed", "error": {"type": "server_error", "code": code}},
                "output": [],
            },
        }
        return [SendClient(done), *out]

    def _close_for_upstream(self, now_ms: float, reason: str) -> list[Action]:
        detail = f": {reason}" if reason else ""
        err = self._error(f"Upstream model connection closed{detail}", code="upstream_closed", error_type="server_error")
        return self._end(now_ms, "upstream_closed", [SendClient(err), CloseClient(1000, "upstream closed")])

    def abort(self, now_ms: float, reason: str) -> list[Action]:
        """The bridge itself failed mid-call: tell the caller, close both sides, record the call as errored."""
        err = self._error(f"The bridge failed: {reason}", code="bridge_error", error_type="server_error")
        return self._end(now_ms, "error", [SendClient(err), CloseClient(1011, "bridge error"), CloseUpstream(1011, "bridge error")])

    def shutdown(self, now_ms: float, reason: str = "the bridge is restarting") -> list[Action]:
        """The bridge is stopping and the call outlived the drain deadline (``HYBRID_AGENT_DRAIN_S``):
        tell the caller why, close both sides cleanly (1001, going away), record it as ``shutdown``."""
        if self.closed or self._ending is not None:
            return []
        if self.bridge_speech.has("goodbye"):
            # the pack's goodbye first: the model is stopped and the caller no longer heard, then the clip
            # plays and the call ends when it has (GOODBYE_TIMER)
            self._ending = reason
            speaking = self.active_response_id is not None
            out = self._fail_active_response(now_ms, code="bridge_shutdown")
            if speaking:
                out.append(SendUpstream({"type": "response.cancel", "event_id": self.config.id_factory("event_bridge_cancel")}))
            out += self._play("goodbye", now_ms)
            out.append(StartTimer(GOODBYE_TIMER, self.bridge_speech.duration_ms("goodbye") + GOODBYE_TAIL_MS))
            return out
        return self._shut(now_ms, reason)

    def _shut(self, now_ms: float, reason: str) -> list[Action]:
        out: list[Action] = []
        self._audit_event(out, "bridge", "shutdown", self._rel(now_ms), message=reason, redacted=True)
        err = self._error(f"The call was ended: {reason}. Please call again.", code="bridge_shutdown",
                          error_type="server_error")
        return out + self._end(now_ms, "shutdown", [SendClient(err), CloseClient(1001, "bridge restarting"),
                                                     CloseUpstream(1000, "bridge restarting")])

    def idle_timeout(self, now_ms: float, idle_s: float) -> list[Action]:
        """Neither side sent a frame for ``idle_s`` seconds (``HYBRID_AGENT_IDLE_TIMEOUT_S``): tell the
        caller, close both sides (1000), record it as ``idle``."""
        if self.closed:
            return []
        reason = f"no audio or events for {idle_s:g} s"
        out: list[Action] = []
        self._audit_event(out, "bridge", "idle", self._rel(now_ms), message=reason, redacted=True)
        err = self._error(f"The call was ended: {reason}.", code="idle_timeout", error_type="invalid_request_error")
        return out + self._end(now_ms, "idle", [SendClient(err), CloseClient(1000, "idle"), CloseUpstream(1000, "idle")])

    def abandon(self, now_ms: float, outcome: str, reason: str = "") -> list[Action]:
        """The call never got going (no upstream): why, and its end, for the audit."""
        out: list[Action] = []
        if reason:
            self._audit_event(out, "bridge", outcome, self._rel(now_ms), message=reason, redacted=True)
        return out + self._end(now_ms, outcome, [])

    def _end(self, now_ms: float, outcome: str, actions: list[Action]) -> list[Action]:
        if self.closed:
            return []
        self.closed = True
        try:
            out: list[Action] = []
            self._turn_facts(self.tracker.flush(self._rel(now_ms)), now_ms, out)
            out.extend(Audit(r) for r in self.timing.flush(self._rel(now_ms)))
        except Exception as exc:  # the call's end must reach the audit whatever state it is in
            self.malformed_upstream.append(f"flush at call end: {type(exc).__name__}: {exc}")
            out = []
        out.extend(actions)
        summary = self.events.summary(self._rel(now_ms))
        if summary is not None:
            out.append(Audit(summary))
        out.append(Audit(CallEnded(self.call_id, self._rel(now_ms), outcome)))
        return out

    def timer_fired(self, name: str, now_ms: float) -> list[Action]:
        """A ``StartTimer`` ran out (the speech gate's and the gated user turn's check deadlines)."""
        if self.closed:
            return []
        return self._note_released(self._timer_fired(name, now_ms), now_ms)

    def _timer_fired(self, name: str, now_ms: float) -> list[Action]:
        if name == OUTAGE_TIMER:
            return self._play("outage_apology", now_ms) if self.reconnecting else []
        if name == GOODBYE_TIMER:
            return self._shut(now_ms, self._ending or "the bridge is restarting")
        if name == ROLLOVER_TIMER:
            return self._rollover_due(now_ms)
        if name == ROLLOVER_CHECK_TIMER:
            return self._try_rollover(now_ms)
        waited = self.tool_flow.timer_fired(name)
        if waited is not None:
            return waited
        if self.keypad is not None:
            keyed = self.keypad.timer_fired(name, now_ms)
            if keyed is not None:
                return keyed
        if self.bridge_turns is not None:
            fired = self.bridge_turns.timer_fired(name, now_ms)
            if fired is not None:
                return fired
        if self.speech is not None:
            return self.speech.timer_fired(name, now_ms) or []
        return []

    def set_playback(self, heard_ms: Callable[[str], float | None]) -> None:
        """The transport owns playback and knows what the caller heard of each item (Twilio marks):
        the speech gate's leaked milliseconds and its truncates use that, not the audio sent."""
        if self.speech is not None:
            self.speech.heard_ms = heard_ms

    def feed_transfer(self, status: str, now_ms: float) -> list[Action]:
        """The transport transferred the escalated call to a person (or could not): for the audit."""
        return [self._gate_action("call_transferred", now_ms, status=status[:64])]

    def feed_keypad(self, key: str, now_ms: float) -> list[Action]:
        """A key the caller pressed (Twilio ``dtmf``): part of a keypad capture, or ignored (never kept)."""
        if self.keypad is None or self.closed:
            return []
        return self.keypad.digit(key, now_ms)

    def feed_speech_verdict(self, verdict: SpeechVerdict, now_ms: float) -> list[Action]:
        """The gate worker decided a ``CheckSpeech``."""
        if self.speech is None or self.closed:
            return []
        return self._note_released(self.speech.verdict(verdict, now_ms), now_ms)

    def feed_speech_failure(self, check: SpeechCheck, reason: str, now_ms: float) -> list[Action]:
        """A ``CheckSpeech`` raised: the gate fails closed unless the pack says open."""
        if self.speech is None or self.closed:
            return []
        return self._note_released(self.speech.failed(check, reason, now_ms), now_ms)

    def _next_gate_seq(self) -> int:
        self._gate_seq += 1
        return self._gate_seq - 1

    def _gate_action(self, action: str, now_ms: float, **fields: Any) -> Audit:
        """A gate action of the session itself (the speech gate and the tool orchestrator keep their own)."""
        mode = self.config.gate.mode if self.config.gate else None
        return Audit(GateActionRecord(self.call_id, self._next_gate_seq(), self._rel(now_ms), action, mode=mode, **fields))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ caller side
    def receive_client_frame(self, data: str | bytes, now_ms: float) -> list[Action]:
        """A raw WebSocket message from the caller: bad input becomes an ``error`` event, never an exception."""
        if self._ending is not None:
            return []  # the bridge is saying goodbye: nothing more reaches the model
        if isinstance(data, (bytes, bytearray)):
            return self._refuse("Binary frames are not supported; send JSON text events.", "binary_frame", now_ms)
        if len(data) > self.config.max_message_bytes:
            return self._refuse(
                f"Message of {len(data)} bytes exceeds the limit of {self.config.max_message_bytes} bytes.",
                "message_too_large",
                now_ms,
            )
        if not self.reconnecting and not (self.keypad is not None and self.keypad.capturing):
            relayed = self._fast_append(data)
            if relayed is not None:
                return relayed
        try:
            event = json.loads(data)
        except json.JSONDecodeError as exc:
            return self._refuse(f"Invalid JSON: {exc.msg} (line {exc.lineno} column {exc.colno}).", "invalid_json", now_ms)
        except RecursionError:
            return self._refuse("Invalid JSON: nested too deeply.", "invalid_json", now_ms)
        return self.feed_client(event, now_ms, raw=data)

    def _fast_append(self, data: str) -> list[Action] | None:
        """The hot path: a plain audio frame, relayed as it came with its bytes counted from the base64
        length (``protocol/fast_path.py``); ``None`` sends anything else down the full path, which
        validates it against the SDK's models and answers a bad one with an ``error``."""
        event = fast_append(data)
        if event is None:
            return None
        n = base64_len(event["audio"])
        if n is None:
            return None
        self.events.note_sent(event)
        ms = duration_ms(n, self.input_format)
        self.input_audio_ms += ms
        self.rollover.caller_audio(data, ms)
        return [SendUpstream(event, data)]

    def feed_client(self, event: Any, now_ms: float, raw: str | None = None) -> list[Action]:
        """One parsed caller event."""
        try:
            validate_client_event(event)
        except EventValidationError as exc:
            event_id = event.get("event_id") if isinstance(event, dict) else None
            code = "unknown_event_type" if "Unknown" in str(exc) else "invalid_event"
            return self._refuse(
                str(exc), code, now_ms, param=exc.param, event_id=event_id if isinstance(event_id, str) else None,
                event_type=exc.event_type,
            )
        self.events.note_sent(event)
        if event["type"] not in _BACKGROUND_EVENTS:
            self._last_activity_ms = now_ms
        return self._on_client_event(event, now_ms, raw)

    def _on_client_event(self, event: dict[str, Any], now_ms: float, raw: str | None) -> list[Action]:
        kind = event["type"]
        if self.reconnecting:
            # the caller keeps talking while the bridge reopens the upstream: hold what arrives
            # (audio up to RECONNECT_AUDIO_BUFFER_MS, beyond that dropped and counted)
            ms = duration_ms(b64_decoded_len(event.get("audio", "")), self.input_format) if kind == "input_audio_buffer.append" else 0.0
            self.reconnect_queue.hold(event, ms)
            return []
        if kind == "session.update" and isinstance(event.get("session"), dict):
            rewrites = self.client_config.client_update(event["session"])
            if self.client_config.changed:
                sent: list[Action] = [SendUpstream(event)]
                for rewrite in rewrites:  # the audit shows the configuration that ran, not only the one asked for
                    self._audit_event(
                        sent, "bridge", "session_rewritten", self._rel(now_ms),
                        message=f"{rewrite.param}: {rewrite.requested!r} -> {rewrite.used!r} ({rewrite.reason})",
                        event_type="session.update", param=rewrite.param, client_event_id=event.get("event_id"),
                    )
                return sent
        if kind == "input_audio_buffer.append":
            audio = event["audio"]
            try:
                n = len(binascii.a2b_base64(audio, strict_mode=True))
            except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII characters in the string
                reason = str(exc) if isinstance(exc, binascii.Error) else "non-ASCII characters"
                return self._refuse(
                    f"Invalid 'audio': not valid base64 ({reason}).", "invalid_value", now_ms,
                    param="audio", event_id=event.get("event_id"), event_type=kind,
                )
            ms = duration_ms(n, self.input_format)
            self.input_audio_ms += ms
            if self.keypad is not None and self.keypad.capturing:
                # keypad capture: neither the tones nor anything said reach the model or a transcript
                return [SendUpstream({**event, "audio": silence_b64(n, self.input_format)})]
            self.rollover.caller_audio(raw if raw is not None else json.dumps(event), ms)
        elif kind == "conversation.item.truncate":
            return self._valid_truncate(event, raw, now_ms)
        elif kind == "conversation.item.create":
            item = event["item"]
            if item.get("type") == "function_call_output":
                return self.tool_flow.client_output(event, raw, now_ms)
            if item.get("type") == "message" and item.get("role") == "user":
                return [SendUpstream(event, raw), *self._record_client_text(item, now_ms)]
        elif kind == "response.create" and self.bridge_turns is not None:
            held = self.bridge_turns.client_create(event, raw)  # the bridge is speaking or a turn is being decided
            if held is not None:
                return held
        return [SendUpstream(event, raw)]

    def _valid_truncate(self, event: dict[str, Any], raw: str | None, now_ms: float) -> list[Action]:
        """A caller's barge-in truncate, checked against the audio the bridge actually relayed.

        Clients estimate playback by the wall clock and ask for more than they got (openai-agents
        #2009, pipecat #3677 and #2106, livekit #6157); the service refuses that and the model's
        memory of the answer goes wrong.  Beyond what was relayed: clamped.  An item with no audio
        relayed yet: not truncated (nothing was heard) but its response cancelled.
        """
        if str(event.get("item_id")).startswith(BRIDGE_ITEM_PREFIX):
            return []  # a barge-in on the bridge's own clip: the upstream never had that item
        turn = self.assistant_turns.get(str(event.get("item_id")))
        if turn is None:
            return [SendUpstream(event, raw)]  # not an answer the bridge saw: the upstream decides
        if turn.seq <= self._switched_at_seq:
            # an answer of a session the call rolled over from: the new session has it as text only,
            # so the bridge keeps what the caller heard itself, for the model's memory and the audit
            heard = turn.heard_text(float(event.get("audio_end_ms") or 0), self.tracker.typical_rate())
            self.history.heard(turn.item_id, heard)
            return [self._gate_action("truncate_replayed", now_ms, item_id=turn.item_id,
                                      requested_ms=float(event.get("audio_end_ms") or 0), audio_end_ms=turn.audio_ms)]
        relayed = self.speech.sent_audio_ms(turn.item_id) if self.speech is not None else None
        relayed = turn.audio_ms if relayed is None else relayed
        asked = float(event.get("audio_end_ms") or 0)
        if relayed <= 0:
            out: list[Action] = []
            if self.active_response_id is not None and self.active_response_id == turn.response_id:
                out.append(SendUpstream({"type": "response.cancel", "event_id": self.config.id_factory("event_bridge_cancel")}))
            out.append(self._gate_action("truncate_refused", now_ms, item_id=turn.item_id, requested_ms=asked, audio_end_ms=0.0))
            return out
        if asked <= relayed:
            return [SendUpstream(event, raw)]
        clamped = int(relayed)
        return [
            SendUpstream({**event, "audio_end_ms": clamped}),
            self._gate_action("truncate_clamped", now_ms, item_id=turn.item_id, requested_ms=asked, audio_end_ms=float(clamped)),
        ]

    def _record_client_text(self, item: dict[str, Any], now_ms: float) -> list[Action]:
        """A user message the client typed (not spoken) is a turn like any other: audited and decided."""
        record = self.tracker.client_text(item, self._rel(now_ms))
        out: list[Action] = []
        if record is not None:
            self._record_turn(record, now_ms, out)
        return out

    def _error(self, message: str, **kw: Any) -> dict[str, Any]:
        return error_event(message, id_factory=self.config.id_factory, **kw)

    def _refuse(
        self,
        message: str,
        code: str,
        now_ms: float,
        *,
        param: str | None = None,
        event_id: str | None = None,
        event_type: str | None = None,
    ) -> list[Action]:
        """A caller event the bridge refused: an ``error`` event to the caller and a fact for the audit."""
        out: list[Action] = [SendClient(self._error(message, code=code, param=param, event_id=event_id))]
        self._audit_event(
            out, "bridge_refused", code, self._rel(now_ms),
            message=message, event_type=event_type, param=param, client_event_id=event_id,
        )
        return out

    def _audit_event(self, out: list[Action], source: str, kind: str, at_ms: float, **fields: Any) -> None:
        record = self.events.record(source, kind, at_ms, **fields)
        if record is not None:
            out.append(Audit(record))

    # ------------------------------------------------------------------ model side
    def receive_upstream_frame(self, data: str | bytes, now_ms: float) -> list[Action]:
        """A raw message from the model.  Unknown event types are relayed (forward compatible)."""
        try:
            text = data if isinstance(data, str) else data.decode()
            # an audio delta: its long string cut out, the rest parsed (protocol/fast_path.py)
            event = loads_with_blob(text, "delta") if len(text) >= MIN_BLOB_CHARS else None
            if event is None:
                event = json.loads(text)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return [SendClient(self._error("Upstream sent a malformed event; dropped.", code="upstream_malformed", error_type="server_error"))]
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return [SendClient(self._error("Upstream sent an event without a type; dropped.", code="upstream_malformed", error_type="server_error"))]
        return self.feed_upstream(event, now_ms, raw=text)

    def feed_upstream(self, event: dict[str, Any], now_ms: float, raw: str | None = None) -> list[Action]:
        if self._ending is not None:
            return []  # the bridge is saying goodbye: the model was stopped, its late events are not the caller's
        out = self._feed_upstream(event, now_ms, raw)
        return self._note_released(out, now_ms) if self.timing.awaiting_release else out

    def _feed_upstream(self, event: dict[str, Any], now_ms: float, raw: str | None) -> list[Action]:
        out: list[Action] = []
        kind = event["type"]
        if kind not in _BACKGROUND_EVENTS:
            self._last_activity_ms = now_ms
        if kind == "session.created":
            out.extend(self._plan_rollover(event, now_ms))
        elif kind in ("input_audio_buffer.committed", "input_audio_buffer.cleared"):
            self.rollover.buffer_reset()
        elif kind == "error":
            self._record_upstream_error(event, now_ms, out)
            err = event.get("error")
            if isinstance(err, dict) and err.get("code") == "session_expired":
                # the service's age limit: the bridge's business (a rollover), never the caller's
                self.rollover.expired = True
                return out + (self._switch_upstream(now_ms, forced=True) if self.rollover.state == "ready" else [])
        try:
            facts = self.tracker.feed(event, self._rel(now_ms))
        except UPSTREAM_FIELD_ERRORS as exc:
            # relay it (the caller may understand it); only the bridge's tracking skips it
            self.malformed_upstream.append(f"{event['type']}: {type(exc).__name__}: {exc}")
            facts = []
        self._turn_facts(facts, now_ms, out)
        self._time_response(event, now_ms, out)
        if self.bridge_turns is not None:
            self._bridge_turn_events(event, out)
        if self.tools is not None:
            hidden = self.tools.on_upstream(event)
            if hidden is not None:  # a server tool's event: the client never sees it
                self._hidden_items.hide(event)
                return [*hidden, *out]
        if self.client_tools is not None:
            item = event.get("item") if isinstance(event.get("item"), dict) else {}
            server = self.tools is not None and self.tools.is_server_tool(item.get("name"))
            if self.client_tools.on_upstream(event, raw, server):
                return out  # a client tool's call, held until its tool_call decision
        out[:0] = self._deliver(event, raw, now_ms)
        return out

    def _deliver(self, event: dict[str, Any], raw: str | None, now_ms: float) -> list[Action]:
        """An upstream event on its way to the client: server-tool items taken out, through the speech gate."""
        out: list[Action] = []
        accepted = event.get("session") if event["type"] == "session.updated" else None  # as the upstream took it
        if self.tools is not None and event["type"] == "response.done":
            cleaned, extra = self.tools.response_done(event)
            if cleaned is not None:
                event, raw = cleaned, None
            out.extend(extra)
        elif event["type"] in ("session.created", "session.updated"):
            own = self._client_view_of_session(event)  # the bridge's tools and instructions are its own
            if own is not None:
                event, raw = own, None
        gated: list[Action] | None = None
        if self.speech is not None:
            try:
                gated = self.speech.on_upstream(event, raw, now_ms)
            except UPSTREAM_FIELD_ERRORS as exc:  # the gate cannot place it: it does not reach the caller
                self.malformed_upstream.append(f"speech gate: {event['type']}: {type(exc).__name__}: {exc}")
                gated = []
        if gated is not None:
            out[:0] = gated
        elif self._answers_own_update(event):
            self._hidden_items.hide(event)
        else:
            if self._hidden_items.rewrite(event):
                raw = None
            out.insert(0, SendClient(event, raw))
            if event["type"] == "session.updated":
                self._audit_event(out, "bridge", "session_configured", self._rel(now_ms), redacted=True,
                                  message=describe_session(accepted))
        return out

    def _client_view_of_session(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """``session.created/updated`` as the client may see it: without the server tools and without the
        pack's instructions (the client sees its own); ``None`` when nothing is the bridge's."""
        cleaned = self.tools.clean_session(event) if self.tools is not None else None
        session = (cleaned or event).get("session")
        ours = self.client_config.bridge_instructions
        instructions = session.get("instructions") if isinstance(session, dict) else None
        if not ours or not isinstance(instructions, str) or not instructions.startswith(ours):
            return cleaned
        if cleaned is None:
            cleaned = copy.deepcopy(event)
        cleaned["session"]["instructions"] = instructions[len(ours):].lstrip("\n")
        return cleaned

    def _bridge_turn_events(self, event: dict[str, Any], out: list[Action]) -> None:
        """Which responses are the bridge's own, when the upstream is free for the next one."""
        assert self.bridge_turns is not None
        kind = event["type"]
        if kind in ("response.created", "response.done"):
            rid = str((event.get("response") or {}).get("id") or "")
            if kind == "response.created":
                self.bridge_turns.response_created(rid)
            else:
                out.extend(self.bridge_turns.response_done(rid))
        elif kind == "error" and isinstance(event.get("error"), dict):
            err = event["error"]
            out.extend(self.bridge_turns.refused(str(err.get("event_id") or ""), err.get("code")))

    def _record_upstream_error(self, event: dict[str, Any], now_ms: float, out: list[Action]) -> None:
        err = event.get("error")
        caused_by = str(err.get("event_id") or "") if isinstance(err, dict) else ""
        own: str | None = None
        if caused_by == BRIDGE_UPDATE_EVENT_ID or caused_by.startswith("event_bridge_replay_session"):
            own = "session.update"  # the bridge's own update (transcription, restored configuration)
        elif caused_by.startswith("event_bridge_replay_item"):
            own = "conversation.item.create"
        record = self.events.upstream_error(event, self._rel(now_ms), own_event_type=own)
        if record is not None:
            out.append(Audit(record))

    def _answers_own_update(self, event: dict[str, Any]) -> bool:
        """The answer to the bridge's own session.update is the bridge's business, not the caller's
        (so are the new socket's session.created and the echoes of replayed items)."""
        if event["type"] == "session.created" and self._hide_session_created:
            self._hide_session_created = False
            return True
        if event["type"] in ("conversation.item.added", "conversation.item.done", "conversation.item.created"):
            item = event.get("item")
            if isinstance(item, dict) and str(item.get("id", "")).startswith((REPLAY_ITEM_PREFIX, NOTE_ITEM_PREFIX)):
                return True
        if event["type"] == "error":
            caused_by = str((event.get("error") or {}).get("event_id") or "")
            if caused_by.startswith("event_bridge_replay_item"):
                return True
            if caused_by == BRIDGE_UPDATE_EVENT_ID or caused_by.startswith("event_bridge_replay_session"):
                self._own_updates = max(0, self._own_updates - 1)
                return True
            # the bridge's own cancels, truncates and fallback requests: its business (audited above)
            return caused_by.startswith("event_bridge_")
        if self._own_updates <= 0:
            return False
        if event["type"] == "session.updated":
            self._own_updates -= 1
            return True
        return False

    def _turn_facts(self, facts: list[TurnFact], now_ms: float, out: list[Action]) -> None:
        """What the tracker saw finish: audit it and act on it."""
        for fact in facts:
            if isinstance(fact, TurnRecord):
                self._record_turn(fact, now_ms, out)
            elif isinstance(fact, ToolCallRecord):
                out.extend(self.tool_flow.model_called(fact, now_ms))
            else:
                out.append(Audit(fact))
                turn = self.assistant_turns[fact.item_id]
                self._unhear_disclosures(turn, fact.heard_text, now_ms, out)
                self.history.heard(turn.item_id, fact.heard_text)  # after a reconnect the model remembers what the caller heard

    def _time_response(self, event: dict[str, Any], now_ms: float, out: list[Action]) -> None:
        """Per-response timing and usage (``session.response_timing``), never allowed to break the call."""
        user_seq = turn_seq = None
        kind = event["type"]
        try:
            if kind in ("input_audio_buffer.speech_stopped", "input_audio_buffer.committed"):
                turn = self.tracker.user_turns.get(str(event.get("item_id")))
                user_seq = turn.seq if turn is not None else None
            elif kind == "response.output_item.added" and isinstance(event.get("item"), dict):
                answer = self.tracker.assistant_turns.get(str(event["item"].get("id")))
                turn_seq = answer.seq if answer is not None else None
            out.extend(Audit(r) for r in self.timing.on_upstream(event, self._rel(now_ms), user_seq, turn_seq))
        except UPSTREAM_FIELD_ERRORS as exc:
            self.malformed_upstream.append(f"response timing: {kind}: {type(exc).__name__}: {exc}")

    def _note_released(self, actions: list[Action], now_ms: float) -> list[Action]:
        """The first audio of an answer going to the caller ends its time to first audio."""
        if self.timing.awaiting_release:
            sent = [a.event for a in actions if isinstance(a, SendClient)]
            actions.extend(Audit(r) for r in self.timing.released(sent, self._rel(now_ms)))
        return actions

    # ------------------------------------------------------------------ helpers
    def playback_position_ms(self, item_id: str, now_ms: float) -> float:
        return self.tracker.playback_position_ms(item_id, self._rel(now_ms))

    def _record_turn(self, record: TurnRecord, now_ms: float, out: list[Action]) -> None:
        """Audit a finished turn and, under a policy pack, decide on its text and note what it spoke."""
        out.append(Audit(record))
        if record.text:
            part = "input_text" if record.role == "user" else "output_text"
            item = {"type": "message", "role": record.role, "content": [{"type": part, "text": record.text}]}
            self.history.add(item, record.item_id)
        if self.policy is None:
            return
        if record.role == "user" and self.bridge_turns is not None:
            out.extend(self.bridge_turns.user_turn(record.turn_id, record.item_id, bool(record.text), now_ms))
        if record.text:
            inp = self.policy.turn(record.role, record.text, record.ended_ms)
            out.append(self._check(record.turn_id, inp, record.ended_ms, scan_pii=True))
            assert self.disclosures is not None
            out.extend(Audit(r) for r in self.disclosures.turn_finished(record.role, record.text, record.item_id, record.seq, record.ended_ms))
        if record.role == "user":
            out.extend(self.tool_flow.caller_said(record.text, record.item_id, now_ms))
        else:
            out.extend(self.decisions.assistant_turn(record, now_ms))

    def _unhear_disclosures(self, turn: AssistantTurn, heard: str, now_ms: float, out: list[Action]) -> None:
        """A disclosure in an answer cut short counts only if the caller heard it."""
        if self.disclosures is not None:
            out.extend(Audit(r) for r in self.disclosures.heard(turn.item_id, heard, turn.seq, self._rel(now_ms)))

    # ------------------------------------------------------------------ policy gate
    def _check(self, subject_id: str, inp: PolicyInput, at_ms: float, *, scan_pii: bool = False) -> CheckPolicy:
        self._checks += 1
        return CheckPolicy(PolicyCheck(self._checks, subject_id, inp, at_ms, scan_pii))

    def feed_policy_failure(self, check: PolicyCheck, reason: str, now_ms: float) -> list[Action]:
        """The gate could not decide ``check``: the pack's fail-closed effect is recorded and acted on."""
        return self.decisions.failed(check, reason, now_ms)

    def feed_policy_outcome(self, outcome: PolicyOutcome, now_ms: float) -> list[Action]:
        """The gate decided a ``CheckPolicy``: recorded, and acted on in the enforcing modes."""
        return self.decisions.decided(outcome, now_ms)

    def feed_tool_result(self, call_id: str, status: str, output: str, latency_ms: float, now_ms: float) -> list[Action]:
        """A server tool ran (or its arguments were refused): record it and give the model its output."""
        return [] if self.closed else self.tool_flow.server_result(call_id, status, output, latency_ms, now_ms)

    def _rel(self, now_ms: float) -> float:
        return now_ms - self._started_ms

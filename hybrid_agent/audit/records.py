"""Typed audit records the call session emits as ``Audit`` actions.

The session layer never writes SQL: it hands these records to an audit sink.
Ids are deterministic (derived from the call id and the turn sequence), so a
record replayed from a spool lands once.  Times are milliseconds since the call
started (``at_ms``), except ``CallStarted.started_at`` which is wall-clock epoch
seconds.  Text fields are passed as given; the PII gate redacts before they
reach the store, and ``redacted`` says whether that has happened.  The store
never keeps text that is not marked redacted as given: the writer redacts it with
the PII gate (off the audio path) and records that it did.

Every record has a deterministic ``record_id``; the store uses it as the primary
key, so a record written twice (spool replay) lands once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class CallStarted:
    """A call opened.

    ``caller_id`` (phone number, SIP URI) and ``account_id`` are raw identifiers:
    the store keeps only their keyed HMACs (pseudonyms), never the values.
    """

    call_id: str
    started_at: float
    channel: str
    model: str
    upstream: str
    caller_id: str | None = None
    account_id: str | None = None
    policy_pack: str | None = None
    policy_version: str | None = None
    gate_mode: str | None = None

    @property
    def record_id(self) -> str:
        return self.call_id


CALL_OUTCOMES = ("completed", "client_closed", "upstream_closed", "upstream_unavailable", "error", "interrupted", "shutdown", "idle")
"""Every ``CallEnded.outcome``.  ``upstream_unavailable``: the upstream could not be reached, the
call never started.  ``interrupted``: the bridge process died mid-call; the end was recorded
afterwards by :func:`hybrid_agent.audit.store.close_interrupted_calls`."""


@dataclass(frozen=True, slots=True)
class CallEnded:
    call_id: str
    at_ms: float
    outcome: str  # one of CALL_OUTCOMES: completed | client_closed | upstream_closed | upstream_unavailable | error | interrupted | shutdown | idle

    @property
    def record_id(self) -> str:
        return f"{self.call_id}/end"


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One finished turn; ``seq`` orders turns by when speech started."""

    call_id: str
    seq: int
    role: Role
    item_id: str
    text: str | None
    status: str  # completed | incomplete | cancelled | transcription_failed
    started_ms: float
    ended_ms: float
    audio_ms: float = 0.0
    response_id: str | None = None
    redacted: bool = False

    @property
    def turn_id(self) -> str:
        return f"{self.call_id}/turn/{self.seq}"

    @property
    def record_id(self) -> str:
        return self.turn_id


@dataclass(frozen=True, slots=True)
class TurnInterrupted:
    """What the caller actually heard of an assistant turn cut short by barge-in."""

    call_id: str
    seq: int
    item_id: str
    audio_end_ms: float
    heard_text: str
    at_ms: float
    redacted: bool = False

    @property
    def record_id(self) -> str:
        return f"{self.call_id}/turn/{self.seq}/interrupted"


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    call_id: str
    tool_call_id: str
    name: str
    arguments: str
    at_ms: float
    response_id: str | None = None
    redacted: bool = False

    @property
    def record_id(self) -> str:
        return f"{self.call_id}/tool/{self.tool_call_id}"


@dataclass(frozen=True, slots=True)
class ToolResultRecord:
    call_id: str
    tool_call_id: str
    output: str
    at_ms: float
    redacted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"  # ok | error | timeout | denied (the gate refused it: the bridge answered) | unsolicited (no such call was pending)

    @property
    def record_id(self) -> str:
        return f"{self.call_id}/tool/{self.tool_call_id}/result"


VIOLATION_EFFECTS = frozenset({"deny", "block_speech", "escalate"})
"""Effects that count as a policy violation unless a decision says otherwise."""


@dataclass(frozen=True, slots=True)
class PolicyDecisionRecord:
    """One policy decision: which rule (of which pack version) did what, at which stage.

    ``seq`` numbers the decisions of a call (0, 1, ...); ``subject_id`` names what
    was decided on (a turn id, a tool call id); ``input_digest`` is a digest of the
    exact input the rule saw (never the input itself).
    """

    call_id: str
    seq: int
    stage: str  # user_text | assistant_text | tool_call | session_start
    rule_id: str
    effect: str  # allow | deny | confirm | redact | block_speech | escalate | require_disclosure
    policy_version: str
    at_ms: float
    policy_pack: str | None = None
    subject_id: str | None = None
    input_digest: str | None = None
    message: str | None = None
    violation: bool | None = None  # None: derived from ``effect`` (VIOLATION_EFFECTS)
    redacted: bool = False

    @property
    def record_id(self) -> str:
        return f"{self.call_id}/decision/{self.seq}"

    @property
    def is_violation(self) -> bool:
        return self.effect in VIOLATION_EFFECTS if self.violation is None else self.violation


@dataclass(frozen=True, slots=True)
class DisclosureRecord:
    """A required disclosure was given (or was due and is recorded as missing)."""

    call_id: str
    disclosure_id: str  # e.g. "recording_notice"
    text: str
    at_ms: float
    status: str = "given"  # given | missing | acknowledged
    turn_seq: int | None = None
    rule_id: str | None = None
    redacted: bool = False

    @property
    def record_id(self) -> str:
        return f"{self.call_id}/disclosure/{self.disclosure_id}"


CallEventSource = Literal["upstream", "upstream_refused", "bridge_refused", "bridge"]

CALL_EVENT_SOURCES: tuple[str, ...] = ("upstream", "upstream_refused", "bridge_refused", "bridge")
"""``upstream``: an upstream ``error`` event not tied to a client event.
``upstream_refused``: the upstream refused a client event (an ``error`` whose ``error.event_id``
names a client event).  ``bridge_refused``: the bridge itself refused a client event (bad JSON,
oversize, invalid schema, invalid base64).  ``bridge``: a bridge-side fact (a model rewrite, an
upstream connect failure)."""

REFUSED_SOURCES = frozenset({"upstream_refused", "bridge_refused"})


@dataclass(frozen=True, slots=True)
class CallEventRecord:
    """An error or refusal a compliance officer must see ("errors are audit facts").

    ``seq`` numbers the events of a call (0, 1, ...).  ``kind`` is a short code (the Realtime
    error ``code`` such as ``invalid_value``, or a bridge code such as ``invalid_json``,
    ``model_rewritten``, ``upstream_connect_failed``).  ``event_type`` is the client event
    concerned (``session.update``) and ``param`` the field (``session.model``), when known.
    ``message`` may quote caller input: unless ``redacted``, the writer redacts it (and
    ``event_type``, ``param``, ``client_event_id`` if they are not plain identifiers) like
    any other text.  A refused ``session.update`` means the configuration the client asked
    for is not in effect: ``audit calls`` flags such calls (``config_refused``).
    """

    call_id: str
    seq: int
    at_ms: float
    source: CallEventSource
    kind: str
    event_type: str | None = None
    param: str | None = None
    message: str | None = None
    client_event_id: str | None = None
    redacted: bool = False

    @property
    def record_id(self) -> str:
        return f"{self.call_id}/event/{self.seq}"

    @property
    def refused(self) -> bool:
        """A client event was refused (by the upstream or by the bridge)."""
        return self.source in REFUSED_SOURCES


GateAction = Literal["speech_held", "speech_blocked", "fallback_spoken", "truncate_clamped", "truncate_refused",
                     "tool_decided", "tool_run", "tool_late_result", "user_turn_gated", "escalated", "gate_failed",
                     "hold_overflow", "disclosure_requested", "disclosure_undelivered", "tool_confirmed", "client_tool_held",
                     "keypad_capture", "call_transferred"]

GATE_ACTIONS: tuple[str, ...] = (
    "speech_held", "speech_blocked", "fallback_spoken", "truncate_clamped", "truncate_refused",
    "tool_decided", "tool_run", "tool_late_result", "user_turn_gated", "escalated", "gate_failed",
    "hold_overflow", "disclosure_requested", "disclosure_undelivered", "tool_confirmed", "client_tool_held",
    "keypad_capture", "call_transferred",
)
"""Every ``GateActionRecord.action`` (what each means: docs/audit.md, *What the gate did*)."""


@dataclass(frozen=True, slots=True)
class GateActionRecord:
    """What the enforcing middle layer (the gate) *did* in a call, as opposed to what a rule decided
    (``PolicyDecisionRecord``): audio held or blocked, a fallback spoken, a truncate clamped or
    refused, a tool call decided or run, a late tool result discarded, a user turn gated, an
    escalation, a gate failure.

    ``seq`` numbers the gate actions of a call (0, 1, ...).  ``mode`` is the gate mode in force
    (``observe`` | ``monitor`` | ``hold``).  ``held_ms``: in hold mode, how long the answer's first
    audio (or the audio concerned) was held; ``leaked_ms``: in monitor mode, the milliseconds of
    violating audio that reached the caller (0 in hold mode).  Truncates: ``requested_ms`` is the
    position the client asked for, ``audio_end_ms`` the one used (the clamped one).  Tool runs:
    ``latency_ms`` and ``status`` (ok | error | timeout); decisions: ``status`` allow | deny |
    confirm ...  ``text`` (the fallback utterance spoken, the blocked phrase) is redacted by the
    writer like any other text unless ``redacted``; the short codes (``mode``, ``item_id``,
    ``rule_id``, ``effect``, ``status``, ``tool``) are kept when they are plain identifiers.
    """

    call_id: str
    seq: int                      # per call, 0, 1, ...
    at_ms: float
    action: GateAction
    mode: str | None = None       # observe | monitor | hold (the gate mode in force)
    item_id: str | None = None    # the assistant item / tool call concerned
    rule_id: str | None = None
    effect: str | None = None
    held_ms: float | None = None  # hold mode: how long the first audio of the answer was held / audio held
    leaked_ms: float | None = None  # monitor mode: ms of violating audio that reached the caller (0 in hold)
    audio_end_ms: float | None = None  # truncates: the position used; clamped: the clamped one
    requested_ms: float | None = None  # truncates: what the client asked for
    latency_ms: float | None = None    # tool runs
    status: str | None = None          # tool runs: ok | error | timeout; decisions: allow | deny | confirm ...
    tool: str | None = None
    text: str | None = None            # e.g. the fallback utterance spoken, or the blocked phrase's redacted text
    redacted: bool = False

    @property
    def record_id(self) -> str:
        return f"{self.call_id}/gate/{self.seq}"


@dataclass(frozen=True, slots=True)
class ResponseMetrics:
    """What one model response took and what it used: per-stage timings and its ``response.done`` usage.

    A record of its own (records are append-only): the answer's ``TurnRecord`` is written when its
    item is done, the usage arrives later with ``response.done``, and the release to the caller
    (hold mode) may come later still.  ``seq`` numbers the call's responses (0, 1, ...).

    Times are on the call clock (ms since the call started).  ``reference_ms`` is when the caller
    stopped speaking (the ``speech_stopped`` event, ``reference = "speech_stopped"``), or committed
    its turn without the service's turn detection (``committed``), or when the response was created
    when no caller turn prompted it (``response_created``: a typed turn, the bridge's own answer).
    ``ttfa_ms`` (time to first audio) = first audio released to the caller - reference;
    ``gate_ms`` = release - first audio from the model (the gate's hold; 0 without a gate).
    ``over_budget``: the stages over their latency budget, comma-separated (``None``: none).
    Tokens are the service's own counts; ``cached_*`` are part of ``input_*``.  No text: nothing
    here is personal data.
    """

    call_id: str
    seq: int
    at_ms: float
    model: str
    status: str
    response_id: str | None = None
    turn_seq: int | None = None      # the assistant turn the response spoke (its first message)
    user_seq: int | None = None      # the caller turn it answered (None: no speech prompted it)
    reference: str = "response_created"  # speech_stopped | committed | response_created
    reference_ms: float | None = None
    first_audio_ms: float | None = None  # first audio delta from the model
    released_ms: float | None = None     # first audio delta sent to the caller
    ttfa_ms: float | None = None
    gate_ms: float | None = None
    audio_ms: float = 0.0                # audio the response carried
    over_budget: str | None = None
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    input_image_tokens: int = 0
    cached_text_tokens: int = 0
    cached_audio_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0

    @property
    def record_id(self) -> str:
        return f"{self.call_id}/response/{self.seq}"


AuditRecord = Union[
    CallStarted,
    CallEnded,
    TurnRecord,
    TurnInterrupted,
    ToolCallRecord,
    ToolResultRecord,
    PolicyDecisionRecord,
    DisclosureRecord,
    CallEventRecord,
    GateActionRecord,
    ResponseMetrics,
]

"""Responses the bridge asks for itself, and the gated user turn.

A sans-I/O part of the call session.  The bridge speaks on its own in three places: the pack's
required disclosure at the start of the call (asked for word for word, before the model's first
answer), a rule's utterance (an escalation, a refused user turn), and, with ``gate.user_turn:
gated``, the model's answer to a caller turn once that turn passed the ``user_text`` stage.

Only one response may run at a time on a Realtime session (the service refuses a second
``response.create`` with ``conversation_already_has_active_response``), so every response the
bridge wants goes through one queue here, and a client's own ``response.create`` waits while the
bridge is speaking or while a caller turn is still being decided.  Every queue is bounded.

Gated user turn: turn detection runs with ``create_response: false`` (``policy.session_config``),
so the model does not answer on its own.  When the caller's transcription completes, the turn is
pending; the ``user_text`` decision then releases it:

- allow (and the obligations that do not stop a turn): ``response.create``;
- ``deny``, ``escalate``, ``block_speech``: the rule's utterance is said instead, word for word;
- a sensitive number in what the caller said (``redact``, or the PII gate found a card number,
  security code or SSN): a system note tells the model not to repeat or confirm it, then the
  model answers; the turn is flagged in the audit;
- the decision failed or did not arrive within ``check_timeout_ms``: fail closed (the fallback
  utterance) unless the pack says ``user_text: open``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hybrid_agent.audit.records import GateActionRecord
from hybrid_agent.session.actions import Action, Audit, SendUpstream, StartTimer

SAY_EXACTLY = "Say exactly this, word for word, and nothing else: "
#: ids of the system notes the bridge adds to the conversation (their echoes are hidden from the client)
NOTE_ITEM_PREFIX = "item_bridge_note_"
#: responses the bridge may have queued at once; client creates held at once
MAX_QUEUED = 8
MAX_HELD_CLIENT = 4
#: pending gated turns at once (a caller cannot finish turns faster than they are decided for long)
MAX_PENDING_TURNS = 8
USER_TURN_TIMER = "user_turn:"
#: the bridge's opening starts at the latest this long after the call started, if the client asks for nothing
ARM_TIMER = "bridge_turns:arm"
ARM_AFTER_MS = 1500.0
#: what the caller said that the model must not echo back
SENSITIVE_PII = frozenset({"CREDIT_CARD", "CARD_CVV", "US_SSN", "PIN", "US_BANK_NUMBER", "IBAN_CODE"})
STOPPING_EFFECTS = frozenset({"deny", "escalate", "block_speech"})
DO_NOT_REPEAT = (
    "The caller's last message contained a sensitive number (for example a card number or security code). "
    "Never repeat, read back or confirm any part of it; if you need it, ask for it to be entered on the keypad."
)
NOT_HEARD = "Sorry, I didn't catch that. Could you say it again?"


def say_exactly(event_id: str, utterance: str) -> dict[str, Any]:
    """A ``response.create`` whose answer is ``utterance`` word for word."""
    return {"type": "response.create", "event_id": event_id, "response": {"instructions": SAY_EXACTLY + utterance}}


@dataclass(slots=True)
class _Turn:
    subject_id: str  # the user turn record's id: the subject of its user_text check
    item_id: str
    since_ms: float


@dataclass
class BridgeTurns:
    call_id: str
    next_seq: Callable[[], int]
    rel: Callable[[float], float]
    busy: Callable[[], bool]  # a response is running upstream
    mode: str | None = None
    gated: bool = False  # gate.user_turn: gated
    fail_open: bool = False  # gate.on_failure.user_text: open
    check_timeout_ms: float = 1500.0
    fallback_utterance: str = "I'm sorry, I can't help with that."
    escalation_utterance: str = "I'm going to pass you to a colleague who can help with this."
    queue: deque[dict[str, Any]] = field(default_factory=deque)  # bridge response.create events not sent yet
    in_flight: int = 0  # bridge creates sent whose response has not finished
    _ours: set[str] = field(default_factory=set)  # ids of running responses the bridge asked for
    _unassigned: int = 0  # bridge creates sent whose response.created has not come yet
    _sent: dict[str, dict[str, Any]] = field(default_factory=dict)  # event_id -> create (to retry when refused)
    held_client: deque[tuple[dict[str, Any], str | None]] = field(default_factory=deque)
    pending: dict[str, _Turn] = field(default_factory=dict)  # subject id -> gated turn awaiting its decision
    holding: bool = False  # a decision the first answer waits for (the disclosure at the start)
    #: the bridge's own first response waits for the client: its first response.create (so the client
    #: has configured the session, and asks before anything starts) or ``ARM_TIMER`` running out.
    #: Starting earlier makes the service refuse the client's voice (``cannot_update_voice``) and
    #: confuses clients that track their own requests (pipecat holds and then drops its greeting).
    armed: bool = True
    dropped: int = 0
    _n: int = 0

    # ------------------------------------------------------------------ asking for speech
    def say(self, utterance: str, kind: str, now_ms: float) -> list[Action]:
        """The bridge says ``utterance`` (after whatever is speaking now)."""
        self._n += 1
        return self._enqueue(say_exactly(f"event_bridge_{kind}_{self._n}", utterance))

    def _enqueue(self, create: dict[str, Any], *before: dict[str, Any]) -> list[Action]:
        if len(self.queue) >= MAX_QUEUED:
            self.dropped += 1
            return []
        for event in before:  # system notes go in right away: they are not responses
            self.queue.append(event)
        self.queue.append(create)
        return self._pump()

    def _pump(self) -> list[Action]:
        out: list[Action] = []
        while self.queue and self.queue[0].get("type") != "response.create":
            out.append(SendUpstream(self.queue.popleft()))
        if self.queue and not self.busy() and self.in_flight == 0 and self.armed:
            create = self.queue.popleft()
            self.in_flight += 1
            self._unassigned += 1
            self._sent[create["event_id"]] = create
            while len(self._sent) > MAX_QUEUED * 4:
                self._sent.pop(next(iter(self._sent)))
            out.append(SendUpstream(create))
            while self.queue and self.queue[0].get("type") != "response.create":
                out.append(SendUpstream(self.queue.popleft()))
        elif not self.queue and not self.waiting and self.in_flight == 0 and not self.busy():
            if self.held_client:  # the bridge is quiet and nothing is being decided: the client's turn
                event, raw = self.held_client.popleft()
                out.append(SendUpstream(event, raw))
        return out

    @property
    def waiting(self) -> bool:
        """The next answer waits for a decision (the start-of-call disclosure, a gated caller turn)."""
        return self.holding or bool(self.pending)

    # ------------------------------------------------------------------ events
    def client_create(self, event: dict[str, Any], raw: str | None) -> list[Action] | None:
        """A client's ``response.create``: ``None`` to send it now, else held (``[]``) until the bridge is quiet."""
        if not self.armed:  # the client's first request: the bridge's opening goes first, then this
            if len(self.held_client) < MAX_HELD_CLIENT:
                self.held_client.append((event, raw))
            return self.arm()
        if not self.waiting and not self.queue and self.in_flight == 0:
            return None
        if self.pending:
            return []  # a gated turn is answered by the bridge's own create once it is decided
        if len(self.held_client) < MAX_HELD_CLIENT:
            self.held_client.append((event, raw))
        else:
            self.dropped += 1
        return []

    def response_created(self, response_id: str) -> None:
        if self._unassigned > 0 and response_id:
            self._unassigned -= 1
            self._ours.add(response_id)

    def response_done(self, response_id: str) -> list[Action]:
        if response_id in self._ours:
            self._ours.discard(response_id)
            self.in_flight = max(0, self.in_flight - 1)
        return self._pump()

    def refused(self, event_id: str, code: str | None) -> list[Action]:
        """The upstream refused one of the bridge's creates; one already running: try again after it."""
        create = self._sent.pop(event_id, None)
        if create is None:
            return []
        self.in_flight = max(0, self.in_flight - 1)
        self._unassigned = max(0, self._unassigned - 1)
        if code == "conversation_already_has_active_response":
            self.queue.appendleft(create)
        return self._pump()

    def start_holding(self) -> None:
        """The first answer waits for the session_start decision and for the client (``armed``)."""
        self.holding = True
        self.armed = False

    def arm(self) -> list[Action]:
        self.armed = True
        return self._pump()

    def stop_holding(self) -> list[Action]:
        self.holding = False
        return self._pump()

    # ------------------------------------------------------------------ the gated user turn
    def user_turn(self, subject_id: str, item_id: str, has_text: bool, now_ms: float) -> list[Action]:
        """A caller turn finished (gated mode): it waits for its ``user_text`` decision."""
        if not self.gated:
            return []
        if not has_text:  # nothing to decide on (transcription failed): ask the caller again
            return [Audit(self._action("user_turn_gated", now_ms, item_id, status="unheard")), *self.say(NOT_HEARD, "user_turn", now_ms)]
        if len(self.pending) >= MAX_PENDING_TURNS:
            oldest = next(iter(self.pending.values()))
            self.pending.pop(oldest.subject_id)
        self.pending[subject_id] = _Turn(subject_id, item_id, now_ms)
        return [StartTimer(USER_TURN_TIMER + subject_id, self.check_timeout_ms)]

    def decided(self, subject_id: str, effect: str, utterance: str | None, rule_id: str | None,
                pii: dict[str, int], now_ms: float) -> list[Action]:
        turn = self.pending.pop(subject_id, None)
        if turn is None:
            return []
        held = round(now_ms - turn.since_ms, 1)
        sensitive = sorted(k for k in pii if k in SENSITIVE_PII)
        out: list[Action] = []
        self._n += 1
        if effect in STOPPING_EFFECTS:
            default = self.escalation_utterance if effect == "escalate" else self.fallback_utterance
            out.append(Audit(self._action("user_turn_gated", now_ms, turn.item_id, status="refused", rule_id=rule_id, effect=effect,
                                          held_ms=held, text=utterance or default, redacted=True)))
            out.extend(self._enqueue(say_exactly(f"event_bridge_user_turn_{self._n}", utterance or default)))
            return out
        if effect == "redact" or sensitive:
            note = {"type": "conversation.item.create", "event_id": f"event_bridge_note_{self._n}",
                    "item": {"id": f"{NOTE_ITEM_PREFIX}{self._n}", "type": "message", "role": "system",
                             "content": [{"type": "input_text", "text": DO_NOT_REPEAT}]}}
            out.append(Audit(self._action("user_turn_gated", now_ms, turn.item_id, status="flagged", rule_id=rule_id if effect == "redact" else "pii:" + ",".join(sensitive),
                                          effect=effect, held_ms=held)))
            out.extend(self._enqueue({"type": "response.create", "event_id": f"event_bridge_user_turn_{self._n}"}, note))
            return out
        out.append(Audit(self._action("user_turn_gated", now_ms, turn.item_id, status="released", effect=effect, held_ms=held)))
        out.extend(self._enqueue({"type": "response.create", "event_id": f"event_bridge_user_turn_{self._n}"}))
        return out

    def failed(self, subject_id: str, reason: str, now_ms: float) -> list[Action]:
        """The decision failed or timed out: fail closed (the fallback) unless the pack says open."""
        turn = self.pending.pop(subject_id, None)
        if turn is None:
            return []
        self._n += 1
        out: list[Action] = [Audit(self._action("gate_failed", now_ms, turn.item_id, rule_id="gate:user_text", status="open" if self.fail_open else "closed",
                                                held_ms=round(now_ms - turn.since_ms, 1), text=reason[:200], redacted=True))]
        if self.fail_open:
            out.extend(self._enqueue({"type": "response.create", "event_id": f"event_bridge_user_turn_{self._n}"}))
        else:
            out.extend(self._enqueue(say_exactly(f"event_bridge_user_turn_{self._n}", self.fallback_utterance)))
        return out

    def timer_fired(self, name: str, now_ms: float) -> list[Action] | None:
        if name == ARM_TIMER:
            return self.arm()
        if not name.startswith(USER_TURN_TIMER):
            return None
        return self.failed(name[len(USER_TURN_TIMER):], f"no decision within {self.check_timeout_ms:.0f} ms", now_ms)

    def _action(self, action: str, now_ms: float, item_id: str, **fields: Any) -> GateActionRecord:
        return GateActionRecord(self.call_id, self.next_seq(), self.rel(now_ms), action, mode=self.mode, item_id=item_id, **fields)

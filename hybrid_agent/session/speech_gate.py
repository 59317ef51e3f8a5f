"""The assistant speech gate: the model's words are checked before (hold) or while (monitor) the
caller hears them.

A sans-I/O part of the call session with its own state per assistant item.  It sees every
upstream event of an assistant message and says what to send the caller now; it asks for
checks (``CheckSpeech``) of the transcript as it grows and acts on the verdicts.

- ``hold``: the item's transcript and audio events are held.  Transcript is released up to
  the point the gate approved; audio up to the point where it cannot cover unapproved
  text, mapped by speaking rate with a safety margin (``rate_hi``: the fastest rate the call
  has shown, times ``RATE_MARGIN``; when nothing is known, a fast 150 % of the default).  The
  gate approves only whole sentences (text up to the last ``.``, ``!`` or ``?``; a clause
  boundary when a sentence runs long; everything once the transcript is final), so no audio
  covering part of a blocked phrase is ever released.  Events that carry the whole
  transcript (``*.done``, ``response.done``) wait until everything before them is released, and
  an answer releases nothing until the answers begun before it are out (or were lost with the socket).
  What an item holds is bounded (``max_hold_ms`` of audio, and ``HOLD_BYTES_PER_MS`` times
  that in event bytes): past it the gate cannot keep up, a ``hold_overflow`` gate failure that
  fails closed (a block with the fallback; the item's later events are dropped) or, with
  ``fail_open``, releases everything held and holds afresh.
- ``monitor``: everything flows at once; checks run beside it.  On a block the audio already
  sent counts as leaked from the violating sentence's estimated start.

On a block: the rest of the item is dropped, the response is cancelled and the item truncated
upstream at the audio the caller got, the item's ``done`` events reach the caller with the
transcript cut to what was released, and once the cancelled response is done the fallback
utterance is asked for (``response.create`` with "say exactly" instructions).
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from hybrid_agent.audit.records import GateActionRecord
from hybrid_agent.policy.schema import PolicyInput
from hybrid_agent.policy.speech import SpeechCheck, SpeechVerdict
from hybrid_agent.protocol.audio import b64_decoded_len, duration_ms
from hybrid_agent.session.actions import Action, Audit, CheckSpeech, SendClient, SendUpstream, StartTimer
from hybrid_agent.session.bridge_turns import SAY_EXACTLY, say_exactly  # noqa: F401 (SAY_EXACTLY: re-exported)

SpeechMode = Literal["monitor", "hold"]

#: margin on the fastest speaking rate seen, so held audio never runs ahead of approved text
RATE_MARGIN = 1.5
#: an item's transcript the gate keeps (longer answers are checked on the newest part)
MAX_ITEM_TEXT = 20_000
#: event bytes an item may hold per ms of ``max_hold_ms`` (base64 PCM16 at 24 kHz is 64 a ms, plus framing)
HOLD_BYTES_PER_MS = 128

_TEXT_DELTAS = ("response.output_audio_transcript.delta", "response.output_text.delta")
_TEXT_DONE = ("response.output_audio_transcript.done", "response.output_text.done")
_TAIL = ("response.output_audio.done", "response.content_part.done", "response.output_item.done", "conversation.item.done")


@dataclass(slots=True)
class _Item:
    item_id: str
    response_id: str | None
    text: str = ""
    approved: int = 0
    released_chars: int = 0
    final: bool = False
    checking: int | None = None  # the check in flight
    checked: tuple[int, bool] = (0, False)  # (text length, final) the last check saw: re-check only on news
    blocked: bool = False
    lost: bool = False  # its response died with the upstream socket: nothing of it will be released
    open_audio_ms: float = 0.0  # audio up to here goes out whatever the text approval (a fail-open)
    held_bytes: int = 0  # bytes of the text and audio events held
    audio_ms: float = 0.0  # all audio of the item so far
    sent_audio_ms: float = 0.0  # audio sent to the caller
    text_q: deque[tuple[int, dict[str, Any], str | None]] = field(default_factory=deque)
    audio_q: deque[tuple[float, dict[str, Any], str | None]] = field(default_factory=deque)
    tail_q: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)
    first_audio_ms: float | None = None  # call clock: first audio arrived
    first_release_ms: float | None = None  # call clock: first audio went to the caller
    held_recorded: bool = False

    @property
    def drained(self) -> bool:
        return not self.text_q and not self.audio_q

    @property
    def done(self) -> bool:
        return self.blocked or self.lost or (self.final and self.approved >= len(self.text) and self.drained)


class SpeechGate:
    """Hold or monitor every assistant answer of one call (see the module docstring)."""

    def __init__(
        self,
        call_id: str,
        mode: SpeechMode,
        *,
        output_format: Callable[[], str],
        rate: Callable[[], float],
        policy_input: Callable[[float], PolicyInput],
        fallback_utterance: str,
        check_timeout_ms: float = 1500.0,
        fail_open: bool = False,
        max_hold_ms: float = 10_000.0,
        next_seq: Callable[[], int],
        rel: Callable[[float], float] = lambda now_ms: now_ms,
        typical_rate: Callable[[], float] | None = None,
    ) -> None:
        self.call_id = call_id
        self.mode = mode
        self._format = output_format
        self._rate = rate
        self._policy_input = policy_input
        self.fallback_utterance = fallback_utterance
        self.check_timeout_ms = check_timeout_ms
        self.fail_open = fail_open
        self.max_hold_ms = max_hold_ms
        self._next_seq = next_seq
        self._rel = rel
        self._typical_rate = typical_rate or rate  # the leak estimate wants the usual rate, release the fastest
        #: where the transport owns playback (Twilio marks): ms of an item the caller has heard, else None
        self.heard_ms: Callable[[str], float | None] | None = None
        self.items: dict[str, _Item] = {}
        #: hold: item ids not yet done, in the order the model began them; only the first releases, so
        #: the caller hears answers in order even when a later one's check is decided first
        self._open: deque[str] = deque()
        self._checks = 0
        self._in_flight: dict[int, str] = {}  # check id -> item id
        self._held_done: dict[str, tuple[dict[str, Any], str | None]] = {}  # response id -> its response.done
        self._fallback_after: dict[str, str] = {}  # cancelled response id -> utterance to ask for when it is done
        self._finished: deque[str] = deque(maxlen=64)  # responses whose response.done went to the caller
        self.blocks = 0

    @property
    def busy(self) -> bool:
        """The latest answer is held or being checked (a rollover waits for it)."""
        last = next(reversed(self.items.values()), None)
        return bool(self._in_flight or self._held_done) or (last is not None and not last.done)

    # ------------------------------------------------------------------ events from the model
    def on_upstream(self, event: dict[str, Any], raw: str | None, now_ms: float) -> list[Action] | None:
        """The actions for an upstream event this gate owns, or ``None``: not the gate's (relay it)."""
        kind = event["type"]
        if kind == "response.output_item.added":
            item = event.get("item") or {}
            if item.get("type") == "message" and item.get("role") == "assistant" and item.get("id"):
                if len(self.items) > 256:  # finished items are forgotten, the newest kept
                    for old in [k for k, v in self.items.items() if v.done][:128]:
                        del self.items[old]
                self.items[str(item["id"])] = _Item(str(item["id"]), event.get("response_id"))
                if self.mode == "hold":
                    self._open.append(str(item["id"]))
            return None
        if kind == "response.done":
            return self._on_response_done(event, raw)
        item = self.items.get(str(event.get("item_id") or (event.get("item") or {}).get("id") or ""))
        if item is None:
            return None
        if kind in _TEXT_DELTAS:
            return self._on_text(item, event, raw, now_ms)
        if kind == "response.output_audio.delta":
            return self._on_audio(item, event, raw, now_ms)
        if kind in _TEXT_DONE:
            final = event.get("transcript") if "transcript" in event else event.get("text")
            if isinstance(final, str):
                item.text = final[-MAX_ITEM_TEXT:]
            item.final = True
            return self._hold_tail(item, event, raw, now_ms, check=True)
        if kind in _TAIL:
            return self._hold_tail(item, event, raw, now_ms)
        return None

    def _on_text(self, item: _Item, event: dict[str, Any], raw: str | None, now_ms: float) -> list[Action]:
        if item.blocked:
            return []
        item.text = (item.text + str(event.get("delta", "")))[-MAX_ITEM_TEXT:]
        out: list[Action] = []
        if self.mode == "hold":
            item.text_q.append((len(item.text), event, raw))
            item.held_bytes += _size(event, raw)
        else:
            out.append(SendClient(event, raw))
        out.extend(self._maybe_check(item, now_ms))
        return out + (self._bound(item, now_ms) if self.mode == "hold" else [])

    def _on_audio(self, item: _Item, event: dict[str, Any], raw: str | None, now_ms: float) -> list[Action]:
        if item.blocked:
            return []
        ms = duration_ms(b64_decoded_len(str(event.get("delta", ""))), self._format())
        item.audio_ms += ms
        if item.first_audio_ms is None:
            item.first_audio_ms = now_ms
        if self.mode == "monitor":
            item.sent_audio_ms += ms
            return [SendClient(event, raw)]
        item.audio_q.append((item.audio_ms, event, raw))
        item.held_bytes += _size(event, raw)
        out = self._release(item, now_ms)
        return out + self._bound(item, now_ms)

    def _hold_tail(self, item: _Item, event: dict[str, Any], raw: str | None, now_ms: float, check: bool = False) -> list[Action]:
        if item.blocked:
            return [SendClient(self._cut(event, item))]
        if self.mode == "monitor":
            out: list[Action] = [SendClient(event, raw)]
            if check:
                out.extend(self._maybe_check(item, now_ms))
            return out
        item.tail_q.append((event, raw))
        out = self._maybe_check(item, now_ms) if check else []
        return out + self._release(item, now_ms)

    def _on_response_done(self, event: dict[str, Any], raw: str | None) -> list[Action] | None:
        rid = str((event.get("response") or {}).get("id") or "")
        out: list[Action] = []
        pending = [i for i in self.items.values() if i.response_id == rid and not i.done]
        if pending and self.mode == "hold":
            self._held_done[rid] = (event, raw)
            return []
        blocked = [i for i in self.items.values() if i.response_id == rid and i.blocked]
        out.append(SendClient(self._cut_response(event, blocked)) if blocked else SendClient(event, raw))
        self._finished.append(rid)
        utterance = self._fallback_after.pop(rid, None)
        if utterance is not None:
            out.append(self._fallback(utterance))
        return out

    def _fallback(self, utterance: str) -> SendUpstream:
        return SendUpstream(say_exactly(f"event_bridge_fallback_{self.blocks}", utterance))

    def sent_audio_ms(self, item_id: str) -> float | None:
        """Audio of an assistant item the caller was sent (``None``: not an item this gate saw)."""
        item = self.items.get(item_id)
        return item.sent_audio_ms if item is not None else None

    # ------------------------------------------------------------------ checks
    def _maybe_check(self, item: _Item, now_ms: float) -> list[Action]:
        if item.checking is not None or item.blocked:
            return []
        if item.approved >= len(item.text) or item.checked == (len(item.text), item.final):
            return []
        item.checked = (len(item.text), item.final)
        self._checks += 1
        check = SpeechCheck(self._checks, item.item_id, item.text, item.final, item.approved,
                            self._policy_input(now_ms), now_ms)
        item.checking = check.check_id
        self._in_flight[check.check_id] = item.item_id
        return [CheckSpeech(check), StartTimer(f"speech_check:{check.check_id}", self.check_timeout_ms)]

    def verdict(self, v: SpeechVerdict, now_ms: float) -> list[Action]:
        """The worker decided a check: release what passed, or block the answer."""
        item_id = self._in_flight.pop(v.check.check_id, None)
        item = self.items.get(item_id or "")
        if item is None or item.checking != v.check.check_id:
            return []  # late (timed out) or for a forgotten item
        item.checking = None
        if item.blocked:
            return []
        if v.blocked:
            if self.mode == "monitor":  # the leak counts from the blocked phrase, not the last check
                item.approved = max(item.approved, min(v.approved, len(item.text)))
            return self._block(item, v.rule_id, v.effect, v.utterance or self.fallback_utterance, now_ms)
        item.approved = max(item.approved, min(v.approved, len(item.text)))
        out: list[Action] = []
        if self.mode == "hold":
            out.extend(self._release(item, now_ms))
        out.extend(self._maybe_check(item, now_ms))
        return out

    def failed(self, check: SpeechCheck, reason: str, now_ms: float) -> list[Action]:
        """A check raised: fail closed (block with the fallback) unless the pack says open."""
        return self._fail(check.check_id, len(check.text), reason, now_ms)

    def _fail(self, check_id: int, open_to: int, reason: str, now_ms: float) -> list[Action]:
        item_id = self._in_flight.pop(check_id, None)
        item = self.items.get(item_id or "")
        if item is None or item.checking != check_id or item.blocked:
            return []
        return self._fail_item(item, open_to, reason, now_ms)

    def _fail_item(self, item: _Item, open_to: int, reason: str, now_ms: float, rule_id: str = "gate:error",
                   everything: bool = False) -> list[Action]:
        """The gate failed on ``item``: block it with the fallback, or (fail-open) approve its text up to
        ``open_to`` and release what that covers (``everything``: all audio held)."""
        if item.checking is not None:  # a verdict still to come changes nothing now
            self._in_flight.pop(item.checking, None)
            item.checking = None
        out: list[Action] = [Audit(self._action("gate_failed", now_ms, item, status="open" if self.fail_open else "closed",
                                                text=reason[:200], redacted=True))]
        if self.fail_open:
            item.approved = open_to
            out.extend(self._release(item, now_ms, everything) if self.mode == "hold" else [])
            return out + self._maybe_check(item, now_ms)
        return out + self._block(item, rule_id, "block_speech", self.fallback_utterance, now_ms)

    def _bound(self, item: _Item, now_ms: float) -> list[Action]:
        """Hold mode: an item holding more than ``max_hold_ms`` of audio (or its bytes) is a gate failure."""
        held_ms = item.audio_ms - item.sent_audio_ms
        if item.blocked or (held_ms <= self.max_hold_ms and item.held_bytes <= self.max_hold_ms * HOLD_BYTES_PER_MS):
            return []
        out: list[Action] = [Audit(self._action("hold_overflow", now_ms, item, held_ms=round(held_ms, 1),
                                                audio_end_ms=round(item.sent_audio_ms, 1),
                                                status="open" if self.fail_open else "closed"))]
        reason = f"held {held_ms:.0f} ms of audio ({item.held_bytes} bytes), over max_hold_ms {self.max_hold_ms:.0f}"
        return out + self._fail_item(item, len(item.text), reason, now_ms, "gate:hold_overflow", everything=True)

    def timer_fired(self, name: str, now_ms: float) -> list[Action] | None:
        if not name.startswith("speech_check:"):
            return None
        check_id = int(name.split(":", 1)[1])
        item = self.items.get(self._in_flight.get(check_id, ""))
        if item is None:
            return []
        return self._fail(check_id, len(item.text), f"no decision within {self.check_timeout_ms:.0f} ms", now_ms)

    # ------------------------------------------------------------------ release and block
    def rate_hi(self) -> float:
        return self._rate() * RATE_MARGIN

    def abandon(self, response_id: str, now_ms: float) -> list[Action]:
        """The response died with the upstream socket (a reconnect): what its items still hold is
        dropped (the caller gets the response's failure instead) and the answers after it may go."""
        for item in self.items.values():
            if item.response_id == response_id and not item.done:
                item.lost = True
                item.text_q.clear()
                item.audio_q.clear()
                item.tail_q.clear()
                item.held_bytes = 0
                if item.checking is not None:
                    self._in_flight.pop(item.checking, None)
                    item.checking = None
        self._held_done.pop(response_id, None)
        return self._release_next(now_ms) if self.mode == "hold" else []

    def _first_open(self) -> _Item | None:
        """The oldest answer still held; one whose response ended before its transcript did (it waits
        for a ``*.done`` that will not come) does not hold the others back."""
        while self._open:
            item = self.items.get(self._open[0])
            if item is not None and not item.done:
                rid = item.response_id or ""
                if item.final or (rid not in self._held_done and rid not in self._finished):
                    return item
            self._open.popleft()
        return None

    def _release(self, item: _Item, now_ms: float, everything: bool = False) -> list[Action]:
        """Send what ``item`` may release, once every answer begun before it is done."""
        if everything:
            item.open_audio_ms = item.audio_ms
        first = self._first_open()
        if first is not None and first is not item:
            return []  # an earlier answer is still held: this one waits behind it
        out = self._release_item(item, now_ms)
        return out + self._release_next(now_ms) if item.done else out

    def _release_next(self, now_ms: float) -> list[Action]:
        """An answer is done: release the ones after it, in order, as far as each may go."""
        out: list[Action] = []
        while (item := self._first_open()) is not None:
            out.extend(self._release_item(item, now_ms))
            if not item.done:
                break
        return out

    def _release_item(self, item: _Item, now_ms: float) -> list[Action]:
        out: list[Action] = []
        while item.text_q and item.text_q[0][0] <= item.approved:
            end, event, raw = item.text_q.popleft()
            item.released_chars = end
            item.held_bytes -= _size(event, raw)
            out.append(SendClient(event, raw))
        whole = item.final and item.approved >= len(item.text)
        rate = self.rate_hi()
        while item.audio_q and (whole or item.audio_q[0][0] <= item.open_audio_ms or item.audio_q[0][0] * rate <= item.approved):
            end_ms, event, raw = item.audio_q.popleft()
            item.sent_audio_ms = end_ms
            item.held_bytes -= _size(event, raw)
            if item.first_release_ms is None:
                item.first_release_ms = now_ms
            out.append(SendClient(event, raw))
        if whole and item.drained:
            if not item.held_recorded and item.first_release_ms is not None and item.first_audio_ms is not None:
                item.held_recorded = True
                held = item.first_release_ms - item.first_audio_ms
                out.append(Audit(self._action("speech_held", now_ms, item, held_ms=round(held, 1), leaked_ms=0.0)))
            out.extend(SendClient(e, r) for e, r in item.tail_q)
            item.tail_q.clear()
            done = self._held_done.pop(item.response_id or "", None)
            if done is not None and not any(i.response_id == item.response_id and not i.done for i in self.items.values()):
                released = self._on_response_done(*done)
                out.extend(released or [])
            elif done is not None:
                self._held_done[item.response_id or ""] = done
        return out

    def _block(self, item: _Item, rule_id: str | None, effect: str | None, utterance: str, now_ms: float) -> list[Action]:
        item.blocked = True
        self.blocks += 1
        item.text_q.clear()
        item.audio_q.clear()
        item.held_bytes = 0
        # what reached the caller: all audio sent to a client that buffers it; what the marks
        # confirmed played where the bridge owns playback (the rest is cleared)
        reached = item.sent_audio_ms
        heard = self.heard_ms(item.item_id) if self.heard_ms is not None else None
        if heard is not None:
            reached = min(reached, heard)
        leaked = 0.0
        if self.mode == "monitor":
            start_ms = item.approved / max(self._typical_rate(), 1e-6)
            leaked = max(0.0, reached - start_ms)
        held = None
        if item.first_audio_ms is not None:
            held = (item.first_release_ms if item.first_release_ms is not None else now_ms) - item.first_audio_ms
        out: list[Action] = [
            Audit(self._action("speech_blocked", now_ms, item, rule_id=rule_id, effect=effect,
                               held_ms=None if held is None or self.mode != "hold" else round(held, 1),
                               leaked_ms=round(leaked, 1), audio_end_ms=round(reached, 1))),
        ]
        rid = item.response_id or ""
        if rid not in self._finished and rid not in self._held_done:  # still generating: stop it
            out.append(SendUpstream({"type": "response.cancel", "event_id": f"event_bridge_cancel_{self.blocks}"}))
        if item.audio_ms > 0:  # the model's memory of the answer ends where the caller's did
            out.append(SendUpstream({"type": "conversation.item.truncate", "event_id": f"event_bridge_truncate_{self.blocks}",
                                     "item_id": item.item_id, "content_index": 0, "audio_end_ms": int(reached)}))
        out.extend(SendClient(self._cut(e, item)) for e, _ in item.tail_q)
        item.tail_q.clear()
        out.append(Audit(self._action("fallback_spoken", now_ms, item, rule_id=rule_id, text=utterance, redacted=True)))
        done = self._held_done.pop(rid, None)
        if rid in self._finished:  # monitor: the answer was over before the verdict; say the fallback now
            out.append(self._fallback(utterance))
        else:
            self._fallback_after[rid] = utterance
            if done is not None:
                out.extend(self._on_response_done(*done) or [])
        return out + (self._release_next(now_ms) if self.mode == "hold" else [])

    def _cut(self, event: dict[str, Any], item: _Item) -> dict[str, Any]:
        """``event`` with the item's transcript cut to what the caller was sent."""
        heard = item.text[: item.released_chars] if self.mode == "hold" else item.text[: item.approved]
        event = copy.deepcopy(event)
        if "transcript" in event:
            event["transcript"] = heard
        if "text" in event and event["type"] in _TEXT_DONE:
            event["text"] = heard
        _cut_content(event.get("item"), heard)
        _cut_content(event.get("part"), heard)
        return event

    def _cut_response(self, event: dict[str, Any], blocked: list[_Item]) -> dict[str, Any]:
        event = copy.deepcopy(event)
        for out_item in (event.get("response") or {}).get("output") or []:
            for item in blocked:
                if isinstance(out_item, dict) and out_item.get("id") == item.item_id:
                    heard = item.text[: item.released_chars] if self.mode == "hold" else item.text[: item.approved]
                    _cut_content(out_item, heard)
        return event

    def _action(self, action: str, now_ms: float, item: _Item, **kw: Any) -> GateActionRecord:
        return GateActionRecord(call_id=self.call_id, seq=self._next_seq(), at_ms=self._rel(now_ms),
                                action=action, mode=self.mode, item_id=item.item_id, **kw)  # type: ignore[arg-type]


def _size(event: dict[str, Any], raw: str | None) -> int:
    """Bytes a held event takes, roughly: its frame, or its delta and some framing."""
    return len(raw) if raw is not None else len(str(event.get("delta", ""))) + 200


def _cut_content(container: Any, heard: str) -> None:
    if not isinstance(container, dict):
        return
    parts = container.get("content") if "content" in container else [container]
    for part in parts or []:
        if isinstance(part, dict):
            for key in ("transcript", "text"):
                if isinstance(part.get(key), str):
                    part[key] = heard

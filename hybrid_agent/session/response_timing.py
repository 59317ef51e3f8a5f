"""Per-response timing and usage (``ResponseTiming``): time to first audio, the gate's hold, tokens.

A sans-I/O part of the call session.  It watches the model's events (``speech_stopped``,
``response.created``, the first audio delta, ``response.done`` with its usage) and the audio
the session releases to the caller, and hands back one ``ResponseMetrics`` record per response
once both are known: when ``response.done`` has arrived and the first audio has been released
(or can no longer be: the next response began, the call ended).  The adapter never times
anything here; it passes the call clock like everywhere else in the session.

Time to first audio is measured the way the caller feels it: from the moment the bridge learned
the caller stopped speaking (``input_audio_buffer.speech_stopped``) to the first audio delta of
the answer going out to the caller, after the speech gate.  It excludes the service's own
end-of-speech detection (``silence_duration_ms``), which happens before the event is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hybrid_agent.audit.records import ResponseMetrics

#: the stages a latency budget can be set for, with what each measures (docs/observability.md)
BUDGET_STAGES = {
    "time_to_first_audio": "caller stopped speaking -> first audio of the answer sent to the caller",
    "gate_hold": "first audio from the model -> released to the caller by the speech gate",
    "tool_run": "a server tool's run, arguments validated to result",
    "policy": "one policy check: PII scan and rule evaluation",
    "audit_lag": "an audit record enqueued -> durable (database or spool)",
}
#: a response's own stages (the others are counted by the adapter's telemetry)
RESPONSE_STAGES = ("time_to_first_audio", "gate_hold")
#: responses kept open at once; the oldest is recorded when a misbehaving upstream opens more
MAX_OPEN = 16


@dataclass(slots=True)
class _Response:
    seq: int
    response_id: str
    created_ms: float
    reference: str
    reference_ms: float
    user_seq: int | None
    turn_seq: int | None = None
    first_audio_ms: float | None = None
    released_ms: float | None = None
    done: dict[str, Any] | None = None  # the response object of response.done
    done_ms: float = 0.0


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def usage_tokens(usage: Any) -> dict[str, int]:
    """The ``ResponseMetrics`` token fields of a ``response.done`` usage object (missing counts are 0)."""
    usage = usage if isinstance(usage, dict) else {}
    inp = usage.get("input_token_details") if isinstance(usage.get("input_token_details"), dict) else {}
    cached = inp.get("cached_tokens_details") if isinstance(inp.get("cached_tokens_details"), dict) else {}
    out = usage.get("output_token_details") if isinstance(usage.get("output_token_details"), dict) else {}
    return {
        "input_text_tokens": _int(inp.get("text_tokens")),
        "input_audio_tokens": _int(inp.get("audio_tokens")),
        "input_image_tokens": _int(inp.get("image_tokens")),
        "cached_text_tokens": _int(cached.get("text_tokens")),
        "cached_audio_tokens": _int(cached.get("audio_tokens")),
        "output_text_tokens": _int(out.get("text_tokens")),
        "output_audio_tokens": _int(out.get("audio_tokens")),
    }


@dataclass(slots=True)
class ResponseTiming:
    """Times and usage of a call's responses; ``budgets`` maps a stage of ``RESPONSE_STAGES`` to ms."""

    call_id: str
    model: str
    budgets: Mapping[str, float] = field(default_factory=dict)
    audio_ms_of: Any = None  # (response_id) -> ms of audio the response carried (the session's turn tracker)
    _open: dict[str, _Response] = field(default_factory=dict)
    _seq: int = 0
    _speech_stopped_ms: float | None = None
    _speech_user_seq: int | None = None
    _reference: str = "speech_stopped"
    awaiting_release: bool = False  # some response has audio from the model not yet sent to the caller

    # ------------------------------------------------------------------ the model's events
    def on_upstream(self, event: dict[str, Any], rel_ms: float, user_seq: int | None = None,
                    turn_seq: int | None = None) -> list[ResponseMetrics]:
        """One upstream event; ``user_seq``: the caller turn of a ``speech_stopped``; ``turn_seq``: the
        assistant turn an ``output_item.added`` opened.  Returns the records this event completed."""
        kind = event.get("type")
        if kind == "response.output_audio.delta":
            state = self._open.get(str(event.get("response_id") or ""))
            if state is not None:
                if state.first_audio_ms is None:
                    state.first_audio_ms = rel_ms
                    self.awaiting_release = True
            return []
        if kind == "input_audio_buffer.speech_stopped" or (
                kind == "input_audio_buffer.committed" and self._speech_stopped_ms is None):
            # the caller's turn ended: the end of speech (server VAD), else the commit (push to talk)
            self._speech_stopped_ms, self._speech_user_seq = rel_ms, user_seq
            self._reference = "speech_stopped" if kind.endswith("speech_stopped") else "committed"
            return []
        if kind == "response.created":
            return self._created(event, rel_ms)
        if kind == "response.output_item.added":
            state = self._open.get(str(event.get("response_id") or ""))
            if state is not None and state.turn_seq is None and turn_seq is not None:
                state.turn_seq = turn_seq
            return []
        if kind == "response.done":
            response = event.get("response") if isinstance(event.get("response"), dict) else {}
            state = self._open.get(str(response.get("id") or ""))
            if state is None:
                return []
            state.done, state.done_ms = response, rel_ms
            if state.first_audio_ms is None or state.released_ms is not None:
                return [self._record(state)]
        return []

    def _created(self, event: dict[str, Any], rel_ms: float) -> list[ResponseMetrics]:
        response = event.get("response") if isinstance(event.get("response"), dict) else {}
        rid = str(response.get("id") or f"response_{self._seq}")
        # whatever was still open can no longer be released first: the caller is on the next answer
        out = [self._record(s) for s in list(self._open.values()) if s.done is not None]
        while len(self._open) >= MAX_OPEN:
            oldest = next(iter(self._open.values()))
            if oldest.done is None:
                oldest.done, oldest.done_ms = {"status": "incomplete"}, rel_ms
            out.append(self._record(oldest))
        if self._speech_stopped_ms is not None:
            ref, ref_ms, user_seq = self._reference, self._speech_stopped_ms, self._speech_user_seq
        else:
            ref, ref_ms, user_seq = "response_created", rel_ms, None
        self._speech_stopped_ms = self._speech_user_seq = None
        self._open[rid] = _Response(self._seq, rid, rel_ms, ref, ref_ms, user_seq)
        self._seq += 1
        return out

    # ------------------------------------------------------------------ what reached the caller
    def released(self, events: Sequence[dict[str, Any] | None], rel_ms: float) -> list[ResponseMetrics]:
        """Events the session is sending to the caller now; the first audio delta of a response counts."""
        out: list[ResponseMetrics] = []
        for event in events:
            if event is None or event.get("type") != "response.output_audio.delta":
                continue
            state = self._open.get(str(event.get("response_id") or ""))
            if state is None or state.released_ms is not None:
                continue
            state.released_ms = rel_ms
            if state.done is not None:
                out.append(self._record(state))
        self.awaiting_release = any(s.first_audio_ms is not None and s.released_ms is None for s in self._open.values())
        return out

    def flush(self, rel_ms: float) -> list[ResponseMetrics]:
        """The call ended: every response still open is recorded as it stands."""
        out = []
        for state in list(self._open.values()):
            if state.done is None:
                state.done, state.done_ms = {"status": "incomplete"}, rel_ms
            out.append(self._record(state))
        return out

    # ------------------------------------------------------------------ records
    def _record(self, state: _Response) -> ResponseMetrics:
        self._open.pop(state.response_id, None)
        done = state.done or {}
        ttfa = state.released_ms - state.reference_ms if state.released_ms is not None else None
        gate = state.released_ms - state.first_audio_ms if state.released_ms is not None and state.first_audio_ms is not None else None
        measured = {"time_to_first_audio": ttfa, "gate_hold": gate}
        over = [s for s in RESPONSE_STAGES if s in self.budgets and measured[s] is not None and measured[s] > self.budgets[s]]
        audio_ms = float(self.audio_ms_of(state.response_id)) if self.audio_ms_of is not None else 0.0
        return ResponseMetrics(
            call_id=self.call_id, seq=state.seq, at_ms=state.done_ms, model=self.model,
            status=str(done.get("status") or "completed")[:32], response_id=state.response_id[:128],
            turn_seq=state.turn_seq, user_seq=state.user_seq, reference=state.reference,
            reference_ms=state.reference_ms, first_audio_ms=state.first_audio_ms, released_ms=state.released_ms,
            ttfa_ms=ttfa, gate_ms=gate, audio_ms=audio_ms, over_budget=",".join(over) or None,
            **usage_tokens(done.get("usage")),
        )

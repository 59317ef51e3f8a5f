"""Session rollover: a call outlives the provider's session limit by moving to a new upstream session.

The Realtime service ends a session at a fixed age (60 minutes at OpenAI, 30 at Azure: an
``error`` ``session_expired``, then close 1001), whatever the call is doing.  A bank's call must
not end there, so before the limit the bridge opens a second upstream in the background and, at
the next turn boundary (nobody speaking, no answer streaming or still playing, no transcript or
tool output outstanding, 300 ms without a new event), switches to it: the configuration is restored and the conversation
replayed as text on the new socket, exactly as after a drop (``replay.py``), and the caller's
most recent audio is carried over so a word begun during the switch is not cut.  After a drop
the same carry sends the new session all the caller audio the old one had not committed (its
input buffer died with it), up to ``UNCOMMITTED_MAX_MS``.

A part of the call session of its own (the way ``websockets`` splits its protocol): it only
keeps the plan and the carried audio; ``CallSession`` tells it what happened and asks it what
to do.  States: ``idle`` (waiting for the planned time), ``opening`` (the adapter is opening the
standby socket), ``ready`` (the standby is open, waiting for a boundary).

When the rollover is due: the configured age (``HYBRID_AGENT_ROLLOVER_S``), or earlier when the
service's ``session.created`` reports an ``expires_at`` sooner (55/60 of the lifetime it
reports, so a 60-minute session rolls at 55 and a 30-minute one at 27.5).  A boundary that
does not come within ``STRICT_WAIT_MS`` is relaxed to "no answer streaming, the caller not
speaking and its transcript in" (a caller who answers the instant an answer ends); a barge-in
on an answer of the old session is then kept by the bridge (the new session has it as text); a session that expires before any boundary is switched at once (the standby is
already open) or reconnected, and neither counts against the call's reconnect budget.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

#: the share of the lifetime the service reports after which the call rolls over
LEAD_FRACTION = 55 / 60
#: how often a ready rollover looks for a boundary
CHECK_EVERY_MS = 200.0
#: past this wait for a strict boundary, a relaxed one will do
STRICT_WAIT_MS = 30_000.0
#: a standby that failed to open is tried again after this long
RETRY_AFTER_MS = 30_000.0
#: the caller's latest audio carried to the new session at a rollover (the VAD's prefix padding is 300 ms)
CARRY_AUDIO_MS = 500.0
#: the caller audio not yet committed that is kept, for a reconnect: the old session's input buffer
#: dies with its socket, so the new one is sent what it held (and what was in flight when it dropped)
UNCOMMITTED_MAX_MS = 3000.0
CARRY_MAX_EVENTS = 300

ROLLOVER_TIMER = "upstream_rollover"
ROLLOVER_CHECK_TIMER = "upstream_rollover_check"


@dataclass(frozen=True, slots=True)
class RolloverSwitch:
    """What the audit records of one switch."""

    session_no: int  # the new session's number in this call (the first is 1)
    age_ms: float  # how old the session left behind was
    waited_ms: float  # from due to switch
    forced: bool  # the session expired before a boundary came


class UpstreamRollover:
    """The plan for the next rollover and the caller audio to carry over (see the module docstring)."""

    def __init__(self, after_ms: float) -> None:
        self.after_ms = after_ms  # configured session age to roll at (0: never)
        self.state = "idle"
        self.sessions = 1
        self.session_started_ms = 0.0
        self.due_ms: float | None = None  # call clock: when the plan said to roll
        self.expired = False  # the service said session_expired: the close that follows is not a drop
        self._carry: deque[tuple[str, float]] = deque()
        self._carry_ms = 0.0

    @property
    def enabled(self) -> bool:
        return self.after_ms > 0

    def session_created(self, now_ms: float, expires_in_s: float | None) -> float | None:
        """A new upstream session began: the delay (ms) until the rollover is due, or None (never)."""
        self.session_started_ms = now_ms
        self.state = "idle"
        self.due_ms = None
        self.expired = False
        if not self.enabled:
            return None
        delay = self.after_ms
        if expires_in_s is not None and expires_in_s > 0:
            delay = min(delay, expires_in_s * 1000.0 * LEAD_FRACTION)
        return max(0.0, delay)

    def due(self, now_ms: float) -> bool:
        """The planned time came: True when the adapter should open the standby now."""
        if not self.enabled or self.state != "idle":
            return False
        self.state = "opening"
        if self.due_ms is None:
            self.due_ms = now_ms
        return True

    def standby_ready(self) -> None:
        self.state = "ready"

    def standby_failed(self) -> None:
        self.state = "idle"

    def strict(self, now_ms: float) -> bool:
        """Whether only a strict boundary will do yet."""
        return self.due_ms is None or now_ms - self.due_ms < STRICT_WAIT_MS

    def switched(self, now_ms: float, forced: bool) -> RolloverSwitch:
        self.sessions += 1
        switch = RolloverSwitch(
            session_no=self.sessions,
            age_ms=now_ms - self.session_started_ms,
            waited_ms=now_ms - self.due_ms if self.due_ms is not None else 0.0,
            forced=forced,
        )
        self.state = "idle"
        self.due_ms = None
        return switch

    # the caller's latest audio -------------------------------------------------------------
    def caller_audio(self, raw: str, audio_ms: float) -> None:
        """An ``input_audio_buffer.append`` went upstream (its text and duration): keep the newest."""
        if not self.enabled:
            return
        self._carry.append((raw, audio_ms))
        self._carry_ms += audio_ms
        while self._carry and (len(self._carry) > CARRY_MAX_EVENTS or self._carry_ms - self._carry[0][1] >= UNCOMMITTED_MAX_MS):
            self._carry_ms -= self._carry.popleft()[1]

    def buffer_reset(self) -> None:
        """The input buffer was committed or cleared: nothing before it is carried."""
        self._carry.clear()
        self._carry_ms = 0.0

    def carried(self, last_ms: float | None = CARRY_AUDIO_MS) -> tuple[list[str], float]:
        """The newest ``last_ms`` of the uncommitted audio (None: all of it), to send first on a new
        session, and its duration; the carry starts afresh."""
        out: list[str] = []
        total = 0.0
        for raw, ms in reversed(self._carry):
            if last_ms is not None and total + ms > last_ms and out:
                break
            out.append(raw)
            total += ms
        self.buffer_reset()
        return out[::-1], total

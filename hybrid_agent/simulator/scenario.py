"""Scenarios: what the simulated model hears and says, as YAML.

A scenario scripts one call.  The N-th user utterance the simulator detects
(or the N-th user message item a client creates) is turn N: it gets that
turn's transcript, and the next ``response.create`` answers it with the turn's
tool calls (if any, first) and then its reply.  A ``response.create`` before
any user turn speaks the greeting; once the turns run out, or a turn was
already answered, the default reply is spoken.

Example::

    name: banking
    greeting: "Hello, this call is recorded."
    transcription_delay_ms: 150
    audio: {words_per_minute: 150, speed: 4.0, chunk_ms: 200}
    turns:
      - user: "What's my balance?"
        tool_calls:
          - name: get_balance
            arguments: {account: checking}
        assistant: "Your balance is {output[balance]} dollars."
    faults:
      - kind: stall
        response: 1
        after_deltas: 2
        ms: 1500
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ScenarioError(ValueError):
    """A scenario file cannot be read or does not match the schema."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolCall(_Model):
    """A function call the assistant makes before its reply."""

    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    call_id: str | None = None


class Turn(_Model):
    """One user utterance and the assistant's answer to it."""

    user: str
    transcription_delay_ms: float | None = Field(default=None, ge=0)
    transcription_fails: bool = False
    tool_calls: list[ToolCall] = Field(default_factory=list)
    assistant: str | None = None
    barge_in_after_ms: float | None = Field(
        default=None,
        gt=0,
        description="Caller-side direction (the simulator ignores it): the scripted caller says this turn "
        "while the previous reply is playing, once it has heard this many ms of it.",
    )
    truncate_overshoot_ms: float = Field(
        default=0.0,
        ge=0,
        description="Caller-side direction (the simulator ignores it): the barge-in's truncate claims this many ms "
        "more than the caller heard, as a client estimating playback by the wall clock does; the bridge clamps it.",
    )


class AudioSettings(_Model):
    """Pacing of the synthetic assistant audio."""

    words_per_minute: float = Field(default=150.0, gt=0)
    speed: float = Field(default=4.0, ge=0)
    chunk_ms: float = Field(default=200.0, gt=0)
    transcript_lead_words: int = Field(
        default=6, ge=0, description="how far the transcript deltas run ahead of the audio (0: word-aligned)"
    )


class Fault(_Model):
    """A scripted failure; each fires at most once per connection.

    Trigger: ``after_events`` (after the N-th event emitted on the connection)
    or ``response`` + ``after_deltas`` (after the N-th audio/text delta of the
    0-based ``response`` of the connection; ``after_deltas: 0`` means right
    after ``response.created``).
    """

    kind: Literal["close", "error", "stall"]
    connections: list[int] | None = Field(
        default=None, description="0-based connections to the simulator this fault applies to (default: every one)"
    )
    after_events: int | None = Field(default=None, ge=1)
    response: int | None = Field(default=None, ge=0)
    after_deltas: int = Field(default=0, ge=0)
    ms: float = Field(default=1000.0, ge=0)
    close_code: int | None = 1011
    outage_ms: float = Field(
        default=0.0, ge=0,
        description="close faults: the simulator then refuses new connections (HTTP 503) for this long, like a provider outage",
    )
    error_type: str = "server_error"
    code: str | None = None
    message: str = "The server had an error while processing your request. Please retry your request."

    @model_validator(mode="after")
    def _one_trigger(self) -> Fault:
        if (self.after_events is None) == (self.response is None):
            raise ValueError("a fault needs exactly one trigger: after_events, or response (+ after_deltas)")
        return self


class Scenario(_Model):
    """A scripted call for the simulator."""

    name: str = "default"
    description: str = ""
    greeting: str | None = None
    default_reply: str = "I'm sorry, could you say that again?"
    default_transcript: str = "Hello?"
    transcription_delay_ms: float = Field(default=150.0, ge=0)
    audio: AudioSettings = Field(default_factory=AudioSettings)
    turns: list[Turn] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    session_limit_s: float = Field(
        default=3600.0, gt=0,
        description="how long a connection may live, like the real service's session limit (60 minutes at OpenAI, "
        "30 at Azure): at the limit an error session_expired, then close 1001; session.created says it in expires_at",
    )


_SCENARIO_DIR = "scenarios"


def _format_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def parse_scenario(text: str, source: str = "<string>") -> Scenario:
    """Parse scenario YAML; ``source`` names it in errors."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: invalid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario must be a YAML mapping, got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {_format_error(exc)}") from None


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file; raises :class:`ScenarioError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{p}: cannot read scenario: {exc.strerror or exc}") from None
    return parse_scenario(text, str(p))


def shipped_scenarios() -> dict[str, Path]:
    """The scenarios shipped with the package, by name (file stem)."""
    root = resources.files("hybrid_agent.simulator") / _SCENARIO_DIR
    return {Path(str(f)).stem: Path(str(f)) for f in sorted(root.iterdir(), key=lambda f: f.name) if f.name.endswith(".yaml")}


def default_scenario() -> Scenario:
    """The shipped ``default.yaml`` scenario."""
    return load_scenario(shipped_scenarios()["default"])

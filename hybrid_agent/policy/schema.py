"""The pydantic schema of a policy pack: ``pack.yaml``, ``rules/*.yaml``, ``tests/*.yaml``, and the input.

Every model forbids unknown fields, so a typo in a rule file is an error with its
line, never a silently ignored key.  ``hybrid-agent policy schema`` prints the JSON
Schema of these models for editors (``yaml-language-server`` and friends).
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hybrid_agent.policy.clips import BridgeSpeech


class Stage(str, Enum):
    session_start = "session_start"
    user_text = "user_text"
    assistant_text = "assistant_text"
    tool_call = "tool_call"
    tool_result = "tool_result"


class Effect(str, Enum):
    allow = "allow"
    deny = "deny"
    confirm = "confirm"
    step_up = "step_up"
    redact = "redact"
    block_speech = "block_speech"
    escalate = "escalate"
    require_disclosure = "require_disclosure"


# Strongest first.  The decision's effect is the strongest effect among the matched
# rules (a rule whose condition fails to evaluate counts with its on_error effect);
# when nothing matched, the pack's default_effect.  ``allow`` is the weakest: an
# explicit allow only wins over the default.
EFFECT_PRECEDENCE: tuple[Effect, ...] = (
    Effect.deny,
    Effect.block_speech,
    Effect.escalate,
    Effect.require_disclosure,
    Effect.step_up,
    Effect.confirm,
    Effect.redact,
    Effect.allow,
)
EFFECT_RANK: dict[str, int] = {e.value: len(EFFECT_PRECEDENCE) - i for i, e in enumerate(EFFECT_PRECEDENCE)}


class Severity(str, Enum):
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


SEVERITY_RANK = {s.value: i for i, s in enumerate(Severity)}

VerificationLevel = Literal["none", "basic", "strong"]
VERIFICATION_LEVELS = ("none", "basic", "strong")

#: the effects a rule that cannot be evaluated may take: each one stops the action or the speech, or hands over
FAIL_CLOSED_EFFECTS = ("deny", "escalate", "block_speech")
FailClosedEffect = Literal["deny", "escalate", "block_speech"]

ArgType = Literal["string", "number", "integer", "boolean", "list", "map", "any"]

RULE_ID = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)+$")
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")

_STRICT = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)


KeypadKind = Literal["card", "security_code", "digits"]


class ToolSpec(BaseModel):
    """A tool the agent may call; rules and tests may only name declared tools."""

    model_config = _STRICT

    description: str = ""
    args: dict[str, ArgType] = Field(default_factory=dict, description="argument name -> type (used by lint's type check)")
    regulated: bool = Field(False, description="informational: the tool changes money or records")
    verifies_identity: bool = Field(
        False, description="only such a tool's successful result may set session.verification_level (from its verification_level field)"
    )
    amount_arg: str | None = Field(
        None, description="the argument holding an amount of money: each successful call adds it to session.transferred"
    )
    keypad: dict[str, KeypadKind] = Field(
        default_factory=dict,
        description="arguments the caller must enter on the phone keypad (PCI): argument -> card | security_code | digits. "
        "They are never declared to the model; the bridge captures them (caller audio silenced upstream meanwhile) and "
        "passes them to the tool in memory only; the audit records that a capture happened, never the digits",
    )

    @model_validator(mode="after")
    def _amount_arg_declared(self) -> ToolSpec:
        if self.amount_arg is not None and self.amount_arg not in self.args:
            raise ValueError(f"amount_arg {self.amount_arg!r} is not one of the tool's args")
        unknown = sorted(set(self.keypad) - set(self.args))
        if unknown:
            raise ValueError(f"keypad arguments {unknown} are not among the tool's args")
        return self


GateMode = Literal["observe", "monitor", "hold"]
FailureMode = Literal["closed", "open"]
UserTurn = Literal["immediate", "gated"]

DEFAULT_FALLBACK_UTTERANCE = "I'm sorry, I can't help with that. Is there anything else?"
DEFAULT_ESCALATION_UTTERANCE = "I'm going to pass you to a colleague who can help with this. Please stay on the line."


class GateFailures(BaseModel):
    """``gate.on_failure``: per stage, what a gate failure (the decision raised or took longer than
    ``check_timeout_ms``) does.  ``closed``: treated as the pack's fail-closed effect (the answer is
    not spoken, the tool does not run); ``open``: treated as allow, and recorded as a gate failure."""

    model_config = _STRICT

    session_start: FailureMode = "closed"
    user_text: FailureMode = "closed"
    assistant_text: FailureMode = "closed"
    tool_call: FailureMode = "closed"
    tool_result: FailureMode = "closed"

    @model_validator(mode="before")
    @classmethod
    def _known_stages(cls, data: Any) -> Any:
        if isinstance(data, dict):
            stages = [s.value for s in Stage]
            for key in data:
                if key not in stages:
                    raise ValueError(f"unknown stage {key!r} (stages: {', '.join(stages)})")
        return data

    def for_stage(self, stage: str) -> FailureMode:
        return getattr(self, str(getattr(stage, "value", stage)))

    def open_stages(self) -> list[str]:
        return [s.value for s in Stage if getattr(self, s.value) == "open"]


class GateSettings(BaseModel):
    """``gate:`` in ``pack.yaml``: how the bridge enforces the pack's decisions in a live call."""

    model_config = _STRICT

    mode: GateMode = Field(
        "observe",
        description="observe: decide and record only; monitor: assistant audio flows at once, a violation cancels the response, "
        "truncates it at what the caller heard and plays the fallback; hold: assistant audio is held until the transcript "
        "covering it passed the gate.  `serve --gate` overrides it",
    )
    on_failure: GateFailures = Field(
        default_factory=GateFailures,
        description="per stage: closed (default) or open, when a decision fails (raises or exceeds check_timeout_ms)",
    )
    check_timeout_ms: int = Field(
        1500, ge=10, le=60_000, description="how long one decision may take before it counts as a gate failure"
    )
    fallback_utterance: str = Field(
        DEFAULT_FALLBACK_UTTERANCE,
        min_length=1,
        description="what the agent says when a rule that stops speech or an action (block_speech, deny) has no utterance "
        "of its own, and after a fail-closed gate failure",
    )
    escalation_utterance: str = Field(
        DEFAULT_ESCALATION_UTTERANCE, min_length=1, description="what the agent says for an escalate rule without an utterance"
    )
    max_hold_ms: int = Field(
        10_000,
        ge=100,
        le=120_000,
        description="hold mode: the most assistant audio (ms of audio time) held for one answer before the gate fails",
    )
    user_turn: UserTurn = Field(
        "immediate",
        description="immediate: the model answers as soon as turn detection ends the caller's turn; gated: turn detection "
        "runs with create_response false and the bridge sends response.create after the user_text stage passed",
    )

    @field_validator("fallback_utterance", "escalation_utterance")
    @classmethod
    def _spoken(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank (omit the field for the default)")
        return v

    def utterance_for(self, effect: str, utterances: tuple[str, ...] | list[str] = ()) -> str | None:
        """What the agent says for a decision: the deciding rules' utterances, else this pack's
        fallback for block_speech/deny and escalation utterance for escalate; None for other effects."""
        if utterances:
            return " ".join(utterances)
        effect = str(getattr(effect, "value", effect))
        if effect in ("block_speech", "deny"):
            return self.fallback_utterance
        if effect == "escalate":
            return self.escalation_utterance
        return None

    @model_validator(mode="after")
    def _hold_covers_a_check(self) -> GateSettings:
        if self.max_hold_ms < self.check_timeout_ms:
            raise ValueError(
                f"max_hold_ms ({self.max_hold_ms}) is below check_timeout_ms ({self.check_timeout_ms}): "
                "a held answer would fail before one check may time out"
            )
        return self


#: turn_detection keys the bridge passes through, per type, with their JSON types (GA Realtime)
TURN_DETECTION_KEYS: dict[str, dict[str, tuple[type, ...]]] = {
    "server_vad": {
        "threshold": (int, float),
        "prefix_padding_ms": (int,),
        "silence_duration_ms": (int,),
        "idle_timeout_ms": (int,),
        "interrupt_response": (bool,),
    },
    "semantic_vad": {
        "eagerness": (str,),
        "interrupt_response": (bool,),
    },
}
SEMANTIC_EAGERNESS = ("low", "medium", "high", "auto")
OutputModality = Literal["audio", "text"]


class SessionSettings(BaseModel):
    """``session:`` in ``pack.yaml``: what the bridge sends upstream at call start (its own
    ``session.update``), merged with what the caller's client sends."""

    model_config = _STRICT

    instructions: str | None = Field(
        None, description="the pack's system instructions; the bridge puts them before the client's own"
    )
    voice: str | None = Field(None, min_length=1, description="the model's voice (alloy, ash, ballad, coral, echo, sage, shimmer, verse, marin, cedar, or a custom voice id)")
    turn_detection: dict[str, Any] | None = Field(
        None,
        description="passed through as audio.input.turn_detection: type server_vad or semantic_vad and its parameters; "
        "create_response is not set here (gate.user_turn decides it)",
    )
    output_modalities: list[OutputModality] | None = Field(
        None, description='["audio"] (speech, with its transcript) or ["text"]'
    )

    @field_validator("instructions")
    @classmethod
    def _instructions(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must not be blank (omit the field instead)")
        return v

    @field_validator("turn_detection")
    @classmethod
    def _turn_detection(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return v
        if "create_response" in v:
            raise ValueError(
                "create_response is not set here: gate.user_turn decides it (immediate: the model answers; "
                "gated: create_response false and the bridge answers after the user_text stage)"
            )
        kind = v.get("type")
        if kind not in TURN_DETECTION_KEYS:
            raise ValueError(f"type must be server_vad or semantic_vad (got {kind!r})")
        allowed = TURN_DETECTION_KEYS[kind]
        for key, value in v.items():
            if key == "type":
                continue
            if key not in allowed:
                raise ValueError(f"unknown {kind} field {key!r} (known: {', '.join(sorted(allowed))})")
            types = allowed[key]
            if isinstance(value, bool) and bool not in types or not isinstance(value, types):
                name = "a number" if float in types else {int: "an integer", bool: "a boolean", str: "a string"}[types[0]]
                raise ValueError(f"{key} must be {name} (got {value!r})")
            if key.endswith("_ms") and value < 0:
                raise ValueError(f"{key} must be >= 0 (got {value})")
        if "threshold" in v and not 0.0 <= v["threshold"] <= 1.0:
            raise ValueError(f"threshold must be between 0.0 and 1.0 (got {v['threshold']})")
        if "eagerness" in v and v["eagerness"] not in SEMANTIC_EAGERNESS:
            raise ValueError(f"eagerness must be one of {', '.join(SEMANTIC_EAGERNESS)} (got {v['eagerness']!r})")
        return dict(v)

    @field_validator("output_modalities")
    @classmethod
    def _modalities(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and v not in (["audio"], ["text"]):
            raise ValueError('must be ["audio"] or ["text"] (the model answers in one modality)')
        return v


class PackManifest(BaseModel):
    """``pack.yaml``."""

    model_config = _STRICT

    name: str = Field(pattern=NAME.pattern)
    description: str
    version: str = Field(description="human version (e.g. 1.2.0); decisions carry the content hash as pack_version")
    default_effect: Effect = Field(Effect.allow, description="the effect when no rule matches")
    on_error: FailClosedEffect = Field(
        "deny",
        description="fail-closed effect when a rule's condition cannot be evaluated (missing field, wrong type): deny, escalate or block_speech",
    )
    history_turns: int = Field(6, ge=0, le=100, description="how many recent turns the context's history holds")
    tools: dict[str, ToolSpec] = Field(default_factory=dict)
    disclosures: dict[str, str] = Field(default_factory=dict, description="disclosure id -> the text to speak")
    phrase_lists: dict[str, list[str]] = Field(
        default_factory=dict,
        description="named phrase lists; a rule's phrases/history_phrases entry '@name' stands for the whole list",
    )
    gate: GateSettings = Field(
        default_factory=GateSettings, description="how a live call enforces the decisions (mode, failures, timeouts, fallbacks)"
    )
    session: SessionSettings = Field(
        default_factory=SessionSettings, description="what the bridge sends upstream at call start (instructions, voice, turn detection)"
    )
    bridge_speech: BridgeSpeech = Field(
        default_factory=BridgeSpeech,
        description="prerecorded clips the bridge plays itself when the model cannot speak (an upstream outage, the drain deadline)",
    )

    @field_validator("phrase_lists")
    @classmethod
    def _lists(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, items in v.items():
            if not NAME.match(name):
                raise ValueError(f"phrase list name {name!r}: letters, digits, _ and - only")
            if not items or any(not isinstance(s, str) or not s.strip() or s.startswith("@") for s in items):
                raise ValueError(f"phrase list {name!r}: a non-empty list of phrases (no '@' references)")
        return v


class Rule(BaseModel):
    """One rule.  It matches when every matcher it has matches (tools, phrases, regex, condition)."""

    model_config = _STRICT

    id: str = Field(description="dotted unique id, e.g. banking.transfer.limit", pattern=RULE_ID.pattern)
    description: str = ""
    stage: Stage
    tools: list[str] | None = Field(None, description="only for these tools (tool_call, tool_result)")
    phrases: list[str] | None = Field(
        None, description="sugar: matches when the text contains any phrase (case-insensitive, whole words, punctuation ignored)"
    )
    history_phrases: list[str] | None = Field(
        None, description="matches when a caller (user) turn in the history contains any phrase (same matching as phrases)"
    )
    regex: list[str] | None = Field(None, description="sugar: matches when any pattern (Python re, case-insensitive) is found in the text")
    condition: str | None = Field(None, description="CEL expression over the context; must evaluate to a bool")
    effect: Effect
    message: str = Field(description="why, for the agent, the log and the audit trail")
    utterance: str | None = Field(None, description="what the agent says to the caller instead (fallback utterance)")
    severity: Severity = Severity.medium
    disclosure: str | None = Field(None, description="require_disclosure: the disclosure id to give")
    level: VerificationLevel | None = Field(None, description="step_up: the verification level required")
    on_error: FailClosedEffect | None = Field(None, description="overrides the pack's on_error for this rule: deny, escalate or block_speech")
    tags: list[str] = Field(default_factory=list)

    @field_validator("phrases", "history_phrases", "regex", "tools")
    @classmethod
    def _non_empty(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not v:
                raise ValueError("must not be empty (omit the field instead)")
            if any(not isinstance(s, str) or not s.strip() for s in v):
                raise ValueError("entries must be non-empty strings")
        return v

    @model_validator(mode="after")
    def _effect_params(self) -> Rule:
        if self.effect == Effect.require_disclosure.value and not self.disclosure:
            raise ValueError("effect require_disclosure needs a 'disclosure' (its id)")
        if self.disclosure and self.effect != Effect.require_disclosure.value:
            raise ValueError("'disclosure' is only for effect require_disclosure")
        if self.level and self.effect != Effect.step_up.value:
            raise ValueError("'level' is only for effect step_up")
        return self


class RuleFile(BaseModel):
    """``rules/*.yaml``."""

    model_config = _STRICT

    rules: list[Rule]


class SessionInput(BaseModel):
    """``session`` in the context."""

    model_config = _STRICT

    verification_level: VerificationLevel = "none"
    disclosures: list[str] = Field(default_factory=list, description="ids of the disclosures already given")
    elapsed_s: float = Field(0.0, ge=0, description="seconds since the call started")
    turns: int = Field(0, ge=0, description="finished turns so far (both roles)")
    user_turns: int = Field(0, ge=0)
    assistant_turns: int = Field(0, ge=0)
    tool_calls: int = Field(0, ge=0, description="tool calls so far")
    channel: str = ""
    transferred: float = Field(
        0.0, ge=0, description="sum of the amounts of the successful money-moving tool calls so far (tools with amount_arg)"
    )


class HistoryTurn(BaseModel):
    model_config = _STRICT

    role: Literal["user", "assistant"]
    text: str


class PolicyInput(BaseModel):
    """One event to decide on: ``stage`` and the context fields (all optional, with defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    stage: Stage
    text: str = Field("", description="user_text/assistant_text: the utterance; tool_result: the raw output")
    pii: dict[str, int] = Field(default_factory=dict, description="PII entity type -> count found in text (from the PII gate)")
    tool: str = Field("", description="tool_call/tool_result: the tool's name")
    args: dict[str, Any] = Field(default_factory=dict, description="tool_call/tool_result: the tool's arguments")
    result: dict[str, Any] = Field(default_factory=dict, description="tool_result: the parsed output (a JSON object) else {}")
    confirmed: bool = Field(False, description="tool_call: the caller has explicitly confirmed this call")
    session: SessionInput = Field(default_factory=SessionInput)
    history: list[HistoryTurn] = Field(default_factory=list, description="recent turns, oldest first")


class Expectation(BaseModel):
    model_config = _STRICT

    effect: Effect
    rules: list[str] | None = Field(None, description="these rule ids must be among the matched rules")
    not_rules: list[str] | None = Field(None, description="these rule ids must not match")
    exact_rules: list[str] | None = Field(None, description="the deciding rule ids, exactly (order ignored)")
    errors: bool = Field(False, description="true: a condition must fail to evaluate (fail-closed tests); false: none may")


class PackTest(BaseModel):
    model_config = _STRICT

    name: str
    input: PolicyInput
    expect: Expectation


class PackTestFile(BaseModel):
    """``tests/*.yaml``."""

    model_config = _STRICT

    tests: list[PackTest]


def json_schema() -> dict[str, Any]:
    """One JSON Schema document covering the three file kinds (``$defs``) and the input."""
    from pydantic.json_schema import models_json_schema

    _, defs = models_json_schema(
        [(PackManifest, "validation"), (RuleFile, "validation"), (PackTestFile, "validation"), (PolicyInput, "validation")],
        title="hybrid-agent policy pack",
    )
    defs["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    defs["description"] = (
        "Policy pack files: pack.yaml is PackManifest, rules/*.yaml is RuleFile, tests/*.yaml is PackTestFile; "
        "explain input is PolicyInput.  Select one with the --kind option of `hybrid-agent policy schema`."
    )
    return defs


def json_schema_for(kind: str) -> dict[str, Any]:
    model = {"pack": PackManifest, "rules": RuleFile, "tests": PackTestFile, "input": PolicyInput}[kind]
    return model.model_json_schema()

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

    @model_validator(mode="after")
    def _amount_arg_declared(self) -> ToolSpec:
        if self.amount_arg is not None and self.amount_arg not in self.args:
            raise ValueError(f"amount_arg {self.amount_arg!r} is not one of the tool's args")
        return self


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

"""pack.yaml ``gate:`` and ``session:``: defaults, validation with file:line, lint, the version hash,
and the bridge's own ``session.update`` payload checked against the openai SDK's types."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from openai.types.realtime import RealtimeSessionCreateRequest, SessionUpdateEvent
from pydantic import BaseModel, ValidationError

from hybrid_agent.policy import PolicyInput, load, load_pack
from hybrid_agent.policy.lint import lint
from hybrid_agent.policy.loader import content_hash
from hybrid_agent.policy.schema import (
    DEFAULT_ESCALATION_UTTERANCE,
    DEFAULT_FALLBACK_UTTERANCE,
    GateSettings,
    PackManifest,
    SessionSettings,
    json_schema,
)
from hybrid_agent.policy.session_config import (
    bridge_session_update,
    enforced_turn_detection,
    merged_instructions,
    pack_tool_declarations,
)

ROOT = Path(__file__).resolve().parents[1]
BANK = ROOT / "policies" / "retail-banking"
HEALTH = ROOT / "policies" / "healthcare"

BASE = {"name": "mini", "description": "d", "version": "0.1.0"}

MANIFEST = """\
name: mini
description: a small test pack
version: 0.1.0
tools:
  get_balance:
    description: Balance of one account.
    args: {account_id: string}
"""

RULES = """\
rules:
  - id: mini.speech.no_secrets
    stage: assistant_text
    phrases: [the secret]
    effect: block_speech
    message: no secrets
  - id: mini.tools.no_balance
    stage: tool_call
    tools: [get_balance]
    effect: deny
    message: no balances
  - id: mini.user.complaint
    stage: user_text
    phrases: [complaint]
    effect: escalate
    message: hand over
"""


def make_pack(tmp_path: Path, extra: str = "") -> Path:
    root = tmp_path / "mini"
    (root / "rules").mkdir(parents=True)
    (root / "pack.yaml").write_text(MANIFEST + textwrap.dedent(extra))
    (root / "rules" / "main.yaml").write_text(RULES)
    return root


def manifest(**fields: Any) -> PackManifest:
    return PackManifest.model_validate(BASE | fields)


def errors_of(root: Path) -> list[str]:
    return [str(i) for i in lint(root).errors]


# -- defaults ------------------------------------------------------------------------------------


def test_defaults() -> None:
    m = manifest()
    g = m.gate
    assert g.mode == "observe"
    assert g.user_turn == "immediate"
    assert g.check_timeout_ms == 1500
    assert g.max_hold_ms == 10_000
    assert g.fallback_utterance == DEFAULT_FALLBACK_UTTERANCE
    assert g.escalation_utterance == DEFAULT_ESCALATION_UTTERANCE
    stages = ("session_start", "user_text", "assistant_text", "tool_call", "tool_result")
    assert all(g.on_failure.for_stage(s) == "closed" for s in stages)
    assert g.on_failure.open_stages() == []
    s = m.session
    assert (s.instructions, s.voice, s.turn_detection, s.output_modalities) == (None, None, None, None)
    # nothing set: the bridge's update carries nothing but its type
    assert bridge_session_update(m, transcription_model=None, tool_declarations=[]) == {"type": "realtime"}


def test_partial_on_failure_keeps_the_other_stages_closed() -> None:
    g = GateSettings.model_validate({"on_failure": {"tool_result": "open"}})
    assert g.on_failure.tool_result == "open"
    assert g.on_failure.open_stages() == ["tool_result"]
    assert g.on_failure.for_stage("tool_call") == "closed"


def test_utterance_for_a_decision() -> None:
    g = GateSettings(fallback_utterance="Sorry.", escalation_utterance="Passing you on.")
    assert g.utterance_for("block_speech") == g.utterance_for("deny") == "Sorry."
    assert g.utterance_for("escalate") == "Passing you on."
    assert g.utterance_for("escalate", ("Own words.",)) == "Own words."
    assert g.utterance_for("allow") is None and g.utterance_for("step_up") is None
    d = load_pack(BANK).evaluate(PolicyInput(stage="assistant_text", text="Your card number is 4111 1111 1111 1111"))
    assert d.effect == "block_speech"
    assert load_pack(BANK).manifest.gate.utterance_for(d.effect, d.utterances) == d.utterances[0]


def test_shipped_packs_have_gate_and_session() -> None:
    bank = load_pack(BANK).manifest
    assert bank.gate.mode == "hold" and bank.gate.user_turn == "immediate"
    assert bank.session.instructions and "This call is recorded for quality" in bank.session.instructions
    assert bank.disclosures["recording_notice"] in bank.session.instructions  # word for word, so it counts
    assert "verify_identity" in bank.session.instructions
    health = load_pack(HEALTH).manifest
    assert health.gate.mode == "monitor"
    assert health.disclosures["recording_notice"] in (health.session.instructions or "")
    for root in (BANK, HEALTH):
        rep = lint(root)
        assert not rep.errors
        assert not [w for w in rep.warnings if "gate" in w.message]


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"gate": {"mode": "block"}}, "'observe', 'monitor' or 'hold'"),
        ({"gate": {"mode": "off"}}, "'observe', 'monitor' or 'hold'"),
        ({"gate": {"user_turn": "later"}}, "'immediate' or 'gated'"),
        ({"gate": {"on_failure": {"user_txt": "open"}}}, "unknown stage 'user_txt'"),
        ({"gate": {"on_failure": {"user_text": "maybe"}}}, "'closed' or 'open'"),
        ({"gate": {"check_timeout_ms": 0}}, "greater than or equal to 10"),
        ({"gate": {"max_hold_ms": 1000, "check_timeout_ms": 1500}}, "max_hold_ms (1000) is below check_timeout_ms (1500)"),
        ({"gate": {"fallback_utterance": "  "}}, "must not be blank"),
        ({"gate": {"escalation_utterance": ""}}, "at least 1 character"),
        ({"gate": {"modes": "hold"}}, "Extra inputs are not permitted"),
        ({"session": {"turn_detection": {"type": "server_vad", "create_response": False}}}, "gate.user_turn decides it"),
        ({"session": {"turn_detection": {"type": "push_to_talk"}}}, "server_vad or semantic_vad"),
        ({"session": {"turn_detection": {"silence_duration_ms": 400}}}, "server_vad or semantic_vad"),
        ({"session": {"turn_detection": {"type": "semantic_vad", "silence_duration_ms": 400}}}, "unknown semantic_vad field"),
        ({"session": {"turn_detection": {"type": "semantic_vad", "eagerness": "eager"}}}, "eagerness must be one of"),
        ({"session": {"turn_detection": {"type": "server_vad", "threshold": 2}}}, "between 0.0 and 1.0"),
        ({"session": {"turn_detection": {"type": "server_vad", "silence_duration_ms": "500"}}}, "must be an integer"),
        ({"session": {"turn_detection": {"type": "server_vad", "interrupt_response": 1}}}, "must be a boolean"),
        ({"session": {"turn_detection": {"type": "server_vad", "prefix_padding_ms": True}}}, "must be an integer"),
        ({"session": {"output_modalities": ["audio", "text"]}}, '["audio"] or ["text"]'),
        ({"session": {"output_modalities": ["video"]}}, "'audio' or 'text'"),
        ({"session": {"instructions": "   "}}, "must not be blank"),
        ({"session": {"model": "gpt-realtime"}}, "Extra inputs are not permitted"),
    ],
)
def test_validation_errors(fields: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as exc:
        manifest(**fields)
    assert needle in str(exc.value)


def test_errors_carry_file_and_line(tmp_path: Path) -> None:
    root = make_pack(tmp_path, """\
        gate:
          mode: block
          on_failure:
            user_txt: open
        session:
          turn_detection:
            type: server_vad
            create_response: true
        """)
    errs = errors_of(root)
    assert any("gate.mode" in e and "(got 'block')" in e and ":9:" in e for e in errs), errs
    assert any("gate.on_failure" in e and "unknown stage 'user_txt'" in e and ":10:" in e for e in errs), errs
    assert any("session.turn_detection" in e and "create_response" in e and ":13:" in e for e in errs), errs
    assert all("pack.yaml:" in e for e in errs), errs
    assert load(root).pack is None


def test_gated_turn_detection_is_enforced() -> None:
    gated = manifest(gate={"user_turn": "gated"})
    assert enforced_turn_detection(gated, None) == {"type": "server_vad", "create_response": False}
    assert enforced_turn_detection(gated, {"type": "semantic_vad", "create_response": True}) == {
        "type": "semantic_vad", "create_response": False,
    }
    immediate = manifest()
    assert enforced_turn_detection(immediate, None) is None
    td = {"type": "server_vad", "create_response": True}
    assert enforced_turn_detection(immediate, td) == td and enforced_turn_detection(immediate, td) is not td


def test_merged_instructions() -> None:
    m = manifest(session={"instructions": "Pack rules."})
    assert merged_instructions(m, "Be friendly.") == "Pack rules.\n\nBe friendly."
    assert merged_instructions(m, None) == "Pack rules."
    assert merged_instructions(m, "") == "Pack rules."
    assert merged_instructions(m, "Pack rules.\n\nBe friendly.") == "Pack rules.\n\nBe friendly."  # idempotent
    assert merged_instructions(manifest(), "Be friendly.") == "Be friendly."


# -- lint -----------------------------------------------------------------------------------------


def test_lint_warns_when_a_stage_with_stopping_rules_fails_open(tmp_path: Path) -> None:
    root = make_pack(tmp_path, """\
        gate:
          on_failure:
            assistant_text: open
            tool_call: open
            user_text: open
            tool_result: open
        """)
    rep = lint(root)
    assert not rep.errors
    gate_warnings = [w for w in rep.warnings if "gate.on_failure" in w.message]
    by_stage = {w.message.split()[0]: w for w in gate_warnings}
    assert set(by_stage) == {"gate.on_failure.assistant_text", "gate.on_failure.tool_call"}, gate_warnings
    assert "mini.speech.no_secrets" in by_stage["gate.on_failure.assistant_text"].message
    assert "mini.tools.no_balance" in by_stage["gate.on_failure.tool_call"].message
    assert by_stage["gate.on_failure.assistant_text"].line == 10
    assert by_stage["gate.on_failure.tool_call"].file.endswith("pack.yaml")
    # user_text has only an escalate rule, tool_result none: no warning for them


def test_lint_quiet_when_every_stage_fails_closed(tmp_path: Path) -> None:
    root = make_pack(tmp_path, "gate: {mode: hold, on_failure: {tool_result: open}}\n")
    assert not [w for w in lint(root).warnings if "gate" in w.message]


# -- version hash ---------------------------------------------------------------------------------


def test_version_hash_changes_with_gate_and_session(tmp_path: Path) -> None:
    root = tmp_path / "bank"
    shutil.copytree(BANK, root)
    before = load_pack(root).version
    assert before == content_hash(root) == load_pack(BANK).version
    pack_yaml = root / "pack.yaml"
    original = pack_yaml.read_text()

    pack_yaml.write_text(original.replace("  mode: hold ", "  mode: monitor ", 1))
    assert load_pack(root).manifest.gate.mode == "monitor"
    after_gate = load_pack(root).version
    assert after_gate != before

    pack_yaml.write_text(original.replace("  voice: marin", "  voice: cedar", 1))
    assert load_pack(root).manifest.session.voice == "cedar"
    after_session = load_pack(root).version
    assert after_session not in (before, after_gate)

    pack_yaml.write_text(original)
    assert load_pack(root).version == before


# -- the bridge's session.update ------------------------------------------------------------------


def assert_no_extras(model: Any, path: str = "session") -> None:
    """The SDK's models allow extra fields, so validation alone would accept a misspelt key."""
    if isinstance(model, BaseModel):
        assert not model.model_extra, f"{path}: fields the SDK does not know: {sorted(model.model_extra or {})}"
        for name in type(model).model_fields:
            assert_no_extras(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, (list, tuple)):
        for i, item in enumerate(model):
            assert_no_extras(item, f"{path}[{i}]")


def validate_upstream(payload: dict[str, Any]) -> RealtimeSessionCreateRequest:
    req = RealtimeSessionCreateRequest.model_validate(payload)
    assert_no_extras(req)
    assert req.model_dump(mode="json", exclude_unset=True) == json.loads(json.dumps(payload))
    event = SessionUpdateEvent.model_validate({"type": "session.update", "event_id": "event_bridge_session", "session": payload})
    assert isinstance(event.session, RealtimeSessionCreateRequest)
    return req


TOOL = {
    "type": "function",
    "name": "transfer_funds",
    "description": "Move money.",
    "parameters": {
        "type": "object",
        "properties": {"amount": {"type": "number"}, "to_account": {"type": "string"}},
        "required": ["amount", "to_account"],
    },
}


def test_bridge_session_update_immediate_banking_pack() -> None:
    m = load_pack(BANK).manifest
    tools = pack_tool_declarations(m.tools)
    payload = bridge_session_update(m, transcription_model="gpt-4o-transcribe", tool_declarations=tools)
    assert payload["type"] == "realtime"
    assert payload["instructions"] == m.session.instructions
    assert [t["name"] for t in payload["tools"]] == sorted(m.tools)
    assert payload["output_modalities"] == ["audio"]
    assert payload["audio"]["input"]["transcription"] == {"model": "gpt-4o-transcribe"}
    td = payload["audio"]["input"]["turn_detection"]
    assert td == {"type": "server_vad", "silence_duration_ms": 500}  # immediate: create_response left to the default
    assert payload["audio"]["output"] == {"voice": "marin"}
    req = validate_upstream(payload)
    assert req.audio is not None and req.audio.input is not None and req.audio.input.turn_detection is not None
    assert req.audio.input.turn_detection.create_response is None
    assert req.tools and req.tools[0].name == "block_card"
    # the payload is the caller's to change: the manifest's values are not shared
    payload["audio"]["input"]["turn_detection"]["silence_duration_ms"] = 1
    payload["tools"][0]["name"] = "x"
    assert m.session.turn_detection == {"type": "server_vad", "silence_duration_ms": 500}
    assert bridge_session_update(m, transcription_model=None, tool_declarations=tools)["tools"][0]["name"] == "block_card"


def test_bridge_session_update_gated_turn() -> None:
    m = manifest(
        gate={"mode": "hold", "user_turn": "gated"},
        session={
            "instructions": "Give the recording notice first.",
            "voice": "cedar",
            "turn_detection": {"type": "semantic_vad", "eagerness": "low", "interrupt_response": True},
            "output_modalities": ["audio"],
        },
    )
    payload = bridge_session_update(m, transcription_model="gpt-4o-transcribe", tool_declarations=[TOOL])
    assert payload == {
        "type": "realtime",
        "instructions": "Give the recording notice first.",
        "tools": [TOOL],
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "transcription": {"model": "gpt-4o-transcribe"},
                "turn_detection": {"type": "semantic_vad", "eagerness": "low", "interrupt_response": True, "create_response": False},
            },
            "output": {"voice": "cedar"},
        },
    }
    req = validate_upstream(payload)
    assert req.audio.input.turn_detection.create_response is False  # type: ignore[union-attr]
    assert m.session.turn_detection is not None and "create_response" not in m.session.turn_detection


def test_bridge_session_update_gated_without_turn_detection() -> None:
    m = manifest(gate={"user_turn": "gated"})
    payload = bridge_session_update(m, transcription_model=None, tool_declarations=[])
    assert payload == {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad", "create_response": False}}}}
    validate_upstream(payload)


@pytest.mark.parametrize("root", [BANK, HEALTH], ids=["retail-banking", "healthcare"])
@pytest.mark.parametrize("user_turn", ["immediate", "gated"])
def test_shipped_packs_update_validates(root: Path, user_turn: str) -> None:
    m = load_pack(root).manifest
    m = m.model_copy(update={"gate": m.gate.model_copy(update={"user_turn": user_turn})})
    payload = bridge_session_update(m, transcription_model="gpt-4o-transcribe", tool_declarations=pack_tool_declarations(m.tools))
    validate_upstream(payload)
    td = payload["audio"]["input"]["turn_detection"]
    assert ("create_response" in td) == (user_turn == "gated")
    if user_turn == "gated":
        assert td["create_response"] is False


def test_text_output_modality() -> None:
    m = manifest(session=SessionSettings(output_modalities=["text"]).model_dump(exclude_none=True))
    payload = bridge_session_update(m, transcription_model=None, tool_declarations=[])
    assert payload == {"type": "realtime", "output_modalities": ["text"]}
    validate_upstream(payload)


def test_json_schema_documents_both_sections() -> None:
    defs = json_schema()["$defs"]
    assert {"GateSettings", "GateFailures", "SessionSettings"} <= set(defs)
    props = defs["PackManifest"]["properties"]
    assert "gate" in props and "session" in props
    gate = defs["GateSettings"]["properties"]
    assert gate["mode"]["enum"] == ["observe", "monitor", "hold"]
    assert gate["mode"]["default"] == "observe"
    assert defs["GateSettings"]["additionalProperties"] is False
    assert defs["SessionSettings"]["additionalProperties"] is False
    assert all(p.get("description") for p in gate.values())

"""The session configuration a pack asks the bridge to send upstream (pure functions, no I/O).

At call start the bridge sends its own GA ``session.update`` built by
:func:`bridge_session_update` from the pack's ``session:`` and ``gate:`` sections and the
bridge's settings (transcription model, the tools it runs).  What the caller's client sends
later is merged on top by the call session; :func:`merged_instructions` and
:func:`enforced_turn_detection` say how the pack's part survives that merge.

The payload validates against the openai SDK's ``RealtimeSessionCreateRequest`` (a test checks
it), so the upstream does not refuse it.
"""

from __future__ import annotations

import copy
from typing import Any

from hybrid_agent.policy.schema import PackManifest, ToolSpec

#: turn detection the upstream applies when a session names none (GA Realtime default)
DEFAULT_TURN_DETECTION_TYPE = "server_vad"

#: separates the pack's instructions from the client's own in the merged instructions
INSTRUCTIONS_SEPARATOR = "\n\n"

_JSON_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "list": {"type": "array"},
    "map": {"type": "object"},
    "any": {},
}


def bridge_session_update(
    manifest: PackManifest,
    *,
    transcription_model: str | None,
    tool_declarations: list[dict[str, Any]],
) -> dict[str, Any]:
    """The ``session`` payload of the bridge's own ``session.update`` at call start.

    Only fields that are set appear: ``instructions`` (the pack's), ``tools`` (the
    declarations of the tools the bridge runs, as given), ``output_modalities``,
    ``audio.input.transcription`` (when ``transcription_model``), ``audio.input.turn_detection``
    (the pack's, with ``create_response: false`` added for ``gate.user_turn: gated``; a gated pack
    without one gets ``{"type": "server_vad", "create_response": false}``, the upstream's default
    detection) and ``audio.output.voice``.  The result is a fresh dict: the caller may mutate it.
    """
    s = manifest.session
    out: dict[str, Any] = {"type": "realtime"}
    if s.instructions:
        out["instructions"] = s.instructions
    if tool_declarations:
        out["tools"] = copy.deepcopy(list(tool_declarations))
    if s.output_modalities:
        out["output_modalities"] = list(s.output_modalities)
    audio_in: dict[str, Any] = {}
    if transcription_model:
        audio_in["transcription"] = {"model": transcription_model}
    turn_detection = enforced_turn_detection(manifest, s.turn_detection)
    if turn_detection is not None:
        audio_in["turn_detection"] = turn_detection
    audio: dict[str, Any] = {}
    if audio_in:
        audio["input"] = audio_in
    if s.voice:
        audio["output"] = {"voice": s.voice}
    if audio:
        out["audio"] = audio
    return out


def enforced_turn_detection(manifest: PackManifest, turn_detection: dict[str, Any] | None) -> dict[str, Any] | None:
    """``turn_detection`` as the bridge may send it upstream under this pack.

    For ``gate.user_turn: gated`` the model must not answer on its own: ``create_response`` is
    forced to ``false`` (also when a client's ``session.update`` says ``true``); with no turn
    detection given, the default ``server_vad`` is named so there is an object to carry it.
    For ``immediate`` the value passes unchanged (``None`` stays ``None``).  Use it on the
    client's ``audio.input.turn_detection`` too, when it is a dict; a client that turns turn
    detection off (``null``) sends ``response.create`` itself, which the session must then hold
    until the ``user_text`` stage passed.
    """
    if manifest.gate.user_turn != "gated":
        return copy.deepcopy(turn_detection) if turn_detection is not None else None
    td = copy.deepcopy(turn_detection) if turn_detection is not None else {"type": DEFAULT_TURN_DETECTION_TYPE}
    td["create_response"] = False
    return td


def merged_instructions(manifest: PackManifest, client_instructions: str | None) -> str | None:
    """The instructions to send when the client sends its own: the pack's first, then the client's."""
    pack = manifest.session.instructions
    if not pack:
        return client_instructions
    if not client_instructions or not client_instructions.strip():
        return pack
    if client_instructions.startswith(pack):  # already merged (e.g. replayed after a reconnect)
        return client_instructions
    return pack + INSTRUCTIONS_SEPARATOR + client_instructions


def pack_tool_declarations(tools: dict[str, ToolSpec]) -> list[dict[str, Any]]:
    """GA function-tool declarations from the pack's ``tools:`` (names, descriptions, argument types).

    A fallback for tools the bridge has no richer schema for: the pack declares argument types
    for lint, not which arguments are required, so every argument is optional here.
    """
    out = []
    for name in sorted(tools):
        spec = tools[name]
        decl: dict[str, Any] = {
            "type": "function",
            "name": name,
            "parameters": {
                "type": "object",
                "properties": {arg: dict(_JSON_TYPES[t]) for arg, t in spec.args.items()},
                "additionalProperties": False,
            },
        }
        if spec.description:
            decl["description"] = spec.description
        out.append(decl)
    return out

"""The caller's session configuration as the bridge keeps it: merged, bounded, and rewritten
where the upstream would otherwise refuse the caller's whole ``session.update``.

Why a part of its own: the bridge sets fields of the session itself (the model it
connected with, input transcription), and a caller that names other values in its
``session.update`` must not lose instructions, tools and voice to one refused field.
So every caller update passes through here on its way upstream:

- ``session.model`` is rewritten to the model the call runs on (the service cannot change
  a session's model; see ``hybrid_agent.upstream.models``);
- ``audio.input.transcription: null`` is rewritten to the bridge's transcription model
  (the middle layer and the audit read what the caller said).

What remains is merged into one remembered configuration, replayed as a single
``session.update`` after an upstream reconnect.  Memory stays bounded: the merge keeps
only the session's own top-level fields (``RealtimeSessionCreateRequest``), each holding
the last value sent, so many large updates cost one update's worth, not their sum.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any

from openai.types.realtime import RealtimeSessionCreateRequest

#: top-level session fields the merged configuration keeps (others the upstream refuses anyway)
SESSION_FIELDS = frozenset(RealtimeSessionCreateRequest.model_fields)
#: audio.input/output fields replaced whole by an update (the service does the same)
_REPLACED_AUDIO_FIELDS = ("format", "transcription", "noise_reduction")


@dataclass(frozen=True, slots=True)
class Rewrite:
    """One field of a caller's update the bridge changed before sending it upstream."""

    param: str
    requested: str
    used: str
    reason: str


def merge_session(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` applied to ``base`` the way the service applies a partial ``session.update``."""
    out = dict(base)
    for key, value in update.items():
        if key not in SESSION_FIELDS:
            continue
        if key == "audio" and isinstance(value, dict) and isinstance(out.get("audio"), dict):
            out["audio"] = _merge_audio(out["audio"], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_audio(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for side, part in update.items():
        if not isinstance(part, dict) or not isinstance(out.get(side), dict):
            out[side] = copy.deepcopy(part)
            continue
        merged = dict(out[side])
        for key, value in part.items():
            old = merged.get(key)
            same_vad = (
                key == "turn_detection"
                and isinstance(value, dict)
                and isinstance(old, dict)
                and value.get("type", old.get("type")) == old.get("type")
            )
            if same_vad:
                merged[key] = {**old, **copy.deepcopy(value)}
            elif key in _REPLACED_AUDIO_FIELDS or key == "turn_detection" or not (isinstance(value, dict) and isinstance(old, dict)):
                merged[key] = copy.deepcopy(value)
            else:
                merged[key] = {**old, **copy.deepcopy(value)}
        out[side] = merged
    return out


class ClientSessionConfig:
    """Rewrites and remembers the caller's ``session.update`` payloads for one call."""

    def __init__(
        self,
        model: str,
        transcription_model: str | None,
        *,
        bridge_tools: list[dict[str, Any]] | None = None,
        bridge_instructions: str | None = None,
        gated_turns: bool = False,
    ) -> None:
        self.gated_turns = gated_turns  # gate.user_turn: gated: the model never answers a caller turn on its own
        self.model = model
        self.transcription_model = transcription_model
        self.bridge_tools = list(bridge_tools or [])
        self.bridge_instructions = bridge_instructions
        self.merged: dict[str, Any] = {}
        self.updates = 0
        self.changed = False  # the last update was changed on its way upstream

    def client_update(self, session: dict[str, Any]) -> list[Rewrite]:
        """Rewrite ``session`` in place where the upstream would refuse it, then remember it."""
        rewrites: list[Rewrite] = []
        model = session.get("model")
        if self.model and "model" in session and model != self.model:
            session["model"] = self.model
            rewrites.append(
                Rewrite("session.model", _shown(model), self.model, "the call runs on the model the bridge connected with")
            )
        audio_in = (session.get("audio") or {}).get("input")
        if self.transcription_model and isinstance(audio_in, dict) and "transcription" in audio_in:
            if audio_in["transcription"] is None:
                # turning transcription off would blind the middle layer (and the audit): keep it on
                audio_in["transcription"] = {"model": self.transcription_model}
                rewrites.append(
                    Rewrite(
                        "session.audio.input.transcription",
                        "null",
                        self.transcription_model,
                        "the middle layer reads what the caller said",
                    )
                )
        vad = audio_in.get("turn_detection") if isinstance(audio_in, dict) else None
        if self.gated_turns and isinstance(vad, dict) and vad.get("create_response", True) is not False:
            # the bridge answers a caller turn itself once the turn passed the user_text stage
            vad["create_response"] = False
            rewrites.append(Rewrite("session.audio.input.turn_detection.create_response", "true", "false",
                                    "the policy pack gates each caller turn before the model answers"))
        self.changed = bool(rewrites)
        tools = session.get("tools")
        if self.bridge_tools and isinstance(tools, list):
            self.changed = True
            # the client's tools replace the session's: keep the bridge's own beside them
            ours = {t.get("name") for t in self.bridge_tools}
            session["tools"] = [*copy.deepcopy(self.bridge_tools), *(t for t in tools if not (isinstance(t, dict) and t.get("name") in ours))]
        instructions = session.get("instructions")
        if self.bridge_instructions and isinstance(instructions, str) and not instructions.startswith(self.bridge_instructions):
            # the pack's instructions come first, the client's after them
            self.changed = True
            session["instructions"] = f"{self.bridge_instructions}\n\n{instructions}"
        self.merged = merge_session(self.merged, session)
        self.updates += 1
        return rewrites

    def replay_update(self) -> dict[str, Any] | None:
        """The whole remembered configuration as one ``session`` payload (``None``: nothing to restore)."""
        if not self.merged:
            return None
        session = copy.deepcopy(self.merged)
        session.setdefault("type", "realtime")
        return session


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text[:128]


def describe_session(session: object) -> str:
    """What configuration the upstream accepted, for the audit: which model, which instructions (by
    digest and length, so a prompt version is identifiable without storing the prompt), which tools,
    voice, transcription and turn detection.  Built only from fields the bridge understands."""
    if not isinstance(session, dict):
        return "session: (not an object)"
    parts = [f"model {_shown(session.get('model'))}"]
    instructions = session.get("instructions")
    if isinstance(instructions, str) and instructions:
        digest = hashlib.sha256(instructions.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        parts.append(f"instructions sha256:{digest} ({len(instructions)} chars)")
    else:
        parts.append("no instructions")
    tools = session.get("tools")
    if isinstance(tools, list):
        names = [str(t.get("name") or t.get("type"))[:64] for t in tools[:20] if isinstance(t, dict)]
        parts.append(f"tools [{', '.join(names)}]" + (f" (+{len(tools) - 20})" if len(tools) > 20 else ""))
    audio = session.get("audio") if isinstance(session.get("audio"), dict) else {}
    audio_in = audio.get("input") if isinstance(audio.get("input"), dict) else {}
    audio_out = audio.get("output") if isinstance(audio.get("output"), dict) else {}
    if "voice" in audio_out:
        parts.append(f"voice {_shown(audio_out.get('voice'))[:32]}")
    transcription = audio_in.get("transcription")
    parts.append(f"transcription {_shown(transcription.get('model'))[:64]}" if isinstance(transcription, dict) else "transcription off")
    vad = audio_in.get("turn_detection")
    parts.append(f"turn detection {_shown(vad.get('type'))[:32]}" if isinstance(vad, dict) else "turn detection off")
    return "; ".join(parts)

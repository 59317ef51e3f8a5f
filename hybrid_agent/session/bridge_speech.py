"""The bridge speaking itself: a pack's clip (``policy/clips.py``) as a response of the bridge's own.

When the model cannot speak (the upstream is gone, the call is being ended at a deploy's drain
deadline) the bridge plays a prerecorded clip to the caller.  It goes out as an ordinary
Realtime response (``response.created`` ... ``response.done``, audio deltas in the call's output
format, the clip's words as the transcript), so any client plays it as it plays the model, and
a transport that translates (Twilio) turns the deltas into its own media frames.  The response
and item ids carry ``BRIDGE_RESPONSE_PREFIX``: never an id the upstream knows.

A part of the call session of its own (the way ``websockets`` splits its protocol): it builds
events, it holds no state but a counter.
"""

from __future__ import annotations

import base64
from typing import Any

from hybrid_agent.policy.clips import ClipAudio
from hybrid_agent.protocol.audio import byte_count_for_ms, encode_pcm24

BRIDGE_RESPONSE_PREFIX = "resp_bridge_"
BRIDGE_ITEM_PREFIX = "item_bridge_said_"
#: audio per delta: the size the service itself sends (~200 ms)
CHUNK_MS = 200.0
#: after the goodbye clip, before the hang-up: the end of the audio reaches the caller
GOODBYE_TAIL_MS = 300.0


class BridgeSpeech:
    """Builds the events of the clips one call plays."""

    def __init__(self, clips: dict[str, ClipAudio]) -> None:
        self.clips = clips
        self.played: list[str] = []  # names, in order
        self._n = 0

    def has(self, name: str) -> bool:
        return name in self.clips

    def duration_ms(self, name: str) -> float:
        clip = self.clips.get(name)
        return clip.duration_ms if clip is not None else 0.0

    def events(self, name: str, output_format: str) -> list[dict[str, Any]]:
        """The clip ``name`` as a complete response in ``output_format`` (empty if the pack has none)."""
        clip = self.clips.get(name)
        if clip is None:
            return []
        self._n += 1
        self.played.append(name)
        rid, iid = f"{BRIDGE_RESPONSE_PREFIX}{name}_{self._n}", f"{BRIDGE_ITEM_PREFIX}{name}_{self._n}"
        ids = {"response_id": rid, "item_id": iid, "output_index": 0, "content_index": 0}
        item: dict[str, Any] = {"id": iid, "object": "realtime.item", "type": "message", "role": "assistant",
                                "status": "in_progress", "content": []}
        response: dict[str, Any] = {"id": rid, "object": "realtime.response", "status": "in_progress", "output": []}
        audio = encode_pcm24(clip.pcm, output_format)
        step = max(2, byte_count_for_ms(CHUNK_MS, output_format))
        out: list[dict[str, Any]] = [
            {"type": "response.created", "response": response},
            {"type": "response.output_item.added", "response_id": rid, "output_index": 0, "item": item},
            {"type": "response.content_part.added", **ids, "part": {"type": "audio", "transcript": ""}},
            {"type": "response.output_audio_transcript.delta", **ids, "delta": clip.text},
        ]
        out.extend(
            {"type": "response.output_audio.delta", **ids, "delta": base64.b64encode(audio[i:i + step]).decode("ascii")}
            for i in range(0, len(audio), step)
        )
        done_item = {**item, "status": "completed", "content": [{"type": "output_audio", "transcript": clip.text}]}
        out += [
            {"type": "response.output_audio.done", **ids},
            {"type": "response.output_audio_transcript.done", **ids, "transcript": clip.text},
            {"type": "response.content_part.done", **ids, "part": {"type": "audio", "transcript": clip.text}},
            {"type": "response.output_item.done", "response_id": rid, "output_index": 0, "item": done_item},
            {"type": "response.done", "response": {**response, "status": "completed", "output": [done_item]}},
        ]
        return out

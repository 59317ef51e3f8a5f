"""Hostile client frames for fuzzing the bridge (the default suite's hypothesis tests and ``make fuzz``).

Frames are mutations of valid Realtime client events: wrong types, missing and extra
fields, bad base64 (non-ASCII, lone surrogates, padding), deep nesting, huge strings,
truncated JSON, binary frames.  Deterministic for a given ``random.Random``.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

from hybrid_agent.protocol.events import CLIENT_EVENT_TYPES

_VALID: list[dict[str, Any]] = [
    {"type": "session.update", "session": {"type": "realtime", "instructions": "hi"}},
    {"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x00\x01" * 240).decode()},
    {"type": "input_audio_buffer.commit"},
    {"type": "input_audio_buffer.clear"},
    {"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}},
    {"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "call_1", "output": "{}"}},
    {"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0, "audio_end_ms": 100},
    {"type": "conversation.item.delete", "item_id": "item_1"},
    {"type": "response.create"},
    {"type": "response.cancel"},
]
_ODD_STRINGS = ["", "\u00e9", "\U0001f600", "\ud800", "\x00", "A" * 5000, "=" * 7, "AAA=", "QUJD\n", "\\u0000", "null", "-1e999"]
_ODD_VALUES: list[Any] = [None, True, -1, 2**70, 1e308, float("nan"), [], {}, [[[]]], "x", {"type": "realtime"}]


def _mutate(value: Any, rng: random.Random, depth: int = 0) -> Any:
    if isinstance(value, dict) and value and rng.random() < 0.7:
        out = dict(value)
        key = rng.choice(list(out))
        op = rng.random()
        if op < 0.25:
            del out[key]
        elif op < 0.5:
            out[key] = rng.choice(_ODD_VALUES + _ODD_STRINGS)
        elif op < 0.6:
            out[rng.choice(["extra", "event_id", "type", key + "_x"])] = rng.choice(_ODD_STRINGS)
        else:
            out[key] = _mutate(out[key], rng, depth + 1)
        return out
    if isinstance(value, list) and value and rng.random() < 0.5:
        return [_mutate(v, rng, depth + 1) for v in value] * rng.randint(0, 3)
    if isinstance(value, str) and rng.random() < 0.6:
        return rng.choice(_ODD_STRINGS) if rng.random() < 0.5 else value + rng.choice(_ODD_STRINGS)
    return value


def hostile_frame(rng: random.Random) -> str | bytes:
    """One frame a hostile or broken client might send."""
    r = rng.random()
    if r < 0.03:
        return rng.randbytes(rng.randint(0, 64))
    if r < 0.06:
        return "[" * rng.randint(1, 50_000)
    base = dict(rng.choice(_VALID))
    if r < 0.12:
        base["type"] = rng.choice(sorted(CLIENT_EVENT_TYPES) + ["no.such.event", "", "session.update "])
    event = _mutate(base, rng)
    try:
        text = json.dumps(event, allow_nan=True)
    except (ValueError, TypeError):
        text = json.dumps(base)
    if r > 0.94:
        text = text[: rng.randint(0, max(0, len(text) - 1))]  # truncated JSON
    return text

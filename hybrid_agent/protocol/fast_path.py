"""Reading the two audio events without scanning their audio: the hot path's JSON.

Nine events in ten of a call are ``input_audio_buffer.append`` (a 20 ms frame every 20 ms)
or ``response.output_audio.delta``; the bridge relays their audio untouched and needs only
the envelope (type, ids) and the audio's length.  :func:`loads_with_blob` cuts the one long
string out, parses the short rest with ``json`` (so the envelope is checked by a real JSON
parser, not a pattern) and puts the string back: the result is what ``json.loads`` gives
for the whole message, at a fraction of the cost, or ``None`` and the caller takes the full
path.  Only ``str.find`` (C, linear) touches the long string, so hostile input costs no more
than a friendly one.

The cut is exact only when the message has no backslash: then no string can hold a quote,
every ``"`` delimits a string, and the value after ``"<key>":`` ends at the next ``"``.
Any backslash (an escaped character anywhere) sends the message to the full path.

One leniency, on purpose: a raw control character inside the cut string, which JSON forbids,
is not looked for (that scan would cost what the cut saves).  Each caller checks the string
it takes: a caller's append must be strict base64 (:func:`base64_len`), and a model's audio
delta is relayed exactly as the model sent it.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: the base64 alphabet; ``=`` only as padding at the end
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_COLON_QUOTE = re.compile(r'[ \t\r\n]*:[ \t\r\n]*"')  # bounded by what follows a key: linear

#: below this, ``json.loads`` of the whole message costs no more than the cut
MIN_BLOB_CHARS = 512
APPEND_KEYS = frozenset({"type", "audio", "event_id"})


def loads_with_blob(data: str, key: str) -> dict[str, Any] | None:
    """``json.loads(data)`` for an object whose member ``key`` holds a long plain string, or ``None``.

    (Except that control characters inside that string are not refused: see the module's note.)

    ``None`` (take the full path) when: there is a backslash, no ``"key":`` member, the
    value is not a string, the rest is not a JSON object, or ``key`` appears more than once.
    """
    if "\\" in data:
        return None
    token = f'"{key}"'
    at = data.find(token)
    if at < 0:
        return None
    m = _COLON_QUOTE.match(data, at + len(token))
    if m is None:
        return None
    start = m.end()
    end = data.find('"', start)
    if end < 0:
        return None
    try:
        event = json.loads(data[:start] + data[end:])
    except (ValueError, RecursionError):
        return None
    # the emptied member must be the one we cut: a message whose token sat elsewhere (inside a
    # longer key, say) leaves a non-empty value here, or none
    if not isinstance(event, dict) or event.get(key) != "" or data.find(token, end) >= 0:
        return None
    event[key] = data[start:end]
    return event


def base64_len(b64: str) -> int | None:
    """Bytes that strict base64 ``b64`` decodes to, checked without decoding; ``None`` if not base64."""
    n = len(b64)
    if n % 4:
        return None
    try:
        raw = b64.encode("ascii")
    except UnicodeEncodeError:
        return None
    pad = 2 if raw.endswith(b"==") else 1 if raw.endswith(b"=") else 0
    if raw.translate(None, _B64_ALPHABET) != b"=" * pad:  # only the alphabet, then the padding
        return None
    return n // 4 * 3 - pad


def fast_append(data: str) -> dict[str, Any] | None:
    """A caller's ``input_audio_buffer.append`` in the plain shape (type, audio, an optional string
    event_id, valid base64), parsed; ``None`` for anything else (the full path validates it)."""
    event = loads_with_blob(data, "audio")
    if event is None or event.get("type") != "input_audio_buffer.append" or not APPEND_KEYS.issuperset(event):
        return None
    if not isinstance(event.get("event_id", ""), str):
        return None
    return event

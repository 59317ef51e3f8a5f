"""The hot path's JSON (``protocol/fast_path.py``): the same result as the full path, or the full path.

The property everything rests on: whenever :func:`loads_with_blob` answers, it answers what
``json.loads`` would; whenever the session takes its fast path, it returns the same actions and
ends in the same state as the full path (``json.loads`` + SDK validation + strict base64).
"""

from __future__ import annotations

import base64
import binascii
import json
import random

import pytest

from hybrid_agent.protocol.fast_path import base64_len, fast_append, loads_with_blob
from hybrid_agent.session import CallConfig, CallSession, SendUpstream
from hybrid_agent.session import call_session as call_session_module

AUDIO = base64.b64encode(bytes(range(256)) * 4).decode()


def delta_event(**extra: object) -> dict:
    return {"event_id": "event_1", "type": "response.output_audio.delta", "response_id": "resp_1", "item_id": "item_1",
            "output_index": 0, "content_index": 0, "delta": AUDIO, **extra}


SHAPES = [
    json.dumps({"type": "input_audio_buffer.append", "audio": AUDIO}),  # the openai SDK's
    json.dumps({"event_id": "evt_1", "type": "input_audio_buffer.append", "audio": AUDIO}, separators=(",", ":")),  # pipecat's
    json.dumps({"audio": AUDIO, "type": "input_audio_buffer.append", "event_id": "e"}, indent=2),
    json.dumps(delta_event()),
    json.dumps(delta_event(), separators=(",", ":")),
]

TRICKS = [
    '{"type": "input_audio_buffer.append", "audio": "AAAA", "audio": "BBBB"}',  # duplicate key: json keeps the last
    '{"type": "input_audio_buffer.append", "x\\"audio": "AAAA", "audio": "BBBB"}',  # the token inside a key
    '{"type": "input_audio_buffer.append", "xaudio": "AAAA", "audio": "BBBB"}',
    '{"type": "input_audio_buffer.append", "audio": 12}',
    '{"type": "input_audio_buffer.append", "audio": ["AAAA"]}',
    '{"type": "input_audio_buffer.append", "audio": "AAAA"',  # truncated
    '{"type": "input_audio_buffer.append", "audio": "AAAA"} trailing',
    '{"type": "input_audio_buffer.append", "audio": "AA"AA"}',
    '["audio", "AAAA"]',
    '"audio"',
    '{"type": "input_audio_buffer.append", "audio" "AAAA"}',
    '{"type": "input_audio_buffer.append", "note": "\\"audio\\": \\"AAAA\\"", "audio": "BBBB"}',
    '{"type": "input_audio_buffer.append", "audio": "AA\\u0041A"}',
    '{"type": "input_audio_buffer.append", "audio": "AAAA", "nested": {"audio": "CCCC"}}',
    '{"nested": {"audio": "CCCC"}, "type": "input_audio_buffer.append", "audio": "AAAA"}',
]


@pytest.mark.parametrize("data", SHAPES + TRICKS)
def test_loads_with_blob_answers_what_json_loads_answers_or_nothing(data: str) -> None:
    key = "delta" if '"delta"' in data else "audio"
    got = loads_with_blob(data, key)
    if got is not None:
        assert got == json.loads(data)


@pytest.mark.parametrize("data", SHAPES)
def test_the_shapes_real_clients_send_take_the_fast_path(data: str) -> None:
    key = "delta" if '"delta"' in data else "audio"
    assert loads_with_blob(data, key) == json.loads(data)


def test_loads_with_blob_on_random_mutations_never_disagrees_with_json() -> None:
    rng = random.Random(7)
    base = SHAPES[0]
    alphabet = '{}[]":, \\abcdeuio0123456789AQ=+/\n\t'
    taken = 0
    for _ in range(4000):
        chars = list(base)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(chars))
            op = rng.random()
            if op < 0.4:
                chars[i] = rng.choice(alphabet)
            elif op < 0.7:
                chars.insert(i, rng.choice(alphabet))
            else:
                del chars[i]
        data = "".join(chars)
        got = loads_with_blob(data, "audio")
        if got is None:
            continue
        taken += 1
        if any(c < " " for c in got["audio"]):  # the documented leniency: the caller's own check refuses it
            assert base64_len(got["audio"]) is None
            continue
        assert got == json.loads(data), data[:120]
    assert taken > 100  # the mutations exercised the fast answer, not only the refusals


def test_base64_len_counts_what_strict_decoding_counts_or_declines() -> None:
    rng = random.Random(3)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= -_!\u00e9"
    cases = ["", "AA==", "AAA=", "AAAA", "A===", "====", "AB=C", "A=B=", "QUJ", "AAAA\u00e9AAA"]
    cases += ["".join(rng.choice(alphabet) for _ in range(rng.choice([4, 8, 12]))) for _ in range(3000)]
    cases += [base64.b64encode(rng.randbytes(rng.randrange(40))).decode() for _ in range(1000)]
    agreed = 0
    for s in cases:
        got = base64_len(s)
        try:
            want: int | None = len(binascii.a2b_base64(s, strict_mode=True))
        except (binascii.Error, ValueError):
            want = None
        if got is not None:
            assert got == want, s
            agreed += 1
    assert agreed > 1000


def test_fast_append_takes_only_the_plain_append() -> None:
    assert fast_append(SHAPES[1]) == json.loads(SHAPES[1])
    assert fast_append(json.dumps({"type": "input_audio_buffer.append", "audio": AUDIO, "extra": 1})) is None
    assert fast_append(json.dumps({"type": "input_audio_buffer.append", "audio": AUDIO, "event_id": None})) is None
    assert fast_append(json.dumps({"type": "conversation.item.create", "audio": AUDIO})) is None


# ----------------------------------------------------------------------------- the session, both ways
def session() -> CallSession:
    counter = iter(range(10**6))
    s = CallSession(CallConfig(call_id="call_fast", id_factory=lambda prefix: f"{prefix}_{next(counter)}"))
    s.start(0.0, 1_700_000_000.0)
    return s


def full_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force the full path (what the bridge did before the fast path)."""
    monkeypatch.setattr(call_session_module, "fast_append", lambda data: None)
    monkeypatch.setattr(call_session_module, "loads_with_blob", lambda data, key: None)


APPENDS = [
    *SHAPES[:3],
    json.dumps({"type": "input_audio_buffer.append", "audio": "@@not-base64@@", "event_id": "evt_bad"}),
    json.dumps({"type": "input_audio_buffer.append", "audio": "QUJ"}),
    json.dumps({"type": "input_audio_buffer.append", "audio": AUDIO, "extra": 1}),
    json.dumps({"type": "input_audio_buffer.append", "audio": "AAAA\u00e9AAA"}),
    '{"type": "input_audio_buffer.append", "audio": "AA\\u0041A"}',
]


def run_client(frames: list[str]) -> tuple[list[list], float, dict, dict]:
    s = session()
    out = [s.receive_client_frame(f, float(i)) for i, f in enumerate(frames)]
    return out, s.input_audio_ms, dict(s.events._sent), dict(s.events._appends)


def test_caller_frames_get_the_same_actions_and_state_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = run_client(APPENDS)
    full_path(monkeypatch)
    full = run_client(APPENDS)
    assert fast == full
    assert fast[0][0] == [SendUpstream(json.loads(APPENDS[0]), APPENDS[0])] and fast[0][0][0].text() is APPENDS[0]
    # four frames of 1024 bytes of PCM16 at 24 kHz (one with an extra key the full path relays) and "AA\\u0041A"
    assert fast[1] == pytest.approx((4 * 1024 + 3) / 48)


def upstream_frames() -> list[bytes]:
    events = [
        {"event_id": "e1", "type": "response.created", "response": {"id": "resp_1", "object": "realtime.response", "status": "in_progress"}},
        {"event_id": "e2", "type": "response.output_item.added", "response_id": "resp_1", "output_index": 0,
         "item": {"id": "item_1", "type": "message", "role": "assistant", "status": "in_progress", "content": []}},
        {"event_id": "e3", "type": "response.output_audio_transcript.delta", "response_id": "resp_1", "item_id": "item_1",
         "output_index": 0, "content_index": 0, "delta": "Hello there"},
        delta_event(), delta_event(event_id="e5"),
        {"event_id": "e6", "type": "response.output_audio_transcript.done", "response_id": "resp_1", "item_id": "item_1",
         "output_index": 0, "content_index": 0, "transcript": "Hello there"},
    ]
    return [json.dumps(e).encode() for e in events] + [b'{"type": "response.output_audio.delta", "delta": "' + b"A" * 600 + b'"', b"\xff\xfe"]


def run_upstream() -> tuple[list[list], float]:
    s = session()
    out = [s.receive_upstream_frame(f, float(i)) for i, f in enumerate(upstream_frames())]
    return out, sum(t.audio_ms for t in s.assistant_turns.values())


def test_model_frames_get_the_same_actions_and_state_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = run_upstream()
    full_path(monkeypatch)
    full = run_upstream()
    assert fast == full
    assert fast[1] > 0  # the deltas were tracked


def test_append_ids_have_a_small_window_of_their_own_and_still_name_an_upstream_error() -> None:
    from hybrid_agent.session.call_events import AUDIO_ID_WINDOW

    s = session()
    s.receive_client_frame(json.dumps({"type": "session.update", "event_id": "evt_cfg", "session": {"type": "realtime"}}), 0.0)
    for i in range(1000):
        s.receive_client_frame(json.dumps({"type": "input_audio_buffer.append", "event_id": f"evt_a{i}", "audio": AUDIO}), float(i))
    assert len(s.events._appends) == AUDIO_ID_WINDOW  # bounded: 50 ids, not 512 of 60-odd bytes each
    assert s.events.sent_type("evt_cfg") == "session.update"  # not pushed out by the audio
    assert s.events.sent_type("evt_a999") == "input_audio_buffer.append"
    assert s.events.sent_type("evt_a0") is None

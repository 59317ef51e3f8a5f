"""The assistant speech gate, sans-I/O: hold never sends audio covering a blocked phrase; monitor
blocks and counts what leaked; both cancel, truncate, cut the transcript and ask for the fallback."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from hybrid_agent.audit.records import GateActionRecord
from hybrid_agent.policy import load_pack
from hybrid_agent.policy.gate import PolicyGate
from hybrid_agent.policy.speech import SpeechVerdict, approvable_end
from hybrid_agent.session import Audit, CallConfig, CallSession, CheckSpeech, GateConfig, SendClient, SendUpstream, StartTimer
from hybrid_agent.session.speech_gate import SAY_EXACTLY

ROOT = Path(__file__).resolve().parents[1]
CARD = "4111 1111 1111 1111"
SAFE = "Hello there, thanks for calling. "
BLOCKED = f"Your card number is {CARD}. "
TAIL = "Anything else?"
TRUE_RATE = 0.014  # chars per ms of the synthetic speech below


@pytest.fixture(scope="module")
def gate() -> PolicyGate:
    return PolicyGate(load_pack(ROOT / "policies" / "retail-banking"))


def session(gate: PolicyGate, mode: str) -> CallSession:
    pack = gate.pack
    cfg = GateConfig(pack.name, pack.version, mode, pack.manifest.history_turns, dict(pack.manifest.disclosures),
                     tools=dict(pack.manifest.tools), fallback_utterance="Sorry, I can't say that.")
    s = CallSession(CallConfig(call_id="call_sg", gate=cfg, transcription_model=None))
    s.start(0.0, 1.0)
    return s


class Driver:
    """Plays an answer's events into the session the way the service sends them (transcript ahead
    of audio) and decides every speech check with the real gate, like the adapter."""

    def __init__(self, s: CallSession, gate: PolicyGate) -> None:
        self.s, self.gate = s, gate
        self.sent: list[dict] = []
        self.upstream: list[dict] = []
        self.records: list = []
        self.timers: list[str] = []
        self.now = 0.0
        self.deferred: list[CheckSpeech] | None = None  # a list: checks wait here, decided when the test says

    def decide(self, item: str) -> None:
        """Decide the deferred checks of ``item`` (as a slow worker would, in any order)."""
        while self.deferred is not None and (mine := [c for c in self.deferred if c.check.item_id == item]):
            self.deferred = [c for c in self.deferred if c.check.item_id != item]
            for c in mine:  # a verdict may ask for the next check of the item: decided in the next round
                self.run(self.s.feed_speech_verdict(self.gate.decide_speech(c.check), self.now))

    def run(self, actions: list) -> None:
        queue = list(actions)
        while queue:
            a = queue.pop(0)
            if isinstance(a, SendClient):
                self.sent.append(a.event if a.event is not None else json.loads(a.raw))
            elif isinstance(a, SendUpstream):
                self.upstream.append(a.event if a.event is not None else json.loads(a.raw))
            elif isinstance(a, Audit):
                self.records.append(a.record)
            elif isinstance(a, StartTimer):
                self.timers.append(a.name)
            elif isinstance(a, CheckSpeech) and self.deferred is not None:
                self.deferred.append(a)
            elif isinstance(a, CheckSpeech):
                queue.extend(self.s.feed_speech_verdict(self.gate.decide_speech(a.check), self.now))

    def up(self, event: dict) -> None:
        self.now += 5
        raw = json.dumps({"event_id": "e", **event})
        self.run(self.s.receive_upstream_frame(raw, self.now))

    def answer(self, text: str, rid: str = "resp_1", item: str = "item_a", decide_late: bool = False) -> None:
        self.up({"type": "response.created", "response": {"id": rid, "object": "realtime.response", "status": "in_progress", "output": []}})
        self.up({"type": "response.output_item.added", "response_id": rid, "output_index": 0,
                 "item": {"id": item, "type": "message", "role": "assistant", "status": "in_progress", "content": []}})
        words = text.split(" ")
        ids = {"response_id": rid, "item_id": item, "output_index": 0, "content_index": 0}
        # the transcript runs ahead of the audio: each word's text arrives 3 words before its audio
        pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
        audio_pos = 0
        for i, piece in enumerate(pieces + [""] * 3):
            if i < len(pieces):
                self.up({"type": "response.output_audio_transcript.delta", **ids, "delta": piece})
            j = i - 3
            if 0 <= j < len(pieces):
                ms = len(pieces[j]) / TRUE_RATE
                n = int(ms * 48) // 2 * 2
                self.up({"type": "response.output_audio.delta", **ids, "delta": base64.b64encode(b"\x00" * n).decode()})
                audio_pos += n
        self.up({"type": "response.output_audio.done", **ids})
        self.up({"type": "response.output_audio_transcript.done", **ids, "transcript": text})
        self.up({"type": "response.output_item.done", "response_id": rid, "output_index": 0,
                 "item": {"id": item, "type": "message", "role": "assistant", "status": "completed",
                          "content": [{"type": "output_audio", "transcript": text}]}})
        self.up({"type": "response.done", "response": {"id": rid, "object": "realtime.response", "status": "completed",
                                                        "output": [{"id": item, "type": "message", "role": "assistant",
                                                                    "content": [{"type": "output_audio", "transcript": text}]}]}})

    def audio_ms_sent(self, item: str = "item_a") -> float:
        return sum(len(base64.b64decode(e["delta"])) / 48 for e in self.sent
                   if e["type"] == "response.output_audio.delta" and e.get("item_id") == item)

    def text_sent(self, item: str = "item_a") -> str:
        return "".join(e["delta"] for e in self.sent if e["type"] == "response.output_audio_transcript.delta" and e.get("item_id") == item)

    def gate_actions(self, action: str) -> list[GateActionRecord]:
        return [r for r in self.records if isinstance(r, GateActionRecord) and r.action == action]


def test_sentence_boundaries() -> None:
    assert approvable_end("Hello there. Your card", False, 22) == len("Hello there.")
    assert approvable_end("Hello there, your card", False, 22) == len("Hello there,")
    assert approvable_end("Hello there", False, 11) == 0
    assert approvable_end("Hello there", True, 11) == 11
    assert approvable_end("It costs 3.5 pounds", False, 19) == 0  # a decimal point is not a phrase end


def test_hold_releases_a_clean_answer_whole_and_in_order(gate: PolicyGate) -> None:
    d = Driver(session(gate, "hold"), gate)
    text = "Your balance is fine. Is there anything else I can help you with today?"
    d.answer(text)
    assert d.text_sent() == text
    assert d.audio_ms_sent() == pytest.approx(len(text) / TRUE_RATE, rel=0.05)
    kinds = [e["type"] for e in d.sent]
    assert kinds.index("response.output_audio_transcript.done") > max(i for i, k in enumerate(kinds) if k.endswith("audio.delta"))
    assert kinds[-1] == "response.done"
    [held] = d.gate_actions("speech_held")
    assert held.leaked_ms == 0 and held.held_ms is not None and held.held_ms >= 0
    assert not d.gate_actions("speech_blocked")


def test_hold_never_sends_audio_covering_a_blocked_phrase(gate: PolicyGate) -> None:
    d = Driver(session(gate, "hold"), gate)
    d.answer(SAFE + BLOCKED + TAIL)
    blocked_starts_ms = len(SAFE) / TRUE_RATE  # where the card sentence's audio begins
    assert d.audio_ms_sent() <= blocked_starts_ms
    assert CARD not in d.text_sent() and CARD not in json.dumps(d.sent)  # not in any event the caller got
    [blocked] = d.gate_actions("speech_blocked")
    assert blocked.rule_id.startswith("banking.speech.card") and blocked.leaked_ms == 0 and blocked.mode == "hold"
    # cancelled (the answer was over upstream already, so only the truncate), truncated at what was sent
    [trunc] = [e for e in d.upstream if e["type"] == "conversation.item.truncate"]
    assert trunc["audio_end_ms"] == int(d.audio_ms_sent())
    # the done events carry the cut transcript; then the fallback is asked for
    done = [e for e in d.sent if e["type"] == "response.output_audio_transcript.done"][0]
    assert done["transcript"] == d.text_sent() and CARD not in done["transcript"]
    [fallback] = [e for e in d.upstream if e["type"] == "response.create"]
    assert fallback["response"]["instructions"].startswith(SAY_EXACTLY) and "card" in fallback["response"]["instructions"]
    assert d.gate_actions("fallback_spoken")


def test_hold_block_mid_stream_cancels_the_response(gate: PolicyGate) -> None:
    d = Driver(session(gate, "hold"), gate)
    d.up({"type": "response.created", "response": {"id": "r", "object": "realtime.response", "status": "in_progress", "output": []}})
    d.up({"type": "response.output_item.added", "response_id": "r", "output_index": 0,
          "item": {"id": "item_a", "type": "message", "role": "assistant", "content": []}})
    ids = {"response_id": "r", "item_id": "item_a", "output_index": 0, "content_index": 0}
    d.up({"type": "response.output_audio_transcript.delta", **ids, "delta": SAFE + BLOCKED})
    d.up({"type": "response.output_audio.delta", **ids, "delta": base64.b64encode(b"\x00" * 48 * 400).decode()})
    assert not d.upstream  # the number may still go on: the card sentence is not decided yet, and not released
    d.up({"type": "response.output_audio_transcript.delta", **ids, "delta": TAIL})
    assert [e["type"] for e in d.upstream][:1] == ["response.cancel"]
    assert d.audio_ms_sent() <= len(SAFE) / TRUE_RATE
    # the cancelled response.done reaches the caller, then the fallback is asked for
    d.up({"type": "response.done", "response": {"id": "r", "object": "realtime.response", "status": "cancelled", "output": []}})
    assert d.sent[-1]["type"] == "response.done" and d.upstream[-1]["type"] == "response.create"


def test_monitor_lets_audio_flow_and_records_the_leak(gate: PolicyGate) -> None:
    d = Driver(session(gate, "monitor"), gate)
    d.answer(SAFE + BLOCKED + TAIL)
    [blocked] = d.gate_actions("speech_blocked")
    assert blocked.mode == "monitor" and blocked.leaked_ms is not None and blocked.leaked_ms > 0
    # monitor mode: the caller got audio past the start of the card sentence (that is what leaked)
    assert d.audio_ms_sent() > len(SAFE) / TRUE_RATE
    assert [e for e in d.upstream if e["type"] == "response.create"]  # fallback still spoken


def test_a_check_that_fails_closes_the_gate(gate: PolicyGate) -> None:
    s = session(gate, "hold")
    d = Driver(s, gate)

    class Broken(PolicyGate):
        def decide_speech(self, check):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    d.up({"type": "response.created", "response": {"id": "r", "object": "realtime.response", "status": "in_progress", "output": []}})
    d.up({"type": "response.output_item.added", "response_id": "r", "output_index": 0,
          "item": {"id": "item_a", "type": "message", "role": "assistant", "content": []}})
    ids = {"response_id": "r", "item_id": "item_a", "output_index": 0, "content_index": 0}
    actions = s.receive_upstream_frame(json.dumps({"type": "response.output_audio_transcript.delta", "event_id": "e", **ids,
                                                   "delta": "Perfectly fine words. "}), 10)
    [check] = [a.check for a in actions if isinstance(a, CheckSpeech)]
    try:
        Broken(gate.pack).decide_speech(check)
    except RuntimeError:
        d.run(s.feed_speech_failure(check, "RuntimeError", 20))
    assert d.gate_actions("gate_failed")[0].status == "closed"
    assert d.gate_actions("speech_blocked") and d.text_sent() == ""


def test_a_check_that_times_out_closes_the_gate(gate: PolicyGate) -> None:
    s = session(gate, "hold")
    d = Driver(s, gate)
    d.up({"type": "response.output_item.added", "response_id": "r", "output_index": 0,
          "item": {"id": "item_a", "type": "message", "role": "assistant", "content": []}})
    actions = s.receive_upstream_frame(json.dumps({"type": "response.output_audio_transcript.delta", "event_id": "e",
                                                   "response_id": "r", "item_id": "item_a", "output_index": 0, "content_index": 0,
                                                   "delta": "Fine. "}), 10)
    [timer] = [a for a in actions if isinstance(a, StartTimer)]
    d.run(s.timer_fired(timer.name, 2000))
    assert d.gate_actions("speech_blocked")
    [check] = [a.check for a in actions if isinstance(a, CheckSpeech)]
    assert s.feed_speech_verdict(SpeechVerdict(check, len(check.text)), 2100) == []  # the late verdict changes nothing


def test_observe_mode_has_no_speech_gate(gate: PolicyGate) -> None:
    s = session(gate, "observe")
    assert s.speech is None
    d = Driver(s, gate)
    d.answer(SAFE + BLOCKED)
    assert CARD in d.text_sent()  # observe records, never blocks


def test_a_phrase_ending_in_punctuation_is_settled_without_waiting_for_the_next_word(gate: PolicyGate) -> None:
    from hybrid_agent.policy.speech import SpeechCheck

    inp = session(gate, "hold").policy.turn("assistant", "", 0.0)  # type: ignore[union-attr]
    verdict = gate.decide_speech(SpeechCheck(1, "i", "Hello there, how are you today.", False, 0, inp, 0.0))
    assert verdict.approved == len("Hello there, how are you today.")
    card = gate.decide_speech(SpeechCheck(2, "i", "Your card is 4111 1111.", False, 0, inp, 0.0))
    assert card.approved == 0  # digits before the full stop may still go on: nothing released yet


def test_a_blocked_verdict_names_the_clean_prefix_before_the_blocked_phrase(gate: PolicyGate) -> None:
    from hybrid_agent.policy.speech import SpeechCheck

    inp = session(gate, "monitor").policy.turn("assistant", "", 0.0)  # type: ignore[union-attr]
    text = f"{SAFE}Some more, fine words here. {BLOCKED}{TAIL}"
    v = gate.decide_speech(SpeechCheck(1, "i", text, True, 0, inp, 0.0))
    assert v.blocked and v.approved == text.index("Your card")  - 1  # up to the phrase end before the card


# ---------------------------------------------------------------------- the bound on held audio
IDS = {"response_id": "r", "item_id": "item_a", "output_index": 0, "content_index": 0}
UNSETTLED = "Let me read out the details of your account for you now"  # no phrase end: nothing approved yet


def held_answer(gate: PolicyGate, max_hold_ms: float, fail_open: bool = False) -> Driver:
    """A hold-mode answer whose transcript cannot be approved yet, so its audio is held."""
    s = session(gate, "hold")
    assert s.speech is not None
    s.speech.max_hold_ms = max_hold_ms  # the call session passes the pack's gate.max_hold_ms
    s.speech.fail_open = fail_open
    d = Driver(s, gate)
    d.up({"type": "response.created", "response": {"id": "r", "object": "realtime.response", "status": "in_progress", "output": []}})
    d.up({"type": "response.output_item.added", "response_id": "r", "output_index": 0,
          "item": {"id": "item_a", "type": "message", "role": "assistant", "content": []}})
    d.up({"type": "response.output_audio_transcript.delta", **IDS, "delta": UNSETTLED})
    return d


def audio(d: Driver, n: int, ms: float = 100.0, **extra: object) -> None:
    for _ in range(n):
        d.up({"type": "response.output_audio.delta", **IDS, "delta": base64.b64encode(b"\x00" * int(ms * 48)).decode(), **extra})


def test_hold_below_the_bound_holds_and_then_releases_whole(gate: PolicyGate) -> None:
    d = held_answer(gate, 1000)
    audio(d, 10)  # exactly 1000 ms held: not over the bound
    assert d.audio_ms_sent() == 0 and not d.upstream and not d.gate_actions("hold_overflow")
    d.up({"type": "response.output_audio_transcript.done", **IDS, "transcript": UNSETTLED + "."})
    assert d.audio_ms_sent() == pytest.approx(1000)
    assert not d.gate_actions("hold_overflow") and not d.gate_actions("gate_failed") and not d.gate_actions("speech_blocked")


def test_hold_overflow_fails_closed(gate: PolicyGate) -> None:
    d = held_answer(gate, 1000)
    audio(d, 11)  # 1100 ms held: the gate cannot keep up
    assert d.audio_ms_sent() == 0 and d.text_sent() == ""  # nothing held is ever sent
    [overflow] = d.gate_actions("hold_overflow")
    assert overflow.held_ms == pytest.approx(1100) and overflow.status == "closed" and overflow.mode == "hold"
    assert [r.status for r in d.gate_actions("gate_failed")] == ["closed"]
    [blocked] = d.gate_actions("speech_blocked")
    assert blocked.rule_id == "gate:hold_overflow" and blocked.effect == "block_speech"
    kinds = [e["type"] for e in d.upstream]
    assert kinds == ["response.cancel", "conversation.item.truncate"]
    assert d.upstream[1]["audio_end_ms"] == 0
    assert d.gate_actions("fallback_spoken")
    # later deltas of the answer are dropped, not buffered
    item = d.s.speech.items["item_a"]  # type: ignore[union-attr]
    records, sent = len(d.records), len(d.sent)
    audio(d, 50)
    d.up({"type": "response.output_audio_transcript.delta", **IDS, "delta": " and more"})
    assert not item.audio_q and not item.text_q and item.held_bytes == 0
    assert len(d.records) == records and len(d.sent) == sent and d.audio_ms_sent() == 0
    # the cancelled answer's done reaches the caller, then the fallback is asked for
    d.up({"type": "response.done", "response": {"id": "r", "object": "realtime.response", "status": "cancelled", "output": []}})
    assert d.sent[-1]["type"] == "response.done" and d.audio_ms_sent() == 0
    assert d.upstream[-1]["type"] == "response.create" and d.upstream[-1]["response"]["instructions"].startswith(SAY_EXACTLY)


def test_hold_overflow_fails_open_releasing_what_is_held(gate: PolicyGate) -> None:
    d = held_answer(gate, 1000, fail_open=True)
    audio(d, 11)
    assert d.audio_ms_sent() == pytest.approx(1100) and d.text_sent() == UNSETTLED  # everything held went out
    [overflow] = d.gate_actions("hold_overflow")
    assert overflow.status == "open" and overflow.held_ms == pytest.approx(1100)
    assert [r.status for r in d.gate_actions("gate_failed")] == ["open"]
    assert not d.upstream and not d.gate_actions("speech_blocked")
    # the gate holds afresh: later audio goes out as far as the (now approved) text covers it, the rest waits
    audio(d, 20)  # 3100 ms in all
    covered = len(UNSETTLED) / d.s.speech.rate_hi()  # type: ignore[union-attr]
    assert 1100 < d.audio_ms_sent() <= covered < 3100 - 100 and len(d.gate_actions("hold_overflow")) == 1
    d.up({"type": "response.output_audio_transcript.done", **IDS, "transcript": UNSETTLED + ". Thank you."})
    assert d.audio_ms_sent() == pytest.approx(3100)
    assert not d.upstream and not d.gate_actions("speech_blocked") and len(d.gate_actions("hold_overflow")) == 1


def test_hold_bound_counts_bytes_too(gate: PolicyGate) -> None:
    """Frames that are mostly not audio still cannot make the held buffer grow without bound."""
    d = held_answer(gate, 1000)
    audio(d, 10, ms=1.0, padding="x" * 20_000)  # 10 ms of audio in ~200 KB of frames
    [overflow] = d.gate_actions("hold_overflow")
    assert overflow.held_ms is not None and overflow.held_ms < 1000 and overflow.status == "closed"
    assert d.audio_ms_sent() == 0 and d.upstream[0]["type"] == "response.cancel"
    assert d.s.speech.items["item_a"].held_bytes == 0  # type: ignore[union-attr]


def test_hold_releases_answers_in_the_order_the_model_began_them(gate: PolicyGate) -> None:
    """Two answers back to back (the bridge's disclosure, then the client's own request): the second
    one's check is decided first, yet the caller hears the first answer whole before any of the second."""
    d = Driver(session(gate, "hold"), gate)
    d.deferred = []
    first, second = "This call is recorded for quality purposes.", "Hello, how can I help?"
    d.answer(first, rid="resp_1", item="item_a")
    d.answer(second, rid="resp_2", item="item_b")
    d.decide("item_b")
    assert not d.sent or all(e.get("item_id") != "item_b" for e in d.sent)
    assert "resp_2" not in [e["response"]["id"] for e in d.sent if e["type"] == "response.done"]
    d.decide("item_a")
    order = [e.get("item_id") or e.get("response", {}).get("id") for e in d.sent
             if e["type"] in ("response.output_audio.delta", "response.output_audio_transcript.done", "response.done")]
    assert order.index("item_b") > max(i for i, x in enumerate(order) if x in ("item_a", "resp_1"))
    assert d.text_sent("item_a") == first and d.text_sent("item_b") == second
    assert [e["transcript"] for e in d.sent if e["type"] == "response.output_audio_transcript.done"] == [first, second]


def test_an_answer_lost_with_the_upstream_does_not_hold_back_the_next(gate: PolicyGate) -> None:
    """The socket drops mid-answer (the reconnect fails that response): what the gate held of it is
    dropped, and the answer the new session gives goes out."""
    d = Driver(session(gate, "hold"), gate)
    d.deferred = []
    d.up({"type": "response.created", "response": {"id": "resp_1", "object": "realtime.response", "status": "in_progress", "output": []}})
    d.up({"type": "response.output_item.added", "response_id": "resp_1", "output_index": 0,
          "item": {"id": "item_a", "type": "message", "role": "assistant", "status": "in_progress", "content": []}})
    d.up({"type": "response.output_audio_transcript.delta", **{**IDS, "response_id": "resp_1"}, "delta": "Your balance is"})
    d.run(d.s.upstream_closed(d.now, "code 1011"))  # a reconnect: the session fails resp_1 for the caller
    d.s.upstream_reconnected(d.now)
    d.deferred = None
    d.answer("Sorry, where were we?", rid="resp_2", item="item_b")
    assert d.text_sent("item_a") == "" and d.text_sent("item_b") == "Sorry, where were we?"
    assert [e["response"]["status"] for e in d.sent if e["type"] == "response.done"] == ["failed", "completed"]

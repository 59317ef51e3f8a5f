"""CallSession unit tests: event lists in, actions out (no sockets, no clock).

Why this module is long: one place for the session's own routing (start, turns, tool calls, the gate,
the ends of a call); its parts have their own test modules."""

from __future__ import annotations

import base64
import json

import pytest

from hybrid_agent.audit.records import (
    CallEventRecord,
    CallEnded,
    CallStarted,
    DisclosureRecord,
    PolicyDecisionRecord,
    ToolCallRecord,
    ToolResultRecord,
    TurnInterrupted,
    TurnRecord,
)
from hybrid_agent.policy.gate import PolicyGate
from hybrid_agent.session import (
    Audit,
    CallConfig,
    CallSession,
    CheckPolicy,
    CloseClient,
    CloseUpstream,
    GateConfig,
    SendClient,
    SendUpstream,
    StartTimer,
)


def make_session(**kw: object) -> CallSession:
    s = CallSession(CallConfig(call_id="call_test", **kw))  # type: ignore[arg-type]
    s.start(0.0, 1_700_000_000.0)
    return s


def audits(actions: list) -> list:
    return [a.record for a in actions if isinstance(a, Audit)]


def client_errors(actions: list) -> list[dict]:
    return [a.event["error"] for a in actions if isinstance(a, SendClient) and a.event and a.event["type"] == "error"]


def b64(n: int) -> str:
    return base64.b64encode(b"\x00" * n).decode()


def assistant_item(item_id: str, status: str = "in_progress") -> dict:
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": []}


def response_events(resp: str, item: str, words: list[str], bytes_per_word: int) -> list[dict]:
    evs: list[dict] = [
        {"type": "response.created", "event_id": "e", "response": {"id": resp, "object": "realtime.response", "status": "in_progress"}},
        {"type": "response.output_item.added", "event_id": "e", "response_id": resp, "output_index": 0, "item": assistant_item(item)},
    ]
    for w in words:
        evs.append({"type": "response.output_audio_transcript.delta", "event_id": "e", "response_id": resp, "item_id": item, "output_index": 0, "content_index": 0, "delta": w})
        evs.append({"type": "response.output_audio.delta", "event_id": "e", "response_id": resp, "item_id": item, "output_index": 0, "content_index": 0, "delta": b64(bytes_per_word)})
    evs.append({"type": "response.output_audio_transcript.done", "event_id": "e", "response_id": resp, "item_id": item, "output_index": 0, "content_index": 0, "transcript": "".join(words)})
    return evs


def test_start_records_call() -> None:
    s = CallSession(CallConfig(call_id="c1", channel="realtime", model="m", upstream="sim"))
    [rec] = audits(s.start(5.0, 1234.5))
    assert rec == CallStarted("c1", 1234.5, "realtime", "m", "sim")


def test_client_audio_is_relayed_unchanged_and_counted() -> None:
    s = make_session()
    raw = json.dumps({"type": "input_audio_buffer.append", "audio": b64(4800)})
    actions = s.receive_client_frame(raw, 10.0)
    assert actions == [SendUpstream({"type": "input_audio_buffer.append", "audio": b64(4800)}, raw)]
    assert actions[0].text() is raw  # relayed without re-encoding
    assert s.input_audio_ms == pytest.approx(100.0)  # 4800 bytes of PCM16 24 kHz


def test_input_format_follows_session_updated() -> None:
    s = make_session()
    s.feed_upstream({"type": "session.updated", "event_id": "e", "session": {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcmu"}}}}}, 0)
    s.receive_client_frame(json.dumps({"type": "input_audio_buffer.append", "audio": b64(160)}), 1)
    assert s.input_audio_ms == pytest.approx(20.0)
    assert s.output_format == "audio/pcmu"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "invalid_json"),
        ("[" * 100_000, "invalid_json"),  # nesting that would overflow the parser's recursion
        (json.dumps({"type": "no.such.event"}), "unknown_event_type"),
        (json.dumps({"no_type": 1}), "invalid_event"),
        (json.dumps([1, 2]), "invalid_event"),
        (json.dumps({"type": "conversation.item.truncate", "item_id": "x"}), "invalid_event"),
        (json.dumps({"type": "input_audio_buffer.append", "audio": "@@not-base64@@"}), "invalid_value"),
        (json.dumps({"type": "input_audio_buffer.append", "audio": "QUJ"}), "invalid_value"),
        # non-ASCII characters in base64 used to raise an uncaught ValueError and end the call with 1011
        (json.dumps({"type": "input_audio_buffer.append", "audio": "AAAA\u00e9AAA"}), "invalid_value"),
        (json.dumps({"type": "input_audio_buffer.append", "audio": "AAAA\U0001f600"}), "invalid_value"),
        ('{"type": "input_audio_buffer.append", "audio": "AAA\\ud800"}', "invalid_value"),
        (b"\x00\x01binary", "binary_frame"),
    ],
)
def test_bad_client_input_gets_error_event_and_nothing_forwarded(frame: str | bytes, code: str) -> None:
    s = make_session()
    actions = s.receive_client_frame(frame, 1.0)
    assert [type(a) for a in actions] == [SendClient, Audit]
    [err] = client_errors(actions)
    assert err["code"] == code
    assert err["message"]
    # the refusal is an audit fact of the call
    [fact] = [a.record for a in actions if isinstance(a, Audit)]
    assert isinstance(fact, CallEventRecord) and fact.source == "bridge_refused" and fact.kind == code
    # the call goes on: a valid event afterwards is relayed
    ok = s.receive_client_frame(json.dumps({"type": "response.create"}), 2.0)
    assert isinstance(ok[0], SendUpstream)


def test_oversize_message_is_refused_with_error() -> None:
    s = make_session(max_message_bytes=1000)
    actions = s.receive_client_frame(json.dumps({"type": "input_audio_buffer.append", "audio": b64(3000)}), 1.0)
    [err] = client_errors(actions)
    assert err["code"] == "message_too_large"
    assert not any(isinstance(a, SendUpstream) for a in actions)


def test_error_names_the_client_event_id() -> None:
    s = make_session()
    actions = s.receive_client_frame(json.dumps({"type": "input_audio_buffer.append", "audio": "!!", "event_id": "evt_9"}), 1)
    assert client_errors(actions)[0]["event_id"] == "evt_9"


def test_user_turn_ordered_by_speech_start_even_when_transcript_is_late() -> None:
    s = make_session()
    out: list = []
    out += s.feed_upstream({"type": "input_audio_buffer.speech_started", "event_id": "e", "item_id": "u1", "audio_start_ms": 200}, 100)
    out += s.feed_upstream({"type": "input_audio_buffer.speech_stopped", "event_id": "e", "item_id": "u1", "audio_end_ms": 1200}, 1100)
    out += s.feed_upstream({"type": "input_audio_buffer.committed", "event_id": "e", "item_id": "u1", "previous_item_id": None}, 1101)
    for ev in response_events("r1", "a1", ["Hello ", "there."], 4800):
        out += s.feed_upstream(ev, 1200)
    # transcript arrives after the assistant has started answering
    out += s.feed_upstream({"type": "conversation.item.input_audio_transcription.completed", "event_id": "e", "item_id": "u1", "content_index": 0, "transcript": "Hi"}, 1500)
    out += s.feed_upstream({"type": "response.output_item.done", "event_id": "e", "response_id": "r1", "output_index": 0, "item": assistant_item("a1", "completed")}, 1600)
    turns = [r for r in audits(out) if isinstance(r, TurnRecord)]
    assert [(t.role, t.seq, t.text) for t in sorted(turns, key=lambda t: t.seq)] == [("user", 1, "Hi"), ("assistant", 2, "Hello there.")]
    user = next(t for t in turns if t.role == "user")
    assert user.audio_ms == 1000
    assistant = next(t for t in turns if t.role == "assistant")
    assert assistant.audio_ms == pytest.approx(200.0)  # 2 x 4800 bytes PCM16 24 kHz
    # every upstream event is relayed to the caller first
    assert sum(isinstance(a, SendClient) for a in out) == 3 + len(response_events("r1", "a1", ["a", "b"], 1)) + 2


def test_barge_in_truncation_records_heard_text() -> None:
    """The usual real case: all audio already arrived (response completed), the caller heard part of it."""
    s = make_session()
    out: list = []
    words = ["One ", "two ", "three ", "four."]
    for ev in response_events("r1", "a1", words, 4800):  # 100 ms of audio per word
        out += s.feed_upstream(ev, 50)
    out += s.feed_upstream({"type": "response.done", "event_id": "e", "response": {"id": "r1", "status": "completed"}}, 60)
    assert s.playback_position_ms("a1", 50 + 150) == pytest.approx(150)
    out += s.feed_upstream({"type": "input_audio_buffer.speech_started", "event_id": "e", "item_id": "u2", "audio_start_ms": 900}, 200)
    out += s.receive_client_frame(json.dumps({"type": "conversation.item.truncate", "item_id": "a1", "content_index": 0, "audio_end_ms": 150}), 201)
    out += s.feed_upstream({"type": "conversation.item.truncated", "event_id": "e", "item_id": "a1", "content_index": 0, "audio_end_ms": 150}, 210)
    [interrupted] = [r for r in audits(out) if isinstance(r, TurnInterrupted)]
    assert interrupted.heard_text == "One two"  # 150 of 400 ms: the second word had started
    assert interrupted.audio_end_ms == 150
    [turn] = [r for r in audits(out) if isinstance(r, TurnRecord)]
    assert turn.text == "One two three four."


def test_heard_text_of_a_cancelled_answer_uses_the_calls_speaking_rate() -> None:
    """A transcript that ran ahead of its audio is cut by the rate learned from finished answers."""
    s = make_session()
    for ev in response_events("r0", "a0", ["Hello ", "there."], 24000):  # 12 chars in 1000 ms
        s.feed_upstream(ev, 10)
    s.feed_upstream({"type": "response.done", "event_id": "e", "response": {"id": "r0", "status": "completed"}}, 20)
    words = ["We ", "offer ", "three ", "kinds ", "of ", "accounts ", "today."]
    evs = response_events("r1", "a1", words, 0)  # the whole transcript arrived, almost no audio yet
    evs = [e for e in evs if e["type"] != "response.output_audio.delta"]
    evs.append({"type": "response.output_audio.delta", "event_id": "e", "response_id": "r1", "item_id": "a1", "output_index": 0, "content_index": 0, "delta": b64(48000)})
    out: list = []
    for ev in evs:
        out += s.feed_upstream(ev, 30)
    out += s.feed_upstream({"type": "response.done", "event_id": "e", "response": {"id": "r1", "status": "cancelled"}}, 40)
    out += s.feed_upstream({"type": "conversation.item.truncated", "event_id": "e", "item_id": "a1", "content_index": 0, "audio_end_ms": 700}, 50)
    [interrupted] = [r for r in audits(out) if isinstance(r, TurnInterrupted)]
    assert interrupted.heard_text == "We offer"  # 700 ms x 0.012 chars/ms = 8.4 chars


def test_function_call_and_output_are_audited() -> None:
    s = make_session()
    out: list = []
    item = {"id": "fc1", "type": "function_call", "call_id": "call_1", "name": "get_balance", "arguments": "", "status": "in_progress"}
    out += s.feed_upstream({"type": "response.output_item.added", "event_id": "e", "response_id": "r1", "output_index": 0, "item": item}, 10)
    out += s.feed_upstream({"type": "response.function_call_arguments.done", "event_id": "e", "response_id": "r1", "item_id": "fc1", "output_index": 0, "call_id": "call_1", "name": "get_balance", "arguments": '{"account":"checking"}'}, 20)
    out += s.receive_client_frame(json.dumps({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "call_1", "output": '{"balance": 10}'}}), 30)
    records = audits(out)
    assert ToolCallRecord("call_test", "call_1", "get_balance", '{"account":"checking"}', 20, "r1") in records
    assert any(isinstance(r, ToolResultRecord) and r.output == '{"balance": 10}' for r in records)
    assert isinstance(out[-2], SendUpstream)  # the output still goes upstream


def test_upstream_close_sends_error_then_closes_client_and_ends_call() -> None:
    s = make_session(max_reconnects=0)
    s.feed_upstream({"type": "input_audio_buffer.speech_started", "event_id": "e", "item_id": "u1", "audio_start_ms": 0}, 5)
    actions = s.upstream_closed(100.0, "code 1006")
    kinds = [type(a) for a in actions]
    assert kinds.index(SendClient) < kinds.index(CloseClient)
    assert client_errors(actions)[0]["code"] == "upstream_closed"
    records = audits(actions)
    assert isinstance(records[-1], CallEnded) and records[-1].outcome == "upstream_closed"
    assert any(isinstance(r, TurnRecord) and r.status == "incomplete" for r in records)
    assert s.upstream_closed(101.0) == []  # idempotent


def test_client_close_closes_upstream() -> None:
    s = make_session()
    actions = s.client_closed(10)
    assert any(isinstance(a, CloseUpstream) for a in actions)
    assert isinstance(audits(actions)[-1], CallEnded)


def test_malformed_upstream_event_is_dropped_with_error() -> None:
    s = make_session()
    actions = s.receive_upstream_frame(b"{oops", 1)
    assert client_errors(actions)[0]["code"] == "upstream_malformed"


def test_unknown_upstream_event_is_relayed() -> None:
    s = make_session()
    raw = json.dumps({"type": "some.future.event", "event_id": "e"})
    assert s.receive_upstream_frame(raw, 1) == [SendClient({"type": "some.future.event", "event_id": "e"}, raw)]


def test_abort_tells_the_caller_and_records_an_error_outcome() -> None:
    s = make_session()
    actions = s.abort(50.0, "RuntimeError")
    assert client_errors(actions)[0]["code"] == "bridge_error"
    assert any(isinstance(a, CloseClient) and a.code == 1011 for a in actions)
    assert any(isinstance(a, CloseUpstream) for a in actions)
    assert audits(actions)[-1].outcome == "error"
    assert s.abort(60.0, "again") == []


def test_shutdown_at_the_drain_deadline_ends_the_call_cleanly() -> None:
    s = make_session()
    actions = s.shutdown(70.0)
    err = client_errors(actions)[0]
    assert err["code"] == "bridge_shutdown" and "call again" in err["message"]
    assert any(isinstance(a, CloseClient) and a.code == 1001 for a in actions)
    assert any(isinstance(a, CloseUpstream) and a.code == 1000 for a in actions)
    records = audits(actions)
    assert records[-1].outcome == "shutdown"
    assert any(isinstance(r, CallEventRecord) and r.kind == "shutdown" for r in records)
    assert s.shutdown(80.0) == [] and s.idle_timeout(80.0, 300) == []  # ended once


def test_idle_timeout_ends_the_call_and_says_why() -> None:
    s = make_session()
    actions = s.idle_timeout(300_000.0, 300)
    err = client_errors(actions)[0]
    assert err["code"] == "idle_timeout" and "300 s" in err["message"]
    assert any(isinstance(a, CloseClient) and a.code == 1000 for a in actions)
    assert audits(actions)[-1].outcome == "idle"
    assert s.client_closed(300_100.0) == []


# ---------------------------------------------------------------------------- policy gate (observe)
NOTICE = "This call is recorded for quality purposes."


class FakeAnalyzer:
    """Stands in for the PII analyzer: finds nothing (the real one has its own tests)."""

    def analyze(self, text: str) -> list:
        return []


@pytest.fixture(scope="module")
def banking_gate() -> PolicyGate:
    from pathlib import Path

    from hybrid_agent.policy import load_pack

    return PolicyGate(load_pack(Path(__file__).resolve().parents[1] / "policies" / "retail-banking"), analyzer=FakeAnalyzer())


def gated_session(gate: PolicyGate) -> tuple[CallSession, list]:
    pack = gate.pack
    cfg = GateConfig(pack.name, pack.version, "observe", pack.manifest.history_turns, {"recording_notice": NOTICE})
    s = CallSession(CallConfig(call_id="call_g", gate=cfg))
    return s, s.start(0.0, 1.0)


def decide_all(s: CallSession, gate: PolicyGate, actions: list) -> list:
    """Run every CheckPolicy the way the adapter does and return the audit records it produced."""
    out = []
    for a in actions:
        if isinstance(a, CheckPolicy):
            out += [r for r in audits(s.feed_policy_outcome(gate.decide(a.check), 0.0)) if isinstance(r, PolicyDecisionRecord)]
    return out


def test_gate_checks_session_start_and_records_the_pack(banking_gate: PolicyGate) -> None:
    s, actions = gated_session(banking_gate)
    [started] = audits(actions)
    assert started.policy_pack == "retail-banking" and started.policy_version == banking_gate.pack.version
    assert started.gate_mode == "observe"
    [check] = [a.check for a in actions if isinstance(a, CheckPolicy)]
    assert check.stage == "session_start" and check.subject_id == "call_g"
    [decision] = decide_all(s, banking_gate, actions)
    assert isinstance(decision, PolicyDecisionRecord) and decision.effect == "require_disclosure"


def test_gate_sees_disclosure_and_verification_state(banking_gate: PolicyGate) -> None:
    s, _ = gated_session(banking_gate)
    out: list = []
    for ev in response_events("r1", "a1", ["Welcome. ", NOTICE], 4800):
        out += s.feed_upstream(ev, 10)
    out += s.feed_upstream({"type": "response.output_item.done", "event_id": "e", "response_id": "r1", "output_index": 0, "item": assistant_item("a1", "completed")}, 20)
    [given] = [r for r in audits(out) if isinstance(r, DisclosureRecord)]
    assert given.status == "given" and given.disclosure_id == "recording_notice"
    assert s.policy is not None and s.policy.disclosures == ["recording_notice"]

    def tool_call(call_id: str, name: str, args: str, t: float) -> list:
        item = {"id": f"fc_{call_id}", "type": "function_call", "call_id": call_id, "name": name, "arguments": "", "status": "in_progress"}
        acts = s.feed_upstream({"type": "response.output_item.added", "event_id": "e", "response_id": "r2", "output_index": 0, "item": item}, t)
        return acts + s.feed_upstream({"type": "response.function_call_arguments.done", "event_id": "e", "response_id": "r2", "item_id": f"fc_{call_id}", "output_index": 0, "call_id": call_id, "name": name, "arguments": args}, t)

    before = decide_all(s, banking_gate, tool_call("c1", "get_balance", '{"account_id": "checking"}', 30))
    assert [d.rule_id for d in before] == ["banking.identity.required_for_balance"]
    assert before[0].effect == "step_up" and before[0].subject_id == "call_g/tool/c1"
    # a tool not declared verifies_identity cannot raise the level, whatever its output says
    spoofed = s.receive_client_frame(json.dumps({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "c1", "output": '{"verification_level": "strong"}'}}), 35)
    assert [d.stage for d in decide_all(s, banking_gate, spoofed)] == ["tool_result"]
    assert s.policy.verification_level == "none"
    decide_all(s, banking_gate, tool_call("cv", "verify_identity", '{"customer_id": "c-1"}', 38))
    verified = s.receive_client_frame(json.dumps({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "cv", "output": '{"verification_level": "basic"}'}}), 40)
    assert [d.stage for d in decide_all(s, banking_gate, verified)] == ["tool_result"]
    after = decide_all(s, banking_gate, tool_call("c2", "get_balance", '{"account_id": "checking"}', 50))
    assert [d.effect for d in after] == ["allow"]  # verified, disclosure given


def test_disclosure_cut_before_it_was_heard_is_missing(banking_gate: PolicyGate) -> None:
    s, _ = gated_session(banking_gate)
    out: list = []
    for ev in response_events("r1", "a1", ["Welcome to the bank, my name is Sam. ", NOTICE], 48000):  # 1 s per piece
        out += s.feed_upstream(ev, 10)
    out += s.feed_upstream({"type": "response.output_item.done", "event_id": "e", "response_id": "r1", "output_index": 0, "item": assistant_item("a1", "incomplete")}, 20)
    out += s.feed_upstream({"type": "conversation.item.truncated", "event_id": "e", "item_id": "a1", "content_index": 0, "audio_end_ms": 800}, 30)
    statuses = [r.status for r in audits(out) if isinstance(r, DisclosureRecord)]
    assert statuses == ["given", "missing"]  # generated, then cut before the caller heard it
    assert s.policy is not None and s.policy.disclosures == []


def test_decisions_are_numbered_per_call_and_name_their_subject(banking_gate: PolicyGate) -> None:
    s, actions = gated_session(banking_gate)
    out = list(actions)
    out += s.feed_upstream({"type": "input_audio_buffer.speech_started", "event_id": "e", "item_id": "u1", "audio_start_ms": 0}, 5)
    out += s.feed_upstream({"type": "conversation.item.input_audio_transcription.completed", "event_id": "e", "item_id": "u1", "content_index": 0, "transcript": "I want to complain, this is a disgrace"}, 50)
    decisions = decide_all(s, banking_gate, out)
    assert [d.seq for d in decisions] == list(range(len(decisions)))
    user = [d for d in decisions if d.stage == "user_text"]
    assert user and all(d.subject_id == "call_g/turn/1" for d in user)
    assert "escalate" in {d.effect for d in user}


# ---------------------------------------------------------------------------- input transcription kept on
def test_bridge_turns_transcription_on_and_hides_the_answer() -> None:
    s = CallSession(CallConfig(call_id="c", transcription_model="gpt-4o-transcribe"))
    [update] = [a for a in s.start(0, 1) if isinstance(a, SendUpstream)]
    assert update.event["session"]["audio"]["input"]["transcription"] == {"model": "gpt-4o-transcribe"}
    updated = {"type": "session.updated", "event_id": "e", "session": {"type": "realtime"}}
    assert not any(isinstance(a, SendClient) for a in s.feed_upstream(updated, 1))  # the bridge's own
    assert isinstance(s.feed_upstream(updated, 2)[0], SendClient)  # the caller's


def test_rejected_bridge_update_is_not_shown_and_does_not_swallow_the_next_answer() -> None:
    s = CallSession(CallConfig(call_id="c"))
    s.start(0, 1)
    err = {"type": "error", "event_id": "e", "error": {"type": "invalid_request_error", "message": "no", "event_id": "event_bridge_transcription"}}
    [fact] = s.feed_upstream(err, 1)  # hidden from the caller, but an audit fact: transcription is not on
    assert isinstance(fact, Audit) and fact.record.source == "upstream_refused" and fact.record.event_type == "session.update"
    updated = {"type": "session.updated", "event_id": "e", "session": {"type": "realtime"}}
    assert isinstance(s.feed_upstream(updated, 2)[0], SendClient)


def test_client_cannot_switch_transcription_off() -> None:
    s = CallSession(CallConfig(call_id="c", transcription_model="gpt-4o-transcribe"))
    frame = json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"transcription": None}}}})
    [sent, fact] = s.receive_client_frame(frame, 1)
    assert isinstance(sent, SendUpstream) and sent.event["session"]["audio"]["input"]["transcription"] == {"model": "gpt-4o-transcribe"}
    assert fact.record.kind == "session_rewritten" and fact.record.param == "session.audio.input.transcription"


def test_transcription_left_alone_when_disabled() -> None:
    s = CallSession(CallConfig(call_id="c", transcription_model=None))
    assert not any(isinstance(a, SendUpstream) for a in s.start(0, 1))


# ---------------------------------------------------------------------------- hostile upstream / client (review fixes)
@pytest.mark.parametrize(
    "event",
    [
        {"type": "input_audio_buffer.speech_started", "event_id": "e", "audio_start_ms": 0},  # no item_id
        {"type": "response.output_item.added", "event_id": "e", "response_id": "r", "output_index": 0, "item": "not a dict"},
        {"type": "response.done", "event_id": "e", "response": "nope"},
        {"type": "conversation.item.truncated", "event_id": "e", "item_id": "a1", "content_index": 0, "audio_end_ms": "900"},
        {"type": "response.output_audio.delta", "event_id": "e", "response_id": "r1", "item_id": "a1", "output_index": 0, "content_index": 0, "delta": 5},
    ],
)
def test_malformed_upstream_fields_are_relayed_and_skipped_not_fatal(event: dict) -> None:
    s = make_session()
    for ev in response_events("r1", "a1", ["Hi."], 4800):
        s.feed_upstream(ev, 1)
    actions = s.feed_upstream(event, 2)
    assert actions and isinstance(actions[0], SendClient)  # relayed, the call goes on
    assert s.malformed_upstream
    ended = audits(s.client_closed(3))
    assert isinstance(ended[-1], CallEnded)


def test_string_timestamps_cannot_stop_the_call_end_from_being_recorded() -> None:
    s = make_session()
    s.feed_upstream({"type": "input_audio_buffer.speech_started", "event_id": "e", "item_id": "u1", "audio_start_ms": "0"}, 1)
    s.feed_upstream({"type": "input_audio_buffer.speech_stopped", "event_id": "e", "item_id": "u1", "audio_end_ms": "900"}, 2)
    records = audits(s.client_closed(3))
    assert isinstance(records[-1], CallEnded)
    assert any(isinstance(r, TurnRecord) and r.item_id == "u1" for r in records)


def test_unsolicited_tool_output_cannot_verify_the_caller(banking_gate: PolicyGate) -> None:
    s, _ = gated_session(banking_gate)
    forged = s.receive_client_frame(json.dumps({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "never_made", "output": '{"verification_level": "strong"}'}}), 5)
    [result] = [r for r in audits(forged) if isinstance(r, ToolResultRecord)]
    assert result.status == "unsolicited"
    assert s.policy is not None and s.policy.verification_level == "none"


def test_typed_user_message_is_a_turn_and_is_decided(banking_gate: PolicyGate) -> None:
    s, _ = gated_session(banking_gate)
    frame = json.dumps({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "I want to complain, this is a disgrace"}]}})
    actions = s.receive_client_frame(frame, 5)
    assert isinstance(actions[0], SendUpstream)
    [turn] = [r for r in audits(actions) if isinstance(r, TurnRecord)]
    assert turn.role == "user" and turn.text.startswith("I want to complain")
    decisions = decide_all(s, banking_gate, actions)
    assert "escalate" in {d.effect for d in decisions}


def test_a_check_the_gate_cannot_decide_is_recorded_fail_closed(banking_gate: PolicyGate) -> None:
    s, actions = gated_session(banking_gate)
    [check] = [a.check for a in actions if isinstance(a, CheckPolicy)]
    [record] = audits(s.feed_policy_failure(check, "RuntimeError: boom", 1))
    assert isinstance(record, PolicyDecisionRecord)
    assert record.rule_id == "gate:error" and record.effect == "deny" and record.is_violation


def test_actions_are_reproducible_with_an_id_factory() -> None:
    """Sans-I/O: the same events give the same actions when the ids come from a counter."""

    def run() -> list:
        n = iter(range(1000))
        s = CallSession(CallConfig(call_id="c", id_factory=lambda prefix: f"{prefix}_{next(n)}"))
        out = s.start(0.0, 1.0)
        out += s.receive_client_frame("{bad json", 1.0)
        out += s.receive_client_frame(json.dumps({"type": "nope"}), 2.0)
        out += s.upstream_closed(3.0, "code 1006")
        return out

    assert run() == run()



# ---------------------------------------------------------------------------- reconnect and replay
def test_upstream_drop_reconnects_and_replays_the_call_as_text() -> None:
    from hybrid_agent.protocol.events import validate_client_event, validate_server_event
    from hybrid_agent.session import ReconnectUpstream

    s = make_session(max_reconnects=1)
    s.receive_client_frame(json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": "Be a bank."}}), 1)
    s.feed_upstream({"type": "input_audio_buffer.speech_started", "event_id": "e", "item_id": "u1", "audio_start_ms": 0}, 2)
    s.feed_upstream({"type": "conversation.item.input_audio_transcription.completed", "event_id": "e", "item_id": "u1", "content_index": 0, "transcript": "What's my balance?"}, 3)
    for ev in response_events("r1", "a1", ["It is ", "one hundred ", "pounds."], 24000):
        s.feed_upstream(ev, 4)
    s.feed_upstream({"type": "response.output_item.done", "event_id": "e", "response_id": "r1", "output_index": 0, "item": assistant_item("a1", "completed")}, 5)
    s.feed_upstream({"type": "response.done", "event_id": "e", "response": {"id": "r1", "status": "completed"}}, 6)
    s.feed_upstream({"type": "conversation.item.truncated", "event_id": "e", "item_id": "a1", "content_index": 0, "audio_end_ms": 400}, 7)
    for ev in response_events("r2", "a2", ["Anything ", "else?"], 4800)[:3]:  # a second answer is streaming
        s.feed_upstream(ev, 8)

    dropped = s.upstream_closed(10, "code 1006")
    assert isinstance(dropped[-1], ReconnectUpstream) and not any(isinstance(a, CloseClient) for a in dropped)
    [failed] = [a.event for a in dropped if isinstance(a, SendClient)]
    validate_server_event(failed)  # the caller's SDK still understands it
    assert failed["response"]["status"] == "failed"
    # while reconnecting: events wait (audio up to 10 s; beyond that it is dropped and counted)
    assert s.receive_client_frame(json.dumps({"type": "input_audio_buffer.append", "audio": b64(4800)}), 11) == []
    assert s.receive_client_frame(json.dumps({"type": "response.create"}), 12) == []
    assert s.receive_client_frame(json.dumps({"type": "input_audio_buffer.append", "audio": b64(48 * 10_000)}), 13) == []
    assert s.reconnect_queue.dropped_audio_ms == pytest.approx(10_000)

    replay = s.upstream_reconnected(20)
    events = [a.event for a in replay if isinstance(a, SendUpstream)]
    for ev in events:
        validate_client_event(ev)
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["session.update", "session.update"]  # transcription, then the client's own
    assert events[1]["session"]["instructions"] == "Be a bank."
    items = [e["item"] for e in events if e["type"] == "conversation.item.create"]
    assert [(i["role"], i["content"][0]["text"]) for i in items[:2]] == [("user", "What's my balance?"), ("assistant", "It is one")]  # heard, not generated
    assert kinds[-2:] == ["input_audio_buffer.append", "response.create"]  # what waited goes last, in order
    # the new socket's greeting and the echoes of replayed items are not shown to the caller
    # the new socket's session.created is the bridge's: hidden from the caller; it plans the next rollover
    assert [type(a) for a in s.feed_upstream({"type": "session.created", "event_id": "e", "session": {"type": "realtime"}}, 21)] == [StartTimer]
    echo = {"type": "conversation.item.added", "event_id": "e", "previous_item_id": None, "item": {**items[0], "object": "realtime.item"}}
    assert not any(isinstance(a, SendClient) for a in s.feed_upstream(echo, 22))
    assert all(not any(isinstance(a, SendClient) for a in s.feed_upstream({"type": "session.updated", "event_id": "e", "session": {"type": "realtime"}}, 23)) for _ in range(2))
    # a second drop exhausts the reconnects: error and a clean close
    final = s.upstream_closed(30, "gone")
    assert any(isinstance(a, CloseClient) for a in final) and audits(final)[-1].outcome == "upstream_closed"

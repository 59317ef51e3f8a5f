"""Phone calls over ``WS /twilio/media``: a scripted Twilio (``hybrid_agent.twilio_caller``) against the
real bridge and the simulator; G.711 mu-law both ways, marks, bridge-owned barge-in, the token."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from hybrid_agent.audit.records import CallEnded, CallStarted, GateActionRecord, TurnInterrupted, TurnRecord
from hybrid_agent.audit.sink import MemoryAuditSink
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.server.twilio_webhook import stream_tokens_for
from hybrid_agent.settings import Settings
from hybrid_agent.transports.twilio_media import CHUNK_MS, StreamStart, TwilioMediaStream
from hybrid_agent.twilio_caller import PhoneCaller

CALL_SID = "CA00000000000000000000000000000001"
SCENARIO = """
name: phone
greeting: "Thank you for calling Example Bank, how can I help?"
transcription_delay_ms: 50
audio: {words_per_minute: 180, speed: 4.0, chunk_ms: 200}
turns:
  - user: "Tell me about your savings accounts."
    assistant: >-
      We offer three kinds of savings accounts. The easy access account lets you withdraw at any
      time and pays a variable rate. The notice account pays a higher rate if you give us thirty days
      notice before a withdrawal. The fixed term account locks your money away for a fixed rate.
  - user: "Just the easy access rate, please."
    assistant: "The easy access account pays three point one percent."
"""


ROOT = Path(__file__).resolve().parents[1]


def phone_settings(tmp_path: Path, scenario_text: str = SCENARIO, *, pack: bool = False, **kw: object) -> Settings:
    """A bridge on the simulator with Twilio configured (``pack``: the retail-banking pack)."""
    scenario = tmp_path / "phone.yaml"
    scenario.write_text(scenario_text)
    if pack:
        kw.setdefault("policy_pack", ROOT / "policies" / "retail-banking")
    return Settings(upstream="sim", host="127.0.0.1", port=0, bridge_tokens=["t"], sim_scenario=scenario,  # type: ignore[arg-type]
                    twilio_auth_token="twilio-test-auth-token", public_url="http://127.0.0.1", **kw)


@contextlib.asynccontextmanager
async def phone_call(settings: Settings, *, speed: float = 1.0) -> AsyncIterator[tuple[PhoneCaller, MemoryAuditSink]]:
    """A bridge, and a phone connected to its media stream with a valid token; hung up at the end."""
    tokens = stream_tokens_for(settings)
    assert tokens is not None
    audit = MemoryAuditSink()
    async with BridgeServer(settings, audit=audit) as bridge:
        async with ws_connect(media_url(bridge)) as ws:
            phone = PhoneCaller(media_url(bridge), tokens.issue(CALL_SID), call_sid=CALL_SID, speed=speed)
            await phone.open(ws)
            yield phone, audit
            await phone.hang_up()
            await asyncio.sleep(0.3)


def media_url(bridge: BridgeServer) -> str:
    return f"ws://127.0.0.1:{bridge.port}/twilio/media"


async def test_a_phone_call_gets_media_and_marks_and_a_barge_in_truncates_at_the_marked_audio(tmp_path: Path) -> None:
    async with phone_call(phone_settings(tmp_path)) as (phone, audit):
        await phone.listen_until_quiet(quiet_s=0.6)  # the greeting: the agent speaks first on the phone
        greeting_ms = phone.log.heard_ms
        await phone.say(900)  # "Tell me about your savings accounts."
        await phone.listen(1.2)  # part of the long answer plays...
        heard_before = phone.log.heard_ms
        await phone.say(600)  # ...and the caller talks over it
        await phone.listen_until_quiet(quiet_s=0.8)
    kinds = [m["event"] for m in phone.log.received]
    assert greeting_ms > 0 and "media" in kinds and "mark" in kinds
    assert all(m.get("streamSid") == phone.stream_sid for m in phone.log.received)
    media = [m for m in phone.log.received if m["event"] == "media"]
    assert all(len(base64.b64decode(m["media"]["payload"])) <= CHUNK_MS * 8 for m in media)  # mu-law 8 kHz, no resampling
    assert phone.log.clears == 1
    [cut] = [r for r in audit.records if isinstance(r, TurnInterrupted)]
    # the positions the marks of this answer confirmed (the greeting had played whole before it)
    confirmed = sorted({heard - greeting_ms for heard in phone.log.played_by_mark.values() if heard > greeting_ms})
    assert cut.audio_end_ms in confirmed, (cut.audio_end_ms, confirmed)  # exactly what a mark confirmed, not a guess
    # of this answer: at least what had played when the caller started talking, at most all that played
    assert heard_before - greeting_ms - 100 <= cut.audio_end_ms <= phone.log.heard_ms - greeting_ms
    assert not [r for r in audit.records if isinstance(r, GateActionRecord) and r.action == "truncate_clamped"]
    started = next(r for r in audit.records if isinstance(r, CallStarted))
    assert started.channel == "twilio" and started.caller_id == "+15550100"  # the store keeps only its pseudonym
    notes = [r.message for r in audit.records if getattr(r, "kind", None) == "call_metadata"]
    assert notes == [f"twilio: call_sid {CALL_SID}, stream_sid {phone.stream_sid}"]
    users = [r.text for r in audit.records if isinstance(r, TurnRecord) and r.role == "user"]
    assert users[:2] == ["Tell me about your savings accounts.", "Just the easy access rate, please."]
    assert isinstance(audit.records[-1], CallEnded)


@pytest.mark.parametrize("token", ["", "not-a-token", "other-call"])
async def test_a_media_stream_without_a_valid_token_for_its_call_is_refused(tmp_path: Path, token: str) -> None:
    settings = phone_settings(tmp_path)
    tokens = stream_tokens_for(settings)
    assert tokens is not None
    if token == "other-call":
        token = tokens.issue("CA99999999999999999999999999999999")
    audit = MemoryAuditSink()
    async with BridgeServer(settings, audit=audit) as bridge:
        async with ws_connect(media_url(bridge)) as ws:
            await PhoneCaller(media_url(bridge), token, call_sid=CALL_SID).open(ws)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert not [r for r in audit.records if isinstance(r, CallStarted)]  # nothing reached the model


async def test_bad_messages_are_ignored_and_a_stop_mid_answer_ends_the_call_cleanly(tmp_path: Path) -> None:
    async with phone_call(phone_settings(tmp_path)) as (phone, audit):
        for bad in ['{"event": "bogus"}', "not json", '{"event": "media", "media": {"payload": "%%%"}}',
                    '{"event": "media", "streamSid": "MZ-other", "media": {"payload": "AAAA"}}',
                    '{"event": "mark", "mark": {"name": "never-sent"}}', '{"no": "event"}']:
            await phone.ws.send(bad)
        await phone.ws.send(b"\x00\x01")
        await phone.say(900)
        await phone.listen(0.8)  # the answer is playing; the hang-up comes mid-answer
    ended = [r for r in audit.records if isinstance(r, CallEnded)]
    assert [e.outcome for e in ended] == ["completed"]
    assert [r.text for r in audit.records if isinstance(r, TurnRecord) and r.role == "user"][:1] == ["Tell me about your savings accounts."]


async def test_a_stream_that_starts_with_media_is_ended_with_a_reason(tmp_path: Path) -> None:
    settings = phone_settings(tmp_path)
    async with BridgeServer(settings, audit=MemoryAuditSink()) as bridge:
        async with ws_connect(media_url(bridge)) as ws:
            await ws.send(json.dumps({"event": "media", "streamSid": "MZ1", "media": {"payload": "AAAA"}}))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


# ---------------------------------------------------------------------------- the translator alone
def stream() -> TwilioMediaStream:
    return TwilioMediaStream(StreamStart("MZ1", CALL_SID, "AC1", {}, {"encoding": "audio/x-mulaw", "sampleRate": 8000}))


def audio_delta(item: str, ms: int) -> dict:
    return {"type": "response.output_audio.delta", "item_id": item, "delta": base64.b64encode(b"\xff" * (8 * ms)).decode()}


def test_audio_goes_out_in_marked_chunks_and_marks_set_the_played_position() -> None:
    s = stream()
    out = s.from_session(audio_delta("a1", 250))
    assert [m["event"] for m in out.twilio] == ["media", "mark"] * 3
    assert [len(base64.b64decode(m["media"]["payload"])) for m in out.twilio if m["event"] == "media"] == [800, 800, 400]
    names = [m["mark"]["name"] for m in out.twilio if m["event"] == "mark"]
    for name in names[:2]:
        s.from_twilio(json.dumps({"event": "mark", "streamSid": "MZ1", "mark": {"name": name}}))
    assert s.played_ms("a1") == 200.0
    barge = s.barge_in()
    assert [m["event"] for m in barge.twilio] == ["clear"]
    assert barge.feed == [{"type": "conversation.item.truncate", "event_id": "event_twilio_truncate_1", "item_id": "a1",
                           "content_index": 0, "audio_end_ms": 200}]
    s.from_twilio(json.dumps({"event": "mark", "streamSid": "MZ1", "mark": {"name": names[2]}}))  # echoed by the clear
    assert s.played_ms("a1") == 200.0  # cleared audio was never heard
    assert s.barge_in().twilio == []  # nothing left playing


def test_inbound_media_is_relayed_as_it_came_and_bad_messages_are_ignored() -> None:
    s = stream()
    payload = base64.b64encode(b"\x7f" * 160).decode()
    inbound = s.from_twilio(json.dumps({"event": "media", "streamSid": "MZ1", "media": {"track": "inbound", "payload": payload}}))
    assert inbound.events == [{"type": "input_audio_buffer.append", "audio": payload}]  # no transcoding
    for bad in ["x", "[]", '{"event": 1}', '{"event": "media", "streamSid": "MZ1", "media": {"payload": "@@"}}',
                '{"event": "media", "streamSid": "MZ1", "media": {}}', '{"event": "start"}', '{"event": "nope"}']:
        assert s.from_twilio(bad).ignored
    assert s.from_twilio(json.dumps({"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": "7"}})).digit == "7"
    assert s.from_twilio(json.dumps({"event": "stop", "streamSid": "MZ1"})).stop


def test_a_cancelled_answer_is_cleared_and_server_vad_needs_no_cancel_of_our_own() -> None:
    s = stream()
    s.from_session({"type": "session.updated", "session": {"audio": {"input": {"turn_detection": {"type": "server_vad"}}}}})
    s.from_session({"type": "response.created", "response": {"id": "r1"}})
    s.from_session(audio_delta("a1", 300))
    barge = s.barge_in()
    assert [e["type"] for e in barge.feed] == ["conversation.item.truncate"]  # the service cancelled it itself
    t = stream()
    t.from_session({"type": "session.updated", "session": {"audio": {"input": {"turn_detection": {"type": "server_vad", "interrupt_response": False}}}}})
    t.from_session({"type": "response.created", "response": {"id": "r1"}})
    t.from_session(audio_delta("a1", 300))
    assert [e["type"] for e in t.barge_in().feed] == ["response.cancel", "conversation.item.truncate"]
    u = stream()
    u.from_session(audio_delta("a1", 300))
    assert [m["event"] for m in u.from_session({"type": "response.done", "response": {"status": "cancelled"}}).twilio] == ["clear"]


# ---------------------------------------------------------------------------- PCI keypad capture
PAYMENT = """
name: payment
greeting: "How can I help you today?"
transcription_delay_ms: 50
audio: {words_per_minute: 220, speed: 6.0, chunk_ms: 200}
turns:
  - user: "My customer number is DEMO-CUST-0001, date of birth 1980-03-03, postcode ZZ99 1AA."
    tool_calls:
      - name: verify_identity
        arguments: {customer_id: "DEMO-CUST-0001", date_of_birth: "1980-03-03", postcode: "ZZ99 1AA"}
    assistant: "Thank you, you are verified."
  - user: "I'd like to pay twenty five pounds by card."
    tool_calls:
      - name: take_payment
        arguments: {amount: 25, reference: "bill"}
    assistant: "Your payment is {output[status]}, on the card ending {output[card_last4]}."
"""
CARD = "4111111111111111"
CVV = "987"


async def test_a_keypad_captured_card_reaches_only_the_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from hybrid_agent.session.actions import SendUpstream
    from hybrid_agent.transports import realtime_ws

    caplog.set_level(logging.DEBUG)
    upstream: list[str] = []
    execute = realtime_ws.CallRunner.execute

    async def recording(self: realtime_ws.CallRunner, actions: list) -> None:
        upstream.extend(a.text() for a in actions if isinstance(a, SendUpstream))
        await execute(self, actions)

    monkeypatch.setattr(realtime_ws.CallRunner, "execute", recording)
    settings = phone_settings(tmp_path, PAYMENT, pack=True, server_tools=True, gate_mode="hold")
    async with phone_call(settings, speed=2.0) as (phone, audit):
        await phone.listen_until_quiet(quiet_s=0.6)  # the recording notice, then the greeting
        await phone.say(900)
        await phone.listen_until_quiet(quiet_s=1.2)  # verified
        await phone.say(900)
        await phone.listen_until_quiet(quiet_s=0.6)  # "Please use your phone keypad to enter your card number..."
        await phone.say(700)  # the caller reads it out anyway, while the capture runs...
        await phone.press(CARD + "#")
        await phone.listen_until_quiet(quiet_s=0.6)  # "... the security code ..."
        await phone.press(CVV + "#")
        await phone.listen_until_quiet(quiet_s=2.0)  # the outcome (hold mode releases in bursts: wait out the gaps)
    # ...and the model never heard it: its audio went upstream as silence, so no third caller turn
    users = [r.text for r in audit.records if isinstance(r, TurnRecord) and r.role == "user"]
    assert len(users) == 2, users
    said = [r.text or "" for r in audit.records if isinstance(r, TurnRecord) and r.role == "assistant"]
    assert any("Please use your phone keypad to enter your card number" in t for t in said), said
    assert any("security code" in t and "keypad" in t for t in said), said
    assert "Your payment is approved, on the card ending 1111." in said
    captures = [r for r in audit.records if isinstance(r, GateActionRecord) and r.action == "keypad_capture"]
    assert [(r.status, r.text) for r in captures] == [("captured", "card_number: 16 digits"), ("captured", "security_code: 3 digits")]
    runs = [r for r in audit.records if isinstance(r, GateActionRecord) and r.action == "tool_run"]
    assert [(r.tool, r.status) for r in runs] == [("verify_identity", "ok"), ("take_payment", "ok")]
    # the digits reached the tool (it approved a Luhn-valid card ending 1111) and nothing else:
    import dataclasses
    import re

    non_audio = [f for f in upstream if json.loads(f).get("type") != "input_audio_buffer.append"]
    texts = [v for r in audit.records for v in dataclasses.asdict(r).values() if isinstance(v, str)]
    for digits in (CARD, CVV):
        alone = re.compile(rf"(?<!\w){digits}(?!\w)")  # the number itself, not digits inside an id or a digest
        assert not [f for f in non_audio if alone.search(f)], digits  # no upstream event (items, instructions, outputs)
        assert not [t for t in texts if alone.search(t)], digits  # no audit text (transcripts, tool calls, results, gate actions)
        assert not alone.search(caplog.text), digits  # no log line at any level


# ---------------------------------------------------------------------------- escalation to a person
ESCALATE = """
name: complaint
greeting: "How can I help you today?"
transcription_delay_ms: 50
audio: {words_per_minute: 220, speed: 6.0, chunk_ms: 200}
turns:
  - user: "This is unacceptable, I want to make a formal complaint."
    assistant: "I understand."
"""


async def test_an_escalated_phone_call_is_transferred_to_a_person(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs

    requests: list[tuple[str, dict, str]] = []

    class FakeTwilio(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            requests.append((self.path, parse_qs(body), self.headers.get("Authorization") or ""))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"status": "in-progress"}')

        def log_message(self, *args: object) -> None:
            pass

    fake = ThreadingHTTPServer(("127.0.0.1", 0), FakeTwilio)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    settings = phone_settings(tmp_path, ESCALATE, pack=True, gate_mode="hold", twilio_transfer_number="+441632960999",
                              twilio_api_base=f"http://127.0.0.1:{fake.server_port}")
    try:
        async with phone_call(settings, speed=2.0) as (phone, audit):
            await phone.listen_until_quiet(quiet_s=0.6)
            await phone.say(900)
            for _ in range(60):  # the answer, the escalation utterance, then the transfer
                await phone.listen(0.2)
                if requests:
                    break
    finally:
        fake.shutdown()
    [(path, form, auth)] = requests
    assert path == f"/2010-04-01/Accounts/AC00000000000000000000000000000001/Calls/{CALL_SID}.json"
    assert form["Twiml"] == ['<?xml version="1.0" encoding="UTF-8"?><Response><Dial>+441632960999</Dial></Response>']
    assert auth.startswith("Basic ")
    said = [r.text or "" for r in audit.records if isinstance(r, TurnRecord) and r.role == "assistant"]
    assert any("transfer you to a colleague" in t for t in said), said  # the rule's utterance came first
    actions = [(r.action, r.status) for r in audit.records if isinstance(r, GateActionRecord)]
    assert ("escalated", "user_text") in actions and ("call_transferred", "transferred") in actions


# ---------------------------------------------------------------------------- monitor mode on the phone
ADVICE = """
name: advice
greeting: "How can I help you today?"
transcription_delay_ms: 50
audio: {words_per_minute: 200, speed: 4.0, chunk_ms: 200, transcript_lead_words: 6}
turns:
  - user: "What should I do with my savings?"
    assistant: >-
      That is a common question. Many people keep an emergency fund first. After that, if I were you
      I would put your savings into shares, because it is a safe bet over time.
"""


async def test_monitor_mode_on_the_phone_counts_what_the_marks_confirmed(tmp_path: Path) -> None:
    async with phone_call(phone_settings(tmp_path, ADVICE, pack=True, gate_mode="monitor")) as (phone, audit):
        await phone.listen_until_quiet(quiet_s=0.6)
        opening_ms = phone.log.heard_ms
        await phone.say(900)
        await phone.listen_until_quiet(quiet_s=2.0)
    [blocked] = [r for r in audit.records if isinstance(r, GateActionRecord) and r.action == "speech_blocked"]
    assert blocked.rule_id and blocked.rule_id.startswith("banking.speech.no_investment_advice")
    # what reached the caller is what the marks confirmed, not everything sent: the model generates 4x
    # faster than the phone plays, so far more was sent than heard when the block came (Twilio was cleared)
    confirmed = {round(heard - opening_ms, 1) for heard in phone.log.played_by_mark.values() if heard > opening_ms}
    assert blocked.audio_end_ms in confirmed | {0.0}, (blocked.audio_end_ms, sorted(confirmed))
    heard_then = phone.log.heard_at_clear[0] - opening_ms  # what the phone had played of it when told to stop
    assert blocked.audio_end_ms <= heard_then + CHUNK_MS, (blocked.audio_end_ms, heard_then)
    assert blocked.leaked_ms is not None and 0 <= blocked.leaked_ms <= blocked.audio_end_ms
    assert phone.log.clears >= 1
    said = [r.text or "" for r in audit.records if isinstance(r, TurnRecord) and r.role == "assistant"]
    assert any("investment advice" in t for t in said)  # the rule's utterance, spoken after the block


async def test_a_phone_call_ended_by_a_drain_hears_the_packs_goodbye_first(tmp_path: Path) -> None:
    from hybrid_agent.policy.loader import load_pack

    settings = phone_settings(tmp_path, pack=True, gate_mode="observe")
    goodbye = load_pack(ROOT / "policies" / "retail-banking").clips["goodbye"]
    tokens = stream_tokens_for(settings)
    assert tokens is not None
    audit = MemoryAuditSink()
    async with BridgeServer(settings, audit=audit) as bridge:
        async with ws_connect(media_url(bridge)) as ws:
            phone = PhoneCaller(media_url(bridge), tokens.issue(CALL_SID), call_sid=CALL_SID, speed=4.0)
            await phone.open(ws)
            await phone.listen_until_quiet(quiet_s=0.6)  # the greeting
            before = phone.log.heard_ms
            drain = asyncio.create_task(bridge.drain(0.1))
            with pytest.raises(ConnectionClosed):
                await phone.listen(20)
            assert await asyncio.wait_for(drain, 10) == 1
    # the goodbye went out as mu-law media at 8 kHz, all of it, before the stream was closed
    goodbye_bytes = sum(len(base64.b64decode(m["media"]["payload"])) for m in phone.log.received if m["event"] == "media")
    expected = len(goodbye.pcm) // 6  # 24 kHz PCM16 -> 8 kHz mu-law: 2 bytes a sample, a third of the samples
    assert abs(goodbye_bytes - expected - before * 8) <= 16, (goodbye_bytes, expected, before)
    said = [r.message for r in audit.records if getattr(r, "kind", None) == "goodbye"]
    assert said and said[0].endswith(goodbye.text)
    assert [r.outcome for r in audit.records if isinstance(r, CallEnded)] == ["shutdown"]

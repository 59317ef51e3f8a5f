"""Twilio voice webhook: X-Twilio-Signature, the TwiML answer and the Media Stream token.

Signature vectors are the ones in Twilio's own helper library tests (twilio-python,
tests/unit/test_request_validator.py: auth token ``12345``, URL
``https://mycompany.com/myapp.php?foo=1&bar=2``); the endpoint tests go through a real
``BridgeServer`` socket with the embedded simulator upstream.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from hybrid_agent.audit.sink import MemoryAuditSink
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.server.twilio_webhook import (
    MAX_FORM_BYTES,
    STREAM_TOKEN_LABEL,
    StreamTokens,
    media_stream_url,
    stream_token_secret,
    stream_tokens_for,
    twilio_signature,
    verify_twilio_request,
    voice_twiml,
)
from hybrid_agent.settings import Settings

# ----------------------------------------------------------------------------- signature vectors

DOC_TOKEN = "12345"
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}


def hand_signature(token: str, data: str) -> str:
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def test_signature_matches_twilio_vector() -> None:
    assert twilio_signature(DOC_TOKEN, DOC_URL, DOC_PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    # the same, spelled out: URL, then name+value sorted by name, no separators
    data = DOC_URL + "CallSidCA1234567890ABCDE" + "Caller+14158675309" + "Digits1234" + "From+14158675309" + "To+18005551212"
    assert hand_signature(DOC_TOKEN, data) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert verify_twilio_request(DOC_TOKEN, DOC_URL, DOC_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_signature_order_of_params_does_not_matter() -> None:
    shuffled = [(k, DOC_PARAMS[k]) for k in ("To", "Digits", "CallSid", "From", "Caller")]
    assert twilio_signature(DOC_TOKEN, DOC_URL, shuffled) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_signature_repeated_param_uses_every_value_sorted() -> None:
    # twilio-python's duplicate-parameter vector: Digits=5678&Digits=1234 signs as Digits1234Digits5678
    pairs = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert twilio_signature(DOC_TOKEN, DOC_URL, pairs) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_signature_default_port_either_way() -> None:
    # Twilio signs https://host/... or https://host:443/...: both are accepted (as Twilio's libraries do)
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert twilio_signature(DOC_TOKEN, with_port, DOC_PARAMS) == "kvajT1Ptam85bY51eRf/AJRuM3w="
    assert verify_twilio_request(DOC_TOKEN, DOC_URL, DOC_PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=")
    assert verify_twilio_request(DOC_TOKEN, with_port, DOC_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    # like Twilio's libraries: a URL with a port also accepts the signature of the URL without it ...
    assert verify_twilio_request(DOC_TOKEN, "https://mycompany.com:8443/myapp.php?foo=1&bar=2", DOC_PARAMS,
                                 "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    # ... but never another port's signature
    other = twilio_signature(DOC_TOKEN, "https://mycompany.com:8443/myapp.php?foo=1&bar=2", DOC_PARAMS)
    assert not verify_twilio_request(DOC_TOKEN, DOC_URL, DOC_PARAMS, other)
    assert not verify_twilio_request(DOC_TOKEN, "https://mycompany.com:9443/myapp.php?foo=1&bar=2", DOC_PARAMS, other)
    # twilio-python's http vectors (port 1234 kept; port 80 added)
    http_url = DOC_URL.replace("https", "http")
    assert verify_twilio_request(DOC_TOKEN, http_url.replace(".com", ".com:1234"), DOC_PARAMS, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=")
    assert verify_twilio_request(DOC_TOKEN, http_url, DOC_PARAMS, "0ZXoZLH/DfblKGATFgpif+LLRf4=")


@pytest.mark.parametrize("header", [None, "", "RSOYDt4T1cUTdK1PDd93/VVr8B8", "rSOYDt4T1cUTdK1PDd93/VVr8B8=", "é"])
def test_verify_rejects_wrong_or_missing(header: str | None) -> None:
    assert not verify_twilio_request(DOC_TOKEN, DOC_URL, DOC_PARAMS, header)


def test_verify_rejects_changed_url_params_or_token() -> None:
    good = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert not verify_twilio_request(DOC_TOKEN, DOC_URL.replace("https", "http"), DOC_PARAMS, good)
    assert not verify_twilio_request(DOC_TOKEN, DOC_URL + "&x=1", DOC_PARAMS, good)
    assert not verify_twilio_request(DOC_TOKEN, DOC_URL, {**DOC_PARAMS, "Digits": "1235"}, good)
    assert not verify_twilio_request(DOC_TOKEN, DOC_URL, {**DOC_PARAMS, "Extra": ""}, good)
    assert not verify_twilio_request("54321", DOC_URL, DOC_PARAMS, good)
    assert not verify_twilio_request("", DOC_URL, DOC_PARAMS, good)


# ----------------------------------------------------------------------------- stream tokens

SID = "CA" + "0123456789abcdef" * 2
SECRET = b"s" * 32


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_token_roundtrip_and_binding() -> None:
    clock = Clock()
    tokens = StreamTokens(SECRET, ttl_s=60, clock=clock)
    token = tokens.issue(SID)
    assert tokens.verify(token) == SID
    assert tokens.verify(token, SID) == SID
    assert tokens.verify(token, "CA" + "f" * 32) is None  # another call
    assert tokens.verify(token, "") is None


def test_token_expires() -> None:
    clock = Clock()
    tokens = StreamTokens(SECRET, ttl_s=60, clock=clock)
    token = tokens.issue(SID)
    clock.t += 59
    assert tokens.verify(token, SID) == SID
    clock.t += 1
    assert tokens.verify(token, SID) is None
    clock.t += 10_000
    assert tokens.verify(token) is None


def forge(payload: bytes, mac: bytes) -> str:
    b = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    return f"{b(payload)}.{b(mac)}"


def test_token_tampering_rejected() -> None:
    clock = Clock()
    tokens = StreamTokens(SECRET, ttl_s=60, clock=clock)
    token = tokens.issue(SID)
    body, _, mac = token.partition(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    sig = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
    # a later expiry, another CallSid, a flipped MAC bit: all refused
    sid, _, expiry = payload.decode().rpartition(".")
    assert tokens.verify(forge(f"{sid}.{int(expiry) + 3600}".encode(), sig)) is None
    assert tokens.verify(forge(f"CA{'f' * 32}.{expiry}".encode(), sig)) is None
    assert tokens.verify(forge(payload, bytes([sig[0] ^ 1]) + sig[1:])) is None
    for bad in ("", ".", token + "x", token.replace(".", ""), "x" * 1000, body, f"{body}.", f".{mac}", token + "=",
                f"{body}.{mac[:-2]}", "é.é"):
        assert tokens.verify(bad) is None, bad
    assert tokens.verify(None) is None  # type: ignore[arg-type]
    # another key (another Twilio account, a rotated auth token) does not accept it
    assert StreamTokens(b"t" * 32, clock=clock).verify(token) is None


def test_token_rejects_bad_input() -> None:
    tokens = StreamTokens(SECRET)
    for bad in ("", "CA.1", "CA 1", "x" * 65, "CA\u00e9"):
        with pytest.raises(ValueError):
            tokens.issue(bad)
    with pytest.raises(ValueError):
        StreamTokens(b"short")
    with pytest.raises(ValueError):
        StreamTokens(SECRET, ttl_s=0)
    assert "s" * 16 not in repr(tokens)


def test_stream_secret_is_derived_from_the_auth_token() -> None:
    expected = hmac.new(b"auth-token-xyz", STREAM_TOKEN_LABEL, hashlib.sha256).digest()
    assert stream_token_secret("auth-token-xyz") == expected
    assert stream_tokens_for(Settings(upstream="sim")) is None
    a = stream_tokens_for(Settings(upstream="sim", twilio_auth_token="auth-token-xyz", twilio_stream_token_ttl_s=5))
    b = stream_tokens_for(Settings(upstream="sim", twilio_auth_token="auth-token-xyz"))
    assert a is not None and b is not None and a.ttl_s == 5
    assert b.verify(a.issue(SID), SID) == SID  # two workers, one auth token: they agree


# ----------------------------------------------------------------------------- TwiML


def test_twiml_shape_and_escaping() -> None:
    odd = {"token": "a&b<c>\"d'e", "callSid": SID, "x y": "line1\nline2\ttab", "ünï": "çödé ☎"}
    xml = voice_twiml("wss://bank.example.com/twilio/media", odd)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream ')
    root = ET.fromstring(xml.encode())
    assert root.tag == "Response"
    (connect,) = list(root)
    (stream,) = list(connect)
    assert connect.tag == "Connect" and stream.tag == "Stream"
    assert stream.get("url") == "wss://bank.example.com/twilio/media"
    got = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert got == odd  # everything survives a real XML parser, newlines and tabs included
    assert "a&b" not in xml and "<c>" not in xml


def test_twiml_refuses_what_twilio_would_not_take() -> None:
    with pytest.raises(ValueError):
        voice_twiml("https://bank.example.com/twilio/media", {})
    with pytest.raises(ValueError):
        voice_twiml("wss://bank.example.com/twilio/media?token=abc", {})  # Twilio drops query strings
    with pytest.raises(ValueError):
        voice_twiml("wss://bank.example.com/twilio/media", {"token": "a\x00b"})


def test_media_stream_url() -> None:
    assert media_stream_url("https://bank.example.com") == "wss://bank.example.com/twilio/media"
    assert media_stream_url("https://bank.example.com:8443/bridge") == "wss://bank.example.com:8443/bridge/twilio/media"
    assert media_stream_url("http://127.0.0.1:8080") == "ws://127.0.0.1:8080/twilio/media"


def test_public_url_setting() -> None:
    assert Settings(public_url="https://bank.example.com/").public_url == "https://bank.example.com"
    assert Settings(public_url="  ").public_url is None
    assert Settings(twilio_auth_token="").twilio_auth_token is None
    for bad in ("bank.example.com", "ftp://bank.example.com", "https://u:p@bank.example.com", "https://b.example.com/?a=1"):
        with pytest.raises(ValueError):
            Settings(public_url=bad)


# ----------------------------------------------------------------------------- the endpoint

AUTH_TOKEN = "twilio-auth-token-for-tests"
PUBLIC = "https://bank.example.com"
CALLER = "+14155550123"


def twilio_form(call_sid: str = SID, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": "AC" + "1" * 32, "ApiVersion": "2010-04-01", "CallSid": call_sid, "CallStatus": "ringing",
        "Called": "+18005551212", "Caller": CALLER, "Direction": "inbound", "From": CALLER, "To": "+18005551212",
        **extra,
    }


def settings_for(**kw: Any) -> Settings:
    base: dict[str, Any] = {"upstream": "sim", "host": "127.0.0.1", "port": 0, "bridge_tokens": ["bridge-token"],
                            "twilio_auth_token": AUTH_TOKEN, "public_url": PUBLIC}
    base.update(kw)
    return Settings(**base)


async def post(bridge: BridgeServer, form: dict[str, str] | None, *, signature: str | None,
               path: str = "/twilio/voice", body: bytes | None = None,
               content_type: str = "application/x-www-form-urlencoded") -> httpx.Response:
    headers = {"Content-Type": content_type}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    content = body if body is not None else urlencode(form or {}).encode()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bridge.port}") as client:
        return await client.post(path, content=content, headers=headers)


def sign(form: dict[str, str], url: str = PUBLIC + "/twilio/voice", token: str = AUTH_TOKEN) -> str:
    return twilio_signature(token, url, form)


@pytest.fixture
async def bridge() -> Any:
    async with BridgeServer(settings_for(), audit=MemoryAuditSink()) as server:
        yield server


async def test_signed_webhook_gets_twiml_with_a_token_for_the_call(bridge: BridgeServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    form = twilio_form()
    signature = sign(form)
    resp = await post(bridge, form, signature=signature)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/xml")
    stream = ET.fromstring(resp.content).find("./Connect/Stream")
    assert stream is not None
    url = stream.get("url") or ""
    assert url == "wss://bank.example.com/twilio/media" and not urlsplit(url).query
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert set(params) == {"token", "callSid", "from", "to"}
    assert params["from"] == CALLER  # back in start.customParameters: the audit stores only its pseudonym
    assert params["callSid"] == SID
    tokens = bridge_tokens(bridge)
    assert tokens.verify(params["token"], SID) == SID
    assert tokens.verify(params["token"], "CA" + "e" * 32) is None
    # no secret or number is in any log line
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (AUTH_TOKEN, signature, params["token"], CALLER):
        assert secret not in logged
    assert SID in logged


def bridge_tokens(bridge: BridgeServer) -> StreamTokens:
    tokens = stream_tokens_for(bridge.settings)
    assert tokens is not None
    return tokens


async def test_a_draining_bridge_refuses_the_call_so_twilio_tries_the_fallback(bridge: BridgeServer) -> None:
    """During a drain (SIGTERM) a signed voice webhook gets 503 with Retry-After, not TwiML for a
    media stream this bridge would refuse; Twilio then uses the number's fallback URL."""
    form = twilio_form()
    await bridge.drain(0.5)  # no call in progress: the drain ends at once, the bridge stays draining
    resp = await post(bridge, form, signature=sign(form))
    assert resp.status_code == 503 and resp.headers["retry-after"] == "1" and "<Stream" not in resp.text
    unsigned = await post(bridge, form, signature="x")  # still authenticated first: a stranger learns nothing
    assert unsigned.status_code == 403


async def test_app_state_exposes_the_stream_tokens() -> None:
    from hybrid_agent.server.app import build_app
    from hybrid_agent.upstream.connector import UpstreamConnector

    settings = settings_for()
    app = build_app(settings, UpstreamConnector(settings), MemoryAuditSink())
    tokens = app.state.stream_tokens
    assert isinstance(tokens, StreamTokens)
    assert tokens.verify(bridge_tokens_from(settings).issue(SID), SID) == SID  # same key as any other worker
    bare = Settings(upstream="sim")
    assert build_app(bare, UpstreamConnector(bare), MemoryAuditSink()).state.stream_tokens is None


def bridge_tokens_from(settings: Settings) -> StreamTokens:
    tokens = stream_tokens_for(settings)
    assert tokens is not None
    return tokens


async def test_query_string_is_part_of_the_signed_url(bridge: BridgeServer) -> None:
    form = twilio_form()
    good = sign(form, PUBLIC + "/twilio/voice?tenant=a%20b&x=1")
    resp = await post(bridge, form, signature=good, path="/twilio/voice?tenant=a%20b&x=1")
    assert resp.status_code == 200, resp.text
    resp = await post(bridge, form, signature=good, path="/twilio/voice?tenant=a%20b&x=2")
    assert resp.status_code == 403


async def test_wrong_signature_is_403(bridge: BridgeServer) -> None:
    form = twilio_form()
    resp = await post(bridge, form, signature=sign(form, token="not-the-auth-token"))
    assert resp.status_code == 403
    assert AUTH_TOKEN not in resp.text and "signature" not in resp.text.lower()
    # a signature of other parameters (a changed CallSid) does not carry over
    resp = await post(bridge, twilio_form("CA" + "9" * 32), signature=sign(form))
    assert resp.status_code == 403


async def test_missing_signature_is_403(bridge: BridgeServer) -> None:
    resp = await post(bridge, twilio_form(), signature=None)
    assert resp.status_code == 403
    resp = await post(bridge, twilio_form(), signature="")
    assert resp.status_code == 403


async def test_signature_over_another_url_is_403(bridge: BridgeServer) -> None:
    form = twilio_form()
    for url in ("http://bank.example.com/twilio/voice", "https://evil.example.com/twilio/voice",
                f"http://127.0.0.1:{bridge.port}/twilio/voice", PUBLIC + "/twilio/voice/"):
        resp = await post(bridge, form, signature=sign(form, url))
        assert resp.status_code == 403, url


async def test_not_configured_is_503() -> None:
    for kw in ({"twilio_auth_token": None}, {"public_url": None}, {"twilio_auth_token": None, "public_url": None}):
        async with BridgeServer(settings_for(**kw), audit=MemoryAuditSink()) as server:
            form = twilio_form()
            resp = await post(server, form, signature=sign(form))
            assert resp.status_code == 503
            assert "HYBRID_AGENT_TWILIO_AUTH_TOKEN" in resp.text and "HYBRID_AGENT_PUBLIC_URL" in resp.text


async def test_oversize_body_is_413(bridge: BridgeServer) -> None:
    form = twilio_form(Padding="x" * (MAX_FORM_BYTES + 1))
    resp = await post(bridge, form, signature=sign(form))
    assert resp.status_code == 413
    # without a Content-Length (chunked): still cut off
    async def chunks() -> Any:
        for _ in range(MAX_FORM_BYTES // 1024 + 2):
            yield b"a" * 1024
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bridge.port}") as client:
        resp = await client.post("/twilio/voice", content=chunks(),
                                 headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"})
    assert resp.status_code == 413


async def test_other_requests_are_refused(bridge: BridgeServer) -> None:
    form = twilio_form()
    resp = await post(bridge, form, signature=sign(form), content_type="application/json",
                      body=b'{"CallSid": "CA1"}')
    assert resp.status_code == 415
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bridge.port}") as client:
        assert (await client.get("/twilio/voice")).status_code == 405
    # a genuine signature, but no usable CallSid: nothing to bind a token to
    for sid in ("", "CA.1"):
        bad = twilio_form(sid)
        resp = await post(bridge, bad, signature=sign(bad))
        assert resp.status_code == 400


async def test_form_values_are_signed_decoded(bridge: BridgeServer) -> None:
    """Twilio signs the decoded values: '+', spaces, and non-ASCII as they are, not percent-encoded."""
    form = twilio_form(SpeechResult="hello wörld & more+1")
    resp = await post(bridge, form, signature=sign(form))
    assert resp.status_code == 200, resp.text

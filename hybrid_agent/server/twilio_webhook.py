"""Twilio's voice webhook: signature check, the TwiML answer, and the short-lived stream token.

A Twilio number pointed at ``POST https://<public>/twilio/voice`` (docs/telephony.md) gets,
for each incoming call, TwiML that connects the call's audio to the bridge's Media Stream
endpoint ``wss://<public>/twilio/media``::

    <Response><Connect><Stream url="wss://<public>/twilio/media">
        <Parameter name="token" value="..."/>
        <Parameter name="callSid" value="CA..."/>
        <Parameter name="from" value="+1..."/>   (the caller; the audit stores only its pseudonym)
    </Stream></Connect></Response>

* The webhook is authenticated by Twilio's ``X-Twilio-Signature`` (no bridge token: Twilio
  cannot send one): base64 HMAC-SHA1, keyed with the account's auth token, over the URL
  Twilio requested followed by every POST parameter's name and value, sorted by name
  (:func:`twilio_signature`).
* The Media Stream WebSocket cannot carry a query string (Twilio drops it) nor headers of
  ours, so its credential is a ``<Parameter>``: Twilio hands it back in the ``start``
  message as ``start.customParameters.token``.  It is a :class:`StreamTokens` token, valid
  for ``twilio_stream_token_ttl_s`` seconds and bound to the call's CallSid; the media
  endpoint accepts the stream only if ``StreamTokens.verify(token, start.callSid)`` returns
  the CallSid.
* The token key is derived from the Twilio auth token (:func:`stream_token_secret`), so every
  worker behind one public URL issues and accepts the same tokens without more configuration.

Nothing here logs the auth token, a signature, a token or the caller's number: the CallSid only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit, urlunsplit
from xml.sax.saxutils import quoteattr

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from hybrid_agent.settings import Settings

__all__ = [
    "MAX_FORM_BYTES",
    "MEDIA_PATH",
    "STREAM_TOKEN_LABEL",
    "StreamTokens",
    "VOICE_PATH",
    "media_stream_url",
    "stream_token_secret",
    "stream_tokens_for",
    "twilio_signature",
    "twilio_voice_endpoint",
    "verify_twilio_request",
    "voice_twiml",
]

log = logging.getLogger(__name__)

VOICE_PATH = "/twilio/voice"
MEDIA_PATH = "/twilio/media"
#: largest webhook body read (Twilio's voice webhook is a few hundred bytes to a few KB)
MAX_FORM_BYTES = 64 * 1024
#: the fixed label the stream-token key is derived under (HMAC-SHA256 keyed with the auth token)
STREAM_TOKEN_LABEL = b"hybrid-agent/twilio/stream-token/v1"

_CALL_SID = re.compile(r"[A-Za-z0-9]{1,64}")
_MAX_TOKEN_CHARS = 256
_FORM_TYPE = "application/x-www-form-urlencoded"
#: characters XML 1.0 cannot carry at all, escaped or not
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# ----------------------------------------------------------------------------- signature


def _pairs(params: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    if isinstance(params, Mapping):
        getall = getattr(params, "getlist", None) or getattr(params, "getall", None)  # multi-dicts
        if callable(getall):
            return [(k, v) for k in set(params.keys()) for v in getall(k)]
        return [(k, v) for k, v in params.items()]
    return [(k, v) for k, v in params]


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """Twilio's ``X-Twilio-Signature`` for a request to ``url`` with POST parameters ``params``.

    ``base64(HMAC-SHA1(auth_token, url + name1 + value1 + name2 + value2 ...))`` with the
    parameters sorted by name (byte order, case-sensitive).  ``params`` is a mapping or a
    sequence of ``(name, value)`` pairs; a name sent more than once contributes every value,
    in sorted order (what Twilio's own helper libraries do).  Values are the decoded form
    values; ``url`` is exactly as Twilio requested it, query string included.
    """
    data = url + "".join(name + value for name, value in sorted(_pairs(params)))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    """``url`` as given, without its port, and with the scheme's default port when it has none.

    Twilio does not always sign the port the way the URL was configured; its helper libraries
    accept both forms (twilio-python ``RequestValidator.validate``), and so does this.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return [url]
    host = parts.netloc
    hostname = host.rsplit(":", 1)[0] if port is not None else host
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    variants = [url]
    if port is not None:
        variants.append(urlunsplit(parts._replace(netloc=hostname)))
    elif default is not None:
        variants.append(urlunsplit(parts._replace(netloc=f"{hostname}:{default}")))
    return variants


def verify_twilio_request(
    auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]], header: str | None
) -> bool:
    """``header`` (the request's ``X-Twilio-Signature``) is Twilio's signature of ``url`` and ``params``.

    Constant-time comparison; a missing or empty header is ``False``.  The URL is tried as
    given, without its port and with the default port added (``https://h/x`` and
    ``https://h:443/x`` are the same address; Twilio is not consistent about which it signs).
    """
    if not header or not auth_token:
        return False
    try:
        given = header.strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    pairs = _pairs(params)
    ok = False
    for candidate in _url_variants(url):  # no early exit
        ok |= hmac.compare_digest(given, twilio_signature(auth_token, candidate, pairs).encode("ascii"))
    return ok


# ----------------------------------------------------------------------------- stream tokens


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    if not text or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StreamTokens:
    """Short-lived tokens that let one Twilio call's Media Stream in.

    ``issue(call_sid)`` -> ``base64url("<call_sid>.<expiry>") + "." + base64url(HMAC-SHA256)``
    (expiry in whole Unix seconds, ``ttl_s`` from now); ``verify(token, call_sid)`` returns
    the bound CallSid while the token is unexpired and its MAC checks, and ``None`` otherwise
    (also when ``call_sid`` is given and is not the bound one).  The token is signed, not
    encrypted: it carries the CallSid, which Twilio sends in the ``start`` message anyway.
    It can be presented more than once until it expires; a media endpoint that wants one
    stream per call refuses a second stream for the same CallSid itself.
    """

    def __init__(self, secret: bytes, ttl_s: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        if not isinstance(secret, (bytes, bytearray)) or len(secret) < 16:
            raise ValueError("stream token secret must be at least 16 bytes")
        if not ttl_s > 0:
            raise ValueError("ttl_s must be positive")
        self._key = hmac.new(bytes(secret), b"mac", hashlib.sha256).digest()
        self.ttl_s = float(ttl_s)
        self._clock = clock

    def __repr__(self) -> str:  # never show the key
        return f"StreamTokens(<secret>, ttl_s={self.ttl_s})"

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def issue(self, call_sid: str) -> str:
        if not isinstance(call_sid, str) or not _CALL_SID.fullmatch(call_sid):
            raise ValueError("call_sid must be 1-64 ASCII letters and digits")
        expiry = int(self._clock() + self.ttl_s)
        payload = f"{call_sid}.{expiry}".encode("ascii")
        return f"{_b64e(payload)}.{_b64e(self._mac(payload))}"

    def verify(self, token: str | None, call_sid: str | None = None) -> str | None:
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_CHARS:
            return None
        body, sep, mac = token.partition(".")
        if not sep:
            return None
        try:
            payload, given = _b64d(body), _b64d(mac)
        except (ValueError, binascii.Error):
            return None
        if not hmac.compare_digest(given, self._mac(payload)):
            return None
        try:
            sid, _, expiry_text = payload.decode("ascii").rpartition(".")
            expiry = int(expiry_text)
        except (UnicodeDecodeError, ValueError):
            return None
        if not _CALL_SID.fullmatch(sid) or self._clock() >= expiry:
            return None
        if call_sid is not None and not hmac.compare_digest(call_sid.encode("utf-8", "replace"), sid.encode("ascii")):
            return None
        return sid


def stream_token_secret(auth_token: str) -> bytes:
    """The stream-token key: ``HMAC-SHA256(key=auth_token, msg=STREAM_TOKEN_LABEL)``.

    Derived, not configured, so every worker with the same Twilio auth token agrees; rotating
    the auth token invalidates outstanding tokens (they live ``twilio_stream_token_ttl_s``
    seconds).  The label keeps it unrelated to any other use of the auth token.
    """
    return hmac.new(auth_token.encode("utf-8"), STREAM_TOKEN_LABEL, hashlib.sha256).digest()


def stream_tokens_for(settings: Settings) -> StreamTokens | None:
    """The :class:`StreamTokens` of a deployment, ``None`` when Twilio is not configured (no auth token)."""
    if settings.twilio_auth_token is None:
        return None
    secret = stream_token_secret(settings.twilio_auth_token.get_secret_value())
    return StreamTokens(secret, ttl_s=settings.twilio_stream_token_ttl_s)


# ----------------------------------------------------------------------------- TwiML


def voice_twiml(stream_url: str, parameters: Mapping[str, str]) -> str:
    """``<Response><Connect><Stream url=...>`` with one ``<Parameter>`` per item, XML-escaped.

    ``stream_url`` must be ``wss://`` (the only scheme Twilio connects Media Streams to) or,
    for local tests, ``ws://``; it must carry no query string, which Twilio does not pass on.
    """
    parts = urlsplit(stream_url)
    if parts.scheme not in ("wss", "ws") or not parts.hostname:
        raise ValueError("stream_url must be a wss:// URL")
    if parts.query or parts.fragment:
        raise ValueError("stream_url must have no query string (Twilio drops it): use a parameter")
    for text in (stream_url, *map(str, parameters.keys()), *map(str, parameters.values())):
        if _NOT_XML.search(text):
            raise ValueError("TwiML cannot carry control characters")
    children = "".join(f"<Parameter name={quoteattr(str(k))} value={quoteattr(str(v))}/>" for k, v in parameters.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Connect><Stream url={quoteattr(stream_url)}>{children}</Stream></Connect></Response>"
    )


def media_stream_url(public_url: str) -> str:
    """``wss://<public host and path prefix>/twilio/media`` (``ws://`` from an ``http://`` public URL)."""
    parts = urlsplit(public_url)
    scheme = {"https": "wss", "http": "ws"}[parts.scheme.lower()]
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + MEDIA_PATH, "", ""))


# ----------------------------------------------------------------------------- endpoint


def _plain(status: int, text: str, retry_after: bool = False) -> Response:
    return PlainTextResponse(text + "\n", status_code=status, headers={"Retry-After": "1"} if retry_after else None)


async def _read_bounded(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` once it is longer than ``limit`` (stops reading there)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                return None
        except ValueError:
            pass
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _signed_url(public_url: str, request: Request) -> str:
    """The URL Twilio requested: the public URL plus the path and query exactly as received."""
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else request.url.path
    query = request.scope.get("query_string", b"").decode("latin-1")
    return public_url + path + (f"?{query}" if query else "")


def twilio_voice_endpoint(settings: Settings, tokens: StreamTokens | None,
                          draining: Callable[[], bool] = lambda: False) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette handler of ``POST /twilio/voice`` for ``settings``; while ``draining()`` a signed
    call gets 503, so Twilio tries the number's fallback URL (another instance) instead of a stream
    this bridge would refuse."""

    async def voice(request: Request) -> Response:
        if settings.twilio_auth_token is None or settings.public_url is None or tokens is None:
            return _plain(
                503,
                "Twilio is not configured on this bridge: set HYBRID_AGENT_TWILIO_AUTH_TOKEN and HYBRID_AGENT_PUBLIC_URL.",
            )
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != _FORM_TYPE:
            return _plain(415, f"Expected {_FORM_TYPE}.")
        try:
            async with asyncio.timeout(settings.header_timeout_s):  # a body trickled in byte by byte
                body = await _read_bounded(request, MAX_FORM_BYTES)
        except TimeoutError:
            return _plain(408, "Request body not received in time.")
        if body is None:
            return _plain(413, "Request body too large.")
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            pairs = None
        url = _signed_url(settings.public_url, request)
        auth_token = settings.twilio_auth_token.get_secret_value()
        if pairs is None or not verify_twilio_request(auth_token, url, pairs, request.headers.get("x-twilio-signature")):
            log.warning("twilio voice webhook: missing or invalid signature, refused")
            return _plain(403, "Forbidden.")
        call_sid = next((v for k, v in pairs if k == "CallSid"), "")
        if not _CALL_SID.fullmatch(call_sid):
            log.warning("twilio voice webhook: signed request without a usable CallSid, refused")
            return _plain(400, "Missing CallSid.")
        if draining():
            log.info("twilio voice webhook: call %s refused, the bridge is draining", call_sid)
            return _plain(503, "This bridge is shutting down; try the fallback.", retry_after=True)
        parameters = {"token": tokens.issue(call_sid), "callSid": call_sid}
        caller = next((v for k, v in pairs if k == "From"), "")
        if caller:  # back to us in start.customParameters (over TLS); the audit keeps only its keyed pseudonym
            parameters["from"] = caller[:64]
        called = next((v for k, v in pairs if k == "To"), "")
        if called:  # the number the caller dialled (the bank's own): for the audit's call record
            parameters["to"] = called[:64]
        twiml = voice_twiml(media_stream_url(settings.public_url), parameters)
        log.info("twilio voice webhook: call %s connected to the media stream", call_sid)
        return Response(twiml, media_type="text/xml")

    return voice

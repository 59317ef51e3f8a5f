"""``serve --tls-cert FILE --tls-key FILE``: the bridge terminates TLS itself (HTTPS and WSS on one port).

Self-signed certificates are made with the ``openssl`` command line (``cryptography`` is not a
dependency); every client trusts exactly the test's certificate through its own SSL context.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from openai import AsyncOpenAI
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidMessage

from hybrid_agent.audit.sink import MemoryAuditSink
from hybrid_agent.server.runner import BridgeServer
from hybrid_agent.server.twilio_webhook import twilio_signature
from hybrid_agent.server.workers import worker_command
from hybrid_agent.settings import Settings, TlsUnavailable, check_tls

TOKEN = "tls-bridge-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command line")


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def make_pair(folder: Path, name: str) -> Pair:
    """A self-signed EC certificate for 127.0.0.1 (SAN IP) and its unencrypted key."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )
    return Pair(cert, key)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("tls")
    good, other = make_pair(folder, "bridge"), make_pair(folder, "other")
    encrypted = folder / "encrypted.key"
    subprocess.run(["openssl", "pkey", "-in", str(good.key), "-aes256", "-passout", "pass:secret-pass",
                    "-out", str(encrypted)], check=True, capture_output=True, timeout=60)
    garbage = folder / "garbage.pem"
    garbage.write_text("this is not PEM\n")
    return {"good": good, "other": other, "encrypted": encrypted, "garbage": garbage, "folder": folder}


def trusting(cert: Path) -> ssl.SSLContext:
    """A client context that trusts exactly ``cert`` (hostname checked: the SAN is 127.0.0.1)."""
    return ssl.create_default_context(cafile=str(cert))


def tls_settings(pair: Pair, **kw: Any) -> Settings:
    base: dict[str, Any] = {"upstream": "sim", "host": "127.0.0.1", "port": 0, "bridge_tokens": [TOKEN],
                            "tls_cert_file": pair.cert, "tls_key_file": pair.key}
    base.update(kw)
    return Settings(**base)


async def recv_until(ws: Any, kind: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
        seen.append(event)
        if event["type"] == kind:
            return seen


async def wss_round_trip(bridge: BridgeServer, cert: Path) -> list[dict[str, Any]]:
    """A call over wss://: session.created, then a session.update answered with session.updated."""
    async with ws_connect(f"{bridge.ws_base_url}/realtime?model=gpt-realtime", additional_headers=AUTH,
                          ssl=trusting(cert)) as ws:
        first = await recv_until(ws, "session.created")
        await ws.send(json.dumps({"type": "session.update",
                                  "session": {"type": "realtime", "instructions": "Answer as a bank over TLS."}}))
        updated = await recv_until(ws, "session.updated")
        version = ws.transport.get_extra_info("ssl_object").version()
        assert version in ("TLSv1.2", "TLSv1.3"), version
    return first + updated


# ----------------------------------------------------------------------------- 1. websockets client over wss


async def test_websockets_client_over_wss_gets_the_simulator_session(certs: dict[str, Any]) -> None:
    async with BridgeServer(tls_settings(certs["good"]), audit=MemoryAuditSink()) as bridge:
        assert bridge.ws_base_url == f"wss://127.0.0.1:{bridge.port}/v1"
        assert bridge.base_url == f"https://127.0.0.1:{bridge.port}/v1"
        events = await wss_round_trip(bridge, certs["good"].cert)
        kinds = [e["type"] for e in events]
        assert kinds[0] == "session.created" and kinds[-1] == "session.updated"
        assert events[-1]["session"]["instructions"] == "Answer as a bank over TLS."
        # the server's own context refuses anything older than TLS 1.2 (not left to the library default)
        assert bridge._server is not None and bridge._server.config.ssl is not None
        assert bridge._server.config.ssl.minimum_version == ssl.TLSVersion.TLSv1_2


async def test_plain_bridge_keeps_ws_and_http_urls() -> None:
    settings = Settings(upstream="sim", host="127.0.0.1", port=0, bridge_tokens=[TOKEN])
    async with BridgeServer(settings, audit=MemoryAuditSink()) as bridge:
        assert bridge.ws_base_url.startswith("ws://") and bridge.base_url.startswith("http://")
        assert bridge._server is not None and bridge._server.config.ssl is None


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
async def test_tls_1_1_client_is_refused(certs: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Even where the library's own default would allow TLS 1.0 (older OpenSSL or system policy), the bridge does not."""
    import uvicorn.config

    library_default = uvicorn.config.create_ssl_context

    def permissive(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        context = library_default(*args, **kwargs)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        return context

    monkeypatch.setattr(uvicorn.config, "create_ssl_context", permissive)
    async with BridgeServer(tls_settings(certs["good"]), audit=MemoryAuditSink()) as bridge:
        old = trusting(certs["good"].cert)
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1: the server must be the one refusing
        with pytest.raises((ssl.SSLError, ConnectionError)) as info:
            await asyncio.wait_for(asyncio.open_connection("127.0.0.1", bridge.port, ssl=old), 10)
        assert getattr(info.value, "reason", None) != "NO_PROTOCOLS_AVAILABLE"  # it did offer TLS 1.1
        await wss_round_trip(bridge, certs["good"].cert)  # still serving


# ----------------------------------------------------------------------------- 2. the official SDK over TLS


async def test_openai_sdk_realtime_over_https_base_url(certs: dict[str, Any]) -> None:
    async with BridgeServer(tls_settings(certs["good"]), audit=MemoryAuditSink()) as bridge:
        client = AsyncOpenAI(api_key=TOKEN, base_url=bridge.base_url, max_retries=0)  # https:// -> the SDK's wss://
        try:
            options: Any = {"ssl": trusting(certs["good"].cert)}  # passed on to websockets' connect
            async with client.realtime.connect(model="gpt-realtime", websocket_connection_options=options) as conn:
                await conn.session.update(session={"type": "realtime", "instructions": "SDK over TLS."})
                kinds = []
                async for event in conn:
                    kinds.append(event.type)
                    if event.type == "session.updated":
                        assert event.session.instructions == "SDK over TLS."
                        break
            assert kinds[0] == "session.created" and kinds[-1] == "session.updated"
        finally:
            await client.close()


async def test_openai_sdk_with_ssl_cert_file_and_wss_base_url(certs: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """No option at all: the process's CA file (SSL_CERT_FILE) trusts the bridge's certificate."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certs["good"].cert))
    async with BridgeServer(tls_settings(certs["good"]), audit=MemoryAuditSink()) as bridge:
        client = AsyncOpenAI(api_key=TOKEN, websocket_base_url=bridge.ws_base_url, max_retries=0)
        try:
            async with client.realtime.connect(model="gpt-realtime") as conn:
                event = await asyncio.wait_for(conn.recv(), 10)
                assert event.type == "session.created"
        finally:
            await client.close()


# ----------------------------------------------------------------------------- 3. and 4. refused connections


async def test_plain_ws_to_the_tls_port_fails_and_the_server_keeps_serving(certs: dict[str, Any]) -> None:
    async with BridgeServer(tls_settings(certs["good"]), audit=MemoryAuditSink()) as bridge:
        plain = f"ws://127.0.0.1:{bridge.port}/v1/realtime?model=gpt-realtime"
        for _ in range(3):
            with pytest.raises((InvalidMessage, ConnectionClosed, EOFError, ConnectionError)):
                async with ws_connect(plain, additional_headers=AUTH, open_timeout=10):
                    pass
        # a plain HTTP request gets no HTTP answer either (no cleartext listener on this port)
        reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(4096), 10)
        assert not answer.startswith(b"HTTP/"), answer[:80]
        writer.close()
        await wss_round_trip(bridge, certs["good"].cert)


async def test_client_not_trusting_the_certificate_is_refused_at_the_handshake(certs: dict[str, Any]) -> None:
    async with BridgeServer(tls_settings(certs["good"]), audit=MemoryAuditSink()) as bridge:
        url = f"{bridge.ws_base_url}/realtime?model=gpt-realtime"
        for context in (ssl.create_default_context(),  # the system's CAs: a self-signed certificate is not among them
                        trusting(certs["other"].cert)):  # another certificate
            with pytest.raises(ssl.SSLCertVerificationError):
                async with ws_connect(url, additional_headers=AUTH, ssl=context, open_timeout=10):
                    pass
        await wss_round_trip(bridge, certs["good"].cert)


# ----------------------------------------------------------------------------- Twilio behind TLS


async def test_twilio_webhook_over_https_answers_a_wss_stream(certs: dict[str, Any]) -> None:
    import httpx2 as httpx  # the SDK's HTTP client

    auth_token, public = "twilio-auth-token-for-tls", "https://bank.example.com"
    settings = tls_settings(certs["good"], twilio_auth_token=auth_token, public_url=public)
    form = {"AccountSid": "AC" + "1" * 32, "CallSid": "CA" + "a" * 32, "From": "+14155550123", "To": "+18005551212"}
    async with BridgeServer(settings, audit=MemoryAuditSink()) as bridge:
        async with httpx.AsyncClient(verify=trusting(certs["good"].cert)) as http:
            resp = await http.post(f"https://127.0.0.1:{bridge.port}/twilio/voice", content=urlencode(form).encode(),
                                   headers={"Content-Type": "application/x-www-form-urlencoded",
                                            "X-Twilio-Signature": twilio_signature(auth_token, public + "/twilio/voice", form)})
    assert resp.status_code == 200, resp.text
    stream = ET.fromstring(resp.content).find("./Connect/Stream")
    assert stream is not None and stream.get("url") == "wss://bank.example.com/twilio/media"


# ----------------------------------------------------------------------------- settings


def test_settings_from_the_environment(certs: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    good = certs["good"]
    monkeypatch.setenv("HYBRID_AGENT_TLS_CERT_FILE", str(good.cert))
    monkeypatch.setenv("HYBRID_AGENT_TLS_KEY_FILE", str(good.key))
    settings = Settings()
    assert (settings.tls_cert_file, settings.tls_key_file) == (good.cert, good.key)
    assert check_tls(settings) == (good.cert, good.key)
    monkeypatch.setenv("HYBRID_AGENT_TLS_CERT_FILE", "")
    monkeypatch.setenv("HYBRID_AGENT_TLS_KEY_FILE", " ")
    assert Settings().tls_cert_file is None and check_tls(Settings()) is None


async def test_bridge_server_refuses_a_mismatched_key_before_starting(certs: dict[str, Any]) -> None:
    bridge = BridgeServer(tls_settings(Pair(certs["good"].cert, certs["other"].key)), audit=MemoryAuditSink())
    with pytest.raises(TlsUnavailable, match="does not match"):
        await bridge.start()
    assert bridge._server is None and bridge._sock is None


def test_workers_get_the_tls_flags(certs: dict[str, Any]) -> None:
    good = certs["good"]
    from hybrid_agent.cli import build_parser

    args = build_parser().parse_args(["serve", "--workers", "2", "--tls-cert", str(good.cert), "--tls-key", str(good.key)])
    assert isinstance(args, argparse.Namespace)
    cmd = worker_command(args, 4443)
    assert cmd[cmd.index("--tls-cert") + 1] == str(good.cert)
    assert cmd[cmd.index("--tls-key") + 1] == str(good.key)


# ----------------------------------------------------------------------------- 5. serve's errors


def serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYBRID_AGENT_")}
    env.update({"HYBRID_AGENT_BRIDGE_TOKENS": TOKEN, "HYBRID_AGENT_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.db'}",
                "HYBRID_AGENT_AUDIT_SPOOL": str(tmp_path / "spool"), **extra})
    return env


def run_serve(tmp_path: Path, *flags: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hybrid_agent", "serve", "--upstream", "sim", "--port", "0", *flags],
                          env=serve_env(tmp_path, **env), cwd=tmp_path, capture_output=True, text=True, timeout=60)


def key_material(*files: Path) -> list[str]:
    """The base64 body lines of PEM files: none may ever be printed."""
    return [line for f in files for line in f.read_text().splitlines() if line and not line.startswith("-----")]


@pytest.mark.parametrize("case", ["cert only", "key only", "cert only from env", "missing cert", "missing key",
                                  "mismatched key", "not a certificate", "not a key", "encrypted key",
                                  "half with workers"])
def test_serve_refuses_bad_tls_settings_with_one_line(case: str, certs: dict[str, Any], tmp_path: Path) -> None:
    good, other = certs["good"], certs["other"]
    missing = tmp_path / "nowhere.pem"
    flags: list[str]
    env: dict[str, str] = {}
    flags, expect = {
        "cert only": (["--tls-cert", str(good.cert)], "--tls-key / HYBRID_AGENT_TLS_KEY_FILE is not"),
        "key only": (["--tls-key", str(good.key)], "--tls-cert / HYBRID_AGENT_TLS_CERT_FILE is not"),
        "cert only from env": ([], "--tls-key / HYBRID_AGENT_TLS_KEY_FILE is not"),
        "missing cert": (["--tls-cert", str(missing), "--tls-key", str(good.key)], f"{missing} does not exist"),
        "missing key": (["--tls-cert", str(good.cert), "--tls-key", str(missing)], f"{missing} does not exist"),
        "mismatched key": (["--tls-cert", str(good.cert), "--tls-key", str(other.key)],
                           f"{other.key} does not match the certificate in {good.cert}"),
        "not a certificate": (["--tls-cert", str(certs["garbage"]), "--tls-key", str(good.key)], "holds no PEM certificate"),
        "not a key": (["--tls-cert", str(good.cert), "--tls-key", str(good.cert)], "holds no usable PEM private key"),
        "encrypted key": (["--tls-cert", str(good.cert), "--tls-key", str(certs["encrypted"])], "passphrase-protected"),
        "half with workers": (["--workers", "2", "--tls-cert", str(good.cert)], "--tls-key / HYBRID_AGENT_TLS_KEY_FILE is not"),
    }[case]
    if case == "cert only from env":
        env["HYBRID_AGENT_TLS_CERT_FILE"] = str(good.cert)
    run = run_serve(tmp_path, *flags, **env)
    assert run.returncode == 2, (run.returncode, run.stdout[-500:], run.stderr[-2000:])
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expect in errors[0], run.stderr
    assert "Traceback" not in run.stderr and "listening" not in run.stdout
    for line in key_material(good.key, other.key, certs["encrypted"]):
        assert line not in run.stderr and line not in run.stdout
    assert not (tmp_path / "audit.db").exists()  # refused before anything else started


async def test_serve_prints_a_wss_url_and_takes_calls_on_it(certs: dict[str, Any], tmp_path: Path) -> None:
    good = certs["good"]
    server = subprocess.Popen(
        [sys.executable, "-m", "hybrid_agent", "serve", "--upstream", "sim", "--port", "0",
         "--tls-cert", str(good.cert), "--tls-key", str(good.key)],
        env=serve_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = await asyncio.to_thread(server.stdout.readline)  # type: ignore[union-attr]
        assert re.match(r"bridge listening on wss://127\.0\.0\.1:\d+/v1/realtime ", line), line
        url = line.split("listening on ", 1)[1].split(" ", 1)[0]
        async with ws_connect(f"{url}?model=gpt-realtime", additional_headers=AUTH, ssl=trusting(good.cert)) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.created"
        # a plain connection and an untrusting one do not stop it (uvloop's TLS, as serve runs it)
        with pytest.raises((InvalidMessage, ConnectionClosed, EOFError, ConnectionError)):
            async with ws_connect(url.replace("wss://", "ws://", 1), additional_headers=AUTH, open_timeout=10):
                pass
        with pytest.raises(ssl.SSLCertVerificationError):
            async with ws_connect(url, additional_headers=AUTH, ssl=ssl.create_default_context(), open_timeout=10):
                pass
        async with ws_connect(f"{url}?model=gpt-realtime", additional_headers=AUTH, ssl=trusting(good.cert)) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.created"
        server.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(server.wait, 60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
    stderr = server.stderr.read()  # type: ignore[union-attr]
    assert code == 0, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]


@pytest.mark.postgres
async def test_workers_each_terminate_tls_on_the_shared_port(certs: dict[str, Any], tmp_path: Path) -> None:
    from conftest import _fresh_pg

    pg = _fresh_pg(upgraded=True)
    pg_url = next(pg)
    good = certs["good"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hybrid_agent", "serve", "--upstream", "sim", "--port", "0", "--workers", "2",
         "--tls-cert", str(good.cert), "--tls-key", str(good.key)],
        env=serve_env(tmp_path, HYBRID_AGENT_DATABASE_URL=pg_url), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while sum("bridge listening on" in line for line in lines) < 2:
            line = await asyncio.to_thread(proc.stdout.readline)
            assert line, f"serve --workers ended early: {''.join(lines)}"
            lines.append(line)
        head = next(line for line in lines if line.startswith("bridge supervisor"))
        assert "wss://" in head and all("wss://" in line for line in lines if "listening" in line), lines
        port = int(re.search(r":(\d+)/v1/realtime", head).group(1))  # type: ignore[union-attr]
        url = f"wss://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
        for _ in range(6):  # whichever worker the kernel gives each to
            async with ws_connect(url, additional_headers=AUTH, ssl=trusting(good.cert)) as ws:
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.created"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.to_thread(proc.communicate, timeout=60)
        pg.close()
    assert proc.returncode == 0, out[-2000:]
    assert "Traceback" not in out

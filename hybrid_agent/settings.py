"""One place for configuration: flags override ``HYBRID_AGENT_*`` environment variables.

``OPENAI_API_KEY`` is read here but only the ``serve`` path (``upstream/``) asks
for it; it is a ``SecretStr`` so it never prints, and nothing sends it to a client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Annotated, Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///hybrid_agent.db"


#: session age at which a call rolls over, by upstream target, when ``rollover_s`` is unset (seconds);
#: every other target (openai, the simulator, a ws:// URL) as OpenAI
ROLLOVER_DEFAULT_S = {"azure": 28 * 60.0}
ROLLOVER_DEFAULT_OPENAI_S = 55 * 60.0


class Settings(BaseSettings):
    """Settings shared by every command; each command reads the fields it needs."""

    model_config = SettingsConfigDict(env_prefix="HYBRID_AGENT_", extra="ignore", populate_by_name=True)

    # bridge server
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    reuse_port: bool = Field(
        default=False,
        description="Listen with SO_REUSEPORT (HYBRID_AGENT_REUSE_PORT): set by serve --workers for each worker "
        "process, so several share one port.",
    )
    worker_index: int | None = Field(default=None, ge=0, description="Which worker of serve --workers this process is.")
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        default="auto",
        description="serve's event loop (HYBRID_AGENT_EVENT_LOOP): auto is uvloop where it is installed (it is a "
        "dependency on Linux and macOS), else asyncio's own; docs/performance.md has both measured.",
    )
    bridge_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Tokens clients present as 'Authorization: Bearer'; comma separated."
    )
    max_message_bytes: int = Field(default=1 << 20, gt=0, description="Largest client event accepted.")
    idle_timeout_s: float = Field(
        default=300.0, ge=0,
        description="A call on which neither the caller nor the model sent a frame for this long is ended (0: never).",
    )
    max_calls: int = Field(
        default=1000, ge=0,
        description="Calls one process takes at once; one more is refused with 503 (0: no limit).",
    )
    drain_s: float = Field(
        default=25.0, ge=0,
        description="On SIGTERM, how long calls in progress may go on (no new ones are taken) before the bridge "
        "ends them and exits; keep it below the orchestrator's kill grace (Kubernetes: 30 s by default).",
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="A connection that has not sent complete request headers in this time is closed."
    )
    tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate (leaf first, then its chain) serve presents (HYBRID_AGENT_TLS_CERT_FILE, --tls-cert): "
        "with tls_key_file the bridge serves https:// and wss:// on its port, TLS 1.2 at least (docs/reliability.md, TLS).",
    )
    tls_key_file: Path | None = Field(
        default=None,
        description="The certificate's unencrypted PEM private key (HYBRID_AGENT_TLS_KEY_FILE, --tls-key); read at start only.",
    )

    # upstream
    upstream: str = Field(default="openai", description="openai | azure | sim | ws(s)://host/path")
    model: str = "gpt-realtime"
    models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Models a client may name (?model=, session.model); comma separated. Default: the configured "
        "model and its dated snapshots. Any other name is mapped to the configured model.",
    )
    max_reconnects: int = Field(
        default=2, ge=0, description="Upstream drops a call survives by reconnecting and replaying it as text."
    )
    reconnect_window_s: float = Field(
        default=15.0, ge=0,
        description="How long the bridge keeps trying to reopen a dropped upstream (every 0.5 s after the first "
        "tries) before it ends the call; the caller's audio meanwhile is held up to 10 s.",
    )
    rollover_s: float | None = Field(
        default=None, ge=0,
        description="Upstream session age (seconds) at which a call moves to a new upstream session, before the "
        "provider ends it (60 minutes at OpenAI, 30 at Azure). Unset: 3300 (55 min), 1680 (28 min) on Azure; 0: never. "
        "A session.created whose expires_at says sooner wins (55/60 of the lifetime it reports).",
    )
    transcription_model: str = Field(
        default="gpt-4o-transcribe",
        description="Input transcription the bridge keeps on for every call (empty: leave it to the client).",
    )
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    azure_endpoint: str | None = None
    azure_api_version: str = "2025-08-28"
    sim_scenario: Path | None = Field(default=None, description="Scenario for --upstream sim (default scenario if unset).")

    # policy gate
    policy_pack: Path | None = Field(default=None, description="Policy pack folder the bridge decides every call with.")
    server_tools: bool = Field(
        default=False,
        description="Run the pack's tools in the bridge (its demo backend for the shipped packs), invisible to clients. "
        "Off by default: the shipped packs' backends are DEMO data, not real systems (make demo and make compat turn it on).",
    )
    gate_mode: str | None = Field(
        default=None, description="off | observe (record decisions) | monitor | hold; default: the pack's gate.mode"
    )

    # audit
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("HYBRID_AGENT_DATABASE_URL", "database_url", "db"),
    )
    audit_spool: Path = Field(
        default=Path("hybrid_agent_audit.spool"),
        description="Local file audit records go to while the database is down (one per process).",
    )
    pseudonym_key: SecretStr | None = Field(
        default=None,
        description="HMAC key for caller pseudonyms (HYBRID_AGENT_PSEUDONYM_KEY); keep it secret and stable.",
    )

    # escalation webhook (docs/policy.md, "Escalation webhook")
    escalation_webhook: str | None = Field(
        default=None,
        description="http(s) URL the bridge POSTs a signed call.escalated notification to when a rule escalates a call "
        "(HYBRID_AGENT_ESCALATION_WEBHOOK); needs escalation_secret.",
    )
    escalation_secret: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 key the escalation webhook is signed with (HYBRID_AGENT_ESCALATION_SECRET); "
        "shared with the receiver only.",
    )

    # observability and cost (docs/observability.md)
    otel_exporter: Literal["none", "console", "otlp-http", "otlp-grpc"] = Field(
        default="none",
        description="Where traces and metrics go (HYBRID_AGENT_OTEL_EXPORTER): none (default: no spans are made), "
        "console (stdout), otlp-http or otlp-grpc (to otel_endpoint).",
    )
    otel_endpoint: str | None = Field(
        default=None,
        description="The OTLP receiver (HYBRID_AGENT_OTEL_ENDPOINT): http://collector:4318 for otlp-http (the "
        "/v1/traces and /v1/metrics paths are added), collector:4317 or http://collector:4317 for otlp-grpc. "
        "Default: the exporter's own (localhost).",
    )
    otel_service_name: str = Field(default="hybrid-agent", description="service.name of the spans and metrics.")
    otel_metric_interval_s: float = Field(
        default=15.0, gt=0, description="How often metrics are pushed to the OTLP receiver."
    )
    metrics: bool = Field(
        default=True,
        description="Serve GET /metrics (Prometheus text format, bridge token required) and keep the counters "
        "(HYBRID_AGENT_METRICS); off: no metric is recorded.",
    )
    latency_budgets: dict[str, float] = Field(
        default_factory=lambda: {"time_to_first_audio": 1500.0, "gate_hold": 800.0, "tool_run": 2000.0,
                                 "policy": 250.0, "audit_lag": 2000.0},
        description="Latency budget in ms per stage (HYBRID_AGENT_LATENCY_BUDGETS, JSON): a response over its "
        "time_to_first_audio or gate_hold budget is marked in the audit (audit calls --slow); every stage over "
        "budget is counted in hybrid_agent_budget_exceeded_total.",
    )
    prices_file: Path | None = Field(
        default=None,
        description="YAML or JSON price table for audit cost (HYBRID_AGENT_PRICES_FILE), merged over the dated "
        "defaults in hybrid_agent/cost/prices.py.",
    )

    @field_validator("latency_budgets")
    @classmethod
    def _check_budgets(cls, value: dict[str, float]) -> dict[str, float]:
        from hybrid_agent.session.response_timing import BUDGET_STAGES

        unknown = sorted(set(value) - set(BUDGET_STAGES))
        if unknown:
            raise ValueError(f"unknown stage(s) {', '.join(unknown)}; stages are {', '.join(BUDGET_STAGES)}")
        if any(v <= 0 for v in value.values()):
            raise ValueError("every budget must be a positive number of milliseconds")
        return value

    # Twilio telephony (docs/telephony.md)
    twilio_auth_token: SecretStr | None = Field(
        default=None,
        description="The Twilio account's auth token (HYBRID_AGENT_TWILIO_AUTH_TOKEN): checks X-Twilio-Signature on "
        "the voice webhook and keys the Media Stream tokens; without it /twilio/voice answers 503.",
    )
    public_url: str | None = Field(
        default=None,
        description="The bridge's public base URL as Twilio reaches it, e.g. https://bank.example.com "
        "(HYBRID_AGENT_PUBLIC_URL): the signed webhook URL and the wss:// Media Stream URL are built from it.",
    )
    twilio_stream_token_ttl_s: float = Field(
        default=60.0, gt=0, description="Seconds a Media Stream token from the voice webhook stays valid."
    )
    twilio_transfer_number: str | None = Field(
        default=None, description="E.164 number an escalated phone call is transferred to (Twilio <Dial>); unset: no transfer."
    )
    twilio_api_base: str = Field(
        default="https://api.twilio.com", description="Twilio's REST API (a local fake in tests)."
    )

    @field_validator("bridge_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return value

    @field_validator("models", mode="before")
    @classmethod
    def _split_models(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [m.strip() for m in value.split(",") if m.strip()]
        return value

    @field_validator("gate_mode")
    @classmethod
    def _check_gate_mode(cls, value: str | None) -> str | None:
        if value is not None and value not in ("off", "observe", "monitor", "hold"):
            raise ValueError("must be off, observe, monitor or hold")
        return value

    @field_validator("escalation_webhook", mode="before")
    @classmethod
    def _check_escalation_webhook(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None  # an empty variable is no webhook
            parts = urlsplit(value)
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("public_url", mode="before")
    @classmethod
    def _check_public_url(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None  # an empty variable is no public URL
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http:// or https:// URL with a host, e.g. https://bank.example.com")
            if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
                raise ValueError("must be scheme, host and optional port and path only (no credentials, query or fragment)")
            try:
                _ = parts.port
            except ValueError:
                raise ValueError("has an invalid port") from None
            value = value.rstrip("/")  # the request path is appended to it
        return value

    @field_validator("escalation_secret", "twilio_auth_token", mode="before")
    @classmethod
    def _empty_secret_is_none(cls, value: Any) -> Any:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(raw, str) and not raw.strip():
            return None  # an empty variable is no secret (serve then refuses a webhook without one)
        return value

    @field_validator("tls_cert_file", "tls_key_file", mode="before")
    @classmethod
    def _empty_path_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None  # an empty variable is no file (not the current directory)
        return value

    @field_validator("upstream")
    @classmethod
    def _check_upstream(cls, value: str) -> str:
        if value in ("openai", "azure", "sim") or value.startswith(("ws://", "wss://")):
            return value
        raise ValueError("must be openai, azure, sim or a ws:// / wss:// URL")

    def rollover_after_s(self, target: str) -> float:
        """When a call's upstream session rolls over (``rollover_s``, else by target); 0: never."""
        if self.rollover_s is not None:
            return self.rollover_s
        return ROLLOVER_DEFAULT_S.get(target, ROLLOVER_DEFAULT_OPENAI_S)


class TlsUnavailable(ValueError):
    """The TLS certificate or key cannot be used; the message is one line for a person (no key material in it)."""


class _EncryptedKey(Exception):
    pass


def _refuse_passphrase() -> bytes:
    raise _EncryptedKey  # never OpenSSL's interactive prompt: serve would hang at start


def check_tls(settings: Settings) -> tuple[Path, Path] | None:
    """``(certificate, key)`` files serve terminates TLS with, ``None`` without TLS.

    Both or neither; each an existing, readable PEM file, the key unencrypted and the
    certificate's own.  Loaded here once so that a bad file is refused at start with
    :class:`TlsUnavailable` rather than as a traceback from the server's first bind.
    """
    import ssl

    cert, key = settings.tls_cert_file, settings.tls_key_file
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        given, missing = ("--tls-key / HYBRID_AGENT_TLS_KEY_FILE", "--tls-cert / HYBRID_AGENT_TLS_CERT_FILE")
        if key is None:
            given, missing = missing, given
        raise TlsUnavailable(f"{given} is set but {missing} is not: TLS needs both the certificate and its private key")
    for what, path in (("certificate", cert), ("private key", key)):
        try:
            with path.open("rb"):
                pass
        except FileNotFoundError:
            raise TlsUnavailable(f"TLS {what} file {path} does not exist") from None
        except IsADirectoryError:
            raise TlsUnavailable(f"TLS {what} file {path} is a directory, not a PEM file") from None
        except OSError as exc:
            raise TlsUnavailable(f"TLS {what} file {path} cannot be read: {exc.strerror or type(exc).__name__}") from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(cert))
    except (ssl.SSLError, ValueError, UnicodeDecodeError):
        raise TlsUnavailable(f"TLS certificate file {cert} holds no PEM certificate (-----BEGIN CERTIFICATE-----)") from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(cert), str(key), password=_refuse_passphrase)
    except _EncryptedKey:
        raise TlsUnavailable(f"TLS private key file {key} is passphrase-protected: give an unencrypted key "
                             "(openssl pkey -in KEY -out KEY.plain), readable by this user only") from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TlsUnavailable(f"TLS private key file {key} does not match the certificate in {cert}") from None
        detail = f" ({exc.reason})" if exc.reason else ""
        raise TlsUnavailable(f"TLS private key file {key} holds no usable PEM private key (-----BEGIN PRIVATE KEY-----) "
                             f"for the certificate in {cert}{detail}") from None
    return cert, key


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment with the given flag values on top (``None`` = not given)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})

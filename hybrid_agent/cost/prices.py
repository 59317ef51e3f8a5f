"""The price table ``audit cost`` uses: Realtime models per 1M tokens, and the cascades it compares with.

The defaults are list prices as of ``AS_OF`` (USD); prices change, so a deployment keeps its own
in a file (``HYBRID_AGENT_PRICES_FILE``, YAML or JSON) with the same shape, merged over these:
a model or cascade named there replaces the default of that name, new names are added.

The two cascades are the worked options ``docs/observability.md`` explains.  A cascade is priced
from what the audit holds of a call: speech-to-text per minute of the caller's speech, an LLM per
token of the transcripts it would have read and written (characters / ``chars_per_token``), and
text-to-speech per character of the answers.  ``prompt_tokens`` is what each LLM request reads
besides the conversation (instructions, tool declarations).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

AS_OF = "2026-12-01"
_SNAPSHOT = re.compile(r"(.+)-\d{4}-\d{2}-\d{2}")


class RealtimePrice(BaseModel):
    """USD per 1M tokens of a speech-to-speech model; cached input is billed at the cached rates."""

    model_config = ConfigDict(extra="forbid")

    audio_in: float = Field(ge=0)
    audio_cached_in: float = Field(ge=0)
    audio_out: float = Field(ge=0)
    text_in: float = Field(ge=0)
    text_cached_in: float = Field(ge=0)
    text_out: float = Field(ge=0)


class CascadeOption(BaseModel):
    """A speech-to-text + text LLM + text-to-speech pipeline, priced per unit of what the call used."""

    model_config = ConfigDict(extra="forbid")

    description: str
    stt_per_minute: float = Field(ge=0, description="USD per minute of caller speech transcribed")
    llm_in_per_1m: float = Field(ge=0, description="USD per 1M LLM input tokens")
    llm_out_per_1m: float = Field(ge=0, description="USD per 1M LLM output tokens")
    tts_per_1m_chars: float = Field(ge=0, description="USD per 1M characters spoken")
    prompt_tokens: int = Field(default=1000, ge=0, description="instructions and tools each LLM request reads")
    chars_per_token: float = Field(default=4.0, gt=0)


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: str = AS_OF
    currency: str = "USD"
    realtime: dict[str, RealtimePrice]
    cascades: dict[str, CascadeOption]
    #: characters per second of speech, where an answer's text is not in the audit (the bridge's default rate)
    speaking_chars_per_second: float = Field(default=14.0, gt=0)

    def realtime_price(self, model: str) -> tuple[str, RealtimePrice] | None:
        """The price of ``model``: its own entry, or the entry it is a dated snapshot of
        (``gpt-realtime-2025-08-28``); any other name has no price (never guessed from a prefix)."""
        if model in self.realtime:
            return model, self.realtime[model]
        dated = _SNAPSHOT.fullmatch(model)
        if dated is not None and dated.group(1) in self.realtime:
            return dated.group(1), self.realtime[dated.group(1)]
        return None


DEFAULT_PRICES = PriceTable(
    realtime={
        "gpt-realtime": RealtimePrice(audio_in=32.0, audio_cached_in=0.40, audio_out=64.0,
                                      text_in=4.0, text_cached_in=0.40, text_out=16.0),
        "gpt-realtime-mini": RealtimePrice(audio_in=10.0, audio_cached_in=0.30, audio_out=20.0,
                                           text_in=0.60, text_cached_in=0.06, text_out=2.40),
        "gpt-4o-realtime-preview": RealtimePrice(audio_in=40.0, audio_cached_in=2.50, audio_out=80.0,
                                                 text_in=5.0, text_cached_in=2.50, text_out=20.0),
        "gpt-4o-mini-realtime-preview": RealtimePrice(audio_in=10.0, audio_cached_in=0.30, audio_out=20.0,
                                                      text_in=0.60, text_cached_in=0.30, text_out=2.40),
    },
    cascades={
        "deepgram+groq+openai-tts": CascadeOption(
            description="Deepgram Nova speech-to-text, Llama 3.3 70B on Groq, OpenAI TTS HD",
            stt_per_minute=0.0043, llm_in_per_1m=0.59, llm_out_per_1m=0.79, tts_per_1m_chars=30.0,
        ),
        "openai-cascade": CascadeOption(
            description="gpt-4o-mini-transcribe, gpt-4.1-mini, OpenAI TTS",
            stt_per_minute=0.003, llm_in_per_1m=0.40, llm_out_per_1m=1.60, tts_per_1m_chars=15.0,
        ),
    },
)


class PriceFileError(ValueError):
    """The price file cannot be used; the message is one line for a person."""


def load_prices(path: str | Path | None) -> PriceTable:
    """The default table, with ``path``'s entries (YAML or JSON) merged over it."""
    if path is None:
        return DEFAULT_PRICES
    try:
        raw = Path(path).read_text()
        data: Any = json.loads(raw) if str(path).endswith(".json") else yaml.safe_load(raw)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise PriceFileError(f"price file {path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not isinstance(data, dict):
        raise PriceFileError(f"price file {path}: expected a mapping with realtime: and/or cascades:")
    merged = DEFAULT_PRICES.model_dump()
    for key, value in data.items():
        if key in ("realtime", "cascades") and isinstance(value, dict):
            merged[key].update(value)
        else:
            merged[key] = value
    try:
        return PriceTable.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PriceFileError(f"price file {path}: {where}: {first['msg']}") from None

"""What calls cost on the Realtime model they ran on, and what the same calls would cost on a cascade.

Realtime: the token usage of every ``response.done`` (``response_metrics`` rows) at the model's
prices.  Cascade: from what the audit holds of the call, per ``CascadeOption``: the caller's
speech in minutes (speech-to-text), the transcripts in tokens (the LLM reads the conversation
so far plus its prompt for every answer, and writes the answer), the answers in characters
(text-to-speech).  Stored text is redacted: a placeholder is about as long as what it replaced,
which is close enough for a bill.  Where a turn's text is not kept, its length comes from its
audio at the table's speaking rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from sqlalchemy import Connection, select

from hybrid_agent.audit.models import TABLES
from hybrid_agent.cost.prices import CascadeOption, PriceTable, RealtimePrice

TOKENS_PER_SECOND_IN = 10  # the service's audio tokens per second of caller audio
TOKENS_PER_SECOND_OUT = 20  # ... and per second of the model's audio
GROUPINGS = ("call", "day", "pack", "model")


def realtime_cost(tokens: Mapping[str, int], price: RealtimePrice) -> float:
    """USD for one response's usage (``ResponseMetrics`` token fields); cached input at the cached rates."""
    cached_text = min(tokens.get("cached_text_tokens", 0), tokens.get("input_text_tokens", 0))
    cached_audio = min(tokens.get("cached_audio_tokens", 0), tokens.get("input_audio_tokens", 0))
    return (
        (tokens.get("input_text_tokens", 0) - cached_text) * price.text_in
        + cached_text * price.text_cached_in
        + (tokens.get("input_audio_tokens", 0) - cached_audio) * price.audio_in
        + cached_audio * price.audio_cached_in
        + tokens.get("output_text_tokens", 0) * price.text_out
        + tokens.get("output_audio_tokens", 0) * price.audio_out
    ) / 1e6


@dataclass(frozen=True, slots=True)
class SpokenTurn:
    role: Literal["user", "assistant"]
    audio_ms: float
    chars: int


@dataclass(frozen=True, slots=True)
class CascadeCost:
    stt: float
    llm: float
    tts: float

    @property
    def total(self) -> float:
        return self.stt + self.llm + self.tts


def cascade_cost(turns: Iterable[SpokenTurn], option: CascadeOption) -> CascadeCost:
    """USD the turns (in order) would cost on ``option``: every answer is one LLM request that reads
    the prompt and the conversation so far."""
    stt = llm = tts = 0.0
    context_chars = 0
    for turn in turns:
        if turn.role == "user":
            stt += turn.audio_ms / 60_000 * option.stt_per_minute
        else:
            tokens_in = option.prompt_tokens + context_chars / option.chars_per_token
            llm += (tokens_in * option.llm_in_per_1m + turn.chars / option.chars_per_token * option.llm_out_per_1m) / 1e6
            tts += turn.chars * option.tts_per_1m_chars / 1e6
        context_chars += turn.chars
    return CascadeCost(stt, llm, tts)


def worked_example(seconds_in: float, seconds_out: float, prices: PriceTable) -> dict[str, float]:
    """One turn of ``seconds_in`` of caller speech answered with ``seconds_out`` of speech, on every
    model and cascade of the table (the example docs/observability.md works through)."""
    tokens = {"input_audio_tokens": int(seconds_in * TOKENS_PER_SECOND_IN),
              "output_audio_tokens": int(seconds_out * TOKENS_PER_SECOND_OUT)}
    cps = prices.speaking_chars_per_second
    turns = [SpokenTurn("user", seconds_in * 1000, round(seconds_in * cps)),
             SpokenTurn("assistant", seconds_out * 1000, round(seconds_out * cps))]
    out = {name: realtime_cost(tokens, price) for name, price in prices.realtime.items()}
    out.update({name: cascade_cost(turns, option).total for name, option in prices.cascades.items()})
    return out


# ---------------------------------------------------------------------------- from the audit database
@dataclass(slots=True)
class CallCost:
    call_id: str
    started_at: float | None
    model: str
    pack: str | None
    responses: int = 0
    unpriced_responses: int = 0  # responses of a model the price table does not know
    caller_speech_ms: float = 0.0
    answer_audio_ms: float = 0.0
    tokens: dict[str, int] = field(default_factory=dict)
    realtime_usd: float = 0.0
    cascades: dict[str, CascadeCost] = field(default_factory=dict)
    priced_as: str | None = None


def _chars(text: Any, audio_ms: Any, cps: float) -> int:
    if isinstance(text, str):
        return len(text)
    return round(float(audio_ms or 0) / 1000 * cps)


def price_response(row: Mapping[str, Any], model: str, prices: PriceTable) -> float | None:
    """USD of one ``response_metrics`` row, or None when the table has no price for its model."""
    priced = _priced(row, model, prices)
    return None if priced is None else priced[1]


def _priced(row: Mapping[str, Any], model: str, prices: PriceTable) -> tuple[str, float] | None:
    """The price table's name for the row's model and the row's USD, or None without a price."""
    found = prices.realtime_price(str(row.get("model") or model))
    if found is None:
        return None
    return found[0], realtime_cost({k: int(row.get(k) or 0) for k in TOKEN_FIELDS}, found[1])


TOKEN_FIELDS = ("input_text_tokens", "input_audio_tokens", "input_image_tokens", "cached_text_tokens",
                "cached_audio_tokens", "output_text_tokens", "output_audio_tokens")


def call_costs(conn: Connection, prices: PriceTable, *, since: float | None = None, until: float | None = None,
               call_id: str | None = None) -> list[CallCost]:
    """Every call's Realtime cost and cascade comparison, oldest first."""
    calls_t, turns_t, metrics_t = TABLES["calls"], TABLES["turns"], TABLES["response_metrics"]
    q = select(calls_t.c.id, calls_t.c.started_at, calls_t.c.model, calls_t.c.policy_pack).order_by(calls_t.c.started_at, calls_t.c.id)
    if since is not None:
        q = q.where(calls_t.c.started_at >= since)
    if until is not None:
        q = q.where(calls_t.c.started_at < until)
    if call_id is not None:
        q = q.where(calls_t.c.id == call_id)
    costs = {r.id: CallCost(r.id, r.started_at, r.model or "", r.policy_pack) for r in conn.execute(q)}
    if not costs:
        return []
    ids = list(costs)
    for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
        turns: dict[str, list[SpokenTurn]] = {}
        tq = select(turns_t.c.call_id, turns_t.c.role, turns_t.c.audio_ms, turns_t.c.text).where(
            turns_t.c.call_id.in_(chunk)).order_by(turns_t.c.call_id, turns_t.c.seq)
        for t in conn.execute(tq):
            role = "user" if t.role == "user" else "assistant"
            turns.setdefault(t.call_id, []).append(
                SpokenTurn(role, float(t.audio_ms or 0), _chars(t.text, t.audio_ms, prices.speaking_chars_per_second)))
        for m in conn.execute(select(metrics_t).where(metrics_t.c.call_id.in_(chunk))).mappings():
            c = costs[m["call_id"]]
            c.responses += 1
            for k in TOKEN_FIELDS:
                c.tokens[k] = c.tokens.get(k, 0) + int(m[k] or 0)
            priced = _priced(m, c.model, prices)
            if priced is None:
                c.unpriced_responses += 1
            else:
                c.priced_as = priced[0]
                c.realtime_usd += priced[1]
        for cid, spoken in turns.items():
            c = costs[cid]
            c.caller_speech_ms = sum(t.audio_ms for t in spoken if t.role == "user")
            c.answer_audio_ms = sum(t.audio_ms for t in spoken if t.role == "assistant")
            c.cascades = {name: cascade_cost(spoken, option) for name, option in prices.cascades.items()}
    for c in costs.values():
        if not c.cascades:
            c.cascades = {name: CascadeCost(0.0, 0.0, 0.0) for name in prices.cascades}
    return list(costs.values())


def _group_key(c: CallCost, by: str) -> str:
    if by == "call":
        return c.call_id
    if by == "day":
        return datetime.fromtimestamp(c.started_at or 0, timezone.utc).strftime("%Y-%m-%d")
    if by == "pack":
        return c.pack or "(no pack)"
    return c.model or "(unknown)"


def summarize(costs: Sequence[CallCost], by: str, prices: PriceTable) -> dict[str, Any]:
    """Rows grouped ``by`` call | day | pack | model, and the totals, as JSON-ready dicts."""
    if by not in GROUPINGS:
        raise ValueError(f"--by must be one of {', '.join(GROUPINGS)}")
    groups: dict[str, list[CallCost]] = {}
    for c in costs:
        groups.setdefault(_group_key(c, by), []).append(c)

    def row(key: str | None, members: Sequence[CallCost]) -> dict[str, Any]:
        realtime = sum(c.realtime_usd for c in members)
        out: dict[str, Any] = {
            "calls": len(members),
            "responses": sum(c.responses for c in members),
            "unpriced_responses": sum(c.unpriced_responses for c in members),
            "caller_speech_s": round(sum(c.caller_speech_ms for c in members) / 1000, 3),
            "answer_audio_s": round(sum(c.answer_audio_ms for c in members) / 1000, 3),
            "tokens": {k: sum(c.tokens.get(k, 0) for c in members) for k in TOKEN_FIELDS},
            "realtime_usd": round(realtime, 6),
            "cascades": {},
        }
        if key is not None:
            out = {by: key, **out}
        if by == "call" and key is not None and members:
            out.update({"model": members[0].model, "pack": members[0].pack, "started_at": members[0].started_at})
        for name in prices.cascades:
            parts = [c.cascades[name] for c in members if name in c.cascades]
            total = CascadeCost(sum(p.stt for p in parts), sum(p.llm for p in parts), sum(p.tts for p in parts))
            out["cascades"][name] = {
                "usd": round(total.total, 6), "stt_usd": round(total.stt, 6), "llm_usd": round(total.llm, 6),
                "tts_usd": round(total.tts, 6),
                "ratio_to_realtime": round(total.total / realtime, 3) if realtime > 0 else None,
            }
        return out

    return {
        "by": by,
        "prices_as_of": prices.as_of,
        "currency": prices.currency,
        "rows": [row(k, v) for k, v in groups.items()],
        "total": row(None, costs),
    }

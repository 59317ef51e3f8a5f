"""Cost per call: the seed's worked examples to a tenth of a cent, and ``audit cost`` on a database."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hybrid_agent.audit.records import CallEnded, CallStarted, ResponseMetrics, TurnRecord
from hybrid_agent.cost import DEFAULT_PRICES, load_prices, worked_example
from hybrid_agent.cost.estimate import realtime_cost
from hybrid_agent.cost.prices import PriceFileError

from audit_helpers import cli, cli_json, record


def test_the_seeds_worked_examples() -> None:
    """60 s of caller speech answered with 30 s: gpt-realtime about $0.058, mini $0.018, the
    Deepgram + Groq + OpenAI TTS cascade about $0.018 (docs/observability.md works them out)."""
    cost = worked_example(60, 30, DEFAULT_PRICES)
    assert cost["gpt-realtime"] == pytest.approx(600 * 32e-6 + 600 * 64e-6)
    assert cost["gpt-realtime"] == pytest.approx(0.058, abs=0.0005)
    assert cost["gpt-realtime-mini"] == pytest.approx(0.018, abs=0.0005)
    assert cost["deepgram+groq+openai-tts"] == pytest.approx(0.018, abs=0.0005)
    assert cost["openai-cascade"] == pytest.approx(0.010, abs=0.0005)


def test_cached_input_and_snapshots_are_priced_right() -> None:
    price = DEFAULT_PRICES.realtime["gpt-realtime"]
    tokens = {"input_audio_tokens": 1000, "cached_audio_tokens": 800, "input_text_tokens": 500, "cached_text_tokens": 500}
    assert realtime_cost(tokens, price) == pytest.approx((200 * 32 + 800 * 0.40 + 500 * 0.40) / 1e6)
    assert DEFAULT_PRICES.realtime_price("gpt-realtime-2025-08-28")[0] == "gpt-realtime"  # type: ignore[index]
    assert DEFAULT_PRICES.realtime_price("gpt-realtime-mini-2025-10-06")[0] == "gpt-realtime-mini"  # type: ignore[index]
    assert DEFAULT_PRICES.realtime_price("some-other-model") is None


def worked_call(call_id: str, model: str = "gpt-realtime", pack: str | None = "retail-banking",
                started_at: float | None = None, slow: bool = False) -> list[object]:
    return [
        CallStarted(call_id, started_at or time.time(), "realtime", model, "sim", policy_pack=pack),
        TurnRecord(call_id, 1, "user", "item_u", "x" * 840, "completed", 0.0, 60_000.0, audio_ms=60_000.0, redacted=True),
        TurnRecord(call_id, 2, "assistant", "item_a", "y" * 420, "completed", 60_500.0, 90_500.0, audio_ms=30_000.0,
                   response_id="resp_1", redacted=True),
        ResponseMetrics(call_id, 0, 90_600.0, model, "completed", response_id="resp_1", turn_seq=2, user_seq=1,
                        reference="speech_stopped", reference_ms=60_000.0, first_audio_ms=60_400.0, released_ms=60_400.0,
                        ttfa_ms=400.0 if not slow else 2400.0, gate_ms=0.0, audio_ms=30_000.0,
                        over_budget="time_to_first_audio" if slow else None,
                        input_audio_tokens=600, output_audio_tokens=600),
        CallEnded(call_id, 91_000.0, "completed"),
    ]


async def test_audit_cost_prices_the_calls_and_the_cascades(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    day = time.mktime((2026, 11, 30, 12, 0, 0, 0, 0, 0))
    await record(db_url, [*worked_call("call_a", started_at=day), *worked_call("call_b", model="gpt-realtime-mini-2025-10-06",
                                                                                  pack="clinic", started_at=day + 86400, slow=True),
                          *worked_call("call_c", model="unknown-model", started_at=day + 86400)], tmp_path)
    report = cli_json(capsys, "audit", "cost", "--json", "--db", db_url)
    rows = {r["call"]: r for r in report["rows"]}
    assert rows["call_a"]["realtime_usd"] == pytest.approx(0.0576)
    assert rows["call_b"]["realtime_usd"] == pytest.approx(0.018)
    assert rows["call_c"]["realtime_usd"] == 0 and rows["call_c"]["unpriced_responses"] == 1  # never guessed
    for r in rows.values():
        assert r["cascades"]["deepgram+groq+openai-tts"]["usd"] == pytest.approx(0.0177, abs=0.0001)
        assert r["cascades"]["openai-cascade"]["usd"] == pytest.approx(0.00995, abs=0.0001)
        assert r["caller_speech_s"] == 60 and r["answer_audio_s"] == 30
    assert rows["call_a"]["cascades"]["deepgram+groq+openai-tts"]["ratio_to_realtime"] == pytest.approx(0.307, abs=0.001)
    assert report["total"]["calls"] == 3 and report["total"]["realtime_usd"] == pytest.approx(0.0756)
    by_day = cli_json(capsys, "audit", "cost", "--json", "--by", "day", "--db", db_url)
    assert {r["day"]: r["calls"] for r in by_day["rows"]} == {"2026-11-30": 1, "2026-12-01": 2}
    by_pack = cli_json(capsys, "audit", "cost", "--json", "--by", "pack", "--db", db_url)
    assert {r["pack"] for r in by_pack["rows"]} == {"retail-banking", "clinic"}
    since = cli_json(capsys, "audit", "cost", "--json", "--since", str(day + 3600), "--db", db_url)
    assert since["total"]["calls"] == 2
    # a price file changes the figures; a bad one is one line and exit 2
    prices = tmp_path / "prices.yaml"
    prices.write_text("as_of: '2027-01-01'\nrealtime:\n  gpt-realtime: {audio_in: 16, audio_cached_in: 0.2, audio_out: 32,"
                      " text_in: 2, text_cached_in: 0.2, text_out: 8}\n")
    cheaper = cli_json(capsys, "audit", "cost", "--json", "--prices", str(prices), "--db", db_url)
    assert {r["call"]: r for r in cheaper["rows"]}["call_a"]["realtime_usd"] == pytest.approx(0.0288)
    assert cheaper["prices_as_of"] == "2027-01-01"
    prices.write_text("realtime:\n  gpt-realtime: {audio_in: -1}\n")
    rc, out, err = cli(capsys, "audit", "cost", "--prices", str(prices), "--db", db_url)
    assert rc == 2 and err.startswith("error: price file") and err.count("\n") == 1 and "Traceback" not in err
    # the text table
    rc, out, err = cli(capsys, "audit", "cost", "--by", "model", "--db", db_url)
    assert rc == 0 and "$0.0576" in out and "TOTAL" in out and "1 unpriced" in out
    # slow calls and the per-turn figures of audit show
    slow = cli_json(capsys, "audit", "calls", "--slow", "--json", "--db", db_url)
    assert [r["call_id"] for r in slow] == ["call_b"] and slow[0]["slow"] == 1 and slow[0]["ttfa_max_ms"] == 2400.0
    shown = cli_json(capsys, "audit", "show", "call_a", "--json", "--db", db_url)
    assert {"call", "turns", "timeline", "gate_actions", "decisions"} <= set(shown)
    assert shown["cost_usd"] == pytest.approx(0.0576) and shown["responses"][0]["cost_usd"] == pytest.approx(0.0576)
    answer = next(t for t in shown["turns"] if t["role"] == "assistant")
    assert answer["ttfa_ms"] == 400.0 and answer["cost_usd"] == pytest.approx(0.0576)
    rc, out, err = cli(capsys, "audit", "show", "call_b", "--db", db_url)
    assert rc == 0 and "first audio 2400 ms" in out and "$0.0180" in out and "SLOW: time_to_first_audio" in out


def test_price_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "p.json"
    bad.write_text("{not json")
    with pytest.raises(PriceFileError, match="price file"):
        load_prices(bad)
    bad.write_text('{"cascades": {"x": {"description": "y"}}}')
    with pytest.raises(PriceFileError, match="cascades.x"):
        load_prices(bad)
    with pytest.raises(PriceFileError):
        load_prices(tmp_path / "missing.yaml")

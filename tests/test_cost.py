"""Cost per call: the seed's worked examples to a tenth of a cent, and ``audit cost`` on a database."""

from __future__ import annotations

import json
import calendar
import time
from pathlib import Path

import pytest

from hybrid_agent.audit.records import CallEnded, CallStarted, ResponseMetrics, TurnRecord
from hybrid_agent.cost import DEFAULT_PRICES, cascade_cost, load_prices, worked_example
from hybrid_agent.cost.estimate import SpokenTurn, realtime_cost
from hybrid_agent.cost.prices import AS_OF, PriceFileError

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
    day = calendar.timegm((2026, 11, 30, 12, 0, 0, 0, 0, 0))
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


# ============================================================================ more cases
T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
DEEPGRAM, OPENAI = "deepgram+groq+openai-tts", "openai-cascade"
SHOW_KEYS = {"call", "ended", "turns", "tool_calls", "decisions", "disclosures", "events", "errors", "config_refused",
             "gate_actions", "blocked", "leaked_ms", "timeline"}  # audit show --json before response timing
CALLS_KEYS = {"call_id", "started_at", "channel", "model", "upstream", "caller_pseudonym", "policy_pack", "policy_version",
              "gate_mode", "outcome", "duration_ms", "turns", "violations", "errors", "config_refused", "blocked", "leaked_ms"}


@pytest.fixture(autouse=True)
def _no_price_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYBRID_AGENT_PRICES_FILE", raising=False)


def the_call(call_id: str = "call_w", model: str = "gpt-realtime", *, started_at: float = T0, pack: str | None = None,
             response_model: str | None = None, ttfa: float | None = 350.0, over: str | None = None,
             **tokens: int) -> list[object]:
    """The worked example as a call: 60 s of caller speech (840 characters) answered with 30 s (420)."""
    usage = {"input_audio_tokens": 600, "output_audio_tokens": 600, **tokens}
    return [
        CallStarted(call_id, started_at, "realtime", model, "openai", policy_pack=pack),
        TurnRecord(call_id, 0, "user", "item_u", "a" * 840, "completed", 0.0, 60_000.0, audio_ms=60_000.0, redacted=True),
        TurnRecord(call_id, 1, "assistant", "item_a", "b" * 420, "completed", 60_400.0, 90_400.0, audio_ms=30_000.0,
                   response_id="resp_w", redacted=True),
        ResponseMetrics(call_id, 0, 90_500.0, response_model or model, "completed", response_id="resp_w", turn_seq=1,
                        user_seq=0, reference="speech_stopped", reference_ms=60_000.0, first_audio_ms=60_350.0,
                        released_ms=None if ttfa is None else 60_000.0 + ttfa, ttfa_ms=ttfa,
                        gate_ms=None if ttfa is None else 0.0, audio_ms=30_000.0, over_budget=over, **usage),
        CallEnded(call_id, 91_000.0, "completed"),
    ]


def cost_json(capsys: pytest.CaptureFixture[str], db_url: str, *args: str) -> dict:
    return cli_json(capsys, "audit", "cost", *args, "--db", db_url)


def test_the_worked_example_to_a_tenth_of_a_cent() -> None:
    cost = worked_example(60, 30, DEFAULT_PRICES)
    assert round(cost["gpt-realtime"], 4) == 0.0576 and cost["gpt-realtime"] == pytest.approx(0.058, abs=0.001)
    assert cost["gpt-realtime"] == pytest.approx(0.0192 + 0.0384)
    assert round(cost["gpt-realtime-mini"], 4) == 0.0180 and cost["gpt-realtime-mini"] == pytest.approx(0.018)
    assert round(cost[DEEPGRAM], 4) == 0.0177 and cost[DEEPGRAM] == pytest.approx(0.018, abs=0.001)
    assert round(cost[OPENAI], 4) == 0.0100 and cost[OPENAI] == pytest.approx(0.010, abs=0.001)
    assert cost["gpt-4o-realtime-preview"] == pytest.approx(600 * 40e-6 + 600 * 80e-6)
    assert set(cost) == set(DEFAULT_PRICES.realtime) | set(DEFAULT_PRICES.cascades)
    # the parts, as docs/observability.md works them out
    turns = [SpokenTurn("user", 60_000, 840), SpokenTurn("assistant", 30_000, 420)]
    d = cascade_cost(turns, DEFAULT_PRICES.cascades[DEEPGRAM])
    assert d.stt == pytest.approx(0.0043)
    assert d.llm == pytest.approx((1_210 * 0.59 + 105 * 0.79) / 1e6) and round(d.llm, 4) == 0.0008
    assert d.tts == pytest.approx(0.0126) and d.total == pytest.approx(cost[DEEPGRAM])
    o = cascade_cost(turns, DEFAULT_PRICES.cascades[OPENAI])
    assert (round(o.stt, 4), round(o.llm, 4), round(o.tts, 4)) == (0.003, 0.0007, 0.0063)
    assert o.total == pytest.approx(cost[OPENAI])


def test_cascade_reads_the_whole_conversation_for_every_answer() -> None:
    opt = DEFAULT_PRICES.cascades[OPENAI]
    turns = [SpokenTurn("user", 6_000, 40), SpokenTurn("assistant", 3_000, 20),
             SpokenTurn("user", 6_000, 40), SpokenTurn("assistant", 3_000, 20)]
    c = cascade_cost(turns, opt)
    tokens_in = (1_000 + 40 / 4) + (1_000 + 100 / 4)  # the second answer reads the first exchange too
    assert c.llm == pytest.approx((tokens_in * 0.40 + 2 * 5 * 1.60) / 1e6)
    assert c.stt == pytest.approx(0.2 * 0.003) and c.tts == pytest.approx(40 * 15 / 1e6)


async def test_the_worked_example_from_the_database(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await record(db_url, the_call(), tmp_path)
    report = cost_json(capsys, db_url)
    assert report["by"] == "call" and report["prices_as_of"] == AS_OF and report["currency"] == "USD"
    [row] = report["rows"]
    assert (row["call"], row["model"], row["pack"], row["started_at"]) == ("call_w", "gpt-realtime", None, T0)
    assert (row["calls"], row["responses"], row["unpriced_responses"]) == (1, 1, 0)
    assert (row["caller_speech_s"], row["answer_audio_s"]) == (60.0, 30.0)
    assert row["tokens"]["input_audio_tokens"] == 600 and row["tokens"]["output_audio_tokens"] == 600
    assert sum(row["tokens"].values()) == 1_200
    assert row["realtime_usd"] == pytest.approx(0.0576, abs=1e-6)
    d, o = row["cascades"][DEEPGRAM], row["cascades"][OPENAI]
    assert d["usd"] == pytest.approx(0.017697, abs=1e-6) and round(d["usd"], 4) == 0.0177
    assert (d["stt_usd"], d["tts_usd"]) == (pytest.approx(0.0043), pytest.approx(0.0126))
    assert d["llm_usd"] == pytest.approx((1_210 * 0.59 + 105 * 0.79) / 1e6, abs=1e-6)
    assert o["usd"] == pytest.approx(0.009952, abs=1e-6) and round(o["usd"], 4) == 0.0100
    assert d["ratio_to_realtime"] == pytest.approx(0.307) and o["ratio_to_realtime"] == pytest.approx(0.173)
    total = {k: v for k, v in row.items() if k not in ("call", "model", "pack", "started_at")}
    assert report["total"] == total
    # the same figures as worked_example
    example = worked_example(60, 30, DEFAULT_PRICES)
    assert row["realtime_usd"] == pytest.approx(example["gpt-realtime"], abs=1e-6)
    assert d["usd"] == pytest.approx(example[DEEPGRAM], abs=1e-6) and o["usd"] == pytest.approx(example[OPENAI], abs=1e-6)
    # the text table
    rc, out, err = cli(capsys, "audit", "cost", "--db", db_url)
    assert rc == 0 and err == ""
    assert "call_w" in out and "$0.0576" in out and "$0.0177 (0.31x)" in out and "$0.0100 (0.17x)" in out
    assert "60s / 30s" in out and "TOTAL" in out and f"prices as of {AS_OF}" in out and "unpriced" not in out


async def test_an_empty_database_costs_nothing(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    report = cost_json(capsys, db_url)
    assert report["rows"] == [] and report["total"]["calls"] == 0 and report["total"]["realtime_usd"] == 0
    assert all(c["usd"] == 0 and c["ratio_to_realtime"] is None for c in report["total"]["cascades"].values())
    rc, out, _ = cli(capsys, "audit", "cost", "--db", db_url)
    assert rc == 0 and "TOTAL" in out


async def test_cached_tokens_are_priced_at_the_cached_rates(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tokens = {"input_text_tokens": 1_000, "cached_text_tokens": 800, "cached_audio_tokens": 400, "output_text_tokens": 50}
    await record(db_url, the_call("call_cached", **tokens), tmp_path)
    expected = (200 * 32 + 400 * 0.40 + 200 * 4 + 800 * 0.40 + 50 * 16 + 600 * 64) / 1e6
    assert realtime_cost({"input_audio_tokens": 600, "output_audio_tokens": 600, **tokens},
                         DEFAULT_PRICES.realtime["gpt-realtime"]) == pytest.approx(expected)
    [row] = cost_json(capsys, db_url)["rows"]
    assert row["realtime_usd"] == pytest.approx(expected, abs=1e-6)
    assert row["tokens"]["cached_text_tokens"] == 800 and row["tokens"]["cached_audio_tokens"] == 400
    shown = cli_json(capsys, "audit", "show", "call_cached", "--db", db_url)
    assert shown["cost_usd"] == pytest.approx(expected, abs=1e-6)
    # cached counts are part of the input counts: more cached than input is never a negative price
    odd = realtime_cost({"input_audio_tokens": 100, "cached_audio_tokens": 900}, DEFAULT_PRICES.realtime["gpt-realtime"])
    assert odd == pytest.approx(100 * 0.40 / 1e6)


async def test_snapshots_are_priced_as_their_model_and_unknown_models_are_not_guessed(
        db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await record(db_url, [*the_call("call_snap", "gpt-realtime-2025-08-28", started_at=T0),
                          *the_call("call_mini", "gpt-realtime-mini-2025-10-06", started_at=T0 + 1),
                          *the_call("call_odd", "acme-voice-1", started_at=T0 + 2)], tmp_path)
    report = cost_json(capsys, db_url)
    rows = {r["call"]: r for r in report["rows"]}
    assert list(rows) == ["call_snap", "call_mini", "call_odd"]  # oldest first
    assert rows["call_snap"]["realtime_usd"] == pytest.approx(0.0576, abs=1e-6)
    assert rows["call_mini"]["realtime_usd"] == pytest.approx(0.018, abs=1e-6)
    odd = rows["call_odd"]
    assert odd["realtime_usd"] == 0 and odd["responses"] == 1 and odd["unpriced_responses"] == 1
    assert odd["tokens"]["output_audio_tokens"] == 600  # its usage is still counted
    assert odd["cascades"][DEEPGRAM]["usd"] == pytest.approx(0.017697, abs=1e-6)  # the cascades need no model price
    assert odd["cascades"][DEEPGRAM]["ratio_to_realtime"] is None
    assert report["total"]["unpriced_responses"] == 1 and report["total"]["responses"] == 3
    assert report["total"]["realtime_usd"] == pytest.approx(0.0756, abs=1e-6)
    by_model = cost_json(capsys, db_url, "--by", "model")
    assert {r["model"]: (r["calls"], r["unpriced_responses"]) for r in by_model["rows"]} == {
        "gpt-realtime-2025-08-28": (1, 0), "gpt-realtime-mini-2025-10-06": (1, 0), "acme-voice-1": (1, 1)}
    rc, out, _ = cli(capsys, "audit", "cost", "--by", "model", "--db", db_url)
    assert rc == 0 and "MODEL" in out and "(+1 unpriced)" in out
    for cid, cost in (("call_snap", 0.0576), ("call_mini", 0.018)):
        shown = cli_json(capsys, "audit", "show", cid, "--db", db_url)
        assert shown["cost_usd"] == pytest.approx(cost, abs=1e-6)
    shown = cli_json(capsys, "audit", "show", "call_odd", "--db", db_url)
    assert shown["cost_usd"] is None and shown["responses"][0]["cost_usd"] is None
    rc, out, _ = cli(capsys, "audit", "show", "call_odd", "--db", db_url)
    assert rc == 0 and "no price for this model" in out and "$" not in out


def test_an_unknown_sibling_model_is_not_priced_as_its_prefix() -> None:
    assert DEFAULT_PRICES.realtime_price("gpt-realtime-2025-08-28") is not None
    assert DEFAULT_PRICES.realtime_price("gpt-realtime-nano") is None


async def test_grouping_by_day_pack_and_model(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await record(db_url, [
        *the_call("call_1", started_at=T0 + 10, pack="retail-banking"),
        *the_call("call_2", "gpt-realtime-mini", started_at=T0 + 86_399, pack=None),
        *the_call("call_3", started_at=T0 + 86_400, pack="clinic"),
        *the_call("call_4", "gpt-realtime-mini", started_at=T0 + 2 * 86_400 + 5, pack="retail-banking"),
    ], tmp_path)
    full, mini = 0.0576, 0.018

    def grouped(by: str, *extra: str) -> dict[str, tuple[int, float]]:
        report = cost_json(capsys, db_url, "--by", by, *extra)
        assert report["by"] == by
        out = {r[by]: (r["calls"], r["realtime_usd"]) for r in report["rows"]}
        assert report["total"]["calls"] == sum(n for n, _ in out.values())
        assert report["total"]["realtime_usd"] == pytest.approx(sum(u for _, u in out.values()), abs=1e-6)
        return out

    assert grouped("day") == {"2026-01-01": (2, pytest.approx(full + mini)), "2026-01-02": (1, pytest.approx(full)),
                              "2026-01-03": (1, pytest.approx(mini))}
    assert grouped("pack") == {"retail-banking": (2, pytest.approx(full + mini)), "(no pack)": (1, pytest.approx(mini)),
                               "clinic": (1, pytest.approx(full))}
    assert grouped("model") == {"gpt-realtime": (2, pytest.approx(2 * full)), "gpt-realtime-mini": (2, pytest.approx(2 * mini))}
    assert list(grouped("call")) == ["call_1", "call_2", "call_3", "call_4"]
    # --since / --until on the call's start
    assert list(grouped("call", "--since", str(T0 + 86_399), "--until", str(T0 + 2 * 86_400))) == ["call_2", "call_3"]
    assert grouped("day", "--since", "2026-01-02", "--until", "2026-01-03") == {"2026-01-02": (1, pytest.approx(full))}
    # cascades are summed per group too
    by_pack = cost_json(capsys, db_url, "--by", "pack")
    banking = next(r for r in by_pack["rows"] if r["pack"] == "retail-banking")
    assert banking["cascades"][DEEPGRAM]["usd"] == pytest.approx(2 * 0.017697, abs=1e-6)
    assert banking["caller_speech_s"] == 120 and banking["responses"] == 2
    rc, out, _ = cli(capsys, "audit", "cost", "--by", "day", "--db", db_url)
    assert rc == 0 and "DAY" in out and "2026-01-03" in out


async def test_a_price_file_changes_the_figures(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    await record(db_url, [*the_call("call_full"), *the_call("call_mini", "gpt-realtime-mini-2025-10-06", started_at=T0 + 1)],
                 tmp_path)
    yaml_file = tmp_path / "prices.yaml"
    yaml_file.write_text(
        "as_of: '2027-02-01'\n"
        "realtime:\n"
        "  gpt-realtime: {audio_in: 32, audio_cached_in: 0.4, audio_out: 32, text_in: 4, text_cached_in: 0.4, text_out: 16}\n"
        "cascades:\n"
        "  my-stack: {description: in-house, stt_per_minute: 0.01, llm_in_per_1m: 0, llm_out_per_1m: 0,"
        " tts_per_1m_chars: 0}\n")
    report = cost_json(capsys, db_url, "--prices", str(yaml_file))
    rows = {r["call"]: r for r in report["rows"]}
    assert report["prices_as_of"] == "2027-02-01"
    assert rows["call_full"]["realtime_usd"] == pytest.approx(0.0192 + 0.0192, abs=1e-6)  # audio out at $32
    assert rows["call_mini"]["realtime_usd"] == pytest.approx(0.018, abs=1e-6)  # the other defaults stay
    assert set(rows["call_full"]["cascades"]) == {DEEPGRAM, OPENAI, "my-stack"}
    assert rows["call_full"]["cascades"]["my-stack"]["usd"] == pytest.approx(0.01)  # one minute of caller speech
    rc, out, _ = cli(capsys, "audit", "cost", "--prices", str(yaml_file), "--db", db_url)
    assert rc == 0 and "MY-STACK" in out and "$0.0384" in out and "2027-02-01" in out
    # JSON works too, and so does the environment's file (which audit show uses as well)
    json_file = tmp_path / "prices.json"
    json_file.write_text(json.dumps({"realtime": {"gpt-realtime-mini": {
        "audio_in": 20, "audio_cached_in": 0.3, "audio_out": 40, "text_in": 0.6, "text_cached_in": 0.06, "text_out": 2.4}}}))
    monkeypatch.setenv("HYBRID_AGENT_PRICES_FILE", str(json_file))
    rows = {r["call"]: r for r in cost_json(capsys, db_url)["rows"]}
    assert rows["call_mini"]["realtime_usd"] == pytest.approx(0.036, abs=1e-6)
    assert rows["call_full"]["realtime_usd"] == pytest.approx(0.0576, abs=1e-6)
    assert cli_json(capsys, "audit", "show", "call_mini", "--db", db_url)["cost_usd"] == pytest.approx(0.036, abs=1e-6)
    # --prices wins over the environment
    rows = {r["call"]: r for r in cost_json(capsys, db_url, "--prices", str(yaml_file))["rows"]}
    assert rows["call_mini"]["realtime_usd"] == pytest.approx(0.018, abs=1e-6)


BAD_PRICE_FILES = {
    "yaml_syntax": ("prices.yaml", "realtime: [1, 2\n"),
    "json_syntax": ("prices.json", "{not json"),
    "not_a_mapping": ("prices.yaml", "- gpt-realtime\n- 32\n"),
    "empty": ("prices.yaml", ""),
    "negative_price": ("prices.yaml", "realtime:\n  gpt-realtime: {audio_in: -1}\n"),
    "missing_field": ("prices.yaml", "realtime:\n  gpt-realtime: {audio_in: 16}\n"),
    "unknown_field": ("prices.yaml", "cascades:\n  x: {description: y, stt_per_minute: 1, llm_in_per_1m: 1,"
                                     " llm_out_per_1m: 1, tts_per_1m_chars: 1, bogus: 3}\n"),
    "string_price": ("prices.yaml", "realtime:\n  m: {audio_in: lots, audio_cached_in: 0, audio_out: 0, text_in: 0,"
                                    " text_cached_in: 0, text_out: 0}\n"),
    "realtime_null": ("prices.yaml", "realtime: null\n"),
    "zero_speaking_rate": ("prices.yaml", "speaking_chars_per_second: 0\n"),
    "unknown_top_level": ("prices.yaml", "currency_rate: 1.1\n"),
    "binary": ("prices.yaml", b"\xff\xfe\x00\x01"),
    "missing": ("missing.yaml", None),
    "directory": ("a_dir", "dir"),
}


@pytest.mark.parametrize("case", list(BAD_PRICE_FILES))
def test_a_bad_price_file_is_one_line_and_exit_2(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name, content = BAD_PRICE_FILES[case]
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(PriceFileError) as exc:
        load_prices(path)
    assert "\n" not in str(exc.value) and str(path) in str(exc.value)
    # the prices are read before the database is opened: this one does not exist, and is not the error
    db = f"sqlite:///{tmp_path / 'no-such.db'}"
    for json_flag in ((), ("--json",)):
        rc, out, err = cli(capsys, "audit", "cost", "--prices", str(path), *json_flag, "--db", db)
        assert rc == 2 and out == ""
        assert err.startswith("error: price file ") and err.endswith("\n") and err.count("\n") == 1, err
        assert "Traceback" not in err


async def test_a_bad_price_file_in_the_environment(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    await record(db_url, the_call(), tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("realtime: [\n")
    monkeypatch.setenv("HYBRID_AGENT_PRICES_FILE", str(bad))
    rc, out, err = cli(capsys, "audit", "cost", "--db", db_url)
    assert rc == 2 and out == "" and err.startswith("error: price file") and err.count("\n") == 1
    # audit show still shows the call, priced at the defaults, with a warning
    rc, out, err = cli(capsys, "audit", "show", "call_w", "--json", "--db", db_url)
    assert rc == 0 and json.loads(out)["cost_usd"] == pytest.approx(0.0576, abs=1e-6)
    assert err.startswith("warning: price file") and err.count("\n") == 1


async def test_audit_calls_slow(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slow_call = the_call("call_slow", started_at=T0 + 2, ttfa=2_400.0, over="time_to_first_audio")
    # a second, quick answer in the slow call: p50 of (300, 2400) is 300 (nearest rank)
    slow_call.insert(-1, ResponseMetrics("call_slow", 1, 95_000.0, "gpt-realtime", "completed", reference="speech_stopped",
                                         reference_ms=94_000.0, first_audio_ms=94_300.0, released_ms=94_300.0,
                                         ttfa_ms=300.0, gate_ms=0.0))
    no_audio = [CallStarted("call_quiet", T0 + 3, "realtime", "gpt-realtime", "openai"), CallEnded("call_quiet", 10.0, "completed")]
    await record(db_url, [*the_call("call_fast", started_at=T0 + 1, ttfa=350.0), *slow_call,
                          *the_call("call_unheard", started_at=T0 + 4, ttfa=None), *no_audio], tmp_path)
    every = {r["call_id"]: r for r in cli_json(capsys, "audit", "calls", "--db", db_url)}
    assert list(every) == ["call_unheard", "call_quiet", "call_slow", "call_fast"]  # newest first
    for r in every.values():
        assert CALLS_KEYS <= set(r) and {"slow", "ttfa_p50_ms", "ttfa_max_ms"} <= set(r)
    assert (every["call_fast"]["slow"], every["call_fast"]["ttfa_p50_ms"], every["call_fast"]["ttfa_max_ms"]) == (0, 350.0, 350.0)
    assert (every["call_slow"]["slow"], every["call_slow"]["ttfa_p50_ms"], every["call_slow"]["ttfa_max_ms"]) == (1, 300.0, 2_400.0)
    assert (every["call_quiet"]["slow"], every["call_quiet"]["ttfa_p50_ms"], every["call_quiet"]["ttfa_max_ms"]) == (0, None, None)
    assert (every["call_unheard"]["ttfa_p50_ms"], every["call_unheard"]["ttfa_max_ms"]) == (None, None)
    assert every["call_slow"]["turns"] == 2 and every["call_slow"]["outcome"] == "completed"

    slow = cli_json(capsys, "audit", "calls", "--slow", "--db", db_url)
    assert [r["call_id"] for r in slow] == ["call_slow"]
    rc, out, _ = cli(capsys, "audit", "calls", "--slow", "--db", db_url)
    assert rc == 0 and "call_slow" in out and "call_fast" not in out and "SLOW x1" in out
    assert "TTFA P50/MAX" in out and "300/2400 ms" in out and "(1 calls)" in out
    rc, out, _ = cli(capsys, "audit", "calls", "--db", db_url)
    assert rc == 0 and out.count("SLOW") == 1 and "350/350 ms" in out
    # combined with the other filters
    assert cli_json(capsys, "audit", "calls", "--slow", "--until", str(T0 + 2), "--db", db_url) == []
    assert [r["call_id"] for r in cli_json(capsys, "audit", "calls", "--slow", "--blocked", "--db", db_url)] == []


async def test_audit_show_has_first_audio_and_cost_per_answer(db_url: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    await record(db_url, [*the_call("call_w", ttfa=350.0),
                          *the_call("call_s", ttfa=2_400.0, over="time_to_first_audio,gate_hold", started_at=T0 + 1)], tmp_path)
    shown = cli_json(capsys, "audit", "show", "call_w", "--db", db_url)
    assert SHOW_KEYS <= set(shown) and {"responses", "slow", "cost_usd", "prices_as_of"} <= set(shown)
    assert shown["call"]["id"] == "call_w" and shown["ended"]["outcome"] == "completed" and shown["errors"] == 0
    assert shown["blocked"] == 0 and shown["leaked_ms"] == 0 and shown["config_refused"] is False and shown["slow"] == 0
    [resp] = shown["responses"]
    assert (resp["seq"], resp["turn_seq"], resp["user_seq"], resp["ttfa_ms"], resp["over_budget"]) == (0, 1, 0, 350.0, None)
    assert resp["input_audio_tokens"] == 600 and resp["cost_usd"] == pytest.approx(0.0576, abs=1e-6)
    assert shown["cost_usd"] == pytest.approx(0.0576, abs=1e-6) and shown["prices_as_of"] == AS_OF
    user, answer = shown["turns"]
    for t in (user, answer):  # the old per-turn keys are all still there
        assert {"seq", "role", "text", "status", "heard_text", "interrupted", "audio_end_ms", "audio_ms"} <= set(t)
    assert (user["ttfa_ms"], user["over_budget"], user["response_seq"], user["cost_usd"]) == (None, None, None, None)
    assert (answer["ttfa_ms"], answer["over_budget"], answer["response_seq"]) == (350.0, None, 0)
    assert answer["cost_usd"] == pytest.approx(0.0576, abs=1e-6) and answer["text"] == "b" * 420
    turn_entries = [e for e in shown["timeline"] if e["kind"] == "turn"]
    assert [(e["seq"], e["ttfa_ms"], e["response_seq"]) for e in turn_entries] == [(0, None, None), (1, 350.0, 0)]
    assert turn_entries[1]["cost_usd"] == pytest.approx(0.0576, abs=1e-6) and turn_entries[0]["cost_usd"] is None

    rc, out, err = cli(capsys, "audit", "show", "call_w", "--db", db_url)
    assert rc == 0 and err == ""
    [answer_line] = [line for line in out.splitlines() if "#1" in line]
    assert "assistant" in answer_line and "[first audio 350 ms; $0.0576]" in answer_line
    [user_line] = [line for line in out.splitlines() if "#0" in line]
    assert "first audio" not in user_line and "$" not in user_line
    assert f"1 responses: first audio p50 350 ms, max 350 ms; cost $0.0576 (prices as of {AS_OF})" in out

    rc, out, _ = cli(capsys, "audit", "show", "call_s", "--db", db_url)
    assert rc == 0
    [answer_line] = [line for line in out.splitlines() if "#1" in line]
    assert "first audio 2400 ms; $0.0576; SLOW: time_to_first_audio, gate_hold over budget" in answer_line
    assert "1 over budget" in out
    assert cli_json(capsys, "audit", "show", "call_s", "--db", db_url)["slow"] == 1

"""StreamingScanner: entities split across transcript deltas, settling, bounded look-back."""

from __future__ import annotations

import random

import pytest

from hybrid_agent.pii import PiiAnalyzer, PiiEntity, StreamingScanner, get_analyzer
from hybrid_agent.pii.streaming import unsettled_tail

CARD = "four one one one, one one one one, one one one one, one one one one"


def test_card_split_across_deltas_is_found_when_the_run_ends(analyzer: PiiAnalyzer) -> None:
    sc = StreamingScanner(analyzer)
    deltas = ["hi um so my card", " number is four one", " one one, one one on", "e one, one one one one, one one", " one one", " and"]
    reported: list[PiiEntity] = []
    for d in deltas[:-1]:
        reported += sc.feed(d)
    assert reported == []  # the number may still grow
    assert [p.type for p in sc.pending] == ["CREDIT_CARD"]
    assert sc.settled_end <= sc.text.index("four")  # a hold-mode gate releases nothing from the number on
    (card,) = sc.feed(deltas[-1])
    assert card.type == "CREDIT_CARD" and sc.text[card.start : card.end] == CARD
    assert sc.feed(" thanks") == [] and sc.finish() == []


def test_finish_settles_a_trailing_entity(analyzer: PiiAnalyzer) -> None:
    sc = StreamingScanner(analyzer)
    for w in ("my ssn is", " five three six,", " twenty two,", " eighteen ninety four"):
        assert sc.feed(w) == []
    (ssn,) = sc.finish()
    assert ssn.type == "US_SSN" and sc.text[ssn.start : ssn.end] == "five three six, twenty two, eighteen ninety four"


def test_email_across_deltas(analyzer: PiiAnalyzer) -> None:
    sc = StreamingScanner(analyzer)
    got = sc.feed("my email is john dot") + sc.feed(" smith at exam") + sc.feed("ple dot com") + sc.feed(" ok")
    assert [(e.type, sc.text[e.start : e.end]) for e in got] == [("EMAIL_ADDRESS", "john dot smith at example dot com")]


def test_each_entity_reported_once(analyzer: PiiAnalyzer) -> None:
    text = (f"my card number is {CARD} and it expires oh four twenty seven, "
            "my phone is two one two, nine four seven, three three one one, thank you very much for your help today")
    rng = random.Random(3)
    for _ in range(5):
        sc = StreamingScanner(analyzer)
        got: list[PiiEntity] = []
        i = 0
        while i < len(text):
            k = rng.randint(1, 12)
            got += sc.feed(text[i : i + k])
            i += k
        got += sc.finish()
        assert sorted((e.type, e.start, e.end) for e in got) == sorted((e.type, e.start, e.end) for e in analyzer.analyze(text))


class CountingAnalyzer:
    def __init__(self, inner: PiiAnalyzer) -> None:
        self.inner = inner
        self.lengths: list[int] = []

    def analyze(self, text: str) -> list[PiiEntity]:
        self.lengths.append(len(text))
        return self.inner.analyze(text)


def test_lookback_is_bounded(analyzer: PiiAnalyzer) -> None:
    spy = CountingAnalyzer(analyzer)
    sc = StreamingScanner(spy, lookback_chars=200)  # type: ignore[arg-type]
    filler = "and then we talked about the weather for a while "
    for _ in range(60):
        sc.feed(filler)
    got = sc.feed(f"my card number is {CARD}") + sc.feed(" ok")
    assert [e.type for e in got] == ["CREDIT_CARD"]
    assert sc.text[got[0].start : got[0].end] == CARD
    assert max(spy.lengths) <= 2 * 200
    assert len(sc.text) > 2500


def test_window_does_not_cut_a_number_run(analyzer: PiiAnalyzer) -> None:
    sc = StreamingScanner(analyzer, lookback_chars=64)
    got = sc.feed("card " + CARD) + sc.feed(" done")
    assert [(e.type, sc.text[e.start : e.end]) for e in got] == [("CREDIT_CARD", CARD)]


def test_unsettled_tail() -> None:
    assert unsettled_tail("my card is four one") == len("my card is ")
    # a short number followed by a short aside stays open: the number may go on after it
    assert unsettled_tail("my card is four one ok ") == len("my card is ")
    assert unsettled_tail("my card is four one ok and then I went home to see my mother") > len("my card is four")
    # "wor" cannot continue a number, but a cut word of up to four letters may be an id's prefix
    # ("KX" + "44718209") and waits for the next delta; "hello world" waits for it too: its last
    # word may be the start of a spoken address ("world dot ..."), a function word does not
    assert unsettled_tail("hello wor") == len("hello ")
    assert unsettled_tail("hello world") == len("hello ")
    assert unsettled_tail("hello there, how are you") == len("hello there, how are you")
    assert unsettled_tail("hello world, thanks.") == len("hello world, thanks.")
    assert unsettled_tail("card four one tw") == len("card ")
    assert unsettled_tail("four hundred and") == 0
    card_and = CARD + " and"  # "and" continues only "four hundred and"; 16 digits are not held over an aside
    assert unsettled_tail(card_and) == len(card_and)
    assert unsettled_tail("four one and") == 0  # a short number before an aside is held (it may go on)
    assert unsettled_tail("") == 0


def test_bad_lookback() -> None:
    with pytest.raises(ValueError):
        StreamingScanner(get_analyzer(), lookback_chars=10)


def test_trailing_separators_after_words_are_settled() -> None:
    from hybrid_agent.pii.streaming import unsettled_tail

    assert unsettled_tail("Hello there,") == len("Hello there,")
    assert unsettled_tail("It is due this month.") == len("It is due this month.")
    # but a full stop inside a written address is no phrase end: "olga.brown28@gmail." waits
    assert unsettled_tail("it's olga.brown28@gmail.") == len("it's ")
    assert unsettled_tail("My card is 4111 1111,") < len("My card is 4111 1111,")  # a number may still go on

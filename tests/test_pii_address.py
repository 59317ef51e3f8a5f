"""AddressRecognizer: US and UK postal addresses in call transcripts, always through normalize().

Spans are checked in the caller's own words: the recognizer's span on the normalized text is
taken back with ``Normalized.to_original``, as the integrator does.
"""

from __future__ import annotations


import pytest
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry, RecognizerResult
from presidio_analyzer.nlp_engine import NoOpNlpEngine

from timing_helpers import best_time
from hybrid_agent.pii.address import AddressRecognizer, uk_postcode_ok
from hybrid_agent.pii.normalize import normalize

REC = AddressRecognizer()
REPORTED = 0.5  # the integrator reports scores >= 0.5


def found(utterance: str) -> list[tuple[str, float]]:
    """(original text of the span, score) for every ADDRESS the recognizer reports."""
    norm = normalize(utterance)
    out = []
    for r in REC.analyze(norm.text, ["ADDRESS"]):
        if r.score >= REPORTED:
            a, b = norm.to_original(r.start, r.end)
            out.append((utterance[a:b], r.score))
    return out


# (utterance, the address as said: the whole span expected)
POSITIVES: list[tuple[str, str]] = [
    # US, written
    ("I live at 123 Main Street", "123 Main Street"),
    ("1427 North Maple Avenue, Springfield, IL 62704", "1427 North Maple Avenue, Springfield, IL 62704"),
    ("ship it to 500 w 45th st apt 3 new york ny 10036 please", "500 w 45th st apt 3 new york ny 10036"),
    ("my address is 12 main street, apt. 4, austin, tx 78701.", "12 main street, apt. 4, austin, tx 78701"),
    ("it's 123 main st nw, washington, dc 20001", "123 main st nw, washington, dc 20001"),
    ("send it to 350 fifth avenue suite 3400 new york, ny 10118", "350 fifth avenue suite 3400 new york, ny 10118"),
    ("the address is 742 evergreen terrace, springfield.", "742 evergreen terrace, springfield"),
    ("we're at 1585 broadway, new york, ny 10036", "1585 broadway, new york, ny 10036"),
    ("I moved to 88 oak court #12 last month", "88 oak court #12"),
    ("my mailing address is po box 4521, austin, tx 78701", "po box 4521, austin, tx 78701"),
    ("send the check to p.o. box 123", "p.o. box 123"),
    ("it's 1600 pennsylvania avenue northwest washington dc 20500", "1600 pennsylvania avenue northwest washington dc 20500"),
    ("my address is 123 main street, springfield, il", "123 main street, springfield, il"),
    ("the office is at 12 main street park city utah 84060", "12 main street park city utah 84060"),
    ("I live at 55 main street in boston", "55 main street"),
    # US, spoken
    ("fourteen twenty seven north maple avenue apartment four b springfield illinois six two seven oh four",
     "fourteen twenty seven north maple avenue apartment four b springfield illinois six two seven oh four"),
    ("I live at one two three main street", "one two three main street"),
    ("my address is one hundred twenty three main street", "one hundred twenty three main street"),
    ("five hundred fifth avenue new york new york one zero one one zero",
     "five hundred fifth avenue new york new york one zero one one zero"),
    ("it's one oh one oh one elm st suite three hundred", "one oh one oh one elm st suite three hundred"),
    ("my address is four five six elm street apartment twelve c denver colorado eight oh two oh two",
     "four five six elm street apartment twelve c denver colorado eight oh two oh two"),
    ("one two three main street, springfield, illinois six two seven oh four one two three four",
     "one two three main street, springfield, illinois six two seven oh four one two three four"),
    ("twelve main street springfield illinois zip code six two seven oh four",
     "twelve main street springfield illinois zip code six two seven oh four"),
    ("it's three forty five west forty second street new york ny one zero zero three six",
     "three forty five west forty second street new york ny one zero zero three six"),
    ("p o box one two three", "p o box one two three"),
    ("my address is twelve oak court apartment three", "twelve oak court apartment three"),
    ("seventeen cherry tree lane", "seventeen cherry tree lane"),
    # UK, written
    ("I live at 22 acacia avenue, london, n1 9gu", "22 acacia avenue, london, n1 9gu"),
    ("221b baker street, london nw1 6xe", "221b baker street, london nw1 6xe"),
    ("flat 2, 14 kings road", "flat 2, 14 kings road"),
    ("flat 3b, 22 acacia avenue, leeds, ls6 2ab", "flat 3b, 22 acacia avenue, leeds, ls6 2ab"),
    ("unit 5, 8 industrial estate road, leeds ls1 1ur", "unit 5, 8 industrial estate road, leeds ls1 1ur"),
    ("12-14 high street, guildford, surrey, gu1 3aa", "12-14 high street, guildford, surrey, gu1 3aa"),
    ("the house is at 32 windsor gardens, london w9 3rg", "32 windsor gardens, london w9 3rg"),
    ("I live at 2 hill view close, bath ba1 2ab", "2 hill view close, bath ba1 2ab"),
    ("14 st john's wood road, london", "14 st john's wood road, london"),
    ("my address is 9 the crescent, york, yo1 7hh", "9 the crescent, york, yo1 7hh"),
    ("my postcode is SW1A 1AA", "SW1A 1AA"),
    ("post code M1 1AE thanks", "M1 1AE"),
    ("the code is EC1A 1BB", "EC1A 1BB"),
    ("it's SW34UD", "SW34UD"),
    ("postal code: b33 8th", "b33 8th"),
    # UK, spoken (spaced capital letters, spoken digits)
    ("flat two, fourteen kings road, london, s w three four u d", "flat two, fourteen kings road, london, s w three four u d"),
    ("two two one b baker street london n w one six x e", "two two one b baker street london n w one six x e"),
    ("number ten downing street london s w one a two a a", "ten downing street london s w one a two a a"),
    ("it's fifty five oak lane, leeds, l s six two a b", "fifty five oak lane, leeds, l s six two a b"),
    ("twelve kings road chelsea london postcode s w three four u d",
     "twelve kings road chelsea london postcode s w three four u d"),
    ("my postcode is s w one a one a a", "s w one a one a a"),
    ("postcode s w one a, one a a", "s w one a, one a a"),
    ("my postcode is S W three, four U D", "S W three, four U D"),
    ("post code m one one a e", "m one one a e"),
    ("postcode E C one A one B B", "E C one A one B B"),
    ("my postcode is G L fifty one nine X Y", "G L fifty one nine X Y"),
    ("the postcode is um b one one double a", "b one one double a"),
    ("postcode is e one four, five a b", "e one four, five a b"),
    ("postcode c r zero two x y", "c r zero two x y"),
]

NEGATIVES: list[str] = [
    # the NOT list of the brief
    "zip 10001",
    "my zip is nine oh two one oh",
    "the zip code is one oh zero zero one",
    "I live in london",
    "I'm in texas",
    "we moved to springfield illinois",
    "turn left on main street",
    "the branch on oxford street",
    "room 12",
    "room twelve please",
    "floor 3",
    "it's on the third floor, floor 3",
    "gate 5",
    "it's 12 dollars",
    "that'll be forty five pounds fifty",
    "I've been waiting 45 minutes",
    "I've been waiting forty five minutes",
    "call me back at 5 pm",
    "see you at ten thirty",
    "flight 212 to boston",
    "order 55 main items",
    # everyday contact-centre talk with numbers
    "it's about a 20 minute drive",
    "it's a 10 minute walk from the station",
    "it's 5 miles down the road",
    "it's a two way street",
    "my 2 kids walk to school",
    "it's a 4 wheel drive",
    "the 3 bedroom house on maple drive",
    "I work on forty second street",
    "press 1 to go back to the main menu",
    "option 2 for billing",
    "my order number is 55321",
    "my card number is 4111 1111 1111 1111",
    "my pin is 1234",
    "the claim number is 12345 and it was filed in june",
    "my flight leaves at 7 45 from gate 12",
    "I paid 300 dollars last week",
    "can you hold for 2 minutes",
    "there are 3 people ahead of you",
    "I'm 45 years old",
    "I bought 2 tvs at best buy on main street",
    "take exit 12 onto highway 101",
    "bus 42 to park avenue",
    "platform 9 at kings cross",
    "seat 12 b by the window",
    "I walked 5 blocks to the park",
    "there are 12 houses on our street",
    "the 405 freeway was jammed",
    "at 10 the road was closed",
    "it's 1 of 3 main roads into town",
    "I'm 5 minutes from the high street",
    "5 star hotel on park lane",
    "I live at number 12 but I forget the street",
    "my account ending in 4321",
    "extension 204",
    "suite 300",
    "apartment 4b",
    "the reference is AB 12 34 56",
    "SW1 SW1 SW1",
    "my postcode starts with s w",
    "I take B12 vitamins",
    "the model is A1 2BC",
    "in 2019 we moved to oak street",
    "I live at 12 oak close to the station",
    "it's a 2 lane road all the way",
    "he owes me 50 quid",
    "the kitchen is 12 feet wide",
    "it's been 3 weeks since I called",
]


@pytest.mark.parametrize(("utterance", "expected"), POSITIVES, ids=[p[0][:48] for p in POSITIVES])
def test_address_span_is_the_whole_address(utterance: str, expected: str) -> None:
    assert [s for s, _ in found(utterance)] == [expected]


@pytest.mark.parametrize("utterance", NEGATIVES)
def test_not_an_address(utterance: str) -> None:
    assert found(utterance) == []


def test_counts() -> None:
    assert len(POSITIVES) >= 40 and len(NEGATIVES) >= 50


def test_recall_and_false_positives_report() -> None:
    hits = sum(1 for u, e in POSITIVES if [s for s, _ in found(u)] == [e])
    detected = sum(1 for u, _ in POSITIVES if found(u))
    fps = [u for u in NEGATIVES if found(u)]
    print(f"\nADDRESS exact-span recall {hits}/{len(POSITIVES)} = {hits / len(POSITIVES):.3f}; "
          f"detected at all {detected}/{len(POSITIVES)}; false positives {len(fps)}/{len(NEGATIVES)} {fps}")
    assert hits == len(POSITIVES) and not fps


def test_scores() -> None:
    assert found("I live at 123 main street") == [("123 main street", 0.85)]
    assert found("my postcode is SW1A 1AA") == [("SW1A 1AA", 0.9)]
    assert found("post code m one one a e") == [("m one one a e", 0.9)]
    assert found("EC1A 1BB") == [("EC1A 1BB", 0.9)]
    assert found("S W 1 A 1 A A") == [("S W 1 A 1 A A", 0.6)]  # spaced capitals, no cue: weaker
    assert found("s w 1 a 1 a a") == []  # spaced lower case, no cue: nothing


def test_result_shape_and_canonical_value() -> None:
    text = normalize("Flat 2,  14 Kings Road,\tLondon, SW3 4UD").text
    (r,) = REC.analyze(text, ["ADDRESS"])
    assert isinstance(r, RecognizerResult) and r.entity_type == "ADDRESS"
    meta = r.recognition_metadata or {}
    assert meta[RecognizerResult.RECOGNIZER_NAME_KEY] == "AddressRecognizer"
    assert meta[RecognizerResult.RECOGNIZER_IDENTIFIER_KEY] == REC.id
    assert meta["value"] == "flat 2, 14 kings road, london, sw3 4ud"
    assert REC.analyze(text, ["PHONE_NUMBER"]) == []
    assert AddressRecognizer.ENTITIES == ["ADDRESS"] and REC.supported_language == "en"


def test_in_a_presidio_engine() -> None:
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.add_recognizer(AddressRecognizer())
    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
    nlp.load()
    engine = AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])
    text = normalize("please send it to fourteen twenty seven north maple avenue, springfield, il six two seven oh four").text
    (r,) = engine.analyze(text, language="en", entities=["ADDRESS"])
    assert text[r.start : r.end] == "1427 north maple avenue, springfield, il 62704" and r.score == 0.85


@pytest.mark.parametrize("pc", ["SW1A 1AA", "sw1a1aa", "EC1A 1BB", "W1A 0AX", "M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT",
                                "GL51 9XY", "LS11 1UR", "NW1 6XE", "ZE1 0AA", "BT1 1AA", "GIR 0AA"])
def test_uk_postcode_ok(pc: str) -> None:
    assert uk_postcode_ok(pc)


@pytest.mark.parametrize("pc", ["", "SW1", "1AA", "QA1 1AA", "XX1 1AA", "AA1 1AA", "SW1A 1CA", "SW1A 1AI", "M1A 1AA",
                                "B12A 3AB", "SW1A  1AA", "SW1A 1AAA", "12345", "E1W 1VV"])
def test_uk_postcode_rejects(pc: str) -> None:
    assert not uk_postcode_ok(pc)


def _best_time(text: str) -> float:
    return best_time(lambda t: REC.analyze(normalize(t).text, ["ADDRESS"]), text)


@pytest.mark.parametrize("unit", ["12 main street ", "a ", "1 ", "SW1 ", "postcode s w ", "flat 2, ", "po box "])
def test_hostile_text_is_linear(unit: str) -> None:
    small, big = unit * (8_000 // len(unit)), unit * (64_000 // len(unit))
    _best_time(small[:1000])  # warm up
    t_small, t_big = _best_time(small), _best_time(big)
    assert t_big / max(t_small, 1e-3) < 30, (t_small, t_big)



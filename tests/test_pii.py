"""PII gate: analyzer (written and spoken forms), normalizer offsets, redaction, pseudonyms, CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybrid_agent.pii import (
    PiiAnalyzer,
    PiiEntity,
    Pseudonymizer,
    RedactionPolicy,
    get_analyzer,
    normalize,
    redact,
)

KEY = b"k" * 32


# (utterance, entity type, the exact original text the entity must cover)
POSITIVES = [
    # credit cards
    ("my card is four one one one one one one one one one one one one one one one", "CREDIT_CARD",
     "four one one one one one one one one one one one one one one one"),
    ("card number forty one eleven, eleven eleven, eleven eleven, eleven eleven", "CREDIT_CARD",
     "forty one eleven, eleven eleven, eleven eleven, eleven eleven"),
    ("it's five five oh oh, double oh five five, triple five five, five five five nine", "CREDIT_CARD",
     "five five oh oh, double oh five five, triple five five, five five five nine"),
    ("the amex is three seven eight two, eight two two four six three, one oh oh oh five", "CREDIT_CARD",
     "three seven eight two, eight two two four six three, one oh oh oh five"),
    ("um the card, four two four two, um, four two four two, uh, four two four two, four two four two", "CREDIT_CARD",
     "four two four two, um, four two four two, uh, four two four two, four two four two"),
    ("card: 4111 1111 1111 1111", "CREDIT_CARD", "4111 1111 1111 1111"),
    ("my visa 4242-4242-4242-4242", "CREDIT_CARD", "4242-4242-4242-4242"),
    ("charge 41 11 11 11 11 11 11 11 please", "CREDIT_CARD", "41 11 11 11 11 11 11 11"),
    ("the card is 4111 one one one one one one one one one one one one", "CREDIT_CARD",
     "4111 one one one one one one one one one one one one"),
    # card security code and expiry (in context)
    ("and the security code is seven three one", "CARD_CVV", "seven three one"),
    ("CVV 4412", "CARD_CVV", "4412"),
    ("it expires oh four twenty seven", "CARD_EXPIRY", "oh four twenty seven"),
    ("expiration date 09/28", "CARD_EXPIRY", "09/28"),
    ("expires december twenty nine", "CARD_EXPIRY", "december twenty nine"),
    # SSN
    ("my social is two one nine, oh nine, nine nine nine nine", "US_SSN", "two one nine, oh nine, nine nine nine nine"),
    ("social security, five three six, twenty two, eighteen ninety four", "US_SSN", "five three six, twenty two, eighteen ninety four"),
    ("my ssn um five three six two two one eight nine four", "US_SSN", "five three six two two one eight nine four"),
    ("SSN: 536-22-1894", "US_SSN", "536-22-1894"),
    ("social security number 301446120", "US_SSN", "301446120"),
    ("the social on the account is 412 55 7310", "US_SSN", "412 55 7310"),
    # phone numbers
    ("call me at eight hundred five five five one two one two", "PHONE_NUMBER", "eight hundred five five five one two one two"),
    ("my cell is four one five, eight two three, oh nine one two", "PHONE_NUMBER", "four one five, eight two three, oh nine one two"),
    ("it's six one seven, two five three, one thousand", "PHONE_NUMBER", "six one seven, two five three, one thousand"),
    ("reach me on plus four four, two oh, seven nine four six, oh nine five eight", "PHONE_NUMBER",
     "plus four four, two oh, seven nine four six, oh nine five eight"),
    ("my number is (617) 253-1000", "PHONE_NUMBER", "(617) 253-1000"),
    ("text me at +1 415 823 0912", "PHONE_NUMBER", "+1 415 823 0912"),
    # e-mail
    ("my email is john dot smith at example dot com thanks", "EMAIL_ADDRESS", "john dot smith at example dot com"),
    ("email k underscore patel nineteen at gmail dot com", "EMAIL_ADDRESS", "k underscore patel nineteen at gmail dot com"),
    ("it's maria dash lopez at acme dot co dot uk", "EMAIL_ADDRESS", "maria dash lopez at acme dot co dot uk"),
    ("send it to wei.chen@outlook.com thanks", "EMAIL_ADDRESS", "wei.chen@outlook.com"),
    ("it's john.smith at example.com", "EMAIL_ADDRESS", "john.smith at example.com"),
    # IBAN
    ("my IBAN is DE89 3704 0044 0532 0130 00", "IBAN_CODE", "DE89 3704 0044 0532 0130 00"),
    ("IBAN G B eight two W E S T one two three four five six nine eight seven six five four three two", "IBAN_CODE",
     "G B eight two W E S T one two three four five six nine eight seven six five four three two"),
    # bank account and routing numbers
    ("my account number is one two three four five six seven eight", "US_BANK_NUMBER", "one two three four five six seven eight"),
    ("checking account three three four, five five six, seven seven eight eight", "US_BANK_NUMBER",
     "three three four, five five six, seven seven eight eight"),
    ("acct 000123456789", "US_BANK_NUMBER", "000123456789"),
    ("routing number zero one one, zero zero zero, zero one five", "ABA_ROUTING_NUMBER", "zero one one, zero zero zero, zero one five"),
    ("ABA 026009593", "ABA_ROUTING_NUMBER", "026009593"),
    # date of birth (in context)
    ("date of birth march fourteenth, nineteen eighty five", "DATE_OF_BIRTH", "march fourteenth, nineteen eighty five"),
    ("I was born on the third of july nineteen sixty two", "DATE_OF_BIRTH", "the third of july nineteen sixty two"),
    ("DOB 04/12/1971", "DATE_OF_BIRTH", "04/12/1971"),
    # member and policy numbers (in context)
    ("my member ID is X J K four eight two nine one one three", "MEMBER_ID", "X J K four eight two nine one one three"),
    ("policy number PLX-4829113", "MEMBER_ID", "PLX-4829113"),
    ("membership number seven seven two, three one eight, four four nine", "MEMBER_ID", "seven seven two, three one eight, four four nine"),
]

NEGATIVES = [
    "I'd like to pay two thousand dollars toward the balance",
    "I paid $2,000 last month",
    "the meeting is at ten thirty tomorrow",
    "can you call me back at three thirty",
    "I was born in nineteen ninety and I've banked with you since two thousand eight",
    "I've been a customer since 1990",
    "my order number is four five six seven eight nine one two",
    "ticket number seven seven three two one nine four",
    "the confirmation is two one two five five five oh one nine nine",
    "my order number is 2125551234",
    "ticket 48213977 is still open",
    "the help line 1-800-123-4567 didn't work",
    "the number 123-456-7890 on the website does not work",
    "my SSN is 123-45-6789",  # the canonical sample number
    "I need twenty five hundred dollars by friday",
    "one two three four, can you hear me",
    "the last four of my card are four four four four",
    "oh, and one more thing, my daughter is fourteen",
    "we paid nineteen ninety nine for the plan",
    "you can find us at example dot com",
    "I'm at home, call me after five",
    "it was 4:30 pm on 12/25",
]


@pytest.mark.parametrize(("text", "etype", "surface"), POSITIVES, ids=[f"{p[1]}-{i}" for i, p in enumerate(POSITIVES)])
def test_positive(analyzer: PiiAnalyzer, text: str, etype: str, surface: str) -> None:
    found = analyzer.analyze(text)
    spans = [(e.type, text[e.start : e.end]) for e in found]
    assert (etype, surface) in spans, spans


@pytest.mark.parametrize("text", NEGATIVES)
def test_negative(analyzer: PiiAnalyzer, text: str) -> None:
    found = analyzer.analyze(text)
    assert found == [], [(e.type, text[e.start : e.end]) for e in found]


def test_several_entities_in_one_utterance(analyzer: PiiAnalyzer) -> None:
    text = ("my card is 4111 1111 1111 1111 expires oh four twenty seven and the security code is seven three one, "
            "my account number is one two three four five six seven eight and routing number zero two one zero zero zero zero two one")
    got = [(e.type, text[e.start : e.end]) for e in analyzer.analyze(text)]
    assert got == [
        ("CREDIT_CARD", "4111 1111 1111 1111"),
        ("CARD_EXPIRY", "oh four twenty seven"),
        ("CARD_CVV", "seven three one"),
        ("US_BANK_NUMBER", "one two three four five six seven eight"),
        ("ABA_ROUTING_NUMBER", "zero two one zero zero zero zero two one"),
    ]


def test_entity_value_is_normalized_and_not_in_repr(analyzer: PiiAnalyzer) -> None:
    (e,) = analyzer.analyze("my email is john dot smith at example dot com")
    assert e.value == "john.smith@example.com"
    assert "john" not in repr(e)
    (c,) = analyzer.analyze("card four one one one, one one one one, one one one one, one one one one")
    assert c.value == "4111111111111111"
    assert c.to_dict() == {"type": "CREDIT_CARD", "start": 5, "end": len("card four one one one, one one one one, one one one one, one one one one"), "score": c.score}


# ---------------------------------------------------------------------------- normalizer
@pytest.mark.parametrize(
    ("spoken", "normalized"),
    [
        ("four one one one", "4111"),
        ("double five", "55"),
        ("triple oh seven", "0007"),
        ("oh four", "04"),
        ("forty five", "45"),
        ("forty-five", "45"),
        ("forty", "40"),
        ("nineteen ninety", "1990"),
        ("four hundred twelve", "412"),
        ("four hundred and five", "405"),
        ("eight hundred five five five one two one two", "8005551212"),
        ("two thousand", "2000"),
        ("two thousand and five", "2005"),
        ("twelve thousand four hundred fifty", "12450"),
        ("twenty five hundred", "2500"),
        ("one two three, forty five, six seven eight nine", "123 45 6789"),
        ("five um five uh five", "555"),
        ("oh four slash two seven", "04/27"),
        ("john dot smith at example dot com", "john.smith@example.com"),
        ("j underscore doe ninety two at yahoo dot com", "j_doe92@yahoo.com"),
        ("G B eight two W E S T one two", "GB82WEST12"),
        ("plus four four two oh", "+4420"),
    ],
)
def test_normalizer(spoken: str, normalized: str) -> None:
    assert normalize(spoken).text == normalized


@pytest.mark.parametrize("text", ["Oh, I see", "oh no", "o well", "I have one card", "hello there"])
def test_normalizer_leaves_words_alone(text: str) -> None:
    assert normalize(text).text.split()[0] == text.split()[0]


def test_normalizer_offsets_round_trip() -> None:
    text = "so, um, my card is four one one one, double one, one one, and my email is jo dot li at x dot com ok"
    n = normalize(text)
    assert n.text == "so, um, my card is 4111 11 11, and my email is jo.li@x.com ok"
    i = n.text.index("4111")
    assert text[slice(*n.to_original(i, i + len("4111 11 11")))] == "four one one one, double one, one one"
    j = n.text.index("jo.li@x.com")
    assert text[slice(*n.to_original(j, j + len("jo.li@x.com")))] == "jo dot li at x dot com"
    k = n.text.index("ok")
    assert n.to_original(k, k + 2) == (len(text) - 2, len(text))


WORDS = st.sampled_from(
    "one two three four five six seven eight nine oh zero ten eleven twenty forty ninety hundred thousand double "
    "triple and um dash at dot underscore com my card is the account , . - / W G B 12 4111 @ x".split()
)


@settings(max_examples=150, deadline=None)
@given(st.lists(WORDS, max_size=30), st.sampled_from([" ", "  ", ", "]))
def test_normalizer_map_is_consistent(words: list[str], sep: str) -> None:
    text = sep.join(words)
    n = normalize(text)
    if n.identity:
        return
    assert len(n.src_start) == len(n.src_end) == len(n.text)
    for s, e in zip(n.src_start, n.src_end):
        assert 0 <= s <= e <= len(text)
    s, e = n.to_original(0, len(n.text))
    assert 0 <= s <= e <= len(text)


@settings(max_examples=60, deadline=None)
@given(st.lists(WORDS, max_size=25))
def test_analyzer_spans_are_valid(words: list[str]) -> None:
    text = " ".join(words)
    found = get_analyzer().analyze(text)
    last = -1
    for e in found:
        assert 0 <= e.start < e.end <= len(text)
        assert e.start >= last  # sorted, not overlapping
        last = e.end


# ---------------------------------------------------------------------------- redaction and pseudonyms
def test_redact_placeholder_spoken(analyzer: PiiAnalyzer) -> None:
    text = "my card is four one one one one one one one one one one one one one one one, thanks"
    assert redact(text, analyzer.analyze(text)) == "my card is <CREDIT_CARD>, thanks"


def test_redact_last4_and_modes(analyzer: PiiAnalyzer) -> None:
    text = "card four one one one, one one one one, one one one one, one one one one and email jo at x dot com"
    ents = analyzer.analyze(text)
    policy = RedactionPolicy(modes={"CREDIT_CARD": "last4", "EMAIL_ADDRESS": "keep"})
    assert redact(text, ents, policy) == "card <CREDIT_CARD ending 1111> and email jo at x dot com"
    written = "card 4111-1111-1111-1111"
    assert redact(written, analyzer.analyze(written), policy) == "card <CREDIT_CARD ending 1111>"


def test_redact_short_value_last4_falls_back() -> None:
    e = PiiEntity("CARD_CVV", 4, 7, 0.9, value="123")
    assert redact("cvv 123", [e], RedactionPolicy(default="last4")) == "cvv <CARD_CVV>"


def test_redact_overlapping_and_empty() -> None:
    text = "abcdefghij"
    ents = [PiiEntity("A", 2, 6, 1.0), PiiEntity("B", 4, 8, 1.0)]
    assert redact(text, ents) == "ab<A><B>ij"
    assert redact(text, []) == text


def test_pseudonym_spoken_equals_written(analyzer: PiiAnalyzer) -> None:
    p = Pseudonymizer(KEY)
    card = p.pseudonym("CREDIT_CARD", "4111 1111 1111 1111")
    assert card == p.pseudonym("CREDIT_CARD", "four one one one, one one one one, double one double one, one one one one")
    assert card.startswith("CREDIT_CARD:") and "4111" not in card
    assert p.pseudonym("PHONE_NUMBER", "(212) 947-3311") == p.pseudonym("PHONE_NUMBER", "two one two nine four seven three three one one")
    assert p.pseudonym("PHONE_NUMBER", "+1 212 947 3311") == p.pseudonym("PHONE_NUMBER", "212-947-3311")
    assert p.pseudonym("EMAIL_ADDRESS", "John.Smith@Example.com") == p.pseudonym("EMAIL_ADDRESS", "john dot smith at example dot com")
    assert Pseudonymizer(b"x" * 32).pseudonym("CREDIT_CARD", "4111 1111 1111 1111") != card
    assert p.pseudonym("US_SSN", "536221894") != p.pseudonym("US_BANK_NUMBER", "536221894")
    assert "k" * 8 not in repr(p)


def test_redact_with_pseudonyms_joins_forms(analyzer: PiiAnalyzer) -> None:
    policy = RedactionPolicy(default="pseudonym", pseudonymizer=Pseudonymizer(KEY))
    a = "my ssn is five three six, twenty two, eighteen ninety four"
    b = "SSN: 536-22-1894"
    ra, rb = redact(a, analyzer.analyze(a), policy), redact(b, analyzer.analyze(b), policy)
    assert ra.split("<")[1] == rb.split("<")[1]
    assert ra.startswith("my ssn is <US_SSN:")


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        RedactionPolicy(default="pseudonym")
    with pytest.raises(ValueError):
        RedactionPolicy(modes={"CREDIT_CARD": "shred"})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        Pseudonymizer(b"short")


# ---------------------------------------------------------------------------- CLI
def test_cli_scan_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from hybrid_agent.cli import main

    lines = "my card is four one one one one one one one one one one one one one one one\nhello there\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    assert main(["pii", "scan", "--json"]) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert out[0]["redacted"] == "my card is <CREDIT_CARD>"
    (ent,) = out[0]["entities"]
    assert ent["type"] == "CREDIT_CARD" and (ent["start"], ent["end"]) == (11, 75)
    assert set(ent) == {"type", "start", "end", "score"}
    assert out[1] == {"text": "hello there", "redacted": "hello there", "entities": []}


def test_cli_scan_text_and_modes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from hybrid_agent.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO("card 4111 1111 1111 1111\n"))
    assert main(["pii", "scan", "--mode", "CREDIT_CARD=last4"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "card <CREDIT_CARD ending 1111>"
    assert out[1].strip().startswith("CREDIT_CARD [5:24]")
    monkeypatch.setattr(sys, "stdin", io.StringIO("x\n"))
    monkeypatch.delenv("HYBRID_AGENT_PSEUDONYM_KEY", raising=False)
    assert main(["pii", "scan", "--mode", "pseudonym"]) == 2


# ---------------------------------------------------------------------------- offline
OFFLINE = textwrap.dedent(
    """
    import socket, sys, json
    def blocked(*a, **k):
        raise OSError("network blocked by test")
    socket.socket.connect = blocked
    socket.socket.connect_ex = blocked
    socket.getaddrinfo = blocked
    socket.create_connection = blocked
    from hybrid_agent.pii import get_analyzer, redact
    a = get_analyzer()
    text = "email john dot smith at example dot co dot uk, card four one one one one one one one one one one one one one one one"
    ents = a.analyze(text)
    print(json.dumps([e.type for e in ents]))
    print(redact(text, ents))
    """
)


def test_no_network_at_import_or_analyze(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TLDEXTRACT")}
    env["HOME"] = str(tmp_path)  # no tldextract cache to lean on
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    proc = subprocess.run([sys.executable, "-c", OFFLINE], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    types, redacted = proc.stdout.splitlines()[:2]
    assert json.loads(types) == ["EMAIL_ADDRESS", "CREDIT_CARD"]
    assert redacted == "email <EMAIL_ADDRESS>, card <CREDIT_CARD>"
    assert "network blocked" not in proc.stderr
    assert not (tmp_path / "cache").exists()  # nothing written to a cache either


def test_missing_spacy_model_is_never_downloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    from hybrid_agent.pii.analyzer import _find_spacy_model

    monkeypatch.setenv("HYBRID_AGENT_PII_SPACY_MODEL", "en_core_web_nonexistent")
    assert _find_spacy_model() is None
    monkeypatch.setenv("HYBRID_AGENT_PII_SPACY_MODEL", "")
    assert _find_spacy_model() is None


def test_blank_spacy_pipeline_from_disk(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A spaCy pipeline loaded by path works as the NLP engine (no PERSON without an NER component)."""
    import spacy

    spacy.blank("en").to_disk(tmp_path / "blank_en")
    a = PiiAnalyzer(spacy_model=str(tmp_path / "blank_en"))
    text = "my card is four one one one one one one one one one one one one one one one"
    assert [e.type for e in a.analyze(text)] == ["CREDIT_CARD"]

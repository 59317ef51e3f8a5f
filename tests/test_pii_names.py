"""PersonCueRecognizer: names after cues, spelled names, no flags on everyday contact-centre talk, linear cost.

The utterances are written for this test (varied phrasing, names of many origins); the held-out
evaluation sets under tests/data/ are not used here.
"""

from __future__ import annotations

import random

import pytest
from presidio_analyzer import RecognizerResult

from timing_helpers import best_time
from hybrid_agent.pii.names import PersonCueRecognizer, might_hold_name, name_lists

#: utterance -> the name spans it holds (substrings, in order of appearance)
POSITIVES: list[tuple[str, list[str]]] = [
    ("yeah hi my name is priya patel, i'm calling about my card", ["priya patel"]),
    ("This is Mark O'Neill speaking", ["Mark O'Neill"]),
    ("my name's giovanni rossi and i need to check my balance", ["giovanni rossi"]),
    ("hi um my name is uh oluwaseun adeyemi", ["oluwaseun adeyemi"]),
    ("the name is kowalski", ["kowalski"]),
    ("my first name is siobhan", ["siobhan"]),
    ("last name is nguyen", ["nguyen"]),
    ("my surname is van der berg", ["van der berg"]),
    ("full name is maria de la cruz", ["maria de la cruz"]),
    ("the account holder is hiroshi tanaka", ["hiroshi tanaka"]),
    ("it's under fatima khan", ["fatima khan"]),
    ("can you look it up under the name okafor", ["okafor"]),
    ("the booking is in the name of jean-pierre dubois", ["jean-pierre dubois"]),
    ("wojciech is my name", ["wojciech"]),
    ("i'm aisha, i'm the account holder", ["aisha"]),
    ("hi this is carlos mendoza calling from home", ["carlos mendoza"]),
    ("yes, this is anjali speaking", ["anjali"]),
    ("rahul here, i have a question about my bill", ["rahul"]),
    ("hey it's francesca, returning your call", ["francesca"]),
    ("my last name is smith, S M I T H", ["smith", "S M I T H"]),
    ("it's spelled k o w a l s k i", ["k o w a l s k i"]),
    ("that's O apostrophe N E I L L", ["O apostrophe N E I L L"]),
    ("last name is schmidt, s-c-h-m-i-d-t", ["schmidt", "s-c-h-m-i-d-t"]),
    ("the surname is spelled D U B O I S", ["D U B O I S"]),
    ("my name is will turner", ["will turner"]),
    ("my name is grace", ["grace"]),
    ("my name is june and i'm a member", ["june"]),
    ("name's frank", ["frank"]),
    ("this is Grace from the pharmacy", ["Grace"]),
    ("Hi, this is Dr. Anand Krishnamurthy returning your call", ["Anand Krishnamurthy"]),
    ("this is doctor patel's office", ["patel"]),
    ("my name is josé garcía", ["josé garcía"]),
    ("my name is björn andersson", ["björn andersson"]),
    ("my name is zhang wei", ["zhang wei"]),
    ("yeah my names dmitri volkov", ["dmitri volkov"]),
    ("i am lakshmi iyer", ["lakshmi iyer"]),
    ("you can call me kofi", ["kofi"]),
    ("the name on the account is hannah schröder", ["hannah schröder"]),
    ("mohammed al-rashid is my full name", ["mohammed al-rashid"]),
    ("ok so i'm sven", ["sven"]),
    ("Good morning, Alejandro Ruiz speaking", ["Alejandro Ruiz"]),
    ("hi it's keisha, calling about the refund", ["keisha"]),
    ("this is maria um i wanted to ask about my card", ["maria"]),
    ("my name is sarah-jane mcallister", ["sarah-jane mcallister"]),
    ("first name is tomasz, T O M A S Z", ["tomasz", "T O M A S Z"]),
    ("the last name is kim, k i m", ["kim", "k i m"]),
    ("account holder ngozi okonkwo", ["ngozi okonkwo"]),
    ("it's under the name of Kenji Watanabe", ["Kenji Watanabe"]),
    ("hello, is this about my claim? my name is Ewa Nowak", ["Ewa Nowak"]),
    ("uh yes this is ahmed", ["ahmed"]),
    ("This is Chloé Martin, I'm calling about my order", ["Chloé Martin"]),
    ("and the middle name is rose", ["rose"]),
    ("my name is aditi sharma and my card was declined", ["aditi sharma"]),
    ("the account holder is my mother, her name is lucía fernández", ["lucía fernández"]),
    ("my husband's name is raj", ["raj"]),
    ("Hi, Priya here, from flat 4", ["Priya"]),
    ("the spelling is p a c h e c o", ["p a c h e c o"]),
    ("my name is thandiwe ndlovu", ["thandiwe ndlovu"]),
    ("my name is John F Kennedy", ["John F Kennedy"]),
    ("hello yes chinedu speaking", ["chinedu"]),
    ("my name is mark and i'm calling about my card", ["mark"]),
    ("sure, it's priya patel", ["priya patel"]),
    ("Thank you for calling, this is Jessica, how may I help you?", ["Jessica"]),
    ("can i speak to david please", ["david"]),
    ("i'm calling on behalf of sandra lee", ["sandra lee"]),
    ("Hi, I'm calling from Dr. Brown's office", ["Brown"]),
    ("the surname's gonzález, G O N Z A L E Z", ["gonzález", "G O N Z A L E Z"]),
    ("it's R U double S E double L", ["R U double S E double L"]),
    ("yes it's Wiśniewski, W I S N I E W S K I", ["Wiśniewski", "W I S N I E W S K I"]),
    ("i spoke to a guy named kevin last week", ["kevin"]),
    ("yes, maria de la cruz speaking", ["maria de la cruz"]),
]

#: true names the recognizer misses (documented limits); counted in the recall summary, not asserted
KNOWN_MISSES: list[tuple[str, list[str]]] = [
    ("patel here", ["patel"]),  # a bare last name before a weak cue
    ("this is sipho, S I P H O", ["sipho", "S I P H O"]),  # unlisted first name after a weak cue (its spelling is found)
    ("my wife janet will call you back", ["janet"]),  # no cue at all
    ("the name's bond, james bond", ["bond", "james bond"]),  # the repeated full name has no cue of its own
    ("S as in Sam, M as in Mary", ["S as in Sam, M as in Mary"]),  # phonetic spelling
]

NEGATIVES: list[str] = [
    "this is urgent",
    "my name is on the account",
    "the account holder passed away",
    "this is my second call",
    "speaking as a customer, this is unacceptable",
    "I'm calling about my statement",
    "I'm good thanks",
    "it's under warranty",
    "it's under review",
    "this is ridiculous",
    "this is taking forever",
    "this is the billing department",
    "speaking of which, my card expired",
    "who am I speaking with",
    "am I speaking to the right person",
    "mark this down please",
    "will do",
    "may I ask why",
    "my name is spelled wrong on the card",
    "my name is not on the lease",
    "the name on the account is wrong",
    "my name is still showing the old address",
    "I'm sorry, I'm not sure",
    "i'm still here",
    "is anyone there? hello?",
    "I'm at work right now",
    "this is so frustrating",
    "this is not what I ordered",
    "this is about my bill",
    "this is regarding the charge on my card",
    "this is for my daughter",
    "this is a scam",
    "this is chase bank calling about your account",
    "the company name is acme",
    "my user name is on the screen",
    "it's under my husband's name",
    "it's under contract",
    "it's under control",
    "it's under construction",
    "the account holder is deceased",
    "the account holder is my wife",
    "account holder information please",
    "first name is missing on the form",
    "last name changed after my marriage",
    "what's the name on the account",
    "the name is misspelled",
    "can you spell that for me",
    "hold on let me grab a pen",
    "here you go",
    "I'm calling to cancel",
    "calling about a refund",
    "thanks for calling",
    "who's calling please",
    "they keep calling me",
    "right here on the statement",
    "the ATM ate my card",
    "my code is A B C D",
    "the confirmation number is X Y Z Q",
    "it's A B C 1 2 3",
    "I need to speak with a supervisor",
    "generally speaking, I'm happy with the service",
    "I'm calling on behalf of my mother",
    "I'm the account holder",
    "I am calling from Texas",
    "I'm in London this week",
    "may I have your name please",
    "what is your name",
    "This is Urgent",
    "My Visa card was declined at Target on Monday",
    "This is Amazon customer service",
    "This is Apple Support, how can I help",
    "this is correct",
    "this is my first time calling",
    "I hope so",
    "bill me later",
    "this is june's statement, not july's",
    "that's right",
    "I live in New York near the Chase branch",
    "Is this the Geico claims line?",
    "yes I am",
    "i'm ready when you are",
    "this is crazy, i've been on hold for an hour",
    "I'll mark it as resolved",
    "the name field is empty",
    "HTML emails from the USA",
    "send it to the U S A office",
    "my password is A B C D E F",
    "just a second, I'm driving",
    "i'm happy, thank you",
    "this is the right number, right",
    "it's madison square garden",
    "it's lincoln avenue, apartment 4",
    "it's been a while",
    "it's me again",
    "it's probably nothing",
    "its battery died",
    "can I speak to someone in billing",
    "i need to talk to a manager",
    "the doctor said it's fine",
    "the merchant name is amzn mktp",
    "it's A B C D E F G",
    "the file is named after the date",
    "I called yesterday and nobody answered",
    "a company called acme charged me",
    "it's john.smith@example.com",
    "this is NL91ABNA0417164300",
    "the reference is A B C D 123",
]


@pytest.fixture(scope="module")
def rec() -> PersonCueRecognizer:
    return PersonCueRecognizer()


def _found(rec: PersonCueRecognizer, text: str) -> list[RecognizerResult]:
    return [r for r in rec.analyze(text, ["PERSON"]) if r.score >= 0.5]


def _expected(text: str, names: list[str]) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for name in names:
        start = text.index(name, pos)
        spans.append((start, start + len(name)))
        pos = start + len(name)
    return spans


@pytest.mark.parametrize(("text", "names"), POSITIVES)
def test_positive(rec: PersonCueRecognizer, text: str, names: list[str]) -> None:
    got = [(r.start, r.end) for r in _found(rec, text)]
    assert got == _expected(text, names), [text[s:e] for s, e in got]
    assert might_hold_name(text)


@pytest.mark.parametrize("text", NEGATIVES)
def test_negative(rec: PersonCueRecognizer, text: str) -> None:
    assert [text[r.start : r.end] for r in _found(rec, text)] == []


def test_enough_cases() -> None:
    assert len(POSITIVES) >= 40 and len(NEGATIVES) >= 60


def test_result_shape_and_scores(rec: PersonCueRecognizer) -> None:
    (r,) = rec.analyze("my name is Mark O'Neill", ["PERSON"])
    assert (r.entity_type, r.score) == ("PERSON", 0.85)
    meta = r.recognition_metadata
    assert meta[RecognizerResult.RECOGNIZER_NAME_KEY] == "PersonCueRecognizer"
    assert meta[RecognizerResult.RECOGNIZER_IDENTIFIER_KEY] == rec.id
    assert meta["value"] == "mark o'neill"
    spelled = rec.analyze("my last name is smith, S M I T H", ["PERSON"])
    assert [x.recognition_metadata["value"] for x in spelled] == ["smith", "smith"]
    assert rec.analyze("that's O apostrophe N E I L L", ["PERSON"])[0].recognition_metadata["value"] == "o'neill"
    assert rec.analyze("it's R U double S E double L", ["PERSON"])[0].recognition_metadata["value"] == "russell"
    weak = rec.analyze("yes this is anjali speaking", ["PERSON"])
    assert len(weak) == 1 and 0.6 <= weak[0].score <= 0.75
    (bare,) = rec.analyze("okay K O W A L S K I", ["PERSON"])
    assert bare.score == 0.6
    assert rec.analyze("my name is priya", ["PHONE_NUMBER"]) == []
    assert rec.supported_entities == PersonCueRecognizer.ENTITIES == ["PERSON"]


def test_everyday_words_need_a_strong_cue(rec: PersonCueRecognizer) -> None:
    for word in ("will", "may", "june", "mark", "bill", "rose", "hope", "grace", "frank", "jack", "art", "summer", "april",
                 "august", "dawn", "faith", "joy", "pat", "ray", "rich", "chase", "hunter", "page", "penny", "sandy"):
        assert _found(rec, f"this is {word} speaking") == [], word
        assert _found(rec, f"{word} here") == [], word
        assert [r.recognition_metadata["value"] for r in _found(rec, f"my name is {word}")] == [word]
    lists = name_lists()
    assert {"priya", "giovanni", "wojciech", "chinedu", "thiago"} <= lists.clean_first
    assert not {"will", "may", "mark", "the", "good", "my"} & lists.clean_first


def test_prefilter(rec: PersonCueRecognizer) -> None:
    for text in ("", "thanks, bye", "4111 1111 1111 1111", "what's my balance", "the payment went through yesterday"):
        assert not might_hold_name(text)
        assert rec.analyze(text, ["PERSON"]) == []
    # whatever analyze flags, the prefilter lets through (random word soup of cues, names and letters)
    rnd = random.Random(7)
    vocab = ("my name is priya this here speaking calling i'm under it's the account holder smith S M I T H a b , . - "
             "spelled that's hi mark grace 1 2 call me mr double apostrophe de la it's named").split()
    for text in [t for t, _ in POSITIVES] + NEGATIVES + [" ".join(rnd.choices(vocab, k=rnd.randint(1, 12))) for _ in range(3000)]:
        if rec.analyze(text, ["PERSON"]):
            assert might_hold_name(text), text


def _time(rec: PersonCueRecognizer, text: str) -> float:
    return best_time(lambda t: rec.analyze(t, ["PERSON"]), text)


HOSTILE_UNITS = ["my name is ", "a ", "this is ", "A ", "priya here ", "my name is priya ", "s-", "a'", "it's ", "A double ",
                 "de "]


@pytest.mark.parametrize("unit", HOSTILE_UNITS)
def test_hostile_text_is_linear(rec: PersonCueRecognizer, unit: str) -> None:
    small, big = unit * (8_000 // len(unit)), unit * (64_000 // len(unit))
    t_small, t_big = _time(rec, small), _time(rec, big)
    assert t_big / max(t_small, 1e-4) < 30, (unit, t_small, t_big)


def test_summary(rec: PersonCueRecognizer) -> None:
    """Precision/recall over the utterances above (exact spans)."""
    tp = fp = fn = 0
    for text, names in POSITIVES + KNOWN_MISSES:
        got = {(r.start, r.end) for r in _found(rec, text)}
        want = set(_expected(text, names))
        tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
    neg_flagged = sum(bool(_found(rec, t)) for t in NEGATIVES)
    fp_neg = sum(len(_found(rec, t)) for t in NEGATIVES)
    precision, recall = tp / max(tp + fp + fp_neg, 1), tp / max(tp + fn, 1)
    print(f"\nPERSON names: {len(POSITIVES) + len(KNOWN_MISSES)} positive utterances, {tp + fn} names: "
          f"recall {recall:.3f} ({tp}/{tp + fn}), precision {precision:.3f} ({fp + fp_neg} false spans); "
          f"negatives flagged {neg_flagged}/{len(NEGATIVES)}")
    assert neg_flagged == 0 and fp == 0
    assert recall >= 0.9

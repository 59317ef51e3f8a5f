"""PII round 2 (issue 14): every reading style and entity type, through ``hybrid-agent pii scan --json``.

The examples are new (values and wording differ from the hard cases and from every held-out set);
the values are valid (IBAN mod-97, NHS mod-11, the CMS MBI and HMRC NINO formats).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hybrid_agent.pii import PiiAnalyzer, redact
from hybrid_agent.pii.identifiers import IBAN_LENGTHS, mbi_ok, nhs_ok, nino_ok

# (utterance, [(type, the text the entity must cover)])
CASES: list[tuple[str, list[tuple[str, str]]]] = [
    # IBANs as recognizers write them
    ("the iban, gb 29 nwbk 6016 1331 9268 19", [("IBAN_CODE", "gb 29 nwbk 6016 1331 9268 19")]),
    ("DE89, 3704, 0044, 0532, 0130, 00 is the iban", [("IBAN_CODE", "DE89, 3704, 0044, 0532, 0130, 00")]),
    ("g b two nine nwbk six oh one six, one three three one, nine two six eight, one nine",
     [("IBAN_CODE", "g b two nine nwbk six oh one six, one three three one, nine two six eight, one nine")]),
    # a label after the value; labels spelled letter by letter
    ("send it with 026009593 for the routing", [("ABA_ROUTING_NUMBER", "026009593")]),
    ("and the C V C, seven seven one", [("CARD_CVV", "seven seven one")]),
    ("s s n, four one two, five five, seven three one oh", [("US_SSN", "four one two, five five, seven three one oh")]),
    # expiry read as single digits; dates of birth
    ("valid thru 0 7 3 0", [("CARD_EXPIRY", "0 7 3 0")]),
    ("born on the twenty-ninth of february nineteen eighty eight", [("DATE_OF_BIRTH", "twenty-ninth of february nineteen eighty eight")]),
    ("date of birth october third, um, nineteen fifty nine", [("DATE_OF_BIRTH", "october third, um, nineteen fifty nine")]),
    ("my dob is 1961, december the 2nd", [("DATE_OF_BIRTH", "1961, december the 2nd")]),
    # new types
    ("my medicare card says 3AC4-DE5-FG67", [("MEDICARE_MBI", "3AC4-DE5-FG67")]),
    ("mbi is three A C four, D E five, F G six seven", [("MEDICARE_MBI", "three A C four, D E five, F G six seven")]),
    ("the nhs number is 161 559 4078", [("NHS_NUMBER", "161 559 4078")]),
    ("national insurance number J R five five, one oh, two seven, A", [("UK_NINO", "J R five five, one oh, two seven, A")]),
    ("the driver's licence number is W as in william three three eight one two oh nine",
     [("US_DRIVER_LICENSE", "W as in william three three eight one two oh nine")]),
    ("my passport number is 7 1 2 4 4 9 0 3 8", [("US_PASSPORT", "7 1 2 4 4 9 0 3 8")]),
    ("the pin is five five nine one", [("PIN", "five five nine one")]),
    ("deliver to 88 harbour view close, bristol, BS1 5TY", [("ADDRESS", "88 harbour view close, bristol, BS1 5TY")]),
    ("it's seventeen twenty two west cedar drive", [("ADDRESS", "seventeen twenty two west cedar drive")]),
    ("my name is femi adeyemi", [("PERSON", "femi adeyemi")]),
    ("my surname is spelled N A K A M U R A", [("PERSON", "N A K A M U R A")]),
    # partial redaction: the split local part, the false start
    ("my email address is sam ortiz at yahoo dot com", [("EMAIL_ADDRESS", "sam ortiz at yahoo dot com")]),
    ("policy number Q R seven, no wait, Q R S seven seven one two nine",
     [("MEMBER_ID", "Q R seven, no wait, Q R S seven seven one two nine")]),
]

NEGATIVES = [
    "this is taking forever, my name is on the bill",
    "the nhs helpline said to call back at 9",
    "I lost my passport on holiday in 2019",
    "we're on main street near the station",
    "press 2 for the I T desk",
]


def _scan(lines: list[str]) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "hybrid_agent", "pii", "scan", "--json"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120, check=True,
    )
    return [json.loads(x) for x in proc.stdout.splitlines()]


def test_pii_scan_json_detects_every_class() -> None:
    out = _scan([text for text, _ in CASES] + NEGATIVES)
    problems = []
    for (text, want), got in zip(CASES, out[: len(CASES)]):
        found = [(e["type"], text[e["start"] : e["end"]]) for e in got["entities"]]
        for typ, surface in want:
            start = text.index(surface)
            covering = [e for e in got["entities"] if e["type"] == typ and e["start"] <= start and start + len(surface) <= e["end"]]
            if not covering:
                problems.append(f"{text!r}: want {typ} over {surface!r}, got {found}")
            elif f"<{typ}>" not in got["redacted"]:
                problems.append(f"{text!r}: no typed placeholder in {got['redacted']!r}")
    for text, got in zip(NEGATIVES, out[len(CASES) :]):
        if got["entities"]:
            problems.append(f"negative {text!r} flagged {got['entities']}")
    assert not problems, "\n".join(problems)


def test_false_start_keeps_the_corrected_value(analyzer: PiiAnalyzer) -> None:
    text = "my pin is 55, sorry, 5591"
    (e,) = analyzer.analyze(text)
    assert (e.type, text[e.start : e.end], e.value) == ("PIN", "55, sorry, 5591", "5591")
    assert redact(text, [e]) == "my pin is <PIN>"
    # "no." is an abbreviation, not a restart: the label is not part of the value
    text = "NHS no. 1615594078"
    (e,) = analyzer.analyze(text)
    assert (e.type, text[e.start : e.end]) == ("NHS_NUMBER", "1615594078")


def test_split_local_part_needs_an_email_cue(analyzer: PiiAnalyzer) -> None:
    with_cue = "my email is sam ortiz at yahoo dot com"
    without = "tell sam ortiz at yahoo dot com"
    assert [with_cue[e.start : e.end] for e in analyzer.analyze(with_cue)] == ["sam ortiz at yahoo dot com"]
    assert [without[e.start : e.end] for e in analyzer.analyze(without)] == ["ortiz at yahoo dot com"]


@pytest.mark.parametrize(("value", "ok"), [("1615594078", True), ("1615594079", False), ("123", False)])
def test_nhs_mod_11(value: str, ok: bool) -> None:
    assert nhs_ok(value) is ok


@pytest.mark.parametrize(("value", "ok"), [("3AC4DE5FG67", True), ("3AB4DE5FG67", False), ("0AC4DE5FG67", False),
                                           ("3AC4DE5FG6", False), ("3ACADE5FG67", False)])
def test_mbi_format(value: str, ok: bool) -> None:
    assert mbi_ok(value) is ok


@pytest.mark.parametrize(("value", "ok"), [("JR551027A", True), ("GB551027A", False), ("DA551027A", False),
                                           ("JO551027A", False), ("JR551027E", False)])
def test_nino_rules(value: str, ok: bool) -> None:
    assert nino_ok(value) is ok


def test_iban_needs_its_country_length(analyzer: PiiAnalyzer) -> None:
    assert IBAN_LENGTHS["GB"] == 22 and IBAN_LENGTHS["NL"] == 18
    # two letters and digits that pass mod-97 by chance are no IBAN without a country's exact length
    assert [e.type for e in analyzer.analyze("ok 4138 8919 2585 0587 9")] != ["IBAN_CODE"]
    # one digit short of a GB IBAN
    assert not [e for e in analyzer.analyze("gb29 nwbk 6016 1331 9268 1") if e.type == "IBAN_CODE"]

"""Recognizers for identifiers read out by letter and digit: IBANs as speech recognizers write
them, Medicare MBIs, NHS numbers, UK National Insurance numbers, driver's licence and passport
numbers.

They see the *normalized* text (spoken numbers are digits, spelled capitals next to digits may be
joined) and tolerate what recognizers do to such values: lower case, a space or comma between any
two groups, letters said one by one ("one E G four, T E five ..."), the groups of a bank code
written as a word ("gb29 nwbk 6016 ...").  Each one validates what the format allows (mod-97 for
IBANs, the CMS character classes for MBIs, mod-11 for NHS numbers, the HMRC prefix rules for
NINOs), so the loose spacing does not cost precision; driver's licence and passport numbers have
no checksum and are only reported after their own label (``REQUIRES_LABEL`` in
:mod:`hybrid_agent.pii.recognizers`).

Every scan is linear: candidates start at a token boundary and read at most a fixed number of
tokens ahead.
"""

from __future__ import annotations

import re

from presidio_analyzer import LocalRecognizer, Pattern, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from hybrid_agent.pii import recognizers as R
from hybrid_agent.pii.normalize import iban_ok

# ISO 13616 lengths (SWIFT IBAN registry) of the countries this reader accepts: the length is
# what keeps two letters and a run of digits ("ok 4138 ...") from passing mod-97 by chance
# (1 in 97).  Presidio's stock recognizer still reads well-formed IBANs of other countries.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26,
    "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28,
    "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26,
}
_TOKEN = re.compile(r"[A-Za-z0-9]+")
# between two groups of one value: spaces, or a pause the recognizer wrote (",", ".", "-")
_GROUP_GAP = re.compile(r"[ \t]*(?:[,.\-][ \t]*)?")


def _tokens(text: str) -> list[re.Match[str]]:
    return list(_TOKEN.finditer(text))


def _joined_gap(text: str, a: int, b: int) -> bool:
    """``text[a:b]`` is a gap allowed inside one value (at most one pause mark)."""
    return b - a <= 4 and _GROUP_GAP.fullmatch(text, a, b) is not None


def _result(rec: LocalRecognizer, entity: str, start: int, end: int, score: float, value: str) -> RecognizerResult:
    meta = {
        RecognizerResult.RECOGNIZER_NAME_KEY: rec.name,
        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: rec.id,
        "strong": score >= 0.9,
        "value": value,
    }
    return RecognizerResult(entity, start, end, score, recognition_metadata=meta)


class _TokenRecognizer(LocalRecognizer):
    ENTITY = ""

    def __init__(self) -> None:
        super().__init__(supported_entities=[self.ENTITY], name=type(self).__name__, supported_language="en")

    def load(self) -> None:
        pass


# Countries whose bank code is four letters right after the check digits: a spelled "O" there
# was read as "oh" = 0 by the normalizer ("N L five six T R I O five one ...").
_LETTER_BANK_CODE = frozenset({"GB", "IE", "NL"})


def _letters_in_bank_code(acc: str) -> str:
    if acc[:2] in _LETTER_BANK_CODE and "0" in acc[4:8]:
        return acc[:4] + acc[4:8].replace("0", "O") + acc[8:]
    return acc


class SpokenIbanRecognizer(_TokenRecognizer):
    """An IBAN in any case and grouping: "gb29 nwbk 6016 ...", "GB 29 NWBK ...", "de89, 3704, ...".

    From every token that opens with a country code (letters "g b" said apart included), tokens
    are appended while the gap between them is a pause; every prefix whose length is the
    country's IBAN length (or 15-34 for other countries) and that passes mod-97 is a candidate,
    the longest kept.  At most 34 characters are read from each start.
    """

    ENTITY = R.IBAN_CODE

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list[RecognizerResult]:
        toks = _tokens(text)
        out: list[RecognizerResult] = []
        i = 0
        while i < len(toks):
            found = self._from(text, toks, i)
            if found is None:
                i += 1
                continue
            j, value = found
            out.append(_result(self, self.ENTITY, toks[i].start(), toks[j].end(), 1.0, value))
            i = j + 1
        return out

    def _from(self, text: str, toks: list[re.Match[str]], i: int) -> tuple[int, str] | None:
        if toks[i].start() > 0 and text[toks[i].start() - 1].isalnum():
            return None
        acc = ""
        best: tuple[int, str] | None = None
        for j in range(i, min(len(toks), i + 40)):
            if j > i and not _joined_gap(text, toks[j - 1].end(), toks[j].start()):
                break
            acc += toks[j].group().upper()
            if len(acc) >= 2 and not acc[:2].isalpha():
                return None
            if len(acc) >= 4 and not acc[2:4].isdigit():
                return None
            if len(acc) > 34:
                break
            if len(acc) < 4:
                continue
            want = IBAN_LENGTHS.get(acc[:2])
            if want is None:  # not a country whose length we know: "ok 4138 ..." is no IBAN
                return None
            if len(acc) == want:
                fixed = _letters_in_bank_code(acc)
                if iban_ok(fixed):
                    best = (j, fixed)
            if len(acc) >= want:
                break
        return best


# CMS: position 1 digit 1-9; 2, 5, 8, 9 letters; 3, 6 letter or digit; 4, 7, 10, 11 digits;
# letters never S L O I B Z.
_L = "[AC-HJKMNP-RT-Yac-hjkmnp-rt-y]"
_AN = "[AC-HJKMNP-RT-Yac-hjkmnp-rt-y0-9]"
_MBI_SHAPE = ("[1-9]", _L, _AN, "[0-9]", _L, _AN, "[0-9]", _L, _L, "[0-9]", "[0-9]")
_SEP = r"[ \t]?(?:[,.\-][ \t]?)?"  # at most one pause mark between two characters
_ONE_SEP = r"(?:[ \t]?[,.\-][ \t]?|[ \t])"  # exactly one separator between two digit groups
MBI_RE = re.compile(r"(?<![\w\-])" + _SEP.join(_MBI_SHAPE) + r"(?![\w]|-\w)")
_MBI_STRICT = re.compile("".join(_MBI_SHAPE))


def mbi_ok(s: str) -> bool:
    """An 11-character Medicare Beneficiary Identifier (dashes and spaces removed)."""
    return len(s) == 11 and _MBI_STRICT.fullmatch(s) is not None


class MedicareMbiRecognizer(_TokenRecognizer):
    """The 11-character MBI written ("1EG4-TE5-MK73", "1eg4te5mk73") or spelled ("1 E G 4, T E 5, M K 73").

    The shape is distinctive (digits and letters in fixed places, six letters excluded), so it is
    reported without a label; a Medicare label raises it above a member-id reading of the same span.
    """

    ENTITY = R.MEDICARE_MBI

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list[RecognizerResult]:
        out = []
        for m in MBI_RE.finditer(text):
            value = re.sub(r"[^A-Za-z0-9]", "", m.group()).upper()
            out.append(_result(self, self.ENTITY, m.start(), m.end(), 1.0, value))
        return out


def nhs_ok(d: str) -> bool:
    """NHS number mod-11: weights 10..2 on the first nine digits; check 11 - sum % 11, 11 -> 0, 10 invalid."""
    if len(d) != 10 or not d.isdigit():
        return False
    check = 11 - sum(int(c) * w for c, w in zip(d[:9], range(10, 1, -1))) % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(d[9])


class NhsNumberRecognizer(_TokenRecognizer):
    """A 10-digit NHS number (mod-11) in any grouping.  Ten digits are also a phone number's shape,
    so it is only reported after its own label ("NHS number", "N H S no")."""

    ENTITY = R.NHS_NUMBER

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list[RecognizerResult]:
        out: list[RecognizerResult] = []
        if not R.has_label(text, self.ENTITY):
            return out
        for m in R.DIGIT_RUN.finditer(text):
            d = re.sub(r"\D", "", m.group())
            if nhs_ok(d):
                out.append(_result(self, self.ENTITY, m.start(), m.end(), 0.4, d))
        return out


# HMRC: first letter not D F I Q U V; second not D F I O Q U V; BG GB KN NK NT TN ZZ never
# issued; six digits; suffix A-D.  Letters said apart, groups in any spacing.
_NINO_RE = re.compile(
    r"(?<![\w\-])([A-CEGHJ-PR-TW-Za-ceghj-pr-tw-z])[ \t]?([A-CEGHJ-NPR-TW-Za-ceghj-npr-tw-z])"
    + _SEP + _SEP.join([r"\d"] * 6) + _SEP + r"([A-Da-d])(?![\w]|-\w)"
)
_NINO_NEVER = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def nino_ok(s: str) -> bool:
    s = re.sub(r"[^A-Za-z0-9]", "", s).upper()
    return len(s) == 9 and _NINO_RE.fullmatch(s) is not None and s[:2] not in _NINO_NEVER


class UkNinoRecognizer(_TokenRecognizer):
    """A UK National Insurance number: "AB 12 34 56 C", "ab123456c", "J G one two, three four, five six, C".

    Two letters, six digits and a suffix letter under the HMRC prefix rules; a lower-case or spaced
    form without a label scores below the threshold (prose like "to 12 34 56 a" must not count)."""

    ENTITY = R.UK_NINO

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list[RecognizerResult]:
        out = []
        for m in _NINO_RE.finditer(text):
            value = re.sub(r"[^A-Za-z0-9]", "", m.group()).upper()
            if value[:2] in _NINO_NEVER:
                continue
            letters = m.group(1) + m.group(2) + m.group(3)
            compact = " " not in m.group() and "," not in m.group()
            score = 0.85 if letters.isupper() or compact else 0.4
            out.append(_result(self, self.ENTITY, m.start(), m.end(), score, value))
        return out


# a letter prefix that is the label itself ("DL 123 456 789", "no. 548219073") is not part of the value
_NOT_LABEL = r"(?!(?i:dl|id|no|nr|ni|dln)(?![A-Za-z]))"


class DriverLicenseRecognizer(R._LabelledPattern):
    """A US driver's licence number after its label: states use 1-2 letters then 4-14 digits
    ("D1234567", "F123-456-78-901-0"), or 7-9 digits ("123 456 789" in New York)."""

    ENTITY = R.US_DRIVER_LICENSE
    PATTERNS = [
        Pattern("dl", rf"(?<![\w\-])(?:{_NOT_LABEL}[A-Za-z]{{1,2}}{_SEP})?\d+(?:{_ONE_SEP}\d+){{0,13}}(?![\w]|[\-.,]\w)", 0.3),
    ]

    def validate_result(self, pattern_text: str) -> bool | None:
        head = re.match(r"[A-Za-z]+", pattern_text)
        if head and head.group().upper() in R.NOT_ID_PREFIX:
            return False
        return 4 <= sum(c.isdigit() for c in pattern_text) <= 14 and (head is not None or sum(c.isdigit() for c in pattern_text) >= 7)


class PassportRecognizer(R._LabelledPattern):
    """A US passport number after its label: 9 digits, or one letter and 8 digits (next generation)."""

    ENTITY = R.US_PASSPORT
    PATTERNS = [
        Pattern("passport", rf"(?<![\w\-])(?:{_NOT_LABEL}[A-Za-z]{_SEP})?\d+(?:{_ONE_SEP}\d+){{0,8}}(?![\w]|[\-.,]\w)", 0.3),
    ]

    def validate_result(self, pattern_text: str) -> bool | None:
        head = re.match(r"[A-Za-z]+", pattern_text)
        n = sum(c.isdigit() for c in pattern_text)
        if head and head.group().upper() in R.NOT_ID_PREFIX:
            return False
        return n == 9 if head is None else n == 8


RECOGNIZERS = (
    SpokenIbanRecognizer, MedicareMbiRecognizer, NhsNumberRecognizer, UkNinoRecognizer,
    DriverLicenseRecognizer, PassportRecognizer,
)

"""Our Presidio recognizers and the label-binding context enhancer.

Why this module is long: one recognizer class per entity type we add to Presidio (about a dozen, each a pattern list plus its checksum) and the label-binding enhancer they share.

Presidio's stock recognizers only see well-formed digit strings and, without a spaCy
model, never look at the words around a match.  Transcripts need both, so:

- :class:`DigitRunRecognizer` reads every run of digits however the speech recognizer
  grouped it (``41 11 1111 11111111``), classifies it by length and checksum (Luhn and
  card prefixes, SSN area/group/serial rules, ABA checksum, NANP shape) and proposes
  every type it could be;
- :class:`CardExpiryRecognizer`, :class:`CardSecurityCodeRecognizer`,
  :class:`DateOfBirthRecognizer`, :class:`MemberIdRecognizer` and :class:`PinRecognizer`
  propose the shapes those values take;
- :class:`LabelContextEnhancer` (a Presidio ``ContextAwareEnhancer``) then decides with
  the words of the text itself: each candidate is bound to the *nearest* label before it
  (``card``, ``social``, ``routing``, ``account``, ``member id``, ``expires``, ``born`` ...,
  or a negative label such as ``order``/``ticket``/``confirmation``) and scored from it.

Entity types of our own (beside Presidio's names): ``CARD_EXPIRY``, ``CARD_CVV``,
``DATE_OF_BIRTH``, ``MEMBER_ID``, ``PIN``, ``MEDICARE_MBI``, ``NHS_NUMBER``, ``ADDRESS``; the
recognizers of the identifiers read letter by letter are in :mod:`hybrid_agent.pii.identifiers`,
addresses in :mod:`hybrid_agent.pii.address`, names in :mod:`hybrid_agent.pii.names`; their labels
are here, with the others.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import phonenumbers
from presidio_analyzer import EntityRecognizer, LocalRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpArtifacts

from hybrid_agent.pii.normalize import SPELLED_ACRONYMS

CREDIT_CARD = "CREDIT_CARD"
US_SSN = "US_SSN"
PHONE_NUMBER = "PHONE_NUMBER"
EMAIL_ADDRESS = "EMAIL_ADDRESS"
IBAN_CODE = "IBAN_CODE"
US_BANK_NUMBER = "US_BANK_NUMBER"
ABA_ROUTING_NUMBER = "ABA_ROUTING_NUMBER"
CARD_EXPIRY = "CARD_EXPIRY"
CARD_CVV = "CARD_CVV"
DATE_OF_BIRTH = "DATE_OF_BIRTH"
MEMBER_ID = "MEMBER_ID"
PIN = "PIN"
US_DRIVER_LICENSE = "US_DRIVER_LICENSE"
US_PASSPORT = "US_PASSPORT"
MEDICARE_MBI = "MEDICARE_MBI"
NHS_NUMBER = "NHS_NUMBER"
UK_NINO = "UK_NINO"
ADDRESS = "ADDRESS"
PERSON = "PERSON"
NEGATIVE = "_NEGATIVE"

# ---------------------------------------------------------------------------- labels
# phrase -> entity type; the longest phrase wins where they overlap ("zip code" before "code").
LABELS: dict[str, str] = {}


def _labels(entity: str, phrases: Iterable[str]) -> None:
    for p in phrases:
        LABELS[p] = entity


_labels(CREDIT_CARD, [
    "card", "cards", "credit card", "debit card", "card number", "credit", "debit", "visa", "mastercard", "master card",
    "amex", "american express", "discover", "long number", "number on the card", "number on the front", "cc",
])
_labels(US_SSN, ["social", "social security", "ssn", "social security number", "socials", "s s n", "tax id", "taxpayer", "ss number", "ss no", "ss#"])
_labels(PHONE_NUMBER, [
    "phone", "phone number", "telephone", "cell", "cellphone", "cell phone", "mobile", "call me", "call me back",
    "callback", "call back", "reach me", "text me", "landline", "home number", "work number", "contact number",
    "number to call", "best number", "fax", "area code",
])
_labels(US_BANK_NUMBER, [
    "account", "account number", "acct", "checking", "savings", "bank account", "checking account",
    "savings account", "account no", "account's",
])
_labels(ABA_ROUTING_NUMBER, ["routing", "routing number", "aba", "transit number", "routing transit", "rtn", "transit"])
_labels(MEMBER_ID, [
    "member", "member id", "member number", "membership", "membership number", "policy", "policy number",
    "subscriber", "subscriber id", "patient id", "patient number", "medical record", "mrn", "customer number",
    "customer id", "insurance id", "id number", "group number", "plan id", "client number", "client id",
    # "<payer or plan> id/number": "her medicaid id is ...", "the medicare number", "health plan id"
    *(f"{p} {n}" for p in ("medicaid", "medicare", "insurance", "health plan", "benefits", "beneficiary", "enrollee",
                           "recipient", "dental", "vision", "pharmacy", "rx", "tricare", "hmo", "ppo", "insurance card",
                           "health insurance", "plan member")
      for n in ("id", "number", "no", "id number")),
])
_labels(CARD_EXPIRY, [
    "expires", "expire", "expiry", "expiration", "expiration date", "exp", "exp date", "valid thru", "valid through",
    "good thru", "good through", "expiring", "expiry date", "runs out",
])
_labels(CARD_CVV, [
    "security code", "cvv", "cvc", "cvv2", "csc", "cid", "card code", "verification code", "card verification",
    "code on the back", "digits on the back", "back of the card", "three digit code", "3 digit code",
    "four digit code", "4 digit code", "three digits", "3 digits",
    # the words people use for it: where it is printed, how many digits, whose code
    "security number", "security digits", "card security", "verification number", "cvv code", "cvc code",
    "code on the front", "digits on the front", "numbers on the back", "number on the back", "numbers on the front",
    "3 digit number", "3 digit security", "4 digit security",
    "front of the card", "back of the card",
    *(f"{b} {c}" for b in ("card", "amex", "american express", "visa", "mastercard", "discover", "card's")
      for c in ("code", "security code", "cvv", "cid")),
])
_labels(DATE_OF_BIRTH, [
    "date of birth", "birth date", "birthdate", "birthday", "born", "dob", "d o b", "born on", "born in",
])
# A PIN or telephone-banking passcode.  "telephone ..."/"phone ..." are longer than the phone
# labels "telephone"/"phone" and so win where they overlap; "code" alone is no label (zip code,
# area code, security code are other types).
_labels(PIN, [
    "pin", "pin number", "pin code", "p i n", "personal identification number", "security pin",
    "passcode", "pass code", "passcode digits", "passcode number", "security passcode", "access code",
    *(f"{p} {w}" for p in ("telephone", "phone", "telephone banking", "phone banking") for w in ("passcode", "pass code", "pin")),
])
_labels(US_DRIVER_LICENSE, [
    *(f"{d} {l}" for d in ("driver's", "drivers", "driver", "driving") for l in ("license", "licence")),
    *(f"{d} {l} {n}" for d in ("driver's", "drivers", "driver", "driving") for l in ("license", "licence")
      for n in ("number", "no", "id")),
    "license number", "licence number", "license no", "licence no", "dl", "dl number", "d l", "d l number",
    "state id", "state id number", "id card number",
])
_labels(US_PASSPORT, ["passport", "passport number", "passport no", "passport id", "passport book number"])
_labels(MEDICARE_MBI, [
    "mbi", "m b i", "medicare beneficiary identifier", "medicare beneficiary id", "medicare beneficiary number",
    "beneficiary identifier", "new medicare number", "medicare card number",
])
_labels(NHS_NUMBER, ["nhs number", "nhs no", "nhs", "n h s", "n h s number", "nhs id", "health service number", "nhs num"])
_labels(UK_NINO, [
    "national insurance", "national insurance number", "national insurance no", "ni number", "n i number", "nino",
    "ni no", "n i no", "insurance number",
])
_labels(NEGATIVE, [
    "order", "order number", "ticket", "ticket number", "confirmation", "confirmation number", "reference",
    "reference number", "ref", "tracking", "tracking number", "invoice", "case", "case number", "booking",
    "transaction", "zip", "zip code", "postal code", "extension", "ext", "flight", "room", "claim", "claim number",
    "serial", "model", "item", "sku", "receipt", "amount", "dollars", "bucks", "cents", "balance", "pay", "paid",
    "payment of", "minutes", "hours", "days", "years old", "o'clock", "am", "pm", "percent", "apartment", "suite",
    "street", "avenue", "floor", "page", "version", "tv",
])

# Labels that are acronyms are also said letter by letter ("C V V", "c.v.v.", "S-S-N"): each
# acronym label gets its spelled forms.
def _spelled_forms(word: str) -> list[str]:
    letters = list(word)
    return [" ".join(letters), ". ".join(letters) + ".", ".".join(letters) + ".", "-".join(letters)]


for _phrase, _ent in list(LABELS.items()):
    _words = _phrase.split()
    for _k, _w in enumerate(_words):
        if _w in SPELLED_ACRONYMS:
            for _form in _spelled_forms(_w):
                LABELS.setdefault(" ".join([*_words[:_k], _form, *_words[_k + 1 :]]), _ent)

_LABEL_RE = re.compile(
    r"(?<![\w])(?:" + "|".join(re.escape(p) for p in sorted(LABELS, key=len, reverse=True)) + r")(?![\w])",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_]+")
# "the social on the account": a label after one of these qualifies the noun before it
_QUALIFIER = re.compile(r"(?:\b(?:on|for|of|in)\s+(?:the|my|your|this|that|our)\s+)$", re.IGNORECASE)

# "the last four numbers on the back": a last-N mention, not the security code
_LAST_N = re.compile(r"\blast\s+(?:\d|three|four|few)\s+$", re.IGNORECASE)
# Spoken corrections: the number after "actually, sorry, it's ..." replaces the one before
# it and so takes that number's label (a virtual label at the correction marker).
_CORRECTION = re.compile(
    r"\b(?:actually|sorry|i mean|no wait|wait|scratch that|correction|my mistake|my bad|oops|rather|"
    r"(?:the|that)(?:'s| is| was)? (?:the )?(?:old|wrong|previous|expired|other) (?:one|number|card|account))\b",
    re.IGNORECASE,
)
CORRECTION_REACH = 16  # words from the label to the correction marker
# A label after its value, tied to it by a copula: "135 is the security code",
# "10-16-1974 is my date of birth", "may second 1958, that's my date of birth".
# (Written so that no two quantifiers can split one run of spaces between them: the former
# "\s*(?:\s+is ...)" and "\s+(?:the|...)?\s*" tried every split of a long run: "5 is" and 64,000
# spaces before a label took more than 9 s; the language matched is the same.)
_LINK = re.compile(
    r"[\s,;:-]*(?:(?:that|this|it|which)(?:\s*['\u2019]s|\s+(?:is|was|would\s+be|should\s+be))|is|was|"
    r"would\s+be|should\s+be|being|for|as|on)\s+(?:(?:the|my|your|his|her|our|their|its|a)\s*)?",
    re.IGNORECASE,
)
# Entity types that are only reported when their own label is the nearest one.
REQUIRES_LABEL = frozenset({
    US_BANK_NUMBER, ABA_ROUTING_NUMBER, MEMBER_ID, CARD_EXPIRY, CARD_CVV, DATE_OF_BIRTH, PIN, US_DRIVER_LICENSE, US_PASSPORT,
    NHS_NUMBER,
})
# Entity types a negative label ("order number", "ticket") suppresses.
NEGATABLE = frozenset({
    PHONE_NUMBER, US_SSN, US_BANK_NUMBER, ABA_ROUTING_NUMBER, MEMBER_ID, CARD_CVV, CREDIT_CARD, PIN, US_DRIVER_LICENSE,
    US_PASSPORT, NHS_NUMBER,
})
# How many words may stand between a label and the value it names.
WINDOW_BEFORE = {CARD_CVV: 8, CARD_EXPIRY: 8, DATE_OF_BIRTH: 8, PIN: 8}
DEFAULT_WINDOW_BEFORE = 10
WINDOW_AFTER = 4
# Labels after a value bind it only through a copula ("4921 is my pin"), never by nearness alone.
_NO_BARE_AFTER = frozenset({CARD_EXPIRY, CARD_CVV, DATE_OF_BIRTH, PIN, NEGATIVE})
# A PIN has at most this many digits: a PIN label does not name a longer number ("I forgot my
# pin, my number is 212 947 3311" is a phone number), it is skipped for it.
PIN_MIN_DIGITS, PIN_MAX_DIGITS = 4, 8


def _too_long_for_pin(text: str, start: int, end: int) -> bool:
    """More than PIN_MAX_DIGITS digits in ``text[start:end]`` (stops counting there)."""
    n = 0
    for i in range(start, end):
        if text[i].isdigit():
            n += 1
            if n > PIN_MAX_DIGITS:
                return True
    return False


@dataclass(slots=True)
class _TextIndex:
    text: str
    word_starts: list[int]
    labels: list[tuple[int, int, str, bool]]  # (start, end, entity, virtual: from a correction)
    # Lookup tables so that binding a candidate costs O(log labels), not a scan of the labels
    # (a hostile text of thousands of "card 1234567" pairs made that scan quadratic):
    starts: list[int] = field(default_factory=list)  # labels[i][0]
    suffix_min_end: list[int] = field(default_factory=list)  # min(labels[j][1] for j >= i)
    next_real: list[int] = field(default_factory=list)  # smallest j >= i with labels[j] not virtual, else len

    def __post_init__(self) -> None:
        n = len(self.labels)
        self.starts = [lab[0] for lab in self.labels]
        self.suffix_min_end = [0] * n
        self.next_real = [n] * (n + 1)
        low = 1 << 62
        for i in range(n - 1, -1, -1):
            low = min(low, self.labels[i][1])
            self.suffix_min_end[i] = low
            self.next_real[i] = i if not self.labels[i][3] else self.next_real[i + 1]

    def last_ending_by(self, pos: int) -> int:
        """Index of the last label (in list order) that ends at or before ``pos``, or -1."""
        # suffix_min_end is non-decreasing; the last i with suffix_min_end[i] <= pos has labels[i][1] <= pos
        return bisect.bisect_right(self.suffix_min_end, pos) - 1

    def first_real_from(self, pos: int) -> int:
        """Index of the first non-virtual label (in list order) starting at or after ``pos``, or -1."""
        i = self.next_real[bisect.bisect_left(self.starts, pos)]
        return i if i < len(self.labels) else -1


def _qualified(text: str, pos: int) -> bool:
    """The label at ``pos`` qualifies another noun ("the social on the account"): skipped.  Not
    after a value ("021000021 for the routing", "123 on the cvv"): there it names that value."""
    q = _QUALIFIER.search(text, max(0, pos - 16), pos)
    if q is None:
        return False
    before = text[max(0, q.start() - 4) : q.start()].rstrip(" ,")
    return not (before and before[-1].isdigit())


_index_cache: list[_TextIndex] = []


def text_index(text: str) -> _TextIndex:
    """Word positions and label occurrences of ``text`` (the last text is cached)."""
    if _index_cache and _index_cache[0].text is text:
        return _index_cache[0]
    ws = [m.start() for m in _WORD.finditer(text)]
    labels = [
        (m.start(), m.end(), LABELS[m.group().lower()], False)
        for m in _LABEL_RE.finditer(text)
        if not _qualified(text, m.start())
        and not (LABELS[m.group().lower()] == CARD_CVV and _LAST_N.search(text, max(0, m.start() - 16), m.start()))
    ]
    if labels and _CORRECTION.search(text):
        virtual = []
        ends = [lab[1] for lab in labels]  # increasing: finditer matches do not overlap
        for c in _CORRECTION.finditer(text):
            b = bisect.bisect_right(ends, c.start()) - 1  # the last label ending before the marker
            if b < 0 or labels[b][2] == NEGATIVE:
                continue
            ls, le, ent, _v = labels[b]
            if bisect.bisect_left(ws, c.start()) - bisect.bisect_left(ws, le) > CORRECTION_REACH:
                continue
            if any(ch.isdigit() for ch in text[le : c.start()]):  # a number was given, then corrected
                virtual.append((c.start(), c.end(), ent, True))
        if virtual:
            labels = sorted(labels + virtual)
    idx = _TextIndex(text, ws, labels)
    _index_cache[:] = [idx]
    return idx


def has_label(text: str, entity: str) -> bool:
    """Does ``text`` name ``entity`` anywhere (a label, or a correction carrying one)?"""
    return any(lab[2] == entity for lab in text_index(text).labels)


def nearest_label(text: str, start: int, end: int, entity: str) -> tuple[str | None, int]:
    """The label bound to span ``[start, end)``: the nearest one before it (within the
    window), else the nearest one shortly after it.  Returns (entity type or None, distance in words)."""
    idx = text_index(text)
    ws = idx.word_starts
    window = WINDOW_BEFORE.get(entity, DEFAULT_WINDOW_BEFORE)
    long_value: list[bool] = []  # computed once, when a PIN label is met (see PIN_MAX_DIGITS)

    def skip(ent: str) -> bool:
        if ent != PIN or entity == PIN:
            return False
        if not long_value:
            long_value.append(_too_long_for_pin(text, start, end))
        return long_value[0]

    best: tuple[str | None, int] = (None, 1 << 30)
    b = idx.last_ending_by(start)  # the last label (in list order) ending at or before the span
    # A PIN label skipped for a long number hands it to the label before it (the labels ending
    # within the window are at most about 2 * window: real ones do not overlap, nor do virtual ones).
    while b >= 0:
        _ls, le, ent, _v = idx.labels[b]
        dist = bisect.bisect_left(ws, start) - bisect.bisect_left(ws, le)
        if dist > window:
            break
        if le <= start and not skip(ent):
            best = (ent, dist)
            break
        b -= 1
    after: tuple[str | None, int] = (None, -1)
    a = idx.first_real_from(end)  # the first label from a correction marker does not count here
    if a >= 0:
        ls, _le, ent, _virtual = idx.labels[a]
        if not skip(ent):
            link = _LINK.fullmatch(text, end, ls)
            if link:  # "X is the security code": the value is named right after it; this wins
                return ent, 0
            dist = bisect.bisect_left(ws, ls) - bisect.bisect_left(ws, end)
            if dist <= WINDOW_AFTER and ent not in _NO_BARE_AFTER:
                after = (ent, dist)
    if best[0] is not None:
        return best
    return after


class LabelContextEnhancer(ContextAwareEnhancer):
    """Score every candidate from the nearest label in the text itself (no NLP model needed)."""

    def __init__(self, boost: float = 0.35, floor_with_label: float = 0.65) -> None:
        super().__init__(
            context_similarity_factor=boost,
            min_score_with_context_similarity=floor_with_label,
            context_prefix_count=DEFAULT_WINDOW_BEFORE,
            context_suffix_count=WINDOW_AFTER,
        )

    def enhance_using_context(
        self,
        text: str,
        raw_results: list[RecognizerResult],
        nlp_artifacts: NlpArtifacts,
        recognizers: list[EntityRecognizer],
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        out = []
        for r in raw_results:
            label, _dist = nearest_label(text, r.start, r.end, r.entity_type)
            meta = r.recognition_metadata or {}
            strong = bool(meta.get("strong"))
            if meta.get("joined") and label != r.entity_type and (r.entity_type != CREDIT_CARD or label is not None):
                # a number joined across an aside: its own label, or (a card) a checksum and no other label
                r.score = 0.0
            elif label == r.entity_type:
                r.score = min(1.0, max(r.score + self.context_similarity_factor, self.min_score_with_context_similarity))
            elif r.entity_type in REQUIRES_LABEL:
                r.score = 0.0
            elif label == NEGATIVE and r.entity_type in NEGATABLE and not strong:
                r.score = 0.0
            elif label is not None and r.entity_type in (US_SSN, PHONE_NUMBER) and not strong:
                # bound to another type's label ("account number is 212 555 0132"): leave it to that type
                r.score = min(r.score, 0.3)
            out.append(r)
        return out


# ---------------------------------------------------------------------------- checksums
def luhn_ok(d: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(d)):
        v = ord(ch) - 48
        if i % 2:
            v *= 2
            if v > 9:
                v -= 9
        total += v
    return total % 10 == 0


def card_brand_ok(d: str) -> bool:
    """Known issuer prefix and length (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay)."""
    n = len(d)
    p2, p4 = int(d[:2]), int(d[:4])
    if d[0] == "4":
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16
    if p2 in (34, 37):
        return n == 15
    if d.startswith("6011") or p2 == 65 or 644 <= int(d[:3]) <= 649:
        return n in (16, 19)
    if p2 in (36, 38, 39) or 300 <= int(d[:3]) <= 305:
        return n in (14, 16)
    if 3528 <= p4 <= 3589:
        return n in (16, 19)
    if p2 == 62:
        return 16 <= n <= 19
    return False


def ssn_ok(d: str) -> bool:
    if len(d) != 9 or len(set(d)) == 1:
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return d not in ("123456789", "987654320", "078051120")


def aba_ok(d: str) -> bool:
    if len(d) != 9 or d[0] not in "0123678" or d == "000000000":
        return False
    w = (3, 7, 1) * 3
    return sum(int(c) * k for c, k in zip(d, w)) % 10 == 0


def nanp_shape(d: str) -> bool:
    if len(d) == 11 and d[0] == "1":
        d = d[1:]
    return len(d) == 10 and d[0] in "23456789" and d[3] in "23456789"


def phone_valid(d: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(d, "US"))
    except phonenumbers.NumberParseException:
        return False


# ---------------------------------------------------------------------------- recognizers
_RUN = re.compile(r"(?<![\w+])(\+?\d+(?:(?:[ \t]*[,.\-][ \t]*|[ \t]+)\d+)*)(?![\w])")
_GROUP = re.compile(r"\d+")
DIGIT_RUN = _RUN  # every digit run however grouped (for the recognizers of other modules)
# Digit groups split by a filler or a short aside ("4549 1210, hang on, 3503 4465",
# "340 97 uh 4252", "area code 212, then 789 8287") are joined when the gap is at most
# ASIDE_MAX_WORDS words with no digit, no label and no question/exclamation mark.  The
# joined number is only kept when it validates as a card (Luhn + issuer prefix and length)
# or is bound to its own label (see LabelContextEnhancer).  The streaming scanner holds a
# number open for as many words (streaming.unsettled_tail).
ASIDE_MAX_WORDS = 8
_GAP_BAD = re.compile(r"[\d?!@]")
# A restart between two digit runs: the caller abandons what they were reading and says it again.
_RESTART = re.compile(
    r"(?:[\s,.;:-]*(?:no|nope|wait|sorry|oops|actually|i mean|scratch that|hold on|my mistake|my bad|"
    r"let me (?:start|try|say (?:it|that)|do (?:it|that)|read (?:it|that)) (?:again|over)|"
    r"start(?:ing)? (?:again|over)|again|from the (?:top|start|beginning)|um+|uh+|er+m?|hmm)(?![\w']))+[\s,.;:-]*",
    re.IGNORECASE,
)


class DigitRunRecognizer(LocalRecognizer):
    """Digit runs in any grouping -> every entity type their length and checksums allow."""

    ENTITIES = [CREDIT_CARD, US_SSN, PHONE_NUMBER, US_BANK_NUMBER, ABA_ROUTING_NUMBER, MEMBER_ID]

    def __init__(self) -> None:
        super().__init__(supported_entities=list(self.ENTITIES), name="DigitRunRecognizer", supported_language="en")

    def load(self) -> None:
        pass

    def _result(
        self, entity: str, start: int, end: int, score: float, strong: bool = False, joined: bool = False,
        value: str | None = None,
    ) -> RecognizerResult:
        meta = {
            RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
            "strong": strong,
            "joined": joined,
        }
        if value is not None:
            meta["value"] = value  # the number meant, when the span also holds an abandoned start
        return RecognizerResult(entity, start, end, score, recognition_metadata=meta)

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list[RecognizerResult]:
        out: list[RecognizerResult] = []
        want = set(entities or self.ENTITIES)
        runs = list(_RUN.finditer(text))
        if len(runs) > 1:
            self._joined(text, runs, want, out)
        for m in runs:
            groups = [(g.start(), g.end()) for g in _GROUP.finditer(m.group())]
            base = m.start()
            digits = "".join(text[base + s : base + e] for s, e in groups)
            n = len(digits)
            if n < 6:
                continue
            self._classify(text, base, groups, digits, want, out)
            if n > 19 and CREDIT_CARD in want:
                # a card run followed or preceded by other digits: try group-aligned windows
                for i in range(len(groups)):
                    acc = ""
                    for j in range(i, len(groups)):
                        acc += text[base + groups[j][0] : base + groups[j][1]]
                        if len(acc) > 19:
                            break
                        if len(acc) >= 13 and (i, j) != (0, len(groups) - 1) and luhn_ok(acc) and card_brand_ok(acc):
                            out.append(self._result(CREDIT_CARD, base + groups[i][0], base + groups[j][1], 0.85, True))
        return out

    def _joined(self, text: str, runs: list[re.Match[str]], want: set[str], out: list[RecognizerResult]) -> None:
        """Numbers split across a filler or a short aside (see ASIDE_MAX_WORDS)."""
        for i in range(len(runs) - 1):
            digits = re.sub(r"\D", "", runs[i].group())
            shape = [len(g) for g in _GROUP.findall(runs[i].group())]
            for j in range(i + 1, len(runs)):
                gap = text[runs[j - 1].end() : runs[j].start()]
                nwords = len(_WORD.findall(gap))
                if nwords == 0 or nwords > ASIDE_MAX_WORDS or _GAP_BAD.search(gap) or _LABEL_RE.search(gap):
                    break
                if j == i + 1 and _RESTART.fullmatch(gap):
                    self._restarted(digits, re.sub(r"\D", "", runs[j].group()), runs[i].start(), runs[j].end(), want, out)
                digits += re.sub(r"\D", "", runs[j].group())
                shape += [len(g) for g in _GROUP.findall(runs[j].group())]
                n = len(digits)
                if n > 19:
                    break
                s, e = runs[i].start(), runs[j].end()
                if CREDIT_CARD in want and n >= 13 and luhn_ok(digits) and card_brand_ok(digits):
                    out.append(self._result(CREDIT_CARD, s, e, 0.85, joined=True))
                if US_SSN in want and n == 9 and ssn_ok(digits):
                    out.append(self._result(US_SSN, s, e, 0.5 if shape == [3, 2, 4] else 0.3, joined=True))
                if ABA_ROUTING_NUMBER in want and n == 9 and aba_ok(digits):
                    out.append(self._result(ABA_ROUTING_NUMBER, s, e, 0.4, joined=True))
                if PHONE_NUMBER in want and nanp_shape(digits) and phone_valid(digits):
                    out.append(self._result(PHONE_NUMBER, s, e, 0.45, joined=True))
                if US_BANK_NUMBER in want and 6 <= n <= 17:
                    out.append(self._result(US_BANK_NUMBER, s, e, 0.2, joined=True))
                if MEMBER_ID in want and 6 <= n <= 15:
                    out.append(self._result(MEMBER_ID, s, e, 0.2, joined=True))

    def _restarted(self, a: str, b: str, s: int, e: int, want: set[str], out: list[RecognizerResult]) -> None:
        """``a`` <restart marker> ``b`` ("... six one one, no, six one one oh ...", "sorry, let me start
        again"): the later digits replace the end of the earlier reading, all of it (``b`` alone), the
        part ``b`` repeats (``a`` ends with what ``b`` starts with), or, for a card, up to 4 digits.
        The span covers the abandoned start too; the value is the number meant."""
        cands = [b] if len(b) >= len(a) and b.startswith(a) else []
        cands += [a[: len(a) - t] + b for t in range(min(len(a), len(b)), 0, -1) if a.endswith(b[:t])]
        if not cands or cands[0] != b:
            cands.append(b)
        checked = cands + [a[: len(a) - k] + b for k in range(1, min(4, len(a) - 1) + 1)]
        if CREDIT_CARD in want:
            for d in checked:
                if 13 <= len(d) <= 19 and luhn_ok(d) and card_brand_ok(d):
                    out.append(self._result(CREDIT_CARD, s, e, 1.0, strong=True, joined=True, value=d))
                    break
        for d in cands:
            if US_SSN in want and len(d) == 9 and ssn_ok(d):
                out.append(self._result(US_SSN, s, e, 0.55, joined=True, value=d))
            if ABA_ROUTING_NUMBER in want and len(d) == 9 and aba_ok(d):
                out.append(self._result(ABA_ROUTING_NUMBER, s, e, 0.45, joined=True, value=d))
            if PHONE_NUMBER in want and nanp_shape(d) and phone_valid(d):
                out.append(self._result(PHONE_NUMBER, s, e, 0.5, joined=True, value=d))
        d = cands[0]
        if US_BANK_NUMBER in want and 6 <= len(d) <= 17:
            out.append(self._result(US_BANK_NUMBER, s, e, 0.35, joined=True, value=d))
        if MEMBER_ID in want and 6 <= len(d) <= 15:
            out.append(self._result(MEMBER_ID, s, e, 0.35, joined=True, value=d))

    def _classify(self, text: str, base: int, groups: list[tuple[int, int]], d: str, want: set[str], out: list) -> None:
        n = len(d)
        s, e = base + groups[0][0], base + groups[-1][1]
        if text[s - 1 : s] == "+" and s > 0:
            s -= 1
        if CREDIT_CARD in want and 13 <= n <= 19 and luhn_ok(d):
            brand = card_brand_ok(d)
            out.append(self._result(CREDIT_CARD, s, e, 0.9 if brand else 0.4, strong=brand))
        if US_SSN in want and n == 9 and ssn_ok(d):
            shape = [b - a for a, b in groups]
            out.append(self._result(US_SSN, s, e, 0.5 if shape == [3, 2, 4] else 0.1))
        if ABA_ROUTING_NUMBER in want and n == 9 and aba_ok(d):
            out.append(self._result(ABA_ROUTING_NUMBER, s, e, 0.4))
        if PHONE_NUMBER in want and 10 <= n <= 15:
            plus = text[s : s + 1] == "+"
            if plus:
                try:
                    ok = phonenumbers.is_valid_number(phonenumbers.parse("+" + d, None))
                except phonenumbers.NumberParseException:
                    ok = False
                if ok:
                    out.append(self._result(PHONE_NUMBER, s, e, 0.5))
            elif nanp_shape(d):
                out.append(self._result(PHONE_NUMBER, s, e, 0.45 if phone_valid(d) else 0.2))
        if US_BANK_NUMBER in want and 6 <= n <= 17:
            out.append(self._result(US_BANK_NUMBER, s, e, 0.2))
        if MEMBER_ID in want and 6 <= n <= 15:
            out.append(self._result(MEMBER_ID, s, e, 0.2))


class _LabelledPattern(PatternRecognizer):
    """A pattern recognizer whose matches need their label (see LabelContextEnhancer)."""

    ENTITY = ""
    PATTERNS: list[Pattern] = []

    def __init__(self) -> None:
        super().__init__(supported_entity=self.ENTITY, patterns=list(self.PATTERNS), name=type(self).__name__, supported_language="en")

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):  # type: ignore[no-untyped-def]
        # a type that needs its own label has no candidate in a text without one (same result, less work)
        if self.ENTITY in REQUIRES_LABEL and not has_label(text, self.ENTITY):
            return []
        return super().analyze(text, entities, nlp_artifacts, regex_flags)


_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_ORD = (
    r"(?:(?:[23]0[ -])?(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)|tenth|eleventh|twelfth|thirteenth|"
    r"fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|thirtieth|\d{1,2}(?:st|nd|rd|th)?)"
)


# between the day and the year of a spoken date: a pause the recognizer wrote, a filler
_DOB_PAUSE = r"(?:[,.]?\s+(?:(?:um+|uh+|er+m?|hmm|like|you know|let me see|let's see)[,.]?\s+)?)"


_SPACED_DIGITS = re.compile(r"\d(?:\D{1,3}\d){3}")


class CardExpiryRecognizer(_LabelledPattern):
    ENTITY = CARD_EXPIRY
    PATTERNS = [
        Pattern("expiry mm/yy", r"(?<![\w/])(?:0?[1-9]|1[0-2])\s?[/\-. ]?\s?(?:20)?\d{2}(?![\w/])", 0.3),
        Pattern("expiry month year", rf"\b{_MONTH}\s+(?:of\s+)?(?:20)?\d{{2}}\b", 0.3),
        # read as single written digits: "0 4 2 7", "1 2, 2 9", "0-4-2-7" (month 01-12, checked below)
        Pattern("expiry spaced", r"(?<![\w\-.,/])(?<!\d )[01](?: ?[\-.,/] ?| )\d(?: ?[\-.,/] ?| )\d(?: ?[\-.,] ?| )\d"
                r"(?![\w]|[\-.,]\d| \d)", 0.3),
    ]

    def validate_result(self, pattern_text: str) -> bool | None:
        d = re.sub(r"\D", "", pattern_text)
        if _SPACED_DIGITS.fullmatch(pattern_text) and not 1 <= int(d[:2]) <= 12:
            return False
        return None


class CardSecurityCodeRecognizer(_LabelledPattern):
    ENTITY = CARD_CVV
    PATTERNS = [
        Pattern("cvv", r"(?<![\w])\d{3,4}(?![\w])", 0.3),
        # read back digit by digit as written digits: "9 6 5", "4-0-2-1"
        Pattern("cvv spaced", r"(?<![\w\-.,])(?<!\d )(?<!\d, )\d(?:(?: ?[\-.,] ?| )\d){2,3}(?![\w]|[\-.,]\d| \d)", 0.3),
    ]


class DateOfBirthRecognizer(_LabelledPattern):
    ENTITY = DATE_OF_BIRTH
    PATTERNS = [
        Pattern("dob numeric", r"(?<![\w/])\d{1,2}\s?[/\-. ]\s?\d{1,2}\s?[/\-. ]\s?(?:\d{4}|\d{2})(?![\w/])", 0.3),
        Pattern("dob iso", r"\b(?:19|20)\d{2}-\d{1,2}-\d{1,2}\b", 0.3),
        Pattern("dob run", r"(?<![\w])\d{5,8}(?![\w])", 0.2),
        # the year may follow a pause the recognizer wrote as "," or "." ("april eighteenth. twenty eleven")
        # a filler may stand between the day and the year ("june twenty first, uh, nineteen ninety")
        Pattern("dob month first", rf"\b{_MONTH}\s+(?:the\s+)?{_ORD}{_DOB_PAUSE}(?:of\s+)?(?:(?:19|20)\d{{2}}|\d{{2}})\b", 0.3),
        Pattern("dob day first", rf"\b(?:the\s+)?{_ORD}\s+(?:of\s+)?{_MONTH}{_DOB_PAUSE}(?:(?:19|20)\d{{2}}|\d{{2}})\b", 0.3),
        # the year first: "nineteen eighty five, march fourteenth", "1985 march 14", "1985, the 14th of march"
        Pattern("dob year first", rf"\b(?:19|20)\d{{2}}{_DOB_PAUSE}(?:{_MONTH}\s+(?:the\s+)?{_ORD}|(?:the\s+)?{_ORD}\s+(?:of\s+)?{_MONTH})\b", 0.3),
        Pattern("dob month year", rf"\b{_MONTH}\s+(?:of\s+)?(?:19|20)\d{{2}}\b", 0.25),
    ]


# capitalized words that sit before a number but are not part of it ("my member ID 449 210 773")
NOT_ID_PREFIX = frozenset("ID IDS NO NUM MRN SSN DOB PIN IS IT OK MY THE AND OR TO OF ON IN AT BY PO AM PM USD".split())


class MemberIdRecognizer(_LabelledPattern):
    ENTITY = MEMBER_ID
    PATTERNS = [
        # (no "(?=[A-Za-z0-9-]*\d)" lookahead: the body needs 5 digits anyway, and the lookahead
        # scanned the rest of a "1-1-1-..." run from every word boundary: quadratic)
        Pattern("alnum id", r"\b[A-Za-z]{1,4}-?\d{5,12}[A-Za-z]?\b", 0.3),
        # a capital-letter prefix said or written apart from its digit groups: "XJH 449 210 773"
        Pattern("prefixed id", r"(?<![\w-])(?-i:[A-Z]{2,4})[ -]\d{2,6}(?:[ -]\d{2,6}){0,3}(?![\w-])", 0.3),
    ]

    def validate_result(self, pattern_text: str) -> bool | None:
        head = re.match(r"[A-Za-z]+", pattern_text)
        if head and head.group().upper() in NOT_ID_PREFIX:
            return False
        return 5 <= sum(c.isdigit() for c in pattern_text) <= 15


# A year after a time preposition ("I haven't changed my pin since 2019") is not the PIN.
_YEAR = re.compile(r"(?:19|20)\d\d")
_TIME_PREP = re.compile(r"\b(?:in|since|from|until|till|before|after|around|by|circa)\s$", re.IGNORECASE)
# The separators between the digit groups of one value (as in CARD_CVV's "cvv spaced"): a space,
# or one of - . , with an optional space either side.  Exactly one separator between two groups.
_PIN_SEP = r"(?: ?[\-.,] ?| )"


class PinRecognizer(_LabelledPattern):
    """A PIN or telephone-banking passcode: 4 to 8 digits, written ("4921"), spaced ("2 4 6 8 1 0",
    "246-810") or spoken (digits after normalization: "two four six eight one zero" -> "246810").

    The pattern takes a whole digit run, never part of one (the look-arounds refuse a start or an
    end next to another digit group), so a 16-digit card after "pin" is one run of 16 digits and
    no PIN; the digit count is checked in :meth:`invalidate_result`.  Linear: one separator
    between two digit groups, so a run splits into groups one way only.
    """

    ENTITY = PIN
    PATTERNS = [
        Pattern(
            "pin",
            r"(?<![\w$\u00a3\u20ac+])(?<!\d[\-.,])(?<!\d )(?<!\d[\-.,] )(?<!\d [\-.,])(?<!\d [\-.,] )"
            rf"\d+(?:{_PIN_SEP}\d+)*"
            r"(?![\w%]|[\-.,]\d| \d| [\-.,]\d|[\-.,] \d| [\-.,] \d)",
            0.3,
        ),
    ]

    def invalidate_result(self, pattern_text: str) -> bool | None:
        n = sum(c.isdigit() for c in pattern_text)
        return not (PIN_MIN_DIGITS <= n <= PIN_MAX_DIGITS)

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):  # type: ignore[no-untyped-def]
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        return [
            r for r in results
            if not (_YEAR.fullmatch(text, r.start, r.end) and _TIME_PREP.search(text, max(0, r.start - 8), r.start))
        ]

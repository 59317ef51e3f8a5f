"""The PII analyzer: spoken-form normalizer + Presidio + label binding, one per process.

``get_analyzer().analyze(text)`` returns :class:`PiiEntity` objects whose offsets index
the *original* text (what the caller said), whatever the normalizer rewrote.

NLP engine: if a spaCy pipeline with NER is installed (``HYBRID_AGENT_PII_SPACY_MODEL``
names one; otherwise the first of ``en_core_web_lg``, ``en_core_web_md``,
``en_core_web_sm``, ``en_core_web_trf`` that ``spacy.util.is_package`` finds) the
analyzer uses Presidio's ``SpacyNlpEngine`` with it, whose NER adds ``PERSON`` names beside
the cue-based ones.  Without one (this machine: no model can be downloaded) it uses Presidio's
``NoOpNlpEngine``: the pattern, checksum, label and name-cue recognizers need no model.
Nothing is ever downloaded.
"""

from __future__ import annotations

import bisect
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

# Never let tldextract (used by Presidio's e-mail recognizer) fetch the public suffix list.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

import tldextract  # noqa: E402
from presidio_analyzer import AnalyzerEngine, Pattern, RecognizerRegistry, RecognizerResult  # noqa: E402
from presidio_analyzer.nlp_engine import NlpEngine, NoOpNlpEngine  # noqa: E402
from presidio_analyzer.predefined_recognizers import (  # noqa: E402
    AbaRoutingRecognizer,
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    PhoneRecognizer,
    UsBankRecognizer,
    UsSsnRecognizer,
)

from hybrid_agent.pii import identifiers  # noqa: E402
from hybrid_agent.pii.address import AddressRecognizer  # noqa: E402
from hybrid_agent.pii.names import PersonCueRecognizer, might_hold_name  # noqa: E402
from hybrid_agent.pii import recognizers as R  # noqa: E402
from hybrid_agent.pii.normalize import Normalized, normalize  # noqa: E402

log = logging.getLogger(__name__)

__all__ = ["PiiEntity", "PiiAnalyzer", "get_analyzer", "ENTITY_TYPES", "DEFAULT_THRESHOLDS"]

ENTITY_TYPES = (
    R.CREDIT_CARD, R.CARD_CVV, R.CARD_EXPIRY, R.US_SSN, R.PHONE_NUMBER, R.EMAIL_ADDRESS, R.IBAN_CODE,
    R.US_BANK_NUMBER, R.ABA_ROUTING_NUMBER, R.DATE_OF_BIRTH, R.MEMBER_ID, R.PIN, R.US_DRIVER_LICENSE, R.US_PASSPORT,
    R.MEDICARE_MBI, R.NHS_NUMBER, R.UK_NINO, R.ADDRESS, R.PERSON,
)
DEFAULT_THRESHOLDS = {R.PHONE_NUMBER: 0.4}
DEFAULT_THRESHOLD = 0.5
SPACY_MODELS = ("en_core_web_lg", "en_core_web_md", "en_core_web_sm", "en_core_web_trf")

# A text with none of these cannot hold a pattern entity (after normalization): skip Presidio.
_PREFILTER = re.compile(r"\d|@")


@dataclass(frozen=True, slots=True)
class PiiEntity:
    """One finding.  ``start``/``end`` index the original text; ``value`` is the
    normalized value (digits, lower-case address) and is kept out of ``repr``."""

    type: str
    start: int
    end: int
    score: float
    value: str = field(default="", repr=False, compare=False)
    recognizer: str = field(default="", repr=False, compare=False)

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "start": self.start, "end": self.end, "score": round(self.score, 3)}


# Presidio's e-mail pattern with the local part bounded: its ``[...\.\w]{0,}`` scanned from every
# word boundary of a dotted run to the ``@`` at its end ("a.a.a. ... a.@": 7.6 s for 8,000
# characters).  A local part is at most 64 characters (RFC 5321), so ``{0,62}`` between its first
# and last character keeps every real address and bounds the work per start position.  The
# domain part is Presidio's, unchanged (unambiguous: linear from a given ``@``).
_STOCK_EMAIL = EmailRecognizer.PATTERNS[0]
if _STOCK_EMAIL.regex.count("{0,}") != 1:  # pragma: no cover - a Presidio upgrade changed it
    raise RuntimeError("Presidio's e-mail pattern changed: review hybrid_agent.pii.analyzer.EMAIL_PATTERN")
EMAIL_PATTERN = _STOCK_EMAIL.regex.replace("{0,}", "{0,62}")


class _OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer validating with the bundled suffix list only, its
    pattern's local part bounded to 64 characters (linear time, see ``EMAIL_PATTERN``)."""

    _extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)

    def __init__(self) -> None:
        super().__init__(patterns=[Pattern(_STOCK_EMAIL.name, EMAIL_PATTERN, _STOCK_EMAIL.score)])

    def validate_result(self, pattern_text: str) -> bool:
        return self._extract(pattern_text).fqdn != ""


def _find_spacy_model() -> str | None:
    name = os.environ.get("HYBRID_AGENT_PII_SPACY_MODEL")
    try:
        import spacy.util
    except ImportError:  # pragma: no cover
        return None
    if name is not None:
        if not name:
            return None  # empty: explicitly no model
        if spacy.util.is_package(name) or Path(name).exists():
            return name
        # Presidio would try to download a missing model: refuse, stay offline
        log.warning("spaCy model %r (HYBRID_AGENT_PII_SPACY_MODEL) is not installed; PERSON comes from name cues only", name)
        return None
    for candidate in SPACY_MODELS:
        if spacy.util.is_package(candidate):
            return candidate
    return None


def _nlp_engine(model: str | None) -> NlpEngine:
    if model:
        from presidio_analyzer.nlp_engine import SpacyNlpEngine

        engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model}])
        engine.load()  # the model exists (checked above), so this never downloads
        return engine
    engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
    engine.load()
    return engine


def build_engine(model: str | None = None) -> AnalyzerEngine:
    """A Presidio ``AnalyzerEngine`` with our registry (stock + speech recognizers)."""
    nlp = _nlp_engine(model)
    registry = RecognizerRegistry(supported_languages=["en"])
    for rec in (
        CreditCardRecognizer(),
        UsSsnRecognizer(),
        PhoneRecognizer(supported_regions=("US", "GB")),
        _OfflineEmailRecognizer(),
        IbanRecognizer(),
        AbaRoutingRecognizer(),
        UsBankRecognizer(),
        R.DigitRunRecognizer(),
        R.CardExpiryRecognizer(),
        R.CardSecurityCodeRecognizer(),
        R.DateOfBirthRecognizer(),
        R.MemberIdRecognizer(),
        R.PinRecognizer(),
        *(cls() for cls in identifiers.RECOGNIZERS),
        AddressRecognizer(),
        PersonCueRecognizer(),
    ):
        registry.add_recognizer(rec)
    if model:
        registry.add_nlp_recognizer(nlp_engine=nlp)
    return AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp,
        supported_languages=["en"],
        context_aware_enhancer=R.LabelContextEnhancer(),
    )


_ODD_SPACE = re.compile("[\u00a0\u2007\u2009\u200a\u202f\u205f\u3000]")
_DIGIT_SEP = re.compile(r"(?<=\d)[/_](?=\d)")


def plain_separators(text: str) -> str:
    """Unusual spaces as plain spaces, ``/`` and ``_`` between digits as spaces.

    Language models and transcripts write ``4111\u00a01111/1111_1111``; the recognizers see
    digit groups split by plain spaces.  One character for one, so offsets stay those of ``text``.
    """
    return _DIGIT_SEP.sub(" ", _ODD_SPACE.sub(" ", text))


class PiiAnalyzer:
    """Synchronous, thread-safe analyzer (Presidio engines are read-only after build)."""

    def __init__(self, *, spacy_model: str | None = None, thresholds: dict[str, float] | None = None) -> None:
        self.spacy_model = spacy_model
        self.engine = build_engine(spacy_model)
        self.thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
        self._lock = threading.Lock()  # the label index cache is per call; keep calls serial per analyzer
        self.entities = list(ENTITY_TYPES)

    @property
    def has_ner(self) -> bool:
        return self.spacy_model is not None

    def analyze(self, text: str) -> list[PiiEntity]:
        """Entities in ``text``, sorted by start; spans never overlap."""
        return self.analyze_normalized(normalize(plain_separators(text)))

    def analyze_normalized(self, norm: Normalized) -> list[PiiEntity]:
        ntext = norm.text
        if not self.has_ner and not _PREFILTER.search(ntext) and not might_hold_name(ntext):
            return []
        with self._lock:
            results = self.engine.analyze(ntext, language="en", entities=self.entities, score_threshold=0.0)
        kept = _with_false_starts(ntext, self._resolve(results))
        out = []
        for r in kept:
            s, e = norm.to_original(r.start, r.end)
            meta = r.recognition_metadata or {}
            value = meta.get("value") or _value(r.entity_type, ntext[r.start : r.end])
            name = meta.get(RecognizerResult.RECOGNIZER_NAME_KEY, "")
            out.append(PiiEntity(r.entity_type, s, e, float(r.score), value, name))
        out.sort(key=lambda x: x.start)
        return out

    def _resolve(self, results: list[RecognizerResult]) -> list[RecognizerResult]:
        cands = [r for r in results if r.score >= self.thresholds.get(r.entity_type, DEFAULT_THRESHOLD)]
        # highest score first, then the longer span; a kept span blocks any overlapping one
        cands.sort(key=lambda r: (-r.score, -(r.end - r.start), r.start))
        kept: list[RecognizerResult] = []
        # the kept spans as (start, end), sorted: they do not overlap, so their ends are sorted too
        # and the one kept span that can overlap [r.start, r.end) is the last starting before r.end
        # (O(log n) per candidate; the former scan of every kept span was quadratic)
        spans: list[tuple[int, int]] = []
        for r in cands:
            i = bisect.bisect_left(spans, (r.end,))
            if i == 0 or spans[i - 1][1] <= r.start:
                kept.append(r)
                bisect.insort(spans, (r.start, r.end))
        return kept


# A false start before a correction ("my member id is A B C one two, sorry, A B D one two three ...",
# "account 4417, no wait, 5520 ..."): the abandoned fragment is part of the value's span, so a
# redaction removes it too.  The fragment: letters said one by one and digit groups (at least one
# digit or two letters), right before a restart word; read in a bounded window before the value.
_PIECE = r"(?:[A-Za-z]|[A-Za-z]{0,4}\d+[A-Za-z]{0,2}|(?-i:[A-Z]{2,4}))"
_FALSE_START = re.compile(
    rf"(?<![\w])({_PIECE}(?:[ ,.\-]{{1,3}}{_PIECE}){{0,10}})"
    r"[ ,.;:-]*\b(?:no(?! ?\.)(?: wait)?|wait|sorry|oops|actually|i mean|scratch that|my mistake|my bad|correction|"
    r"let me (?:start|try|say (?:it|that)) (?:again|over)|start(?:ing)? (?:again|over))\b[ ,.;:-]*"
    r"(?:(?:it's|its|it is|that's|um+|uh+|er+m?)[ ,]+)*\Z",
    re.IGNORECASE,
)
FALSE_START_WINDOW = 80


def _with_false_starts(ntext: str, kept: list[RecognizerResult]) -> list[RecognizerResult]:
    taken = sorted((r.start, r.end) for r in kept)
    for r in kept:
        if r.entity_type in (R.PERSON, R.ADDRESS, R.EMAIL_ADDRESS):
            continue
        lo = max(0, r.start - FALSE_START_WINDOW)
        m = _FALSE_START.search(ntext[lo : r.start])
        if m is None:
            continue
        frag = m.group(1)
        if not (any(c.isdigit() for c in frag) or sum(c.isalpha() for c in frag) >= 2) or R._LABEL_RE.search(frag):
            continue
        fs = lo + m.start(1)
        i = bisect.bisect_left(taken, (r.start,))
        if i and taken[i - 1][1] > fs:  # the fragment is (part of) another value
            continue
        meta = r.recognition_metadata if r.recognition_metadata is not None else {}
        meta.setdefault("value", _value(r.entity_type, ntext[r.start : r.end]))  # the value meant
        r.recognition_metadata = meta
        r.start = fs
    return kept


def _value(entity_type: str, normalized_span: str) -> str:
    if entity_type in (R.EMAIL_ADDRESS, R.PERSON):
        return normalized_span.strip().lower()
    if entity_type in (R.IBAN_CODE, R.MEMBER_ID, R.US_DRIVER_LICENSE, R.US_PASSPORT, R.MEDICARE_MBI, R.UK_NINO):
        return re.sub(r"[\s\-]", "", normalized_span).upper()
    if entity_type in (R.CARD_EXPIRY, R.DATE_OF_BIRTH, R.ADDRESS):
        return " ".join(normalized_span.lower().split())
    digits = re.sub(r"\D", "", normalized_span)
    if entity_type == R.PHONE_NUMBER and normalized_span.lstrip().startswith("+"):
        return "+" + digits
    return digits


_analyzer: PiiAnalyzer | None = None
_build_lock = threading.Lock()


def get_analyzer() -> PiiAnalyzer:
    """The process-wide analyzer, built on first use (about a second without a spaCy model)."""
    global _analyzer
    if _analyzer is None:
        with _build_lock:
            if _analyzer is None:
                _analyzer = PiiAnalyzer(spacy_model=_find_spacy_model())
    return _analyzer

"""Redaction (typed placeholders, keep-last-4, pseudonyms) and keyed-HMAC pseudonyms.

Modes per entity type (:class:`RedactionPolicy`):

- ``placeholder`` (default): ``<CREDIT_CARD>``;
- ``last4``: ``<CREDIT_CARD ending 1111>`` (last four digits of the normalized value, so
  ``"... one one one one"`` keeps ``1111`` too; values with fewer than 8 digits fall back
  to the placeholder, a short value's last four would be most of it, and so do secrets
  (``CARD_CVV``, ``PIN``: an 8-digit PIN must not show half of itself), and values whose
  last digits are no part of an identifier (``ADDRESS``: its ZIP or postcode; ``PERSON``);
- ``pseudonym``: ``<EMAIL_ADDRESS:3f2a9c...>``, a keyed HMAC that joins across calls;
- ``keep``: leave the text (for types a deployment decides are not sensitive).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import phonenumbers

from hybrid_agent.pii import recognizers as R
from hybrid_agent.pii.analyzer import PiiEntity, _value
from hybrid_agent.pii.normalize import normalize

__all__ = ["RedactionPolicy", "redact", "Pseudonymizer", "canonical_value"]

Mode = Literal["placeholder", "last4", "pseudonym", "keep"]
MODES = ("placeholder", "last4", "pseudonym", "keep")
#: types whose digits are a secret: ``last4`` shows none of them (the placeholder instead)
NO_LAST4 = frozenset({R.CARD_CVV, R.PIN, R.ADDRESS, R.PERSON})


def canonical_value(entity_type: str, value: str) -> str:
    """The form a value is pseudonymized under: spoken and written forms agree
    (``"four one one one ..."`` == ``"4111-1111-..."``; phone numbers as E.164)."""
    norm = normalize(value).text
    v = _value(entity_type, norm)
    if entity_type == R.PHONE_NUMBER:
        try:
            p = phonenumbers.parse(v, "US")
            return phonenumbers.format_number(p, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            return v
    if entity_type == R.EMAIL_ADDRESS:
        return re.sub(r"\s+", "", v)
    if entity_type == R.PERSON:
        return " ".join(v.split())
    return v


class Pseudonymizer:
    """``Pseudonymizer(key).pseudonym("CREDIT_CARD", "4111 1111 1111 1111")`` -> ``"CREDIT_CARD:9b1c..."``.

    HMAC-SHA256 over ``type NUL canonical value`` with a secret key (at least 16 bytes):
    the same customer identifier gives the same pseudonym in every call and every
    spoken or written form, and without the key nobody can test guesses against it.
    """

    def __init__(self, key: bytes, *, length: int = 32) -> None:
        if not isinstance(key, (bytes, bytearray)) or len(key) < 16:
            raise ValueError("pseudonym key must be at least 16 bytes")
        self._key = bytes(key)
        self._length = length

    def pseudonym(self, entity_type: str, value: str) -> str:
        canon = canonical_value(entity_type, value)
        digest = hmac.new(self._key, f"{entity_type}\x00{canon}".encode(), hashlib.sha256).hexdigest()
        return f"{entity_type}:{digest[: self._length]}"

    def __repr__(self) -> str:  # never show the key
        return "Pseudonymizer(<key>)"


@dataclass(frozen=True)
class RedactionPolicy:
    """How each entity type is replaced.  ``modes`` overrides ``default`` per type."""

    default: Mode = "placeholder"
    modes: Mapping[str, Mode] = field(default_factory=dict)
    pseudonymizer: Pseudonymizer | None = None

    def __post_init__(self) -> None:
        for m in (self.default, *self.modes.values()):
            if m not in MODES:
                raise ValueError(f"unknown redaction mode {m!r}; use one of {', '.join(MODES)}")
        if self.pseudonymizer is None and "pseudonym" in (self.default, *self.modes.values()):
            raise ValueError("redaction mode 'pseudonym' needs a pseudonymizer")

    def mode(self, entity_type: str) -> Mode:
        return self.modes.get(entity_type, self.default)

    def replacement(self, entity: PiiEntity, original: str) -> str:
        mode = self.mode(entity.type)
        if mode == "keep":
            return original
        if mode == "last4" and entity.type not in NO_LAST4:
            digits = re.sub(r"\D", "", entity.value or normalize(original).text)
            if len(digits) >= 8:
                return f"<{entity.type} ending {digits[-4:]}>"
        if mode == "pseudonym":
            assert self.pseudonymizer is not None
            return f"<{self.pseudonymizer.pseudonym(entity.type, entity.value or original)}>"
        return f"<{entity.type}>"


def redact(text: str, entities: Iterable[PiiEntity], policy: RedactionPolicy | None = None) -> str:
    """Replace every entity span of ``text`` (offsets into ``text``) per ``policy``.

    Overlapping spans are merged into one replacement (the first entity's type)."""
    policy = policy or RedactionPolicy()
    spans = sorted(entities, key=lambda e: (e.start, -e.end))
    out: list[str] = []
    pos = 0
    for e in spans:
        if e.end <= pos:
            continue
        start = max(e.start, pos)
        out.append(text[pos:start])
        out.append(policy.replacement(e, text[e.start : e.end]))
        pos = e.end
    out.append(text[pos:])
    return "".join(out)

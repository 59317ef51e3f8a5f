"""Pseudonyms for caller identifiers and a last-resort scrub for text not marked redacted.

Identifiers (phone numbers, account ids) are stored only as keyed HMAC-SHA256
pseudonyms, so the calls of one customer join without the identifier ever being
stored.  The key comes from settings (``HYBRID_AGENT_PSEUDONYM_KEY``); without
the key, a pseudonym cannot be reversed by enumerating phone numbers.

Text that arrives already redacted (``redacted=True`` on the record) is stored
as given.  Any other text is redacted here, in the writer's thread (never on the
audio path), by the PII gate (``hybrid_agent.pii``: Presidio plus spoken-form
numbers, typed placeholders such as ``<CREDIT_CARD>``); the row records
``redaction = 'pii_gate'``.  As a last net, e-mail addresses and any run of seven
or more digits the gate let through (a number its checksums and context rules
rejected) are replaced too: the audit store would rather lose a long number than
keep a real one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets

log = logging.getLogger(__name__)

# Separators between the digits of one number: spaces, ASCII and Unicode hyphens/dashes
# (U+2010..U+2015), minus signs, dots, brackets, slashes, middle dots; up to 4 in a row,
# so "123 - 45 - 6789" and "123 / 45 / 6789" are one run.
_SEP = r"[\s\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d.\u00b7()/\\]"
_LONG_DIGIT_RUN = re.compile(r"\+?\d(?:" + _SEP + r"{0,4}\d){6,}")
# E-mail addresses: what ``[\w.+-]+@[\w-]+(?:\.[\w-]+)+`` matches, found in linear time.  That
# regex tries every start position and scans the whole run of word characters from each one
# (64,000 letters with no ``@``: 2 billion steps, 23 s holding the interpreter lock), so the
# search is anchored on each ``@`` instead: the local part is the run of ``[\w.+-]`` right
# before it (never before the end of the previous address), the domain is matched at the
# position right after it.
_EMAIL_DOMAIN = re.compile(r"[\w-]+(?:\.[\w-]+)+")
_EMAIL_LOCAL_PUNCT = frozenset("_.+-")

#: identifier kinds on call records -> the PII entity type whose canonical form they share
_KIND_ENTITY = {"phone": "PHONE_NUMBER", "account": "US_BANK_NUMBER"}

#: caller ids that identify nobody (withheld numbers): stored as NULL, never as one shared pseudonym
_ANONYMOUS = {"anonymous", "restricted", "private", "unknown", "unavailable", "withheld", "blocked", "none", "null"}

#: characters the canonical (digits-only / E.164) form may drop without losing identity
_FORMATTING = re.compile(r"[\d\s\-\u2010-\u2015.()/+]")
_URI_SCHEME = re.compile(r"^(?:tel|sips?):", re.IGNORECASE)


def scrub(text: str) -> str:
    """Redact ``text`` for storage: the PII gate, then the long-number and e-mail net."""
    from hybrid_agent.pii import get_analyzer, redact

    entities = get_analyzer().analyze(text)
    if entities:
        text = redact(text, entities)
    text = _redact_emails(text)
    return _LONG_DIGIT_RUN.sub("<NUMBER>", text)


#: nesting a JSON payload may have before it is scrubbed as plain text
_MAX_JSON_DEPTH = 16


def scrub_json(text: str) -> str:
    """Redact a JSON payload (tool arguments and outputs) value by value, each read with its key as
    its label: ``{"passcode_digits": "246810"}`` is scanned as ``passcode digits: 246810``, so the
    gate's label-bound types (PIN, security code, date of birth) see the context the key gives.
    Text that is not a JSON object or array is scrubbed as text."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return scrub(text)
    if not isinstance(data, (dict, list)):
        return scrub(text)
    cleaned = _scrub_value(data, "", 0)
    return json.dumps(cleaned, ensure_ascii=False) if cleaned is not None else scrub(text)


def _scrub_value(value: object, key: str, depth: int) -> object:
    if depth > _MAX_JSON_DEPTH:
        return None
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            cleaned = _scrub_value(v, str(k), depth + 1)
            if cleaned is None and v is not None:
                return None
            out[k] = cleaned
        return out
    if isinstance(value, list):
        items = [_scrub_value(v, key, depth + 1) for v in value]
        return None if any(i is None and v is not None for i, v in zip(items, value)) else items
    if isinstance(value, bool) or value is None or not isinstance(value, (str, int, float)):
        return value
    plain = str(value)
    label = key.replace("_", " ").replace("-", " ").strip()
    probe = f"{label}: {plain}" if label else plain
    redacted = scrub(probe)
    if redacted == probe:
        return value
    prefix = f"{label}: " if label else ""
    return redacted[len(prefix):] if redacted.startswith(prefix) else "<REDACTED>"


def _email_spans(text: str) -> list[tuple[int, int]]:
    r"""The spans ``re.finditer(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", text)`` yields, in O(len(text)).

    Each character is looked at a bounded number of times: the local-part scan of one ``@``
    stops at the previous ``@`` (not a local-part character) or the previous address, the
    domain match stops at the next ``@``.
    """
    spans: list[tuple[int, int]] = []
    floor = 0  # end of the previous address: the next one starts at or after it
    at = text.find("@")
    while at != -1:
        start = at
        while start > floor and ((c := text[start - 1]).isalnum() or c in _EMAIL_LOCAL_PUNCT):
            start -= 1  # str.isalnum() or "_" is exactly what re's \w matches in a str pattern
        if start < at:
            m = _EMAIL_DOMAIN.match(text, at + 1)
            if m is not None:
                spans.append((start, m.end()))
                floor = m.end()
                at = text.find("@", floor)
                continue
        at = text.find("@", at + 1)
    return spans


def _redact_emails(text: str) -> str:
    spans = _email_spans(text)
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for s, e in spans:
        out.append(text[pos:s])
        out.append("<EMAIL_ADDRESS>")
        pos = e
    out.append(text[pos:])
    return "".join(out)


class Pseudonymizer:
    """Keyed HMAC pseudonyms: ``kind:hex`` (the kind keeps a phone and an account id apart)."""

    def __init__(self, key: str | bytes | None) -> None:
        if key is None or key == "" or key == b"":
            log.warning(
                "no pseudonym key configured (HYBRID_AGENT_PSEUDONYM_KEY): using a random per-process key; "
                "caller pseudonyms will not join across restarts"
            )
            key = secrets.token_bytes(32)
        self._key = key.encode() if isinstance(key, str) else key

    def __call__(self, kind: str, value: str | None) -> str | None:
        """``kind:hex``, or None for no identifier (empty, ``anonymous``, ``restricted`` ...).

        Identifiers the PII gate can canonicalize (phone numbers and account numbers made of
        digits and formatting, written or spoken) are keyed on the canonical form, so every
        form of one number joins.  Anything else (a SIP URI with a name, an alphanumeric
        account id) is keyed on the stripped raw value under a different tag: reducing it to
        its digits would make ``ACC-12-XY`` and ``12`` (or every digitless SIP URI) collide.
        """
        v = _identifier(value)
        if v is None:
            return None
        normalized = _canonical(kind, v)
        if normalized is None:
            tag, normalized = f"{kind}/raw", v
        else:
            tag = kind
        digest = hmac.new(self._key, f"{tag}\x00{normalized}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}:{digest[:40]}"


def _identifier(value: str | None) -> str | None:
    """The identifier to pseudonymize, or None if there is none (empty, withheld, anonymous)."""
    if value is None:
        return None
    v = value.strip()
    if not v:
        return None
    # sip:anonymous@anonymous.invalid (RFC 3323), tel:restricted, "Anonymous"
    user = _URI_SCHEME.sub("", v).split("@", 1)[0].split(";", 1)[0].strip().lower()
    if user in _ANONYMOUS or not user:
        return None
    return v


def _canonical(kind: str, value: str) -> str | None:
    """The PII gate's canonical form if it keeps the identifier whole, else None."""
    entity = _KIND_ENTITY.get(kind)
    if entity is None:
        return None
    from hybrid_agent.pii import canonical_value
    from hybrid_agent.pii.normalize import normalize

    # a tel:/sip: URI whose user part is a number is that number ("sip:+14155550199@carrier")
    candidate = _URI_SCHEME.sub("", value)
    if candidate != value:
        candidate = candidate.split("@", 1)[0].split(";", 1)[0]
    spoken = normalize(candidate).text  # spoken digits -> digits ("four one five" -> "415")
    if _FORMATTING.sub("", spoken):
        return None  # letters or other characters the canonical form would drop
    canon = canonical_value(entity, candidate)
    return canon if re.search(r"\d", canon) else None

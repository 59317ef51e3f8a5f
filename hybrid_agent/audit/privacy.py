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
import logging
import re
import secrets

log = logging.getLogger(__name__)

_LONG_DIGIT_RUN = re.compile(r"\+?\d(?:[\s\-.()/]{0,2}\d){6,}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")

#: identifier kinds on call records -> the PII entity type whose canonical form they share
_KIND_ENTITY = {"phone": "PHONE_NUMBER", "account": "US_BANK_NUMBER"}


def scrub(text: str) -> str:
    """Redact ``text`` for storage: the PII gate, then the long-number and e-mail net."""
    from hybrid_agent.pii import get_analyzer, redact

    entities = get_analyzer().analyze(text)
    if entities:
        text = redact(text, entities)
    text = _EMAIL.sub("<EMAIL_ADDRESS>", text)
    return _LONG_DIGIT_RUN.sub("<NUMBER>", text)


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
        if value is None or value == "":
            return None
        from hybrid_agent.pii import canonical_value

        # spoken and written forms of one identifier join ("four one five ..." == "+14155550199")
        normalized = canonical_value(_KIND_ENTITY[kind], value) if kind in _KIND_ENTITY else value.strip()
        digest = hmac.new(self._key, f"{kind}\x00{normalized}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}:{digest[:40]}"

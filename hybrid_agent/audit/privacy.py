"""Pseudonyms for caller identifiers and a last-resort scrub for text not marked redacted.

Identifiers (phone numbers, account ids) are stored only as keyed HMAC-SHA256
pseudonyms, so the calls of one customer join without the identifier ever being
stored.  The key comes from settings (``HYBRID_AGENT_PSEUDONYM_KEY``); without
the key, a pseudonym cannot be reversed by enumerating phone numbers.

Text fields should arrive redacted by the PII gate (``redacted=True`` on the
record).  Text that does not is scrubbed here, conservatively: runs of five or
more digits (phone, account, card numbers, also with spaces/dashes/dots in
between) and e-mail addresses are replaced, and the row records
``redaction = 'fallback'``.  This is a safety net, not the PII gate: it does not
know spelled-out numbers or names.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets

log = logging.getLogger(__name__)

_DIGIT_RUN = re.compile(r"\+?\d(?:[\s\-.()/]{0,2}\d){4,}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE_SEPARATORS = re.compile(r"[\s\-.()/]")


def scrub(text: str) -> str:
    """Replace digit runs of five or more and e-mail addresses (fallback redaction)."""
    text = _EMAIL.sub("[EMAIL]", text)
    return _DIGIT_RUN.sub("[NUMBER]", text)


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
        normalized = _PHONE_SEPARATORS.sub("", value).lower() if kind == "phone" else value.strip()
        digest = hmac.new(self._key, f"{kind}\x00{normalized}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}:{digest[:40]}"

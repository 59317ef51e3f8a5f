"""Helpers shared by the DEMO backends (``demo_bank``, ``demo_clinic``): fake data only, never a real system."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NoReturn

from hybrid_agent.tools.runner import ToolError

#: failed identity checks a demo backend allows per call before it refuses further attempts
MAX_FAILED_ATTEMPTS = 3


def label(backend: str) -> dict[str, Any]:
    """The fields every demo output carries, so nobody mistakes it for a real system."""
    return {"demo": True, "backend": f"{backend} (in-memory demo data; not a real system)"}


def fail(backend: str, code: str, message: str, **extra: Any) -> NoReturn:
    raise ToolError(code, f"{message} [{backend}]", extra={**label(backend), **extra})


def parse_date(text: str) -> date | None:
    """A date of birth as callers and models write it (ISO first); None when it is not a date."""
    text = " ".join(text.replace(",", " ").split())
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    text = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text, flags=re.I)
    for fmt in ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%d %B %Y", "%d %b %Y", "%B %d %Y", "%b %d %Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def given(text: str | None) -> bool:
    """An answer counts only when it has some content (models often send "" for "not asked")."""
    return text is not None and bool(text.strip())


def norm_id(text: str) -> str:
    return "".join(text.split()).upper()


def norm_postcode(text: str) -> str:
    return "".join(text.split()).upper()


def norm_digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


@dataclass
class CallIdentity:
    """Who a call has been verified as, and at which level (per call, inside one backend instance)."""

    subject: str | None = None
    level: str = "none"
    failed_attempts: int = 0


@dataclass
class IdentityBook:
    """Per-call verification state of one backend: the level it returned last is the level it honours."""

    backend: str
    calls: dict[str, CallIdentity] = field(default_factory=dict)

    def get(self, call_id: str) -> CallIdentity:
        return self.calls.setdefault(call_id, CallIdentity())

    def check_attempts(self, call_id: str) -> None:
        if self.get(call_id).failed_attempts >= MAX_FAILED_ATTEMPTS:
            fail(
                self.backend,
                "too_many_attempts",
                "Too many failed identity checks on this call; hand the caller over to a colleague.",
                verified=False,
                verification_level="none",
            )

    def record(self, call_id: str, subject: str | None, level: str, *, failed: bool) -> dict[str, Any]:
        ident = self.get(call_id)
        ident.subject = subject if level != "none" else None
        ident.level = level
        if failed:
            ident.failed_attempts += 1
        return {"verified": level != "none", "verification_level": level, **label(self.backend)}

    def require(self, call_id: str) -> str:
        """The subject this call is verified as, or a ``not_verified`` ToolError."""
        ident = self.get(call_id)
        if ident.subject is None or ident.level == "none":
            fail(self.backend, "not_verified", "The caller has not passed an identity check on this call.")
        return ident.subject


def luhn(digits: str) -> bool:
    """The card-number checksum (ISO/IEC 7812)."""
    from hybrid_agent.pii.recognizers import luhn_ok

    return digits.isdigit() and luhn_ok(digits)

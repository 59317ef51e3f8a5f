"""Bridge-token authentication for every endpoint."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

from pydantic import SecretStr


def bearer_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_is_valid(presented: str | None, tokens: Iterable[SecretStr]) -> bool:
    """Constant-time comparison against every configured token (no early exit on a match)."""
    if not presented:
        return False
    given = presented.encode()
    ok = False
    for token in tokens:
        ok |= hmac.compare_digest(given, token.get_secret_value().encode())
    return ok

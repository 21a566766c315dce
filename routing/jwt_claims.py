"""Read a JWT's claims without verifying it.

Why unverified: the client never has the server's signing key, and it only needs ``sub``
(who is signed in) and ``exp`` (when to log in again, halext-api.md §2). The server still
verifies every token it receives. Nothing here ever puts the token itself in a message.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def _b64url_decode(segment: str) -> bytes:
    # JWT segments are base64url without padding; add it back before decoding.
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def decode_claims(token: str | None) -> dict[str, Any] | None:
    """The payload of ``token`` as a dict, or None when it is not a well-formed JWT."""
    if not token or not isinstance(token, str):
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(_b64url_decode(parts[1]))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def token_subject(token: str | None) -> str | None:
    """The ``sub`` claim (the halext username), or None."""
    claims = decode_claims(token)
    sub = claims.get("sub") if claims else None
    return sub if isinstance(sub, str) and sub else None


def token_expiry(token: str | None) -> float | None:
    """The ``exp`` claim in Unix seconds, or None when absent or malformed."""
    claims = decode_claims(token)
    exp = claims.get("exp") if claims else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


def seconds_left(token: str | None, now: float) -> float | None:
    """Seconds until ``exp`` (negative once expired); None when the token has no ``exp``."""
    exp = token_expiry(token)
    return None if exp is None else exp - now

"""Secrets for links and sessions: 256 random bits, stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_id() -> str:
    """Opaque identifiers for companies, users and orders (not secrets)."""
    return secrets.token_hex(8)

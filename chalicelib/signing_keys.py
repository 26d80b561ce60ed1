"""The signing key ring: current and previous keys, read from Secrets Manager at cold start.

The deployed environment holds only the secret's ARN (SIGNING_SECRET_ARN); its value,
JSON ``{"current": "...", "previous": "...", "next": "..."}``, is read on first use and
cached in the process for REFRESH_SECONDS. Everything signs with ``current`` and accepts
any of the three, so a rotation signs nobody out and voids no pending link or code. It
has two steps (infra/signing_keys.py): publish ``next`` and wait until every warm
function has re-read the ring, then promote it (previous <- current, current <- next):
no function ever meets a signature made with a key it does not know yet.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from chalicelib.aws.clients import client
from chalicelib.config import LOCAL_STAGES, get_settings

# A warm function re-reads the ring this often (one GetSecretValue per function every
# few minutes); until then it keeps signing with the key it has, which the rotated
# ring still accepts as ``previous``.
REFRESH_SECONDS = 300
MIN_KEY_LENGTH = 32


class SigningKeysError(RuntimeError):
    """The secret is missing, unreadable or holds no usable current key: refuse to sign."""


@dataclass(frozen=True)
class KeyRing:
    current: str
    others: tuple[str, ...] = ()  # previous and next: accepted, never used to sign

    @property
    def accepted(self) -> tuple[str, ...]:
        """Every key a signature may have been made with, current first."""
        return (self.current, *self.others)


def parse(secret_string: str) -> KeyRing:
    try:
        data = json.loads(secret_string)
    except ValueError as exc:
        raise SigningKeysError("the signing secret is not JSON {current, previous}") from exc
    if not isinstance(data, dict):
        raise SigningKeysError("the signing secret is not JSON {current, previous}")
    current = str(data.get("current") or "").strip()
    if len(current) < MIN_KEY_LENGTH:
        raise SigningKeysError(
            f"the signing secret's current key is shorter than {MIN_KEY_LENGTH} characters"
        )
    others = tuple(
        key for key in (str(data.get(name) or "").strip() for name in ("previous", "next")) if key
    )
    return KeyRing(current=current, others=others)


_lock = threading.Lock()
_cache: dict[str, tuple[float, KeyRing]] = {}


def ring(secret_id: str) -> KeyRing:
    """The key ring stored in ``secret_id``, cached in the process for REFRESH_SECONDS."""
    now = time.monotonic()
    cached = _cache.get(secret_id)
    if cached and now - cached[0] < REFRESH_SECONDS:
        return cached[1]
    with _lock:
        cached = _cache.get(secret_id)
        if cached and now - cached[0] < REFRESH_SECONDS:
            return cached[1]
        try:
            answer = client("secretsmanager").get_secret_value(SecretId=secret_id)
        except Exception as exc:  # botocore's errors: no access, no secret, no network
            if cached:  # keep serving with the ring already read; retry on the next use
                _cache[secret_id] = (now - REFRESH_SECONDS + 30, cached[1])
                return cached[1]
            raise SigningKeysError(f"cannot read the signing secret {secret_id}: {exc}") from exc
        keys = parse(answer["SecretString"])
        _cache[secret_id] = (now, keys)
        return keys


def accepted() -> tuple[str, ...]:
    """Every key a signature is accepted with, the one to sign with first."""
    # Read on use, not at import: `chalice package` imports the app with the
    # stage's variables and no secret.
    settings = get_settings()
    if settings.signing_secret_arn:
        return ring(settings.signing_secret_arn).accepted
    if settings.secret:  # outside Lambda only: check_deployed refuses SECRET_KEY
        return (settings.secret,)
    if settings.stage in LOCAL_STAGES:
        return ("local-development-secret-not-for-production",)
    raise RuntimeError("SIGNING_SECRET_ARN must be set outside the local run and the tests")


def current() -> str:
    """The key new signatures are made with (the ring's current key)."""
    return accepted()[0]


def forget() -> None:
    """Drop the cached rings (tests; a rotation seen at once)."""
    with _lock:
        _cache.clear()

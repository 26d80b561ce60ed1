"""Rotate the signing key ring without signing anyone out (chalicelib/signing_keys.py).

Two steps, because a warm function keeps the ring it read for up to REFRESH_SECONDS:
1. ``stage``: publish a new random key as ``next`` (accepted everywhere, used by none);
2. after REFRESH_SECONDS and a margin, ``promote``: previous <- current, current <- next.
Signatures made with the old key stay valid until the next rotation, so rotate at most
once per longest token lifetime (sessions: hours; e-mailed links: days). Usage:
python -m infra.signing_keys SECRET_ID [--step stage|promote|both]  (both: waits between)
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from typing import Any

from chalicelib.signing_keys import REFRESH_SECONDS

KEY_BYTES = 32
MARGIN_SECONDS = 60


def _read(secretsmanager: Any, secret_id: str) -> dict[str, str]:
    return json.loads(secretsmanager.get_secret_value(SecretId=secret_id)["SecretString"])


def _write(secretsmanager: Any, secret_id: str, ring: dict[str, str]) -> None:
    secretsmanager.put_secret_value(SecretId=secret_id, SecretString=json.dumps(ring))


def stage(secretsmanager: Any, secret_id: str) -> dict[str, str]:
    """Step 1: a new key as ``next`` (kept if one is already staged)."""
    ring = _read(secretsmanager, secret_id)
    if not ring.get("next"):
        ring["next"] = secrets.token_hex(KEY_BYTES)
        _write(secretsmanager, secret_id, ring)
    return ring


def promote(secretsmanager: Any, secret_id: str) -> dict[str, str]:
    """Step 2: sign with ``next`` from now on; the old current stays accepted."""
    ring = _read(secretsmanager, secret_id)
    if not ring.get("next"):
        raise SystemExit("no staged key: run the stage step first, then wait")
    ring = {"current": ring["next"], "previous": ring["current"], "next": ""}
    _write(secretsmanager, secret_id, ring)
    return ring


def main() -> None:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("secret_id")
    parser.add_argument("--step", choices=("stage", "promote", "both"), default="both")
    args = parser.parse_args()
    client = boto3.client("secretsmanager")
    if args.step in ("stage", "both"):
        stage(client, args.secret_id)
        print(f"staged the next key in {args.secret_id}", flush=True)
    if args.step == "both":
        wait = REFRESH_SECONDS + MARGIN_SECONDS
        print(f"waiting {wait} s until every function has read it…", flush=True)
        time.sleep(wait)
    if args.step in ("promote", "both"):
        promote(client, args.secret_id)
        print(f"promoted: functions sign with the new key within {REFRESH_SECONDS} s")


if __name__ == "__main__":
    main()

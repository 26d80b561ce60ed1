"""Rotate the signing key ring: previous <- current, current <- a new random key.

Signatures made with the old key stay valid (chalicelib/signing_keys.py accepts
current and previous) until the next rotation, so rotate at most once per longest
token lifetime (sessions: hours; e-mailed links: days). Usage:
python -m infra.signing_keys SECRET_ID  (the stack's AppSecret; AWS credentials as for deploy)
"""

from __future__ import annotations

import argparse
import json
import secrets
from typing import Any

KEY_BYTES = 32


def rotate(secretsmanager: Any, secret_id: str) -> dict[str, str]:
    """Shift the ring in ``secret_id``; the new ring (printable: it is not shown)."""
    old = json.loads(secretsmanager.get_secret_value(SecretId=secret_id)["SecretString"])
    ring = {"current": secrets.token_hex(KEY_BYTES), "previous": old["current"]}
    secretsmanager.put_secret_value(SecretId=secret_id, SecretString=json.dumps(ring))
    return ring


def main() -> None:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("secret_id")
    args = parser.parse_args()
    rotate(boto3.client("secretsmanager"), args.secret_id)
    print(f"rotated {args.secret_id}: functions sign with the new key within 5 minutes")


if __name__ == "__main__":
    main()

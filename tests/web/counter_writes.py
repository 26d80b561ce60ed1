"""What the app sent to DynamoDB (rate counters written, items read), from the recorded requests.

A counter's expiry (DynamoDB TTL) is invisible locally (moto never expires
items), so the tests read it where it is decided: in the UpdateItem the app sends.
"""

from __future__ import annotations

import json

from tests.awscalls import CALLS


def counter_expiries(mark: int, key_prefix: str = "THROTTLE#") -> dict[str, list[int]]:
    """pk -> the epoch-second timestamps set by each UpdateItem on a counter since ``mark``."""
    found: dict[str, list[int]] = {}
    for call in CALLS.since(mark):
        if call.service != "dynamodb" or call.operation != "UpdateItem":
            continue
        body = call.params.get("body") or b"{}"
        request = json.loads(body.decode() if isinstance(body, bytes) else body)
        pk = request.get("Key", {}).get("pk", {}).get("S", "")
        if not pk.startswith(key_prefix):
            continue
        values = request.get("ExpressionAttributeValues", {}).values()
        stamps = [int(float(v["N"])) for v in values if "N" in v and float(v["N"]) > 1e9]
        found.setdefault(pk, []).extend(stamps)
    return found


def item_reads(mark: int, sk_prefix: str) -> list[tuple[str, str, bool]]:
    """(pk, sk, strongly consistent?) of each GetItem since ``mark`` whose sort key starts so."""
    found = []
    for call in CALLS.since(mark):
        if call.service != "dynamodb" or call.operation != "GetItem":
            continue
        body = call.params.get("body") or b"{}"
        request = json.loads(body.decode() if isinstance(body, bytes) else body)
        key = request.get("Key", {})
        pk, sk = key.get("pk", {}).get("S", ""), key.get("sk", {}).get("S", "")
        if sk.startswith(sk_prefix):
            found.append((pk, sk, bool(request.get("ConsistentRead"))))
    return found

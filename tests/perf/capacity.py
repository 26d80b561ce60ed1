"""DynamoDB capacity units and the critical path of recorded requests (`make bench`).

moto answers ``ReturnConsumedCapacity`` with constants (0.5 or 1 unit whatever the
item), so the units are computed here by DynamoDB's published rules from the sizes
of the items each request really touched:

- item size: UTF-8 bytes of every attribute name plus its value (strings: UTF-8
  bytes; numbers: 1 byte per two significant digits + 1; binary: bytes; booleans and
  nulls: 1; lists and maps: 3 bytes + 1 per element + the elements);
- reads: 4 KB units, an item at a time for GetItem and BatchGetItem, the sum of all
  items the Query read (before its filter) for a Query, halved when eventually
  consistent (every GSI read is), at least one half unit per request;
- writes: 1 KB units of the larger of the item before and after; a write that
  changes an index item costs the index too (an index key changed is a delete plus
  a put there); TransactWriteItems doubles everything (ConditionCheck included).

The items before and after each write come from moto's own store (``CALLS.observe``,
in-process ``mock_aws`` only); the items a filtered Query read and dropped are read
again without the filter, after the measured request, outside its count.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from tests.awscalls import CALLS, AwsCall

READ_UNIT, WRITE_UNIT = 4096, 1024
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")


# -- item sizes ----------------------------------------------------------------


def value_size(value: dict) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        return _number_size(raw)
    if kind == "B":
        return len(raw) if isinstance(raw, bytes) else len(raw.encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(v.encode()) for v in raw)
    if kind == "NS":
        return sum(_number_size(v) for v in raw)
    if kind == "BS":
        return sum(len(v) for v in raw)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in raw.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def _number_size(raw: str) -> int:
    digits = Decimal(raw).normalize().as_tuple().digits
    return math.ceil(len(digits) / 2) + 1


def item_size(item: dict | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


# -- moto's store: the items a write changes ----------------------------------------


def _table(name: str) -> object:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    return dynamodb_backends[DEFAULT_ACCOUNT_ID][region].get_table(name)


def _stored(table_name: str, key: dict) -> dict | None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    table = _table(table_name)
    hash_key = DynamoType(key[table.hash_key_attr])  # type: ignore[attr-defined]
    range_attr = table.range_key_attr  # type: ignore[attr-defined]
    range_key = DynamoType(key[range_attr]) if range_attr else None
    try:
        found = table.get_item(hash_key, range_key)  # type: ignore[attr-defined]
    except Exception:  # a key moto refuses: nothing stored
        return None
    return json.loads(json.dumps(found.to_json()["Attributes"], default=str)) if found else None


def _key_of(table_name: str, item: dict) -> dict:
    table = _table(table_name)
    names = [table.hash_key_attr, table.range_key_attr]  # type: ignore[attr-defined]
    return {name: item[name] for name in names if name}


def _index_keys(table_name: str) -> list[tuple[str, ...]]:
    table = _table(table_name)
    return [tuple(index.schema_key_attrs) for index in table.global_indexes]  # type: ignore[attr-defined]


def body(call: AwsCall) -> dict:
    raw = call.params.get("body") or b"{}"
    return json.loads(raw)


def _writes(call: AwsCall) -> list[tuple[str, dict, str]]:
    """(table, key, action) of every item the write request touches."""
    request = body(call)
    if call.operation in ("PutItem", "UpdateItem", "DeleteItem"):
        table = request["TableName"]
        key = request["Key"] if "Key" in request else _key_of(table, request["Item"])
        return [(table, key, call.operation)]
    found = []
    if call.operation == "TransactWriteItems":
        for action in request["TransactItems"]:
            ((kind, spec),) = action.items()
            table = spec["TableName"]
            key = spec["Key"] if "Key" in spec else _key_of(table, spec["Item"])
            found.append((table, key, kind))
    elif call.operation == "BatchWriteItem":
        for table, requests in request["RequestItems"].items():
            for each in requests:
                if "PutRequest" in each:
                    found.append((table, _key_of(table, each["PutRequest"]["Item"]), "Put"))
                else:
                    found.append((table, each["DeleteRequest"]["Key"], "Delete"))
    return found


# The network's share of a round trip, added to every DynamoDB request while the bench
# measures: moto answers in-process in a fraction of a millisecond, while holding the
# GIL, so two reads a page sends together would barely overlap in time and the critical
# path could not be read from the timestamps. A sleep releases the GIL as a socket does.
LATENCY_SECONDS = 0.01


def observe(call: AwsCall, phase: str) -> object:
    """The stored items a write touches, before it is sent or after its answer; before
    each request, the network's latency."""
    if phase == "before":
        time.sleep(LATENCY_SECONDS)
    if call.operation not in WRITES:
        return None
    return [_stored(table, key) for table, key, _ in _writes(call)]


def install() -> None:
    CALLS.observe = observe


# -- units -----------------------------------------------------------------------


@dataclass
class Units:
    read: float = 0.0
    write: float = 0.0

    def __add__(self, other: Units) -> Units:
        return Units(self.read + other.read, self.write + other.write)


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT))
    return float(units) if consistent else units / 2


def _write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT))


def _index_writes(table: str, before: dict | None, after: dict | None) -> int:
    units = 0
    for names in _index_keys(table):
        old = before if before and all(n in before for n in names) else None
        new = after if after and all(n in after for n in names) else None
        if old and new:
            same = all(old[n] == new[n] for n in names)
            units += (
                _write_units(max(item_size(old), item_size(new)))
                if same
                else _write_units(item_size(old)) + _write_units(item_size(new))
            )
        elif old or new:
            units += _write_units(item_size(old or new))
    return units


def call_units(call: AwsCall) -> Units:
    if call.service != "dynamodb":
        return Units()
    request = body(call)
    parsed = call.parsed or {}
    op = call.operation
    if op == "GetItem":
        size = item_size(parsed.get("Item"))
        return Units(read=_read_units(size, bool(request.get("ConsistentRead"))))
    if op == "BatchGetItem":
        read = 0.0
        for table, spec in request["RequestItems"].items():
            consistent = bool(spec.get("ConsistentRead"))
            answered = {
                json.dumps(_key_of(table, item), sort_keys=True): item
                for item in parsed.get("Responses", {}).get(table, [])
            }
            for key in spec["Keys"]:
                item = answered.get(json.dumps(key, sort_keys=True))
                read += _read_units(item_size(item), consistent)
        return Units(read=read)
    if op in ("Query", "Scan"):
        items = _items_query_read(request, parsed)
        consistent = bool(request.get("ConsistentRead")) and "IndexName" not in request
        return Units(read=_read_units(sum(item_size(i) for i in items), consistent))
    if op in WRITES:
        factor = 2 if op == "TransactWriteItems" else 1
        write = 0
        befores = call.before or []
        afters = call.after or []
        for (table, _key, kind), before, after in zip(_writes(call), befores, afters, strict=False):
            if kind == "ConditionCheck":
                write += 1
                continue
            write += _write_units(max(item_size(before), item_size(after)))
            write += _index_writes(table, before, after)
        return Units(write=float(write * factor))
    return Units()


_requery = threading.local()


def _items_query_read(request: dict, parsed: dict) -> list[dict]:
    """Every item the Query read: its answer, or, when a filter dropped some, the same page
    read again without filter and projection (outside any count)."""
    items = parsed.get("Items", [])
    scanned = int(parsed.get("ScannedCount", len(items)) or 0)
    if scanned == len(items) and "ProjectionExpression" not in request:
        return items
    again = {
        k: v
        for k, v in request.items()
        if k not in ("FilterExpression", "ProjectionExpression", "Select", "AttributesToGet")
    }
    used = again.get("KeyConditionExpression", "")
    names = {k: v for k, v in again.get("ExpressionAttributeNames", {}).items() if k in used}
    values = {k: v for k, v in again.get("ExpressionAttributeValues", {}).items() if k in used}
    again.pop("ExpressionAttributeNames", None)
    again.pop("ExpressionAttributeValues", None)
    if names:
        again["ExpressionAttributeNames"] = names
    if values:
        again["ExpressionAttributeValues"] = values
    # The wire body uses the API's own parameter names: the low-level client takes them.
    answer = _raw_client().query(**again)
    return answer.get("Items", [])


def _raw_client() -> object:
    client = getattr(_requery, "client", None)
    if client is None:
        import botocore.session

        client = botocore.session.get_session().create_client(
            "dynamodb", region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        )
        _requery.client = client
    return client


def total_units(calls: Iterable[AwsCall]) -> Units:
    total = Units()
    for call in calls:
        total = total + call_units(call)
    return total


# -- critical path -----------------------------------------------------------------


def sequential_round_trips(calls: list[AwsCall]) -> int:
    """The longest chain of DynamoDB requests each sent after an earlier one answered.

    Measured from the requests' own timestamps (each with ``LATENCY_SECONDS`` of
    network while measured): two requests in flight at the same time (threads) are one
    round trip; a request sent after another's answer may depend on it, so it counts as
    the next step (a process that never overlaps requests has a critical path as long as
    its request count).
    """
    dynamo = sorted((c for c in calls if c.service == "dynamodb"), key=lambda c: c.started)
    depth: list[int] = []
    for index, call in enumerate(dynamo):
        before = [
            depth[j]
            for j, earlier in enumerate(dynamo[:index])
            if earlier.ended is not None and earlier.ended <= call.started
        ]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)

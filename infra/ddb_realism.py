"""DynamoDB as it behaves under load, for the local stack: conflicts, lagging indexes, throttles.

moto (and the serialised loopback server) applies one request at a time and
always reads the latest data. Real DynamoDB does three things it never does,
and this module makes the local stack do them, each with its own knob:

- **TransactionConflict.** A TransactWriteItems is *in flight* for
  ``conflict_hold_ms`` from the moment the server applies it (the
  coordinator's round trips in AWS; its answer waits as long): another
  transaction touching one of its items meanwhile is cancelled with reason
  ``TransactionConflict`` (even when both only add to a counter), and a
  PutItem/UpdateItem/DeleteItem of such an item fails with
  ``TransactionConflictException``, as DynamoDB documents. A client's own
  sequential requests never overlap, so they never conflict with each other.
- **Lagging global secondary indexes.** A Query on a GSI (and only on a GSI:
  base-table reads stay current) sees items as they were ``index_lag_ms``
  ago: a write newer than that is not in the index yet (its old image, or
  nothing, is served instead).
- **Throttling.** ``throttle_share`` of DynamoDB requests are answered
  ``ProvisionedThroughputExceededException`` or ``ThrottlingException``
  (400) before they reach moto, so botocore's own retries are exercised.

Switched on by ``DDB_REALISM=1`` (defaults below) or the individual
``DDB_CONFLICT_HOLD_MS`` / ``DDB_INDEX_LAG_MS`` / ``DDB_THROTTLE_SHARE``
variables, read when the server starts (``make run DDB_REALISM=1``, the
concurrency and load suites); tests may change ``REALISM`` at run time. The
counters say what was injected. Used by the tests and the local run only;
never shipped to Lambda.
"""

from __future__ import annotations

import copy
import io
import json
import os
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_HOLD_MS = 25.0
DEFAULT_LAG_MS = 300.0
DEFAULT_THROTTLE_SHARE = 0.02
_SINGLE_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})


@dataclass
class Realism:
    """The knobs (0 = off) and what was injected since the last :meth:`reset`."""

    conflict_hold_ms: float = 0.0
    index_lag_ms: float = 0.0
    throttle_share: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    rng: random.Random = field(default_factory=lambda: random.Random(33), repr=False)

    @property
    def enabled(self) -> bool:
        return bool(self.conflict_hold_ms or self.index_lag_ms or self.throttle_share)

    def configure(
        self,
        *,
        conflict_hold_ms: float | None = None,
        index_lag_ms: float | None = None,
        throttle_share: float | None = None,
    ) -> None:
        if conflict_hold_ms is not None:
            self.conflict_hold_ms = conflict_hold_ms
        if index_lag_ms is not None:
            self.index_lag_ms = index_lag_ms
        if throttle_share is not None:
            self.throttle_share = throttle_share

    def from_env(self, environ: dict[str, str] | None = None) -> Realism:
        env = os.environ if environ is None else environ
        on = env.get("DDB_REALISM", "").lower() in ("1", "yes", "true", "on")
        self.configure(
            conflict_hold_ms=float(env.get("DDB_CONFLICT_HOLD_MS") or (DEFAULT_HOLD_MS * on)),
            index_lag_ms=float(env.get("DDB_INDEX_LAG_MS") or (DEFAULT_LAG_MS * on)),
            throttle_share=float(env.get("DDB_THROTTLE_SHARE") or (DEFAULT_THROTTLE_SHARE * on)),
        )
        return self

    def off(self) -> None:
        self.configure(conflict_hold_ms=0, index_lag_ms=0, throttle_share=0)

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] += n

    def reset(self) -> Counter[str]:
        with self.lock:
            before, self.counts = self.counts, Counter()
        return before

    def describe(self) -> str:
        return (
            f"conflict hold {self.conflict_hold_ms:g} ms, index lag {self.index_lag_ms:g} ms, "
            f"throttled share {self.throttle_share:g}"
        )


REALISM = Realism()


# -- the server side: conflicts and throttles, in front of the serialised moto ----------


def _item_key(table: str, attrs: dict[str, Any]) -> str:
    """One item's identity from its key (Key) or whole item (Item): our table's pk/sk."""
    key = {k: attrs[k] for k in ("pk", "sk") if k in attrs} or attrs
    return table + "|" + json.dumps(key, sort_keys=True)


def transaction_keys(body: dict[str, Any]) -> list[str]:
    keys: list[str] = []
    for entry in body.get("TransactItems", []):
        for op in entry.values():
            keys.append(_item_key(op.get("TableName", ""), op.get("Key") or op.get("Item") or {}))
    return keys


def single_write_key(body: dict[str, Any]) -> str:
    return _item_key(body.get("TableName", ""), body.get("Key") or body.get("Item") or {})


def _error(kind: str, message: str, **extra: Any) -> tuple[str, bytes]:
    payload = {"__type": f"com.amazonaws.dynamodb.v20120810#{kind}", "message": message, **extra}
    return "400 Bad Request", json.dumps(payload).encode()


class InFlight:
    """The item keys of the transactions the server holds right now (a key can be held once)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: set[str] = set()

    def claim(self, keys: list[str]) -> list[bool] | None:
        """Hold every key, or return which are held by another transaction (none held then)."""
        with self.lock:
            busy = [key in self.held for key in keys]
            if any(busy):
                return busy
            self.held.update(keys)
            return None

    def busy(self, key: str) -> bool:
        with self.lock:
            return key in self.held

    def release(self, keys: Iterable[str]) -> None:
        with self.lock:
            self.held.difference_update(keys)


class RealisticDynamo:
    """WSGI middleware around the serialised moto app (``serial.app`` under ``serial.lock``).

    A transaction's keys are claimed under the server's lock, just before moto
    applies it, and held for ``conflict_hold_ms`` after (the answer waits for
    the hold to end): its time in flight is the hold, never the time it queued
    for the lock, and a client's own next request never meets its previous one.
    """

    def __init__(self, serial: Any, realism: Realism = REALISM) -> None:
        self.serial = serial
        self.realism = realism
        self.in_flight = InFlight()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        realism = self.realism
        if not target.startswith("DynamoDB_") or not realism.enabled:
            return self.serial(environ, start_response)
        operation = target.partition(".")[2]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)

        if realism.throttle_share and realism.rng.random() < realism.throttle_share:
            realism.count("throttled")
            kind = realism.rng.choice(
                ["ProvisionedThroughputExceededException", "ThrottlingException"]
            )
            return self._answer(start_response, *_error(kind, "Rate of requests exceeds the limit"))

        if not realism.conflict_hold_ms:
            return self.serial(environ, start_response)
        if operation == "TransactWriteItems":
            keys = transaction_keys(json.loads(raw or b"{}"))
            with self.serial.lock:
                busy = self.in_flight.claim(keys)
                if busy is None:
                    answer = list(self.serial.app(environ, start_response))
            if busy is not None:
                realism.count("transaction_conflicts")
                ongoing = {"Code": "TransactionConflict", "Message": "Transaction is ongoing"}
                reasons = [ongoing if hit else {"Code": "None"} for hit in busy]
                codes = ", ".join("TransactionConflict" if hit else "None" for hit in busy)
                status, body = _error(
                    "TransactionCanceledException",
                    f"Transaction cancelled, please refer cancellation reasons for specific "
                    f"reasons [{codes}]",
                    CancellationReasons=reasons,
                )
                return self._answer(start_response, status, body)
            try:
                time.sleep(realism.conflict_hold_ms / 1000)  # in flight: others may collide
            finally:
                self.in_flight.release(keys)
            return answer
        if operation in _SINGLE_WRITES:
            key = single_write_key(json.loads(raw or b"{}"))
            with self.serial.lock:
                if not self.in_flight.busy(key):
                    return list(self.serial.app(environ, start_response))
            realism.count("single_write_conflicts")
            return self._answer(
                start_response,
                *_error("TransactionConflictException", "Transaction is ongoing for the item"),
            )
        return self.serial(environ, start_response)

    @staticmethod
    def _answer(start_response: Callable[..., Any], status: str, body: bytes) -> list[bytes]:
        start_response(
            status,
            [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))],
        )
        return [body]


# -- the moto side: global secondary indexes that lag behind the table ------------------


class _Journal:
    """Old images of the items written in the last ``index_lag_ms`` (per table)."""

    def __init__(self) -> None:
        self.entries: deque[tuple[float, str, Any, Any, Any]] = deque()

    def record(self, table: Any, hash_key: Any, range_key: Any, old: Any, lag_s: float) -> None:
        moment = time.monotonic()
        while self.entries and self.entries[0][0] < moment - max(lag_s, 5.0):
            self.entries.popleft()
        self.entries.append((moment, table.name, hash_key, range_key, copy.deepcopy(old)))

    def as_of(self, table_name: str, lag_s: float) -> dict[tuple[Any, Any], Any]:
        """Key → the item as it was ``lag_s`` ago (None: absent), for keys written since."""
        since = time.monotonic() - lag_s
        older: dict[tuple[Any, Any], Any] = {}
        for moment, name, hash_key, range_key, old in self.entries:
            if moment >= since and name == table_name and (hash_key, range_key) not in older:
                older[(hash_key, range_key)] = old
        return older


JOURNAL = _Journal()
_PATCHED = False


def _keys_of(backend: Any, table: Any, key_attrs: dict[str, Any]) -> tuple[Any, Any]:
    return backend.get_keys_value(table, key_attrs)  # (hash DynamoType, range DynamoType|None)


def _remember(backend: Any, table_name: str, key_attrs: dict[str, Any]) -> None:
    lag = REALISM.index_lag_ms
    if not lag:
        return
    table = backend.get_table(table_name)
    hash_key, range_key = _keys_of(backend, table, key_attrs)
    JOURNAL.record(table, hash_key, range_key, table.get_item(hash_key, range_key), lag / 1000)


def _swap(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
    bucket = table.items[hash_key] if table.range_key_attr else None
    if table.range_key_attr:
        if item is None:
            bucket.pop(range_key, None)
        else:
            bucket[range_key] = item
        if not bucket:
            table.items.pop(hash_key, None)
    elif item is None:
        table.items.pop(hash_key, None)
    else:
        table.items[hash_key] = item


def apply() -> None:
    """Patch moto's DynamoDB backend (once): GSI queries see the table ``index_lag_ms`` ago."""
    global _PATCHED
    if _PATCHED:
        return
    _PATCHED = True
    from moto.dynamodb.models import DynamoDBBackend

    put_item, update_item = DynamoDBBackend.put_item, DynamoDBBackend.update_item
    delete_item, query = DynamoDBBackend.delete_item, DynamoDBBackend.query

    def lagged_put(self: Any, table_name: str, item_attrs: dict[str, Any], *a: Any, **k: Any):
        table = self.get_table(table_name)
        key = {table.hash_key_attr: item_attrs.get(table.hash_key_attr)}
        if table.range_key_attr:
            key[table.range_key_attr] = item_attrs.get(table.range_key_attr)
        _remember(self, table_name, key)
        return put_item(self, table_name, item_attrs, *a, **k)

    def lagged_update(self: Any, table_name: str, key: dict[str, Any], *a: Any, **k: Any):
        _remember(self, table_name, key)
        return update_item(self, table_name, key, *a, **k)

    def lagged_delete(self: Any, table_name: str, key: dict[str, Any], *a: Any, **k: Any):
        _remember(self, table_name, key)
        return delete_item(self, table_name, key, *a, **k)

    def lagged_query(self: Any, table_name: str, *args: Any, **kwargs: Any):
        index_name = kwargs.get("index_name")
        lag = REALISM.index_lag_ms
        table = self.get_table(table_name)
        gsi = index_name and any(i.name == index_name for i in table.global_indexes or [])
        older = JOURNAL.as_of(table.name, lag / 1000) if gsi and lag else {}
        if not older:
            return query(self, table_name, *args, **kwargs)
        current = {key: table.get_item(*key) for key in older}
        for (hash_key, range_key), item in older.items():
            _swap(table, hash_key, range_key, item)
        REALISM.count("lagged_index_queries")
        try:
            return query(self, table_name, *args, **kwargs)
        finally:
            for (hash_key, range_key), item in current.items():
                _swap(table, hash_key, range_key, item)

    DynamoDBBackend.put_item = lagged_put  # type: ignore[method-assign]
    DynamoDBBackend.update_item = lagged_update  # type: ignore[method-assign]
    DynamoDBBackend.delete_item = lagged_delete  # type: ignore[method-assign]
    DynamoDBBackend.query = lagged_query  # type: ignore[method-assign]

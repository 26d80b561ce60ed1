"""The one table: a polymorphic base model with generic keys and overloaded GSIs."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, TypeVar

from pynamodb.attributes import (
    DiscriminatorAttribute,
    MapAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.config import get_settings

_settings = get_settings()
log = logging.getLogger("checkos.db")
T = TypeVar("T")
# Retries of a write DynamoDB cancelled for a transaction conflict on an item it
# only shares with others (counters, a user's unread count): jittered, bounded.
CONFLICT_ATTEMPTS = 8
CONFLICT_BASE_S = 0.01
CONFLICT_CAP_S = 0.4


class Gsi1(GlobalSecondaryIndex["Item"]):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class Gsi2(GlobalSecondaryIndex["Item"]):
    class Meta:
        index_name = "gsi2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class Gsi3(GlobalSecondaryIndex["Item"]):
    class Meta:
        index_name = "gsi3"
        projection = AllProjection()

    gsi3pk = UnicodeAttribute(hash_key=True)
    gsi3sk = UnicodeAttribute(range_key=True)


class Item(Model):
    """Every item of the table. Entities subclass it with a discriminator."""

    class Meta:
        table_name = _settings.table_name
        region = _settings.region
        host = _settings.dynamodb_host

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    type = DiscriminatorAttribute()
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    gsi3pk = UnicodeAttribute(null=True)
    gsi3sk = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)

    gsi1 = Gsi1()
    gsi2 = Gsi2()
    gsi3 = Gsi3()

    def upsert(self, actions: list[Action], condition: Condition | None = None) -> Any:
        """UpdateItem that may create the item: sets the discriminator too."""
        kind = type(self)
        return self.update(actions=[kind.type.set(kind), *actions], condition=condition)


def transaction() -> TransactWrite:
    """A TransactWriteItems on the table's own connection settings."""
    return TransactWrite(connection=_connection())


def failed_keys(error: TransactWriteError, tx: TransactWrite) -> set[tuple[str, str]]:
    """(pk, sk) of the items whose condition failed in a cancelled transaction.

    PynamoDB sends condition checks, deletes, puts and updates in that order,
    whatever order the calls were made in; reasons follow the sent order.
    """
    sent = [
        *tx._condition_check_items,
        *tx._delete_items,
        *tx._put_items,
        *tx._update_items,
    ]
    failed: set[tuple[str, str]] = set()
    for operation, code in zip(sent, cancellation_codes(error), strict=False):
        if code != "ConditionalCheckFailed":
            continue
        item = operation.get("Key") or operation.get("Item") or {}
        failed.add((item["pk"]["S"], item["sk"]["S"]))
    return failed


def conflicted(error: TransactWriteError) -> bool:
    """True when another transaction touched the same items at the same time."""
    return "TransactionConflict" in cancellation_codes(error)


def only_conflicted(error: TransactWriteError) -> bool:
    """Cancelled for a concurrent transaction alone, no condition failed: run it again."""
    codes = cancellation_codes(error)
    return "TransactionConflict" in codes and "ConditionalCheckFailed" not in codes


def condition_failed(error: TransactWriteError) -> bool:
    """Cancelled because one of its conditions failed (not a throttle, not only a conflict)."""
    return "ConditionalCheckFailed" in cancellation_codes(error)


def single_write_conflicted(error: Exception) -> bool:
    """A PutItem/UpdateItem/DeleteItem refused because a transaction holds the item."""
    return getattr(error, "cause_response_code", None) == "TransactionConflictException"


def conflict_pause(attempt: int) -> None:
    """Full-jitter exponential back-off before another attempt (bounded by CONFLICT_CAP_S)."""
    time.sleep(random.uniform(0, min(CONFLICT_CAP_S, CONFLICT_BASE_S * 2**attempt)))


def retried(what: str, retries: int) -> None:
    """Every retried write's count, as a log record (the load tests read them for the p95)."""
    level = logging.INFO if retries else logging.DEBUG
    log.log(level, "write done after %d retries", retries, extra={"what": what, "retries": retries})


# A cancelled transaction's answer to the user, given which conditions failed (it raises).
Refusal = Callable[[TransactWriteError, TransactWrite], None]


def refuse_as(problem: Callable[[], Exception]) -> Refusal:
    """The ``refuse`` of a transaction whose every failed condition means ``problem()``."""

    def refuse(error: TransactWriteError, _tx: TransactWrite) -> None:
        raise problem() from error

    return refuse


def write_transaction(
    what: str, build: Callable[[TransactWrite], None], refuse: Refusal | None = None
) -> TransactWrite:
    """Commit the writes ``build`` adds to a fresh transaction, again while DynamoDB cancels
    it only for a concurrent transaction on one of its items. Returns the committed
    transaction.

    A cancellation where a condition failed is the caller's answer: ``refuse(error, tx)``
    (with ``failed_keys(error, tx)`` at hand) raises it; if it returns, or there is none,
    the TransactWriteError is raised. So is any other failure (a throttle) and the last
    one after CONFLICT_ATTEMPTS conflicts: the "busy, try again" page, never "someone
    changed it".
    """

    def attempt() -> TransactWrite:
        tx = transaction()
        try:
            with tx:
                build(tx)
        except TransactWriteError as error:
            if refuse is not None and condition_failed(error):
                refuse(error, tx)
            raise
        return tx

    return _retrying(
        what, attempt, lambda e: isinstance(e, TransactWriteError) and only_conflicted(e)
    )


def retry_single_write(what: str, write: Callable[[], T]) -> T:
    """Run one PutItem/UpdateItem/DeleteItem again while a transaction holds its item."""
    return _retrying(what, write, single_write_conflicted)


def _retrying(what: str, run: Callable[[], T], conflicted: Callable[[Exception], bool]) -> T:
    """``run`` again, with back-off, while it fails only for a concurrent transaction."""
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            result = run()
        except Exception as error:
            if conflicted(error) and attempt + 1 < CONFLICT_ATTEMPTS:
                conflict_pause(attempt)
                continue
            retried(what, attempt)
            raise
        retried(what, attempt)
        return result
    raise AssertionError("unreachable")  # pragma: no cover


def plain_map(raw: object) -> dict[str, str]:
    """A free-form map attribute's entries as text, however pynamodb handed it over.

    A raw ``MapAttribute`` loads as a ``MapAttribute`` object, a fresh default
    as a plain ``dict``, an absent one as None (no entries).
    """
    values: Mapping[object, object]
    if isinstance(raw, MapAttribute):
        values = raw.as_dict()
    elif isinstance(raw, Mapping):
        values = raw
    else:
        values = {}
    return {str(k): str(v) for k, v in values.items()}


@lru_cache(maxsize=1)
def _connection() -> Connection:
    return Connection(region=Item.Meta.region, host=Item.Meta.host)


def cancellation_codes(error: TransactWriteError) -> list[str | None]:
    """Per-item reasons ('ConditionalCheckFailed', None, ...) of a cancelled transaction."""
    reasons = error.cancellation_reasons or []
    return [reason.code if reason else None for reason in reasons]


def query_page(
    partition: str,
    *,
    range_key_condition: Condition | None = None,
    filter_condition: Condition | None = None,
    page_size: int,
    forward: bool = True,
    start_sk: str | None = None,
    consistent: bool = False,
) -> tuple[list[Item], str | None]:
    """Exactly one Query request: up to ``page_size`` items read, and the next cursor.

    With a filter, DynamoDB reads ``page_size`` items and returns those that
    match, so the cost of a page never depends on the partition's size.
    """
    start = {"pk": {"S": partition}, "sk": {"S": start_sk}} if start_sk else None
    results = Item.query(
        partition,
        range_key_condition,
        filter_condition,
        consistent_read=consistent,
        scan_index_forward=forward,
        page_size=page_size,
        last_evaluated_key=start,
    )
    page = next(results.page_iter)
    items = [Item.from_raw_data(raw) for raw in page.get("Items", [])]
    last = results.page_iter.last_evaluated_key
    return items, (last["sk"]["S"] if last else None)

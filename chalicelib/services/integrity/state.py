"""What one company's check shares: counted reads, the orders it found, its violations."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.db import exports as _exports  # noqa: F401  (registers its discriminator)
from chalicelib.db import keys
from chalicelib.db.base import Item
from chalicelib.db.orders import Order
from chalicelib.services.sessions import now


class Reader:
    """Paginated, strongly consistent reads (where DynamoDB allows), counting items."""

    def __init__(self) -> None:
        self.items = 0

    def query(self, partition: str, range_condition: Any = None) -> list[Item]:
        found = list(Item.query(partition, range_condition, consistent_read=True))
        self.items += len(found)
        return found

    def index(self, name: str, partition: str) -> list[Item]:
        found = list(getattr(Item, name).query(partition))
        self.items += len(found)
        return found

    def get(self, key: tuple[str, str]) -> Item | None:
        try:
            item = Item.get(*key, consistent_read=True)
        except DoesNotExist:
            return None
        self.items += 1
        return item

    def batch(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Item]:
        wanted = list(dict.fromkeys(wanted))
        if not wanted:
            return {}
        found = {(i.pk, i.sk): i for i in Item.batch_get(wanted, consistent_read=True)}
        self.items += len(found)
        return found


def _number(value: Any) -> Any:
    """Numbers compare by value whatever their Python type (Decimal, float, int)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def differences(actual: Item, expected: Item, names: Iterable[str]) -> list[str]:
    return [
        name
        for name in names
        if _number(getattr(actual, name, None)) != _number(getattr(expected, name, None))
    ]


def expired(item: Item, at: datetime) -> bool:
    expires = getattr(item, "expires_at", None)
    return expires is not None and expires <= at


class CheckState:
    """The state of one company's check; each area's checks (a subclass) add violations."""

    def __init__(self, reader: Reader, company_id: str, out: list[str]) -> None:
        self.r = reader
        self.cid = company_id
        self.out = out
        self.at = now()
        self.orders: dict[str, Order] = {}
        self.children: dict[str, list[Item]] = {}
        # Owners of orders we hold whose Company item is gone (erased): we keep those orders.
        self.erased_owners: set[str] = set()

    def fail(self, text: str) -> None:
        self.out.append(text)

    def load_order(self, order_id: str) -> Order | None:
        if order_id in self.orders:
            return self.orders[order_id]
        group = self.r.query(keys.order(order_id))
        meta = next((i for i in group if isinstance(i, Order)), None)
        others = [i for i in group if not isinstance(i, Order)]
        if meta is None:
            what = f"{len(others)} orphan item(s) without META" if others else "no items at all"
            self.fail(f"order {order_id}: referenced from company {self.cid}, {what}")
            return None
        self.orders[order_id] = meta
        self.children[order_id] = others
        return meta

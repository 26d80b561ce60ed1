"""Invariants of orders: list entries, numbers, counters, usage, children, customer links."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import timedelta

from chalicelib.db import keys
from chalicelib.db.accounts import Company, User
from chalicelib.db.base import Item
from chalicelib.db.customers import CustomerAccess, OrderRating
from chalicelib.db.orders import (
    MonthlyUsage,
    Order,
    OrderCounter,
    OrderEntry,
    OrderEvent,
    OrderMessage,
)
from chalicelib.db.partners import Partnership
from chalicelib.db.stats import Stat, counter_name, week_of
from chalicelib.domain import workflow
from chalicelib.domain.validation import fold
from chalicelib.services.customers import LINK_DAYS_AFTER_CLOSE
from chalicelib.services.erasure_orders import CUSTOMER_FIELDS, ERASED_NAME
from chalicelib.services.integrity.state import CheckState, differences
from chalicelib.services.orders import entries_for, month_of

# Attributes an OrderEntry copies from its order (compared field by field).
ENTRY_FIELDS: tuple[str, ...] = (
    "order_id",
    "owner_id",
    "number",
    "status",
    "customer_name",
    "customer_phone",
    "service_type",
    "brand",
    "service_date",
    "technician_id",
    "technician_name",
    "created",
    "rating",
    "f_name",
    "f_type",
    "f_brand",
    "phone_digits",
    "gsi1pk",
    "gsi1sk",
    "gsi2pk",
    "gsi2sk",
)
ORDER_CHILDREN = (OrderEvent, OrderMessage, OrderRating)


class OrderChecks(CheckState):
    """The company's orders as its list entries, counters and usage tell them, and each order."""

    def _entry_partition(self, dimension: str) -> str:
        return keys.order_entries(self.cid, dimension)

    def check_orders(self, company: Company, items: list[Item], users: list[User]) -> None:
        cid = self.cid
        counter = next((i for i in items if isinstance(i, OrderCounter)), None)
        last = int(counter.last_number or 0) if counter else 0
        stats = {i.sk: i for i in items if isinstance(i, Stat)}
        # Partitions where this company's entries can be found through keys.
        dimensions = {"ALL", "OPEN", "NAME", *(f"STATUS#{s}" for s in workflow.STATUSES)}
        dimensions |= {f"RATING#{n}" for n in range(1, 6)}
        dimensions |= {f"TECH#{u.user_id}" for u in users}
        dimensions |= {f"NUM#{n}" for n in range(1, last + 1)}
        for sk in stats:
            kind, _, name = counter_name(sk).removeprefix("STAT#").partition("#")
            if kind in ("TYPE", "BRAND") and name:
                dimensions.add(f"{kind}#{name}")
        actual: dict[tuple[str, str], Item] = {}
        read: set[str] = set()

        def read_partitions(partitions: Iterable[str]) -> None:
            for partition in sorted(set(partitions) - read):
                read.add(partition)
                for item in self.r.query(partition):
                    actual[(item.pk, item.sk)] = item

        read_partitions(self._entry_partition(d) for d in dimensions)
        for key, item in actual.items():
            if not isinstance(item, OrderEntry):
                self.fail(f"entry {key[0]} / {key[1]}: not a list entry ({type(item).__name__})")
        for order_id in sorted({e.order_id for e in actual.values() if isinstance(e, OrderEntry)}):
            self.load_order(order_id)
        mine = keys.order_entries(cid, "")
        owners = {o.company_id for o in self.orders.values() if o.company_id != cid}
        present = self.r.batch(Company.key(owner) for owner in owners)
        self.erased_owners = {o for o in owners if Company.key(o) not in present}
        expected: dict[tuple[str, str], OrderEntry] = {}
        # An erased owner's entries of an order we keep must be gone with it.
        erased: dict[tuple[str, str], str] = {}
        for order in self.orders.values():
            for key, entry in entries_for(order).items():
                if order.company_id in self.erased_owners and not key[0].startswith(mine):
                    erased[key] = order.order_id
                else:
                    expected[key] = entry
        read_partitions(pk for pk, _ in expected if pk.startswith(mine))
        elsewhere = self.r.batch(k for k in [*expected, *erased] if not k[0].startswith(mine))
        for key, order_id in erased.items():
            if key in elsewhere:
                where = f"entry {key[0]} / {key[1]}"
                self.fail(f"{where}: left behind by the erased owner of order {order_id}")
        actual.update((k, v) for k, v in elsewhere.items() if k not in erased)
        for key, entry in expected.items():
            found = actual.get(key)
            where = f"entry {key[0]} / {key[1]}"
            if not isinstance(found, OrderEntry):
                self.fail(f"{where}: missing for order {entry.order_id} ({entry.status})")
            elif stale := differences(found, entry, ENTRY_FIELDS):
                self.fail(f"{where}: stale copy of order {entry.order_id} ({', '.join(stale)})")
        for key, found in actual.items():
            if key[0].startswith(mine) and key not in expected and isinstance(found, OrderEntry):
                held = self.orders.get(found.order_id)
                why = (
                    "its order does not exist"
                    if held is None
                    else f"order is {held.status}, owner {held.company_id}, "
                    f"executor {held.executor_id or 'none'}"
                )
                self.fail(f"entry {key[0]} / {key[1]}: stale, {why}")
        owned = [o for o in self.orders.values() if o.company_id == cid]
        self._numbers(owned, last)
        self._stats(owned, stats)
        self._usage(owned, [i for i in items if isinstance(i, MonthlyUsage)])
        for order in self.orders.values():
            self._order(order)

    def _numbers(self, owned: list[Order], last: int) -> None:
        numbers = Counter(int(o.number) for o in owned)
        duplicates = sorted(n for n, count in numbers.items() if count > 1)
        if duplicates:
            self.fail(f"company {self.cid}: order numbers used twice: {duplicates[:20]}")
        missing = sorted(set(range(1, last + 1)) - set(numbers))
        if missing:
            self.fail(f"company {self.cid}: order numbers missing (gaps): {missing[:20]}")
        beyond = sorted(n for n in numbers if n > last or n < 1)
        if beyond:
            self.fail(f"company {self.cid}: order numbers beyond the counter {last}: {beyond[:20]}")

    def _stats(self, owned: list[Order], stats: dict[str, Stat]) -> None:
        want: Counter[str] = Counter()
        registered: Counter[str] = Counter()
        completed: Counter[str] = Counter()
        for order in owned:
            for kind, value in (("TYPE", order.service_type), ("BRAND", order.brand)):
                if value and fold(value):
                    want[f"STAT#{kind}#{fold(value)}"] += 1
            registered[f"STAT#WEEK#{week_of(order.created_at)}"] += 1
            for event in self.children.get(order.order_id, []):
                if (
                    isinstance(event, OrderEvent)
                    and event.kind == "status"
                    and event.to_status == workflow.COMPLETED
                    and event.from_status != workflow.COMPLETED
                ):
                    completed[f"STAT#WEEK#{week_of(event.at)}"] += 1
        have: Counter[str] = Counter()
        have_registered: Counter[str] = Counter()
        have_completed: Counter[str] = Counter()
        rating = stats.get("STAT#RATING")
        for item_sk, stat in stats.items():
            sk = counter_name(item_sk)  # the shards of one counter add up
            kind, _, name = sk.removeprefix("STAT#").partition("#")
            if kind in ("TYPE", "BRAND") and name:
                have[sk] += int(stat.count or 0)
            elif kind == "WEEK":
                have_registered[sk] += int(stat.registered or 0)
                have_completed[sk] += int(stat.completed or 0)
        for label, counted, stored in (
            ("orders", want, have),
            ("registered", registered, have_registered),
            ("completed", completed, have_completed),
        ):
            for sk in sorted(set(counted) | set(stored)):
                if counted[sk] != stored[sk]:
                    self.fail(
                        f"company {self.cid}: counter {sk} {label} = {stored[sk]}, "
                        f"the orders say {counted[sk]}"
                    )
        rated = [int(o.rating) for o in owned if o.rating]
        stored_total = int(getattr(rating, "total", None) or 0)
        stored_count = int(getattr(rating, "count", None) or 0)
        if (stored_total, stored_count) != (sum(rated), len(rated)):
            self.fail(
                f"company {self.cid}: counter STAT#RATING total/count = "
                f"{stored_total}/{stored_count}, the orders say {sum(rated)}/{len(rated)}"
            )

    def _usage(self, owned: list[Order], usage: list[MonthlyUsage]) -> None:
        counted = Counter(month_of(o.created_at) for o in owned)
        stored = {u.sk.removeprefix("USAGE#"): int(u.count or 0) for u in usage}
        for month in sorted(set(counted) | set(stored)):
            if counted[month] != stored.get(month, 0):
                self.fail(
                    f"company {self.cid}: USAGE#{month} = {stored.get(month, 0)}, "
                    f"{counted[month]} orders registered that month"
                )

    def _order(self, order: Order) -> None:
        """Per-order invariants; checked by the owner (the executor checks only its entries),
        or by the executor that kept the order when its owner was erased."""
        kept = order.company_id in self.erased_owners and order.executor_id == self.cid
        if order.company_id != self.cid and not kept:
            return
        label = f"order {order.order_id} (#{order.number} of {order.company_id})"
        children = self.children.get(order.order_id, [])
        for child in children:
            if not isinstance(child, ORDER_CHILDREN):
                self.fail(f"{label}: unexpected {type(child).__name__} item {child.sk}")
        created = [c for c in children if isinstance(c, OrderEvent) and c.kind == "created"]
        # Erasure deletes the customer's own events: an intake order loses its "created".
        allowed = {0, 1} if kept and order.source == "intake" else {1}
        if len(created) not in allowed:
            self.fail(f"{label}: {len(created)} 'created' events")
        if kept:
            self._kept_order(label, order, children)
        rating = next((c for c in children if isinstance(c, OrderRating)), None)
        stars = int(rating.stars) if rating else None
        if (int(order.rating) if order.rating else None) != stars:
            self.fail(f"{label}: rating {order.rating} but RATING item says {stars}")
        if order.executor_id and not kept:  # an erased owner's side of the link is gone
            if order.executor_id == order.company_id:
                self.fail(f"{label}: shared with its own owner")
            found = self.r.batch(
                [
                    Partnership.key(order.company_id, order.executor_id),
                    Partnership.key(order.executor_id, order.company_id),
                ]
            )
            if len(found) != 2:
                self.fail(f"{label}: shared with {order.executor_id} without a partnership")
        if order.access_hash:
            access = self.r.get(CustomerAccess.key(order.access_hash))
            lapsed = not workflow.is_open(order.status) and order.updated_at < self.at - timedelta(
                days=LINK_DAYS_AFTER_CLOSE
            )
            if access is None and not lapsed:
                self.fail(f"{label}: customer link {order.access_hash[:12]}… missing")
            elif access is not None and (
                not isinstance(access, CustomerAccess)
                or (access.order_id, access.company_id) != (order.order_id, order.company_id)
            ):
                self.fail(f"{label}: customer link points to another order")

    def _kept_order(self, label: str, order: Order, children: list[Item]) -> None:
        """An order kept by its executor after the owner was erased holds none of the owner's
        customer's personal data (what erasure promises: fields cleared, customer items gone)."""
        kept = [name for name in CUSTOMER_FIELDS if getattr(order, name, None)]
        if order.customer_name != ERASED_NAME:
            kept.insert(0, "customer_name")
        if order.custom_values:
            kept.append("custom")
        if order.access_hash:
            kept.append("access_hash")
        if order.rating:
            kept.append("rating")
        if order.source == "intake" and order.created_by_name != ERASED_NAME:
            kept.append("created_by_name")  # the customer created it through the form
        for child in children:
            if (
                (isinstance(child, OrderMessage) and child.author_kind == "customer")
                or (
                    isinstance(child, OrderEvent)
                    and (child.actor_kind == "customer" or child.kind in ("mail", "mail_failed"))
                )
                or isinstance(child, OrderRating)
            ):
                kept.append(child.sk)
        if kept:
            self.fail(
                f"{label}: kept by {self.cid} after its owner was erased but still holds "
                f"the customer's data ({', '.join(kept)})"
            )

"""Order lists and search: filters, the indexed dimension, one Query a page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from pynamodb.expressions.condition import Condition

from chalicelib.db import keys
from chalicelib.db.base import Item, query_page
from chalicelib.db.orders import OrderEntry
from chalicelib.domain import visibility, workflow
from chalicelib.domain.validation import fold, phone_digits
from chalicelib.services.orders.access import links_of
from chalicelib.services.sessions import now

PAGE_SIZE = 20


@dataclass(frozen=True)
class OrderFilters:
    name: str = ""
    phone: str = ""
    service_type: str = ""
    brand: str = ""
    status: str = ""
    technician: str = ""
    number: str = ""
    rating: str = ""
    colour: str = ""
    date_from: str = ""
    date_to: str = ""
    view: str = ""  # "" = needs attention first (open orders); "all" = every order, newest first

    FIELDS = (
        "name",
        "phone",
        "service_type",
        "brand",
        "status",
        "technician",
        "number",
        "rating",
        "colour",
        "date_from",
        "date_to",
        "view",
    )

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> OrderFilters:
        clean = {k: " ".join((query.get(k) or "").split())[:80] for k in cls.FIELDS}
        if clean["status"] not in workflow.STATUSES:
            clean["status"] = ""
        if not clean["number"].lstrip("#").isdigit():
            clean["number"] = ""
        clean["number"] = clean["number"].lstrip("#")
        if clean["rating"] not in ("1", "2", "3", "4", "5"):
            clean["rating"] = ""
        for name in ("date_from", "date_to"):
            try:
                clean[name] = date.fromisoformat(clean[name]).isoformat() if clean[name] else ""
            except ValueError:
                clean[name] = ""
        return cls(**clean)

    def active(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in self.FIELDS if getattr(self, k)}


@dataclass
class OrderPage:
    entries: list[OrderEntry]
    next_cursor: str | None
    dimension: str


def _plan(filters: OrderFilters) -> tuple[str, bool, list[str]]:
    """Pick the indexed dimension (most selective first) and what remains to filter."""
    digits = phone_digits(filters.phone)
    name_tokens = fold(filters.name).split()
    candidates: list[tuple[str, str | None, bool]] = [
        ("number", f"NUM#{filters.number}" if filters.number else None, False),
        ("phone", f"PHONE#{digits[-8:]}" if len(digits) >= 4 else None, False),
        ("name", "NAME" if name_tokens else None, True),
        ("technician", f"TECH#{filters.technician}" if filters.technician else None, False),
        (
            "service_type",
            f"TYPE#{fold(filters.service_type)}" if filters.service_type else None,
            False,
        ),
        ("brand", f"BRAND#{fold(filters.brand)}" if filters.brand else None, False),
        ("rating", f"RATING#{filters.rating}" if filters.rating else None, False),
        ("status", f"STATUS#{filters.status}" if filters.status else None, False),
        ("colour", "OPEN" if filters.colour else None, True),
    ]
    for used, dimension, forward in candidates:
        if dimension:
            return dimension, forward, [used]
    if filters.view == "all" or filters.date_from or filters.date_to:
        return "ALL", False, []
    return "OPEN", True, []


def _colour_condition(colour: str, today: date) -> Condition | None:
    cut20 = (today - timedelta(days=20)).isoformat()
    cut30 = (today - timedelta(days=30)).isoformat()
    day = today.isoformat()
    young: Condition = OrderEntry.created >= cut20
    found: Condition | None = None
    if colour == "red":
        found = OrderEntry.created < cut30
    elif colour == "orange":
        found = (OrderEntry.created >= cut30) & (OrderEntry.created < cut20)
    elif colour == "yellow":
        found = young & (OrderEntry.service_date < day)
    elif colour == "blue":
        found = young & (OrderEntry.service_date == day)
    elif colour == "green":
        found = young & (OrderEntry.service_date > day)
    return found


def list_orders(
    company_id: str, filters: OrderFilters, cursor: str | None = None, page_size: int = PAGE_SIZE
) -> OrderPage:
    """One page of the company's orders: one Query, at most ``page_size`` reads (+ one Query
    of our partnerships when the page holds orders we execute: ``visible_entries``)."""
    dimension, forward, used = _plan(filters)
    partition = keys.order_entries(company_id, dimension)
    range_condition: Condition | None = None
    conditions: list[Condition] = []
    name_tokens = fold(filters.name).split()
    if dimension == "NAME":
        range_condition = Item.sk.startswith(name_tokens[0])
        for token in name_tokens[1:]:
            conditions.append(OrderEntry.f_name.contains(token))
    elif name_tokens:
        for token in name_tokens:
            conditions.append(OrderEntry.f_name.contains(token))
    date_from = filters.date_from
    date_to = (
        (date.fromisoformat(filters.date_to) + timedelta(days=1)).isoformat()
        if (filters.date_to)
        else ""
    )
    if dimension in ("NAME", "OPEN"):
        if date_from:
            conditions.append(OrderEntry.created >= date_from)
        if date_to:
            conditions.append(OrderEntry.created < date_to)
    elif date_from or date_to:
        range_condition = Item.sk.between(date_from or "0", date_to or "9")
    digits = phone_digits(filters.phone)
    if digits and "phone" not in used:
        conditions.append(OrderEntry.phone_digits.contains(digits[-8:]))
    if filters.service_type and "service_type" not in used:
        conditions.append(OrderEntry.f_type == fold(filters.service_type))
    if filters.brand and "brand" not in used:
        conditions.append(OrderEntry.f_brand == fold(filters.brand))
    if filters.status and "status" not in used:
        conditions.append(OrderEntry.status == filters.status)
    if filters.technician and "technician" not in used:
        conditions.append(OrderEntry.technician_id == filters.technician)
    if filters.number and "number" not in used:
        conditions.append(OrderEntry.number == int(filters.number))
    if filters.rating and "rating" not in used:
        conditions.append(OrderEntry.rating == int(filters.rating))
    if filters.colour:
        colour = _colour_condition(filters.colour, now().date())
        if colour is not None:
            conditions.append(colour)
    condition: Condition | None = None
    for part in conditions:
        condition = part if condition is None else condition & part
    items, next_sk = query_page(
        partition,
        range_key_condition=range_condition,
        filter_condition=condition,
        page_size=page_size,
        forward=forward,
        start_sk=cursor,
    )
    entries = list({e.order_id: e for e in items if isinstance(e, OrderEntry)}.values())
    return OrderPage(
        entries=visible_entries(company_id, entries), next_cursor=next_sk, dimension=dimension
    )


def visible_entries(company_id: str, entries: list[OrderEntry]) -> list[OrderEntry]:
    """The rows the company may see (``domain/visibility.py``).

    Rows of orders we execute for a partner pass the rule with our link's
    state: a deletion hands open orders back and removes their rows, and
    should that be cut short, the rows still never show. Costs one Query of
    our partnerships, only on a page holding such rows.
    """
    if all(e.owner_id == company_id for e in entries):
        return entries
    links = links_of(company_id)

    def visible(entry: OrderEntry) -> bool:
        if entry.owner_id == company_id:
            return True
        link = links.get(entry.owner_id)
        return visibility.order_access(
            entry.owner_id,
            company_id,
            entry.status,
            company_id,
            link.state if link is not None else None,
            owner_erased=bool(entry.owner_erased),
        ).visible

    return [e for e in entries if visible(e)]


def open_entries(company_id: str) -> Iterable[OrderEntry]:
    """Every open order of the company (dashboard, jobs): items ∝ open orders."""
    for item in Item.query(keys.order_entries(company_id, "OPEN")):
        if isinstance(item, OrderEntry):
            yield item

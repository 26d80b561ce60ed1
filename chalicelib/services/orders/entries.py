"""An order's list entries (the rows of its companies' lists and the aging indexes)."""

from __future__ import annotations

from datetime import date
from typing import Any

from pynamodb.transactions import TransactWrite

from chalicelib.db import keys
from chalicelib.db.orders import Order, OrderEntry
from chalicelib.domain import workflow
from chalicelib.domain.aging import attention_key
from chalicelib.domain.validation import fold, phone_digits

NAME_TOKENS = 4


def _dimensions(order: Order) -> list[tuple[str, str]]:
    """(dimension, sort key) of every list entry the order has in its owner's lists."""
    created = order.created_at.isoformat()
    tail = f"{created}#{order.order_id}"
    dims = [("ALL", tail), (f"STATUS#{order.status}", tail), (f"NUM#{order.number}", tail)]
    if workflow.is_open(order.status):
        service_day = date.fromisoformat(order.service_date) if order.service_date else None
        dims.append(("OPEN", f"{attention_key(order.created_at.date(), service_day)}#{tail}"))
    digits = phone_digits(order.customer_phone)
    if len(digits) >= 4:
        dims.append((f"PHONE#{digits[-8:]}", tail))
    for token in list(dict.fromkeys(fold(order.customer_name).split()))[:NAME_TOKENS]:
        dims.append(("NAME", f"{token}#{tail}"))
    if order.service_type:
        dims.append((f"TYPE#{fold(order.service_type)}", tail))
    if order.brand:
        dims.append((f"BRAND#{fold(order.brand)}", tail))
    if order.technician_id:
        dims.append((f"TECH#{order.technician_id}", tail))
    if order.rating:
        dims.append((f"RATING#{int(order.rating)}", tail))
    return dims


def entry_companies(order: Order) -> list[str]:
    """Companies whose lists show this order (the owner, and a partner executing it)."""
    return [c for c in dict.fromkeys([order.company_id, order.executor_id]) if c]


# Sparse date indexes of the daily aging job, carried only by the owner's OPEN
# entry: closing an order deletes that entry in the same transaction, so closed
# orders drop out of both indexes. gsi1: service date; gsi2: registration day.
def due_partition(day: str) -> str:
    return f"DUE#{day}"


def registered_partition(day: str) -> str:
    return f"REG#{day}"


def _aging_index(order: Order) -> dict[str, Any]:
    sort_key = f"{order.company_id}#{order.order_id}"
    index: dict[str, Any] = {
        "gsi2pk": registered_partition(order.created_at.date().isoformat()),
        "gsi2sk": sort_key,
    }
    if order.service_date:
        index.update(gsi1pk=due_partition(order.service_date), gsi1sk=sort_key)
    return index


def entries_for(order: Order | None) -> dict[tuple[str, str], OrderEntry]:
    if order is None:
        return {}
    found: dict[tuple[str, str], OrderEntry] = {}
    for company_id in entry_companies(order):
        for dimension, sort_key in _dimensions(order):
            pk = keys.order_entries(company_id, dimension)
            found[(pk, sort_key)] = OrderEntry(
                pk,
                sort_key,
                order_id=order.order_id,
                owner_id=order.company_id,
                number=order.number,
                status=order.status,
                customer_name=order.customer_name,
                customer_phone=order.customer_phone,
                service_type=order.service_type,
                brand=order.brand,
                service_date=order.service_date,
                technician_id=order.technician_id,
                technician_name=order.technician_name,
                created=order.created_at.isoformat(),
                rating=order.rating,
                owner_erased=True if order.owner_erased_at else None,
                f_name=fold(order.customer_name),
                f_type=fold(order.service_type),
                f_brand=fold(order.brand),
                phone_digits=phone_digits(order.customer_phone),
                **(
                    _aging_index(order)
                    if dimension == "OPEN" and company_id == order.company_id
                    else {}
                ),
            )
    return found


def write_entries(tx: TransactWrite, before: Order | None, after: Order) -> None:
    """Delete the entries ``before`` had and ``after`` has not; put ``after``'s."""
    old, new = entries_for(before), entries_for(after)
    for key in old.keys() - new.keys():
        tx.delete(OrderEntry(*key))
    for entry in new.values():
        tx.save(entry)

"""Bench tenants: a signed-in company with one of every resource and N orders, and the
staff GET pages to measure on it (`make bench`, `make cost`, tests/perf).

Importing this module changes no environment (tests/perf/bench.py sets the bench's).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


def _bulk_orders(company_id: str, first_number: int, count: int) -> None:
    """``count`` orders as the order transactions leave them: order, entries, history."""
    import random

    from chalicelib.db.base import Item
    from chalicelib.db.orders import Order, OrderEvent
    from chalicelib.services.orders import entries_for

    rng = random.Random(first_number)
    names = ["Ana Souza", "Bruno Lima", "Carla Dias", "Diego Alves", "Elena Ruiz"]
    now = datetime.now(UTC)
    start = now - timedelta(days=400)
    with Item.batch_write() as batch:
        for number in range(first_number, first_number + count):
            created = start + timedelta(minutes=113 * number)
            order_id = f"bulk{company_id[:6]}{number:06d}"
            order = Order(
                *Order.key(order_id),
                order_id=order_id,
                company_id=company_id,
                number=number,
                status=_status(rng, (now - created).days),
                customer_name=f"{rng.choice(names)} {number}",
                customer_phone=f"+55 11 9{rng.randrange(10**7, 10**8)}",
                service_type=f"Service {number % 17}",
                brand=f"Brand {number % 23}",
                created_at=created,
                created_by_name="bench",
                updated_at=created,
                updated_by_name="bench",
            )
            batch.save(order)
            batch.save(
                OrderEvent(
                    *OrderEvent.key(order_id, f"{created.isoformat()}#b{number}"),
                    kind="created",
                    at=created,
                    actor_name="bench",
                )
            )
            for entry in entries_for(order).values():
                batch.save(entry)


def _status(rng: object, age_days: int) -> str:
    """A shop's history: recent orders are often still open, old ones are closed."""
    if age_days < 45 and rng.random() < 0.6:  # type: ignore[attr-defined]
        return rng.choice(["registered", "scheduled", "in_progress"])  # type: ignore[attr-defined]
    return "cancelled" if rng.random() < 0.1 else "completed"  # type: ignore[attr-defined]


@dataclass
class Tenant:
    label: str
    orders: int
    tab: object
    made: dict[str, str]


def _tenant(client: object, label: str, orders: int) -> Tenant:
    """A signed-in admin's company with one of every resource, then ``orders`` orders in all."""
    from tests.web import test_tenant_isolation as isolation
    from tests.web.factories import ids_of, sign_up

    admin = sign_up(client, company_name=f"Bench {label}")
    other = sign_up(client, company_name=f"Bench other {label}")
    world = isolation.World(client=client, a_admin=admin, b_admin=other)
    made = {name: resource.create(world) for name, resource in isolation.RESOURCES.items()}
    made["other_company_id"] = ids_of(other)[0]
    company_id = ids_of(admin)[0]
    real = sum(1 for _ in _entries(company_id))
    if orders > real:
        _bulk_orders(company_id, real + 1, orders - real)
    return Tenant(label, orders, admin, made)


def _entries(company_id: str) -> Iterator[object]:
    from chalicelib.db import keys
    from chalicelib.db.base import Item

    yield from Item.query(keys.order_entries(company_id, "ALL"))


# Public routes that are a staff page for a signed-in visitor (the dashboard).
SIGNED_IN_PUBLIC = ["/"]
# Pages that need a query string to be the page (not a redirect or a 404).
PAGE_QUERY = {"/partners/propose": "?to={other_company_id}"}


def _staff_get_routes(app: object) -> list[str]:
    from chalicelib.web.context import PUBLIC

    found = list(SIGNED_IN_PUBLIC)
    for path, methods in app.routes.items():  # type: ignore[attr-defined]
        entry = methods.get("GET")
        auth = getattr(entry.view_function, "checkos_auth", None) if entry else None
        if auth not in (None, PUBLIC):
            found.append(path)
    return sorted(found)


def _url(path: str, made: dict[str, str]) -> str:
    import re

    return re.sub(r"{(\w+)\+?}", lambda m: made[m.group(1)], path + PAGE_QUERY.get(path, ""))

"""With 5,000 orders in the tenant, a list page of any filter stays within budget."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.db.base import Item
from chalicelib.db.orders import Order
from chalicelib.services import sessions
from chalicelib.services.orders import PAGE_SIZE, entries_for
from tests.service.factories import new_company
from tests.web.session import WebSession

ORDERS = 5_000
NAMES = ["Ana Souza", "Bruno Lima", "Carla Dias", "Diego Ramos", "Elena Ruiz", "Fábio Melo"]
TYPES = ["Screen", "Battery", "Boiler", "Washer", "Laptop", "Printer"]
BRANDS = ["Samsung", "Apple", "Bosch", "HP", "LG", "Dell"]
STATUSES = ["registered", "in_progress", "completed", "completed", "cancelled"]


@pytest.fixture(scope="module")
def big_tenant(aws):
    """A company with 5,000 orders' list entries (the items list pages read)."""
    account = new_company("Big Shop")
    rng = random.Random(7)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with Item.batch_write() as batch:
        for number in range(1, ORDERS + 1):
            created = start + timedelta(minutes=97 * number)
            order = Order(
                *Order.key(f"seed{number:05d}"),
                order_id=f"seed{number:05d}",
                company_id=account.company.company_id,
                number=number,
                status=rng.choice(STATUSES),
                customer_name=f"{rng.choice(NAMES)} {number}",
                customer_phone=f"+55 11 9{rng.randrange(10**7, 10**8)}",
                service_type=rng.choice(TYPES),
                brand=rng.choice(BRANDS),
                created_at=created,
                created_by_name="seed",
                updated_at=created,
                updated_by_name="seed",
            )
            for entry in entries_for(order).values():
                batch.save(entry)
    token = sessions.start_session(account.user.user_id, account.company.company_id)
    return account, token


QUERIES = [
    "",
    "view=all",
    "name=ana",
    "phone=11+9123",
    "brand=bosch",
    "service_type=battery&status=completed",
    "status=cancelled&date_from=2025-03-01&date_to=2025-06-30",
    "number=4321",
    "colour=red",
    "brand=apple&name=bruno",
]


@pytest.mark.parametrize("query", QUERIES)
def test_list_page_costs_three_requests_and_reads_a_page(client, big_tenant, budget, query):
    from chalicelib.web.context import _session_cookie

    account, token = big_tenant
    tab = WebSession(client)
    tab.cookies["sid"] = _session_cookie(token, account.user.user_id, account.company.company_id)
    with budget:
        response = tab.get(f"/orders?{query}")
    assert response.status_code == 200
    assert budget.dynamodb_requests <= 3, [c.operation for c in budget.dynamodb]
    assert budget.items_read_by_queries <= PAGE_SIZE + 1
    assert "Scan" not in [c.operation for c in budget.dynamodb]


def test_next_page_follows_the_cursor_without_repeating(client, big_tenant):
    from chalicelib.web.context import _session_cookie

    account, token = big_tenant
    tab = WebSession(client)
    tab.cookies["sid"] = _session_cookie(token, account.user.user_id, account.company.company_id)
    tab.get("/orders?view=all")
    first = set(_numbers(tab.text()))
    next_link = tab.text().split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    tab.get(next_link.replace("&amp;", "&"))
    second = set(_numbers(tab.text()))
    assert len(first) == PAGE_SIZE and len(second) == PAGE_SIZE
    assert not first & second
    assert max(second) < min(first)  # newest first


def _numbers(body: str) -> list[int]:
    import re

    return [int(n) for n in re.findall(r'class="order-number">#(\d+)<', body)]

"""The dashboard costs the same with 10 orders or 20,000: counters and open orders only.

Big tenants are seeded cheaply with exactly what the dashboard may read, the
``STAT#`` counters and the ``IX#OPEN`` entries, as the order transactions
would have left them (services/orders.py writes both inside every order
change). Anything else the page read would show up in the item count.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.db import keys
from chalicelib.db.base import Item
from chalicelib.db.orders import Order
from chalicelib.db.stats import Stat, week_of
from chalicelib.domain.validation import fold
from chalicelib.services import sessions
from chalicelib.services.orders import entries_for
from tests.service.factories import new_company
from tests.web.session import WebSession

TYPES = [f"Service type {n}" for n in range(40)]
BRANDS = [f"Brand {n}" for n in range(60)]


def _seed(orders: int, open_orders: int, weeks: int, kinds: int) -> tuple[object, int]:
    """A company whose counters say ``orders`` orders; returns (account, STAT# items)."""
    account = new_company(f"Tenant of {orders}")
    company_id = account.company.company_id
    rng = random.Random(orders)
    now = datetime.now(UTC)
    stats: list[Stat] = []
    per_type = [0] * kinds
    per_brand = [0] * kinds
    per_week: dict[str, list[int]] = {}
    for n in range(orders):
        per_type[n % kinds] += 1
        per_brand[rng.randrange(kinds)] += 1
        week = week_of(now - timedelta(weeks=rng.randrange(weeks)))
        counts = per_week.setdefault(week, [0, 0])
        counts[0] += 1
        counts[1] += n >= open_orders  # every order but the open ones was completed
    for names, counts, kind in ((TYPES, per_type, "TYPE"), (BRANDS, per_brand, "BRAND")):
        for name, count in zip(names, counts, strict=False):
            key = Stat.key(company_id, f"{kind}#{fold(name)}")
            stats.append(Stat(*key, label=name, count=count))
    for week, (registered, completed) in per_week.items():
        stats.append(
            Stat(*Stat.key(company_id, f"WEEK#{week}"), registered=registered, completed=completed)
        )
    stats.append(Stat(*Stat.key(company_id, "RATING"), total=4 * orders, count=orders))
    with Item.batch_write() as batch:
        for stat in stats:
            batch.save(stat)
        for n in range(open_orders):
            created = now - timedelta(days=rng.randrange(45), minutes=n)
            order = Order(
                *Order.key(f"open{orders}x{n}"),
                order_id=f"open{orders}x{n}",
                company_id=company_id,
                number=orders - n,
                status="registered",
                customer_name=f"Customer {n}",
                service_date=(now + timedelta(days=rng.randrange(-5, 6))).date().isoformat()
                if n % 3
                else None,
                created_at=created,
                created_by_name="seed",
                updated_at=created,
                updated_by_name="seed",
            )
            for (pk, _sk), entry in entries_for(order).items():
                if pk == keys.order_entries(company_id, "OPEN"):
                    batch.save(entry)
    return account, len(stats)


@pytest.fixture(scope="module")
def tenants(aws):
    small = _seed(orders=10, open_orders=4, weeks=3, kinds=3)
    big = _seed(orders=20_000, open_orders=300, weeks=104, kinds=40)
    return {"small": (*small, 4), "big": (*big, 300)}


def _dashboard(client, budget, account) -> tuple[str, object]:
    from chalicelib.web.context import _session_cookie

    user_id, company_id = account.user.user_id, account.company.company_id
    tab = WebSession(client)
    token = sessions.start_session(user_id, company_id)
    tab.cookies["sid"] = _session_cookie(token, user_id, company_id)
    with budget:
        response = tab.get("/")
    assert response.status_code == 200
    return tab.text(), budget


def test_the_dashboard_costs_the_same_for_10_and_for_20000_orders(client, tenants):
    from tests.conftest import Budget

    requests = {}
    for name, (account, stat_items, open_orders) in tenants.items():
        body, budget = _dashboard(client, Budget(), account)
        operations = sorted(c.operation for c in budget.dynamodb)
        assert operations == ["BatchGetItem", "Query", "Query"], name
        # Items read: the open orders and the chart points, nothing per order of history.
        assert budget.items_read_by_queries == open_orders + stat_items, name
        assert f'id="open-orders">{open_orders}<' in body
        assert "Example data" not in body
        requests[name] = len(operations)
    assert requests["small"] == requests["big"] <= 4


def test_a_big_tenants_charts_show_its_top_ten_and_twelve_weeks(client, tenants, budget):
    account, _stats, _open = tenants["big"]
    body, _ = _dashboard(client, budget, account)
    assert body.count('<g class="column-group">') == 12
    types_svg = body.split('id="types-svg"')[1].split("</svg>")[0]
    assert types_svg.count('<g class="bar-row">') == 10
    assert 'id="rating">4.0 ' in body
    assert budget.items_read_by_queries < 1_000  # 20,000 orders behind it

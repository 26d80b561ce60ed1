"""`make run DEMO=1` seeds a living product: one company, its team and orders of every age."""

from __future__ import annotations

from chalicelib.db.accounts import Login
from chalicelib.services import orders
from chalicelib.services.orders import OrderFilters
from infra.demo import DEMO_EMAIL, seed_demo


def test_demo_seed_creates_a_company_with_varied_orders(aws):
    message = seed_demo()
    assert DEMO_EMAIL in message
    login = Login.get(*Login.key(DEMO_EMAIL))
    page = orders.list_orders(login.company_id, OrderFilters(view="all"), page_size=50)
    assert [e.number for e in page.entries] == list(range(24, 0, -1))
    statuses = {e.status for e in page.entries}
    assert {"registered", "in_progress", "completed"} <= statuses
    ages = {e.created[:10] for e in page.entries}
    assert len(ages) > 5  # spread over several weeks

"""Parallel order writes against a ThreadedMotoServer (real concurrent HTTP requests)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from chalicelib.services import orders
from chalicelib.services.orders import EditConflict, OrderFilters, QuotaExceeded
from chalicelib.services.orders import changes as order_changes
from tests.service.factories import new_company, order_form, staff_actor


def test_twenty_parallel_registrations_get_twenty_consecutive_numbers(aws):
    account = new_company()
    actor = staff_actor(account)
    with ThreadPoolExecutor(max_workers=20) as pool:
        made = list(
            pool.map(
                lambda i: orders.register_order(
                    account.company, actor, order_form(customer_name=f"Customer {i}"), {}
                ),
                range(20),
            )
        )
    assert sorted(o.number for o in made) == list(range(1, 21))
    page = orders.list_orders(account.company.company_id, OrderFilters(view="all"), page_size=50)
    assert sorted(e.number for e in page.entries) == list(range(1, 21))
    assert orders.usage_this_month(account.company.company_id) == 20


def test_two_parallel_edits_one_wins_one_gets_the_conflict(aws, monkeypatch):
    """Both edits read the same version before either writes: only the transaction's
    version condition can refuse the second (a sequential run would be refused by the
    read check instead, and prove nothing about the write)."""
    account = new_company()
    actor = staff_actor(account)
    order = orders.register_order(account.company, actor, order_form(), {})
    both_read = threading.Barrier(2, timeout=20)
    writes: list[int] = []
    save_change = order_changes.save_change

    def write_after_both_read(*args, **kwargs):
        both_read.wait()  # BrokenBarrierError if the other edit never got this far
        writes.append(kwargs["expected_version"])
        return save_change(*args, **kwargs)

    monkeypatch.setattr(order_changes, "save_change", write_after_both_read)

    def edit(problem: str) -> str:
        form = order_form(version=str(order.version), problem=problem)
        try:
            orders.edit_order(account.company, order.order_id, actor, form, {})
            return "saved"
        except EditConflict:
            return "conflict"

    for round_ in range(5):  # several rounds: the race must never let both through
        current = orders.order_view(account.company.company_id, order.order_id).order
        order.version = current.version
        writes.clear()
        both_read.reset()
        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = sorted(pool.map(edit, [f"Edit A{round_}", f"Edit B{round_}"]))
        assert writes == [current.version] * 2, "both edits must reach the write"
        assert outcomes == ["conflict", "saved"]
        stored = orders.order_view(account.company.company_id, order.order_id).order
        assert stored.version == current.version + 1
        assert stored.problem in {f"Edit A{round_}", f"Edit B{round_}"}


def test_parallel_registrations_never_exceed_the_quota(aws):
    account = new_company(monthly_quota=5)
    actor = staff_actor(account)

    def attempt(_: int) -> str:
        try:
            orders.register_order(account.company, actor, order_form(), {})
            return "ok"
        except QuotaExceeded:
            return "quota"

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(attempt, range(12)))
    assert outcomes.count("ok") == 5
    assert orders.usage_this_month(account.company.company_id) == 5
    page = orders.list_orders(account.company.company_id, OrderFilters(view="all"), page_size=50)
    assert sorted(e.number for e in page.entries) == [1, 2, 3, 4, 5]

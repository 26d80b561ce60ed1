"""The order-event seam: reactions in the change's transaction, and after its commit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from chalicelib.db import keys
from chalicelib.db.base import Item
from chalicelib.db.orders import Order, OrderEvent
from chalicelib.db.stats import Stat
from chalicelib.domain.errors import Conflict
from chalicelib.services import order_events, orders
from chalicelib.services.order_events import Check, OrderChange, Save
from tests.service.factories import new_company, order_form, staff_actor

Subscribe = Callable[..., None]


class Refused(Conflict):
    key = "order.busy"


@pytest.fixture
def subscribe() -> Iterator[Subscribe]:
    """Test-local subscribers, removed again after the test."""
    names: list[str] = []

    def add(when: str, name: str, handler: Callable, kinds: tuple[str, ...] | None = None) -> None:
        if when == "in transaction":
            order_events.subscribe_in_transaction(name, handler, kinds)
        else:
            order_events.subscribe_after_commit(name, handler, kinds)
        names.append(name)

    yield add
    for name in names:
        order_events.unsubscribe(name)


def _stored(order_id: str) -> Order:
    return Order.get(*Order.key(order_id), consistent_read=True)


def _events(order_id: str) -> list[tuple[str, str]]:
    found = Item.query(keys.order(order_id), Item.sk.startswith("EVENT#"), consistent_read=True)
    return [(e.kind, e.note or "") for e in found if isinstance(e, OrderEvent)]


def _counters(company_id: str) -> dict[str, dict]:
    found = Item.query(keys.company(company_id), Item.sk.startswith("STAT#"), consistent_read=True)
    return {s.sk: s.attribute_values for s in found if isinstance(s, Stat)}


def _existing(wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(i.pk, i.sk) for i in Item.batch_get(list(wanted), consistent_read=True)}


def test_a_failing_after_commit_subscriber_leaves_the_change_saved_logs_and_records_it(
    aws, subscribe, caplog
):
    account = new_company()
    actor, company_id = staff_actor(account), account.company.company_id
    order = orders.register_order(account.company, actor, order_form(), {})
    seen: list[OrderChange] = []

    def breaks(change: OrderChange) -> None:
        seen.append(change)
        raise RuntimeError("the webhook endpoint is down")

    subscribe("after commit", "test: breaks", breaks, kinds=("status",))
    with caplog.at_level(logging.ERROR, logger="checkos.order_events"):
        moved, _event = orders.change_status(company_id, order.order_id, actor, "start")

    stored = _stored(order.order_id)
    assert (stored.status, stored.version) == ("in_progress", order.version + 1)
    assert moved.version == stored.version
    assert [(c.kind, c.after.order_id, c.before.status) for c in seen] == [
        ("status", order.order_id, "registered")
    ]
    history = _events(order.order_id)
    assert ("status", "") in history  # the change itself, as committed
    assert ("reaction_failed", "test: breaks") in history  # recorded for retry
    failures = [r for r in caplog.records if r.getMessage().startswith("order reaction failed")]
    assert len(failures) == 1
    record = failures[0]
    assert (record.order, record.event_kind, record.subscriber) == (
        order.order_id,
        "status",
        "test: breaks",
    )
    assert record.exc_info is not None and "webhook endpoint is down" in str(record.exc_info[1])
    assert order.order_id in record.getMessage()  # the JSON log line has no extras: say it


def test_a_subscribers_failing_transaction_item_fails_the_whole_change(aws, subscribe):
    account = new_company()
    actor, company_id = staff_actor(account), account.company.company_id
    order = orders.register_order(account.company, actor, order_form(), {})
    orders.change_status(company_id, order.order_id, actor, "start")
    before = _stored(order.order_id)
    history, counters = _events(order.order_id), _counters(company_id)
    entries_before = set(orders.entries_for(before))
    would_be = orders.snapshot(before)
    would_be.status = "completed"
    entries_new = set(orders.entries_for(would_be)) - entries_before
    assert entries_new and _existing(entries_before) == entries_before
    missing = Item(keys.company(company_id), "TEST#never-there")

    def refuses(change: OrderChange) -> list:
        return [Check(missing, Item.pk.exists(), problem=Refused())]

    subscribe("in transaction", "test: refuses", refuses, kinds=("status",))
    with pytest.raises(Refused):
        orders.change_status(company_id, order.order_id, actor, "complete")

    after = _stored(order.order_id)
    assert (after.status, after.version) == ("in_progress", before.version)
    assert _events(order.order_id) == history  # no event
    assert _counters(company_id) == counters  # no counter moved (completed this week)
    assert _existing(entries_before) == entries_before  # old entries kept...
    assert _existing(entries_new) == set()  # ...and no new one written


def test_a_subscribers_transaction_item_commits_with_the_change(aws, subscribe):
    account = new_company()
    actor, company_id = staff_actor(account), account.company.company_id
    order = orders.register_order(account.company, actor, order_form(), {})

    def audit(change: OrderChange) -> list:
        line = Stat(*Stat.key(company_id, f"TEST#{change.event.sk}"), label=change.kind)
        return [Save(line, condition=Stat.pk.does_not_exist())]

    subscribe("in transaction", "test: audit", audit)
    moved, event = orders.change_status(company_id, order.order_id, actor, "start")

    saved = Stat.get(*Stat.key(company_id, f"TEST#{event.sk}"), consistent_read=True)
    assert (saved.label, _stored(order.order_id).version) == ("status", moved.version)


def test_registration_is_published_with_the_company_that_registered(aws, subscribe):
    account = new_company()
    seen: list[OrderChange] = []
    subscribe("after commit", "test: sees", seen.append, kinds=("created",))
    order = orders.register_order(account.company, staff_actor(account), order_form(), {})
    assert [(c.kind, c.before, c.after.order_id) for c in seen] == [
        ("created", None, order.order_id)
    ]
    assert seen[0].company is account.company

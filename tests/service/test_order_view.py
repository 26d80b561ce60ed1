"""orders.order_view: who may read an order, and the one partnership read it costs the executor.

The owner reads its order without any partnership read; the executor of a shared order
reads its own side of the partnership with the owner exactly once (through the caller's
``link_reader`` when given, ``link_of`` otherwise), and the page gets that link to show
what the partner may do. An id that names no order is "not found", never a crash.
"""

from __future__ import annotations

import pytest

from chalicelib.db.orders import Order
from chalicelib.db.partners import Partnership
from chalicelib.domain.errors import NotFound
from chalicelib.domain.sharing import SUSPENDED
from chalicelib.services import orders
from tests.service.factories import executor_link, new_company, order_form, staff_actor


def _shared_order() -> tuple[str, str, str]:
    """(owner id, executor id, order id) of an open order the owner shared with the executor."""
    owner, executor = new_company("Acme Repairs"), new_company("Bolt Fixers")
    order = orders.register_order(owner.company, staff_actor(owner), order_form(), {})
    stored = Order.get(*Order.key(order.order_id), consistent_read=True)
    stored.update(actions=[Order.executor_id.set(executor.company.company_id)])
    return owner.company.company_id, executor.company.company_id, order.order_id


class Reader:
    """A ``link_reader`` that answers ``link`` and remembers who asked."""

    def __init__(self, link: Partnership | None) -> None:
        self.link = link
        self.calls: list[tuple[str, str]] = []

    def __call__(self, company_id: str, owner_id: str) -> Partnership | None:
        self.calls.append((company_id, owner_id))
        return self.link


def test_an_id_that_names_no_order_is_not_found(aws):
    company = new_company()
    with pytest.raises(NotFound):
        orders.order_view(company.company.company_id, "0" * 16)


def test_the_owner_reads_its_shared_order_without_reading_a_partnership(aws):
    owner_id, executor_id, order_id = _shared_order()
    reader = Reader(executor_link(executor_id, owner_id))
    view = orders.order_view(owner_id, order_id, link_reader=reader)
    assert reader.calls == []
    assert view.link is None
    assert view.access.role == "owner" and view.access.visible


def test_the_executor_reads_its_side_of_the_partnership_once_and_the_page_gets_it(aws):
    owner_id, executor_id, order_id = _shared_order()
    link = executor_link(executor_id, owner_id, state=SUSPENDED)
    reader = Reader(link)
    view = orders.order_view(executor_id, order_id, link_reader=reader)
    assert reader.calls == [(executor_id, owner_id)]
    assert view.link is link
    assert view.access.role == "executor" and view.access.visible
    assert not view.access.can_act  # suspended: read-only


def test_without_a_reader_the_executor_s_link_is_read_from_the_table(aws):
    owner_id, executor_id, order_id = _shared_order()
    executor_link(executor_id, owner_id).save()
    view = orders.order_view(executor_id, order_id)
    assert view.link is not None
    assert (view.link.pk, view.link.sk) == Partnership.key(executor_id, owner_id)
    assert view.access.can_act


def test_an_executor_with_no_partnership_does_not_see_an_open_order(aws):
    owner_id, executor_id, order_id = _shared_order()
    reader = Reader(None)
    with pytest.raises(NotFound):
        orders.order_view(executor_id, order_id, link_reader=reader)
    assert reader.calls == [(executor_id, owner_id)]

"""orders.access.partner_guard: the executing partner's writes, where no page stands between.

A shared order whose partnership vanished between reading the order and the write (a
deletion racing it) is refused naming the order's owner, never a crash; the owner passes
as itself with no extra checks.
"""

from __future__ import annotations

import pytest

from chalicelib.db.orders import Order
from chalicelib.domain.sharing import PartnershipNotActive
from chalicelib.services.orders import Actor, access

OWNER_ID, EXECUTOR_ID = "a" * 16, "b" * 16


def _shared_order() -> Order:
    return Order(
        *Order.key("1" * 16),
        order_id="1" * 16,
        company_id=OWNER_ID,
        executor_id=EXECUTOR_ID,
        owner_name="Acme Repairs",
        status="registered",
    )


def test_an_executor_whose_partnership_is_gone_is_refused_naming_the_owner(aws):
    with pytest.raises(PartnershipNotActive) as refused:
        access.partner_guard(_shared_order(), EXECUTOR_ID, Actor(name="Bo"), "start")
    assert refused.value.params == {"partner": "Acme Repairs"}


def test_the_owner_passes_as_itself_with_no_checks(aws):
    actor = Actor(name="Ann")
    assert access.partner_guard(_shared_order(), OWNER_ID, actor, "cancel") == (actor, [])

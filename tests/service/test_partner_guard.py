"""orders.access.partner_guard: the executing partner's writes, where no page stands between.

A shared order whose partnership vanished between reading the order and the write (a
deletion racing it) is refused naming the order's owner, never a crash; the owner passes
as itself with no extra checks.
"""

from __future__ import annotations

import secrets

import pytest
from pynamodb.exceptions import TransactWriteError

from chalicelib.db.accounts import Company
from chalicelib.db.base import transaction
from chalicelib.db.orders import Order
from chalicelib.db.partners import Partnership
from chalicelib.domain.sharing import ACTIVE, SUSPENDED, CompanyInactive, PartnershipNotActive
from chalicelib.services.orders import Actor, access
from chalicelib.services.orders.access import OwnerOnly
from tests.service.factories import executor_link

OWNER_ID, EXECUTOR_ID = "a" * 16, "b" * 16
# The table is shared by the module's tests (in random order): the test that stores a
# partnership uses an executor of its own, so the others still see none.
LINKED_EXECUTOR_ID = "c" * 16


def _shared_order(executor_id: str = EXECUTOR_ID) -> Order:
    return Order(
        *Order.key("1" * 16),
        order_id="1" * 16,
        company_id=OWNER_ID,
        executor_id=executor_id,
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


def test_the_write_carries_the_links_condition_naming_the_partner_as_the_link_knows_it(aws):
    """If a suspension lands between this check and the write, the refusal names the partner."""
    executor_link(LINKED_EXECUTOR_ID, OWNER_ID, owner_name="Acme Repairs Ltd").save()
    actor, checks = access.partner_guard(
        _shared_order(LINKED_EXECUTOR_ID), LINKED_EXECUTOR_ID, Actor(name="Bo"), "start"
    )
    assert actor.kind == "partner"
    (link, _condition, refusal), (company, _active, inactive) = checks
    assert (link.pk, link.sk) == Partnership.key(LINKED_EXECUTOR_ID, OWNER_ID)
    assert isinstance(refusal, PartnershipNotActive)
    assert refusal.params == {"partner": "Acme Repairs Ltd"}
    assert (company.pk, company.sk) == Company.key(LINKED_EXECUTOR_ID)
    assert isinstance(inactive, CompanyInactive)


def test_what_only_the_owner_decides_is_refused_naming_the_owner():
    access.require_owner(_shared_order(), OWNER_ID)  # the owner decides
    with pytest.raises(OwnerOnly) as refused:
        access.require_owner(_shared_order(), EXECUTOR_ID)
    assert refused.value.params == {"owner": "Acme Repairs"}


@pytest.mark.parametrize(
    ("state", "we_execute", "we_approve", "role", "holds"),
    [
        (ACTIVE, True, False, "execute", True),
        (ACTIVE, False, True, "execute", False),  # changed to approve-only meanwhile
        (SUSPENDED, True, False, "execute", False),
        (ACTIVE, False, True, "approve", True),
        (ACTIVE, True, False, "approve", False),
        (SUSPENDED, False, True, "approve", False),
    ],
)
def test_the_links_condition_holds_only_while_active_in_the_role(
    aws, state, we_execute, we_approve, role, holds
):
    """What the write's transaction checks, should the link change after the guard read it."""
    company_id = secrets.token_hex(8)
    executor_link(
        company_id, OWNER_ID, state=state, we_execute=we_execute, we_approve=we_approve
    ).save()
    item, condition, refusal = access.link_check(company_id, OWNER_ID, role, "Acme Repairs")
    assert isinstance(refusal, PartnershipNotActive)
    try:
        with transaction() as tx:
            tx.condition_check(Partnership, item.pk, item.sk, condition=condition)
    except TransactWriteError:
        held = False
    else:
        held = True
    assert held is holds

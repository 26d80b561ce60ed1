"""The one rule of who sees which fields of an order (chalicelib/domain/visibility.py)."""

from __future__ import annotations

import pytest

from chalicelib.db.orders import Order
from chalicelib.domain import visibility
from chalicelib.domain.visibility import order_access

OWNER, PARTNER, STRANGER = "owner0001", "partner01", "stranger1"


def test_every_stored_order_field_is_classified():
    stored = {
        name for name in Order.get_attributes() if name not in ("pk", "sk", "type", "expires_at")
    }
    stored -= {n for n in stored if n.startswith("gsi")}
    assert stored == visibility.ALL_FIELDS, "classify new Order fields in domain/visibility.py"


def test_the_owner_sees_everything_but_the_link_secret():
    access = order_access(OWNER, PARTNER, "registered", OWNER)
    assert access.visible and access.can_act and access.exportable
    assert {"internal_notes", "custom"} <= access.fields
    assert "access_hash" not in access.fields


@pytest.mark.parametrize("state", ["active", "suspended", None, "disabled", "proposed"])
@pytest.mark.parametrize("status", ["registered", "in_progress", "completed", "cancelled"])
def test_the_executor_never_gets_the_owners_internal_fields(state, status):
    access = order_access(OWNER, PARTNER, status, PARTNER, state)
    assert not (access.fields & visibility.OWNER_ONLY_FIELDS)
    assert "access_hash" not in access.fields


def test_an_active_executor_reads_acts_and_exports():
    access = order_access(OWNER, PARTNER, "scheduled", PARTNER, "active")
    assert (access.visible, access.can_act, access.exportable) == (True, True, True)


def test_a_suspended_executor_reads_the_open_order_but_neither_acts_nor_exports_it():
    access = order_access(OWNER, PARTNER, "in_progress", PARTNER, "suspended")
    assert (access.visible, access.can_act, access.exportable) == (True, False, False)
    done = order_access(OWNER, PARTNER, "completed", PARTNER, "suspended")
    assert (done.visible, done.can_act, done.exportable) == (True, False, True)


@pytest.mark.parametrize("state", ["disabled", None])
def test_after_a_deletion_open_orders_vanish_and_completed_ones_stay_read_only(state):
    assert order_access(OWNER, PARTNER, "registered", PARTNER, state) == visibility.NO_ACCESS
    done = order_access(OWNER, PARTNER, "completed", PARTNER, state)
    assert (done.visible, done.can_act, done.exportable) == (True, False, True)


def test_an_order_whose_owner_was_erased_stays_with_its_executor_read_only():
    access = order_access(OWNER, PARTNER, "registered", PARTNER, "disabled", owner_erased=True)
    assert (access.visible, access.can_act) == (True, False)


def test_anyone_else_gets_nothing():
    assert order_access(OWNER, PARTNER, "registered", STRANGER, "active") == visibility.NO_ACCESS
    assert order_access(OWNER, None, "registered", PARTNER, "active") == visibility.NO_ACCESS
    assert order_access(OWNER, PARTNER, "registered", None) == visibility.NO_ACCESS


def test_the_customer_gets_only_customer_facing_fields():
    fields = visibility.customer_access().fields
    assert not fields & {"internal_notes", "custom", "access_hash", "estimated_value"}
    assert not fields & {"technician_name", "created_by_name", "quote_value", "quote_text"}

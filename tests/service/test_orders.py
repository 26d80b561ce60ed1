"""Order registration, edits with optimistic locking, workflow and search."""

from __future__ import annotations

import pytest

from chalicelib.db.accounts import CustomField
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.workflow import InvalidTransition
from chalicelib.services import orders
from chalicelib.services.orders import EditConflict, OrderFilters, QuotaExceeded
from tests.service.factories import new_company, order_form, staff_actor


def test_orders_get_consecutive_numbers_per_company(aws):
    first, second = new_company(), new_company()
    numbers = [
        orders.register_order(first.company, staff_actor(first), order_form(), {}).number
        for _ in range(3)
    ]
    other = orders.register_order(second.company, staff_actor(second), order_form(), {})
    assert numbers == [1, 2, 3]
    assert other.number == 1


def test_required_custom_field_is_checked_with_the_standard_ones(aws):
    account = new_company()
    account.company.custom_fields = [
        CustomField(field_id="imei", label="IMEI", kind="text", required=True),
        CustomField(field_id="colour", label="Colour", kind="choice", options=["Black"]),
    ]
    with pytest.raises(ValidationFailed) as problem:
        orders.register_order(
            account.company,
            staff_actor(account),
            order_form(customer_name="", cf_colour="Pink"),
            {},
        )
    assert set(problem.value.errors) == {"customer_name", "cf_imei", "cf_colour"}


def test_second_edit_with_a_stale_version_is_refused(aws):
    account = new_company()
    actor = staff_actor(account)
    order = orders.register_order(account.company, actor, order_form(), {})
    form = order_form(version=str(order.version), problem="Screen and battery")
    orders.edit_order(account.company, order.order_id, actor, form, {})
    with pytest.raises(EditConflict) as conflict:
        orders.edit_order(
            account.company, order.order_id, actor, {**form, "problem": "Only battery"}, {}
        )
    assert conflict.value.params["who"] == actor.name
    view = orders.order_view(account.company.company_id, order.order_id)
    assert view.order.problem == "Screen and battery"


def test_workflow_moves_forward_reopens_and_refuses_invalid_moves(aws):
    account = new_company()
    actor = staff_actor(account)
    order = orders.register_order(account.company, actor, order_form(), {})
    cid = account.company.company_id
    with pytest.raises(InvalidTransition):
        orders.change_status(cid, order.order_id, actor, "complete")
    for action in ("start", "complete", "reopen", "start", "complete"):
        orders.change_status(cid, order.order_id, actor, action)
    view = orders.order_view(cid, order.order_id)
    assert view.order.status == "completed"
    moves = [(e.from_status, e.to_status) for e in sorted(view.events, key=lambda e: e.sk)]
    assert moves[1:] == [
        ("registered", "in_progress"),
        ("in_progress", "completed"),
        ("completed", "registered"),
        ("registered", "in_progress"),
        ("in_progress", "completed"),
    ]


def test_cancel_needs_a_reason(aws):
    account = new_company()
    actor = staff_actor(account)
    order = orders.register_order(account.company, actor, order_form(), {})
    with pytest.raises(ValidationFailed):
        orders.change_status(account.company.company_id, order.order_id, actor, "cancel")


def test_quota_is_never_exceeded_and_nothing_is_half_created(aws):
    account = new_company(monthly_quota=2)
    actor = staff_actor(account)
    assert orders.usage_this_month(account.company.company_id) == 0  # nothing this month yet
    for _ in range(2):
        orders.register_order(account.company, actor, order_form(), {})
    with pytest.raises(QuotaExceeded):
        orders.register_order(account.company, actor, order_form(), {})
    page = orders.list_orders(account.company.company_id, OrderFilters(view="all"))
    assert [e.number for e in page.entries] == [2, 1]
    assert orders.usage_this_month(account.company.company_id) == 2


def test_phone_search_ignores_formatting(aws):
    account = new_company()
    actor = staff_actor(account)
    orders.register_order(
        account.company, actor, order_form(customer_phone="+55 (11) 91234-5678"), {}
    )
    orders.register_order(account.company, actor, order_form(customer_phone="21 5555 0000"), {})
    found = orders.list_orders(
        account.company.company_id, OrderFilters.from_query({"phone": "11912345678"})
    )
    assert [e.customer_phone for e in found.entries] == ["+55 (11) 91234-5678"]


def test_name_search_is_prefix_case_and_accent_insensitive(aws):
    account = new_company()
    actor = staff_actor(account)
    orders.register_order(account.company, actor, order_form(customer_name="José Álvarez"), {})
    orders.register_order(account.company, actor, order_form(customer_name="Joana Prado"), {})
    for query, expected in (("jose", ["José Álvarez"]), ("ALV", ["José Álvarez"]), ("jo", 2)):
        found = orders.list_orders(
            account.company.company_id, OrderFilters.from_query({"name": query})
        )
        names = [e.customer_name for e in found.entries]
        assert names == expected if isinstance(expected, list) else len(names) == expected


def test_filters_combine(aws):
    account = new_company()
    actor = staff_actor(account)
    cid = account.company.company_id
    samsung = orders.register_order(account.company, actor, order_form(brand="Samsung"), {})
    orders.register_order(account.company, actor, order_form(brand="Apple"), {})
    orders.change_status(cid, samsung.order_id, actor, "start")
    found = orders.list_orders(
        cid, OrderFilters.from_query({"brand": "samsung", "status": "in_progress"})
    )
    assert [e.number for e in found.entries] == [samsung.number]
    none = orders.list_orders(
        cid, OrderFilters.from_query({"brand": "apple", "status": "in_progress"})
    )
    assert none.entries == []


def test_another_company_cannot_read_an_order(aws):
    owner, stranger = new_company(), new_company()
    order = orders.register_order(owner.company, staff_actor(owner), order_form(), {})
    from chalicelib.domain.errors import NotFound

    with pytest.raises(NotFound):
        orders.order_view(stranger.company.company_id, order.order_id)

"""Shared orders: assign and withdraw the executor, quotes, hand-back after a deletion."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import replace

from pynamodb.exceptions import DoesNotExist

from chalicelib.db import keys
from chalicelib.db.base import query_page
from chalicelib.db.orders import Order, OrderEntry
from chalicelib.domain import workflow
from chalicelib.domain.errors import Conflict, NotFound, ValidationFailed
from chalicelib.domain.sharing import ACTIVE, ExecutorOnly, PartnershipNotActive
from chalicelib.domain.validation import Checker
from chalicelib.services import notifications, orders
from chalicelib.services.companies import require_active
from chalicelib.services.order_events import OrderChange
from chalicelib.services.orders.access import link_check, partner_guard
from chalicelib.services.orders.changes import EditConflict
from chalicelib.services.orders.history import Actor
from chalicelib.services.partners.links import DELETE_ATTEMPTS, own_side
from chalicelib.services.sessions import Principal, now

log = logging.getLogger("checkos.partners")


RETURN_PAGE = 100  # list entries read per Query when handing orders back after a deletion


QUOTE_TEXT_MAX = 2000


def _open_order(company_id: str, order_id: str, version: str | int | None) -> Order:
    order = orders.order_view(company_id, order_id).order
    expect_order(order, version)
    if not workflow.is_open(order.status):
        raise Conflict("partners.order_closed")
    return order


def actor_of(principal: Principal, kind: str = "staff") -> Actor:
    return Actor(
        name=principal.user.name,
        kind=kind,
        user_id=principal.user_id,
        company_id=principal.company_id,
    )


def clear_quote(order: Order) -> None:
    """Forget the order's quote (public: erasure hands orders back as "take back" does)."""
    order.quote_state = order.quote_value = order.quote_text = None
    order.quote_at = None


def assign_executor(
    principal: Principal, order_id: str, partner_id: str, version: str | int | None
) -> Order:
    """Share an open order with an active partner that executes what we approve."""
    me = principal.company
    require_active(me)
    order = _open_order(me.company_id, order_id, version)
    orders.require_owner(order, me.company_id)
    try:
        link = own_side(me.company_id, partner_id)
    except NotFound:
        raise ValidationFailed({"partner_id": ("form.bad_choice", {})}) from None
    if link.state != ACTIVE or not link.we_approve:
        raise PartnershipNotActive(partner=link.partner_name)
    if order.executor_id == partner_id:
        return order
    before = orders.snapshot(order)
    order.executor_id, order.executor_name, order.owner_name = (
        partner_id,
        link.partner_name,
        me.name,
    )
    order.quote_required = bool(link.quote_required)
    clear_quote(order)
    event = orders.new_event(order, actor_of(principal), "shared", now(), note=link.partner_name)
    orders.save_change(
        before,
        order,
        event,
        expected_version=int(order.version or 0),
        checks=[link_check(me.company_id, partner_id, "approve", link.partner_name)],
        company=me,
    )
    return order


def withdraw_executor(principal: Principal, order_id: str, version: str | int | None) -> Order:
    """Take a shared order back (any time, whatever the partnership's state)."""
    me = principal.company
    require_active(me)
    order = orders.order_view(me.company_id, order_id).order
    orders.require_owner(order, me.company_id)
    expect_order(order, version)
    former, name = order.executor_id, order.executor_name
    if former is None:
        return order
    before = orders.snapshot(order)
    order.executor_id = order.executor_name = None
    order.quote_required = False
    clear_quote(order)
    event = orders.new_event(order, actor_of(principal), "unshared", now(), note=name)
    orders.save_change(before, order, event, expected_version=int(order.version or 0), company=me)
    return order


def expect_order(order: Order, version: str | int | None) -> None:
    """The form was read at ``version``: a newer order must be seen first (no lost update)."""
    try:
        seen = int(version) if version not in (None, "") else None
    except (TypeError, ValueError):
        seen = -1
    if seen is not None and seen != order.version:
        raise EditConflict(who=order.updated_by_name, when=order.updated_at)


def send_quote(
    principal: Principal, order_id: str, form: Mapping[str, str], locale: str = "en"
) -> Order:
    """The executor quotes value + description; the owner approves or rejects it."""
    me = principal.company
    require_active(me)
    order = _open_order(me.company_id, order_id, form.get("version"))
    if order.company_id == me.company_id or order.executor_id != me.company_id:
        raise ExecutorOnly()
    if order.quote_state == "approved":
        raise Conflict("partners.quote_already_approved")
    check = Checker(form)
    value = orders.check_decimal(check, "quote_value", required=True, locale=locale)
    text = check.text("quote_text", max_len=QUOTE_TEXT_MAX, multiline=True)
    check.done()
    actor, checks = partner_guard(order, me.company_id, actor_of(principal), "quote")
    before = orders.snapshot(order)
    at = now()
    order.quote_state, order.quote_value, order.quote_text, order.quote_at = (
        "pending",
        value,
        text,
        at,
    )
    note = f"{value}" + (f" · {text}" if text else "")
    event = orders.new_event(order, actor, "quote", at, note=note[:1000])
    orders.save_change(
        before, order, event, expected_version=int(order.version or 0), checks=checks, company=me
    )
    return order


def decide_quote(principal: Principal, order_id: str, form: Mapping[str, str]) -> Order:
    """The owner approves or rejects the pending quote (while the link is active)."""
    me = principal.company
    require_active(me)
    order = _open_order(me.company_id, order_id, form.get("version"))
    orders.require_owner(order, me.company_id)
    decision = form.get("decision", "")
    if decision not in ("approve", "reject"):
        raise ValidationFailed({"decision": ("form.bad_choice", {})})
    if order.quote_state != "pending" or not order.executor_id:
        raise Conflict("partners.no_pending_quote")
    link = own_side(me.company_id, order.executor_id)
    if link.state != ACTIVE:
        raise PartnershipNotActive(partner=link.partner_name)
    before = orders.snapshot(order)
    order.quote_state = "approved" if decision == "approve" else "rejected"
    kind = "quote_approved" if decision == "approve" else "quote_rejected"
    event = orders.new_event(order, actor_of(principal), kind, now(), note=order.quote_value)
    orders.save_change(
        before,
        order,
        event,
        expected_version=int(order.version or 0),
        checks=[link_check(me.company_id, order.executor_id, "approve", link.partner_name)],
        company=me,
    )
    return order


def _open_orders_executed(executor_id: str, owner_id: str) -> Iterator[str]:
    """Ids of the open orders ``executor_id`` executes for ``owner_id``.

    The executor's OPEN list (its sparse index of open orders), a page of
    RETURN_PAGE items per Query, filtered on the owner: items read ∝ the
    executor's open orders, never a table-wide read.
    """
    cursor: str | None = None
    while True:
        items, cursor = query_page(
            keys.order_entries(executor_id, "OPEN"),
            filter_condition=OrderEntry.owner_id == owner_id,
            page_size=RETURN_PAGE,
            start_sk=cursor,
            consistent=True,
        )
        yield from [e.order_id for e in items if isinstance(e, OrderEntry)]
        if cursor is None:
            return


def hand_back_open_orders(principal: Principal, partner_id: str) -> int:
    """After a deletion: every open order one side executed for the other returns to its owner.

    Both directions (a "both" partnership shares orders each way). Each order
    gets a ``returned`` history event and its owner's users a notification;
    closed orders stay with their executor, read-only (domain/visibility.py).
    Returns how many orders went back.
    """
    me = principal.company
    returned = 0
    for owner_id, executor_id in ((me.company_id, partner_id), (partner_id, me.company_id)):
        kind = "staff" if owner_id == me.company_id else "partner"
        actor = replace(actor_of(principal), kind=kind)
        for order_id in list(_open_orders_executed(executor_id, owner_id)):
            if _return_order(order_id, owner_id, executor_id, actor):
                returned += 1
    return returned


def _return_order(order_id: str, owner_id: str, executor_id: str, actor: Actor) -> bool:
    for _attempt in range(DELETE_ATTEMPTS):
        try:
            order = Order.get(*Order.key(order_id), consistent_read=True)
        except DoesNotExist:
            return False
        if (
            order.company_id != owner_id
            or order.executor_id != executor_id
            or not workflow.is_open(order.status)
        ):
            return False  # already back, given to someone else, or closed meanwhile
        name = order.executor_name or ""
        before = orders.snapshot(order)
        order.executor_id = order.executor_name = None
        order.quote_required = False
        clear_quote(order)
        event = orders.new_event(order, actor, "returned", now(), note=name)
        try:
            orders.save_change(before, order, event, expected_version=int(order.version or 0))
        except EditConflict:
            continue  # changed meanwhile: read again
        return True  # its owner hears of it: notify_partners
    log.warning("order not handed back", extra={"order": order_id})
    return False


def notify_partners(change: OrderChange) -> None:
    """After-commit subscriber (``chalicelib/wiring.py``, its kinds there): the other
    company of a shared order hears of its sharing, its quotes and its hand-back.

    The use cases of this module pass the company that acted (``save_change``'s
    ``company``): its name is what the other side reads. A change without it (the
    erasure of a company hands its orders back as the system and tells the owner
    itself) is left alone, but for ``returned``, which names the former executor.
    """
    order, before, me = change.after, change.before, change.company
    if change.kind == "returned":
        notifications.notify_company(
            order.company_id,
            "order_returned",
            order_id=order.order_id,
            order_number=order.number,
            params={"partner": (before.executor_name if before else None) or ""},
        )
        return
    if me is None:
        return
    if change.kind == "unshared":
        former = before.executor_id if before else None
        if former:
            notifications.notify_company(former, "partnership", params={"partner": me.name})
        return
    target = order.company_id if change.kind == "quote" else order.executor_id
    if target:
        notifications.notify_company(
            target,
            "partnership",
            order_id=order.order_id,
            order_number=order.number,
            params={"partner": me.name},
        )

"""Who sees and changes an order: owner, executing partner (its link), hidden fields."""

from __future__ import annotations

from dataclasses import replace

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import Condition

from chalicelib.db import keys
from chalicelib.db.accounts import Company
from chalicelib.db.base import Item
from chalicelib.db.orders import Order
from chalicelib.db.partners import Partnership
from chalicelib.domain import sharing, visibility
from chalicelib.domain.errors import AppError, Forbidden, NotFound
from chalicelib.services.orders.history import Actor, snapshot


class OwnerOnly(Forbidden):
    """The partner executing a shared order may not change the owner's order details."""

    key = "partners.owner_only"


def can_view(order: Order, company_id: str) -> bool:
    """Only a first filter: ``access_for`` decides (the executor's partnership state)."""
    return company_id in (order.company_id, order.executor_id)


def link_of(company_id: str, owner_id: str) -> Partnership | None:
    """The executor's side of its partnership with the owner: one GetItem."""
    try:
        return Partnership.get(*Partnership.key(company_id, owner_id), consistent_read=True)
    except DoesNotExist:
        return None


def access_for(order: Order, company_id: str, link: Partnership | None = None) -> visibility.Access:
    """``visibility.order_access`` for a company, given its link with the owner."""
    return visibility.order_access(
        order.company_id,
        order.executor_id,
        order.status,
        company_id,
        link.state if link is not None else None,
        owner_erased=order.owner_erased_at is not None,
    )


def links_of(company_id: str) -> dict[str, Partnership]:
    """Our side of every partnership, by partner id: one Query (exports, archives)."""
    found = Item.query(keys.company(company_id), Item.sk.startswith("PARTNER#"))
    return {p.partner_id: p for p in found if isinstance(p, Partnership)}


def shown(order: Order, access: visibility.Access) -> Order:
    """A detached copy carrying only the fields ``access`` allows (the rest blank)."""
    copy = snapshot(order)
    for name in visibility.ALL_FIELDS - access.fields:
        if name == "custom":
            copy.custom = {}
        elif name in ("company_id", "order_id", "number", "status"):
            continue  # keys every view needs; never hidden by the rule
        else:
            setattr(copy, name, _hidden_value(name))
    return copy


def _hidden_value(name: str) -> object:
    attribute = Order.get_attributes()[name]
    if attribute.null:
        return None
    default = attribute.default
    return default() if callable(default) else default


def load_order(company_id: str, order_id: str) -> Order:
    """The order alone (one GetItem), for changes that need no history; foreign: not found.

    An executor's access also follows its partnership with the owner (one more
    GetItem, executors only): after a deletion its open orders do not exist for it.
    """
    try:
        order = Order.get(*Order.key(order_id))
    except DoesNotExist:
        raise NotFound() from None
    if not can_view(order, company_id):
        raise NotFound()
    if company_id != order.company_id:
        link = link_of(company_id, order.company_id)
        if not access_for(order, company_id, link).visible:
            raise NotFound()
    return order


def require_owner(order: Order, company_id: str) -> None:
    if order.company_id != company_id:
        raise OwnerOnly(owner=order.owner_name or "")


def link_check(
    company_id: str, partner_id: str, role: str, partner_name: str
) -> tuple[Item, Condition, AppError]:
    """A transaction condition: our link with ``partner_id`` is active and lets us play
    ``role`` ("execute" or "approve"); PartnershipNotActive when it fails."""
    flag = Partnership.we_execute if role == "execute" else Partnership.we_approve
    return (
        Partnership(*Partnership.key(company_id, partner_id)),
        (Partnership.state == sharing.ACTIVE) & (flag == True),  # noqa: E712 - a DynamoDB condition
        sharing.PartnershipNotActive(partner=partner_name),
    )


def active_check(company_id: str) -> tuple[Item, Condition, AppError]:
    """A transaction condition: the company is active (CompanyInactive when it fails)."""
    return (
        Company(*Company.key(company_id)),
        Company.status == "active",
        sharing.CompanyInactive(),
    )


def partner_guard(
    order: Order, company_id: str, actor: Actor, action: str
) -> tuple[Actor, list[tuple[Item, Condition, AppError]]]:
    """Writes by the partner executing a shared order follow the partnership's rules.

    The owner passes as it is. For the executor: its link with the owner (one
    GetItem) goes through ``domain.sharing.executor_guard``, which refuses what only
    the owner decides, anything while the link is not active, and starting before
    an approved quote when the partnership requires one. Returns the actor as the
    history shows it (kind "partner") and the condition checks the write's
    transaction must carry (the link still active, the company still active).
    """
    if company_id == order.company_id:
        return actor, []
    if order.executor_id != company_id:
        raise NotFound()
    link = link_of(company_id, order.company_id)
    allowed = sharing.executor_guard(
        action,
        owner_name=order.owner_name or "",
        quote_required=bool(order.quote_required),
        quote_state=order.quote_state,
        link=None
        if link is None
        else sharing.ExecutorLink(
            state=str(link.state),
            we_execute=bool(link.we_execute),
            partner_name=str(link.partner_name),
        ),
    )
    checks = [
        link_check(company_id, order.company_id, "execute", allowed.partner_name),
        active_check(company_id),
    ]
    return replace(actor, kind="partner"), checks

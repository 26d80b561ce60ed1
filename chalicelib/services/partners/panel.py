"""The order page's sharing panel: what it shows and allows one company, and its reads."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from chalicelib.db.accounts import Company
from chalicelib.db.orders import Order
from chalicelib.db.overlap import start
from chalicelib.db.partners import Partnership
from chalicelib.domain import workflow
from chalicelib.domain.sharing import ACTIVE, EXECUTOR_ACTIONS, NEEDS_APPROVED_QUOTE
from chalicelib.services import orders
from chalicelib.services.partners.links import active_executors, overview


@dataclass
class OrderPanel:
    """What the order page shows and allows about sharing, for one company."""

    side: str  # owner | executor
    order: Order
    company_active: bool
    link: Partnership | None = None  # our side of the partnership with the other company
    candidates: list[Partnership] = field(default_factory=list)

    @property
    def is_owner(self) -> bool:
        return self.side == "owner"

    @property
    def link_active(self) -> bool:
        return self.link is not None and self.link.state == ACTIVE

    @property
    def can_act(self) -> bool:
        """The executor may work on the order (active link where it executes)."""
        if self.is_owner:
            return self.company_active
        return self.company_active and self.link_active and bool(self.link and self.link.we_execute)

    @property
    def quote_missing(self) -> bool:
        return bool(self.order.quote_required) and self.order.quote_state != "approved"

    def actions(self, available: list[str]) -> list[str]:
        if self.is_owner:
            return available
        if not self.can_act:
            return []
        return [
            a
            for a in available
            if a in EXECUTOR_ACTIONS and not (a in NEEDS_APPROVED_QUOTE and self.quote_missing)
        ]

    @property
    def is_open(self) -> bool:
        return workflow.is_open(self.order.status)

    @property
    def can_quote(self) -> bool:
        return (
            not self.is_owner
            and self.can_act
            and self.is_open
            and self.order.quote_state != "approved"
        )

    @property
    def can_decide(self) -> bool:
        return (
            self.is_owner
            and self.company_active
            and self.is_open
            and self.order.quote_state == "pending"
            and self.link_active
        )

    @property
    def choices(self) -> list[Partnership]:
        return [p for p in self.candidates if p.partner_id != self.order.executor_id]

    @property
    def can_assign(self) -> bool:
        return self.is_owner and self.company_active and self.is_open and bool(self.choices)

    @property
    def can_chat(self) -> bool:
        return self.can_act

    @property
    def visible(self) -> bool:
        return bool(self.order.executor_id) or self.can_assign


def order_panel(
    company: Company,
    order: Order,
    executor_link: Partnership | None = None,
    mine: list[Partnership] | None = None,
) -> OrderPanel:
    """At most one request: our partnerships (owner), unless ``mine`` brings them; the
    executor's link comes with the order's view (``orders.order_view`` read it to decide
    the access)."""
    if order.company_id != company.company_id:
        return OrderPanel("executor", order, company.active, link=executor_link)
    panel = OrderPanel("owner", order, company.active)
    if not workflow.is_open(order.status) and not order.executor_id:
        return panel  # nothing to share or decide: no request
    if mine is None:
        mine = overview(company.company_id).partnerships
    panel.candidates = active_executors(mine)
    panel.link = next((p for p in mine if p.partner_id == order.executor_id), None)
    return panel


def order_page(
    company: Company,
    order_id: str,
    *,
    events_before: str | None = None,
    messages_before: str | None = None,
) -> tuple[orders.OrderView, OrderPanel]:
    """The order page's reads: the order's view and our partnerships go out together
    (``db/overlap.py``), one round trip after the session instead of two.

    The partnerships are read even where the panel needs none (a closed order never
    shared): half a read unit for a round trip less on every open order. An executor's
    link with the owner is the one among them (no GetItem of its own). Nothing is
    shown before ``order_view`` has decided this company may see the order.
    """
    coming = start(lambda: overview(company.company_id).partnerships)

    def link_with(company_id: str, owner_id: str) -> Partnership | None:
        return next((p for p in coming() if p.partner_id == owner_id), None)

    try:
        view = orders.order_view(
            company.company_id,
            order_id,
            events_before=events_before,
            messages_before=messages_before,
            link_reader=link_with,
        )
    except BaseException:
        with contextlib.suppress(Exception):
            coming()  # no read outlives its request
        raise
    return view, order_panel(company, view.order, view.link, mine=coming())

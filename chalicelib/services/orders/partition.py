"""An order's page: the order with a page of its history and of its chat, signed cursors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from pynamodb.expressions.condition import Condition

from chalicelib import signing_keys
from chalicelib.db import keys
from chalicelib.db.base import Item, query_page
from chalicelib.db.orders import Order, OrderEvent, OrderMessage
from chalicelib.db.overlap import together
from chalicelib.db.partners import Partnership
from chalicelib.domain import visibility
from chalicelib.domain.errors import NotFound
from chalicelib.services.orders.access import access_for, can_view, link_of, shown


@dataclass
class OrderView:
    """The order with the newest page (or an older page) of its history and of its chat.

    ``events`` and ``messages`` are oldest first; ``older_*`` are the signed cursors of
    the next older page (None: nothing older), ``*_paged`` say an older page is shown.
    ``order`` is as stored (what writes start from) and never rendered as it is:
    pages show ``shown``, the fields ``access`` allows this viewer.
    """

    order: Order
    events: list[OrderEvent] = field(default_factory=list)
    messages: list[OrderMessage] = field(default_factory=list)
    extras: list[Item] = field(default_factory=list)
    older_events: str | None = None
    older_messages: str | None = None
    events_paged: bool = False
    messages_paged: bool = False
    access: visibility.Access = visibility.NO_ACCESS
    # The viewer's side of its partnership with the owner (executors only).
    link: Partnership | None = None

    @property
    def shown(self) -> Order:
        """The order as this viewer may see it (pages, print): owner-only fields blanked."""
        return shown(self.order, self.access)


def order_view(
    company_id: str,
    order_id: str,
    *,
    events_before: str | None = None,
    messages_before: str | None = None,
    link_reader: Callable[[str, str], Partnership | None] | None = None,
) -> OrderView:
    """Order, newest history and newest chat: two Queries reading at most a page each.

    ``*_before`` are cursors from an "older" link; one that is not a valid cursor of
    this order, for this company, shows the newest page. Another company's order is
    "not found". ``link_reader`` reads an executor's partnership with the owner
    (``link_of`` unless the caller already has the company's partnerships coming).
    """
    scope = f"{company_id}:{order_id}"
    # Strongly consistent: every write (register, edit, status, chat) redirects here,
    # and an eventually consistent read may not show it yet (twice the read units of
    # at most two pages of one partition).
    view = read_partition(
        order_id,
        events_before=read_cursor(scope, events_before, EVENT_PREFIX),
        messages_before=read_cursor(scope, messages_before, MESSAGE_PREFIX),
        consistent=True,
    )
    if view is None or not can_view(view.order, company_id):
        raise NotFound()
    # The executor of a shared order also reads its partnership with the owner (one
    # GetItem): a deleted link hides the open orders, a suspended one leaves them
    # read-only (``visibility.order_access``).
    order = view.order
    read_link = link_reader or link_of
    link = read_link(company_id, order.company_id) if company_id != order.company_id else None
    view.access = access_for(order, company_id, link)
    view.link = link
    if not view.access.visible:
        raise NotFound()
    view.older_events = sign_cursor(scope, view.older_events)
    view.older_messages = sign_cursor(scope, view.older_messages)
    return view


EVENT_PREFIX = "EVENT#"


MESSAGE_PREFIX = "MSG#"


RATING_SK = "RATING"


HISTORY_PAGE = 50  # history lines and chat messages an order page shows at once


_CURSOR_SK = re.compile(r"^(EVENT|MSG)#[0-9A-Za-z:.+#-]{10,80}$")


def sign_cursor(scope: str, sk: str | None) -> str | None:
    """An "older" link's cursor: the sort key, bound to who reads which order (HMAC)."""
    if sk is None:
        return None
    raw = sk.encode()
    mac = hmac.new(_cursor_key(), scope.encode() + b"|" + raw, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")


def read_cursor(scope: str, cursor: str | None, prefix: str) -> str | None:
    """The sort key behind a cursor signed for ``scope``; None when it is not one."""
    if not cursor or len(cursor) > 200:
        return None
    try:
        data = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (ValueError, TypeError):
        return None
    mac, raw = data[:12], data[12:]
    signed = scope.encode() + b"|" + raw
    if not any(
        hmac.compare_digest(mac, hmac.new(key, signed, hashlib.sha256).digest()[:12])
        for key in _cursor_keys()
    ):
        return None
    sk = raw.decode(errors="replace")
    return sk if sk.startswith(prefix) and _CURSOR_SK.match(sk) else None


def _cursor_key() -> bytes:
    return _cursor_keys()[0]


def _cursor_keys() -> tuple[bytes, ...]:
    return tuple(
        hashlib.sha256(b"order-cursor|" + key.encode()).digest() for key in signing_keys.accepted()
    )


def read_partition(
    order_id: str,
    *,
    events_before: str | None = None,
    messages_before: str | None = None,
    consistent: bool = False,
    page: int = HISTORY_PAGE,
) -> OrderView | None:
    """The order and a page of its history and chat (cursors are plain sort keys here).

    Newest pages: two Queries. An older page of either side reads that side from its
    cursor, and the order (or the rating) with one more GetItem/BatchGetItem.
    None when the order does not exist.
    """
    partition = keys.order(order_id)
    anchors: dict[str, Item] = {}
    # The two sides need nothing from each other: one round trip (``db/overlap.py``).
    (events, older_events), (messages, older_messages) = together(
        lambda: _side(
            partition, Item.sk <= Order.SK, EVENT_PREFIX, events_before, page, consistent, anchors
        ),
        lambda: _side(
            partition,
            Item.sk >= MESSAGE_PREFIX,
            MESSAGE_PREFIX,
            messages_before,
            page,
            consistent,
            anchors,
        ),
    )
    paged = ((Order.SK, events_before), (RATING_SK, messages_before))
    missing = [sk for sk, cursor in paged if cursor]
    if missing:
        for item in Item.batch_get([(partition, sk) for sk in missing], consistent_read=consistent):
            anchors[item.sk] = item
    order = anchors.pop(Order.SK, None)
    if not isinstance(order, Order):
        return None
    return OrderView(
        order=order,
        events=[e for e in events if isinstance(e, OrderEvent)],
        messages=[m for m in messages if isinstance(m, OrderMessage)],
        extras=list(anchors.values()),
        older_events=older_events,
        older_messages=older_messages,
        events_paged=events_before is not None,
        messages_paged=messages_before is not None,
    )


def _side(
    partition: str,
    newest: Condition,
    prefix: str,
    before: str | None,
    page: int,
    consistent: bool,
    anchors: dict[str, Item],
) -> tuple[list[Item], str | None]:
    """One Query, newest first: ``page`` items of ``prefix`` (oldest first) and the cursor
    of the next older page. Without a cursor the Query starts at the anchor (the order,
    the rating) and keeps what is not of ``prefix`` in ``anchors``."""
    if before is None:
        found, _next = query_page(
            partition,
            range_key_condition=newest,
            page_size=page + 2,  # the anchor, and one more to know whether older ones exist
            forward=False,
            consistent=consistent,
        )
    else:
        found, _next = query_page(
            partition,
            range_key_condition=Item.sk.startswith(prefix),
            page_size=page + 1,
            forward=False,
            start_sk=before,
            consistent=consistent,
        )
    items: list[Item] = []
    for item in found:
        if item.sk.startswith(prefix):
            items.append(item)
        elif before is None:
            anchors[item.sk] = item
    older = items[page - 1].sk if len(items) > page else None
    return items[:page][::-1], older

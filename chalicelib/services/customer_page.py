"""The customer's private order page, opened by its link: timeline, chat, rating, mail on or off."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pynamodb.exceptions import DoesNotExist

from chalicelib.db.accounts import Company
from chalicelib.db.customers import CustomerAccess, OrderRating
from chalicelib.db.orders import Order, OrderEvent, OrderMessage
from chalicelib.domain import limits, visibility, workflow
from chalicelib.domain.errors import Conflict, Forbidden, NotFound
from chalicelib.domain.tokens import token_hash
from chalicelib.domain.validation import Checker
from chalicelib.services import customers, delivery, limiter, notifications, orders
from chalicelib.services.customers import MAX_COMMENT, RATING_CHANGE_DAYS
from chalicelib.services.order_events import OrderChange
from chalicelib.services.orders import Actor, EditConflict
from chalicelib.services.sessions import now

# Customer-link chat (anyone holding the link can write, no sign-in): per link's
# order and per client IP, so a leaked or scripted link cannot flood the order's
# partition, the staff's notifications or the order page. Declared in domain/limits.py.
CHAT_WINDOW = limits.rate_limit("customer-chat", "order").window
CHAT_LIMIT_ORDER = limits.rate_limit("customer-chat", "order").maximum
CHAT_LIMIT_IP = limits.rate_limit("customer-chat", "ip").maximum

OPT_EVENTS = ("unsubscribed", "resubscribed")
BAD_RATING_STARS = 2  # a rating of at most this many stars tells the staff at once
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


class CompanyNotReachable(Forbidden):
    key = "customer.company_inactive"


class RatingNotYet(Conflict):
    key = "customer.rating.not_completed"


class RatingLocked(Conflict):
    key = "customer.rating.locked"


# -- the customer's page -------------------------------------------------------


@dataclass(frozen=True)
class CompanyContact:
    name: str
    phone: str
    email: str
    public_path: str
    logo_path: str | None


@dataclass(frozen=True)
class Step:
    at: datetime
    status: str
    note: str


@dataclass(frozen=True)
class ChatLine:
    at: datetime
    author: str
    kind: str
    text: str


@dataclass
class CustomerView:
    """Only what the customer may see: never internal notes, staff-only events or ids."""

    order_id: str
    company_id: str
    number: int
    status: str
    customer_name: str
    service_type: str
    equipment: str
    service_date: str | None
    service_time: str | None
    cancel_reason: str | None
    version: int
    company: CompanyContact
    timeline: list[Step] = field(default_factory=list)
    chat: list[ChatLine] = field(default_factory=list)
    rating: OrderRating | None = None
    rating_until: datetime | None = None
    # Paging of the timeline and the chat ("older" links, signed for this link).
    older_events: str | None = None
    older_messages: str | None = None
    events_paged: bool = False
    messages_paged: bool = False
    # The customer stopped this company's order e-mails (the latest opt-out line in history).
    mail_stopped: bool = False
    # The company's IANA zone: every time on the page is shown in it.
    zone: str = "UTC"

    @property
    def can_rate(self) -> bool:
        return self.status == workflow.COMPLETED and (
            self.rating is None or (self.rating_until is not None and now() < self.rating_until)
        )


def _access(token: str) -> CustomerAccess:
    """The live ACCESS item behind ``token``; anything else is the plain 404 page."""
    if not _TOKEN.match(token or ""):
        raise NotFound()
    try:
        access = CustomerAccess.get(*CustomerAccess.key(token_hash(token)), consistent_read=True)
    except DoesNotExist:
        raise NotFound() from None
    # TTL deletion lags by up to days: expiry is checked here too.
    if access.expires_at is None or access.expires_at <= now():
        raise NotFound()
    return access


def _load(
    token: str, events_before: str | None = None, messages_before: str | None = None
) -> tuple[CustomerAccess, CustomerView, Order, OrderRating | None]:
    """GetItem ACCESS + two Queries of a page each (orders.read_partition): the customer page.

    ``*_before`` are cursors of an "older" link, signed for this very link.
    """
    access = _access(token)
    scope = f"link:{token_hash(token)}"
    view = orders.read_partition(
        access.order_id,
        events_before=orders.read_cursor(scope, events_before, orders.EVENT_PREFIX),
        messages_before=orders.read_cursor(scope, messages_before, orders.MESSAGE_PREFIX),
        consistent=True,
    )
    order = view.order if view is not None else None
    # The order must still point at this very link: a replaced or revoked
    # link is dead even if its item somehow survived.
    if (
        view is None
        or order is None
        or order.company_id != access.company_id
        or order.access_hash != token_hash(token)
    ):
        raise NotFound()
    rating = next((x for x in view.extras if isinstance(x, OrderRating)), None)
    page = _customer_view(access, order, view.events, view.messages, rating)
    page.older_events = orders.sign_cursor(scope, view.older_events)
    page.older_messages = orders.sign_cursor(scope, view.older_messages)
    page.events_paged, page.messages_paged = view.events_paged, view.messages_paged
    return access, page, order, rating


def _customer_view(
    access: CustomerAccess,
    order: Order,
    events: list[OrderEvent],
    messages: list[OrderMessage],
    rating: OrderRating | None,
) -> CustomerView:
    timeline = [
        Step(
            at=e.at,
            status=e.to_status or workflow.REGISTERED,
            # Only a cancellation's reason is for the customer (it is e-mailed too).
            note=e.note if e.to_status == workflow.CANCELLED else "",
        )
        for e in events
        if e.kind in ("created", "status")
    ]
    choices = [e.kind for e in sorted(events, key=lambda e: e.sk) if e.kind in OPT_EVENTS]
    logo = None
    if access.company_logo_key:
        logo = f"/logo/{access.company_id}/{access.company_logo_key.rsplit('/', 1)[-1]}"
    order = orders.shown(order, visibility.customer_access())  # domain/visibility.py
    return CustomerView(
        order_id=order.order_id,
        company_id=order.company_id,
        number=int(order.number),
        status=order.status,
        customer_name=order.customer_name,
        service_type=order.service_type,
        equipment=" ".join(p for p in (order.brand, order.model) if p),
        service_date=order.service_date,
        service_time=order.service_time,
        cancel_reason=order.cancel_reason,
        version=int(order.version or 0),
        company=CompanyContact(
            name=access.company_name,
            phone=access.company_phone,
            email=access.company_email,
            public_path=f"/c/{access.company_slug}" if access.company_slug else "",
            logo_path=logo,
        ),
        timeline=timeline,
        chat=[ChatLine(m.at, m.author_name, m.author_kind, m.text) for m in messages],
        rating=rating,
        mail_stopped=bool(choices) and choices[-1] == "unsubscribed",
        zone=access.company_time_zone,
        rating_until=(rating.first_rated_at + timedelta(days=RATING_CHANGE_DAYS))
        if rating
        else None,
    )


def customer_page(
    token: str, events_before: str | None = None, messages_before: str | None = None
) -> CustomerView:
    """What ``/o/<token>`` shows: 3 requests (GetItem ACCESS, two Queries of a page each)."""
    return _load(token, events_before, messages_before)[1]


def _reachable_company(company_id: str) -> Company:
    try:
        company = Company.get(*Company.key(company_id))
    except DoesNotExist:
        raise NotFound() from None
    if not company.active:
        raise CompanyNotReachable()
    return company


def customer_message(token: str, text: str, ip: str = "") -> None:
    """The customer writes in the order's chat; staff are told (technician, else everyone).

    Rate-limited per order (the link) and per client IP (``limiter.LimitReached``).
    """
    _access_item, view, order, _rating = _load(token)
    _reachable_company(order.company_id)
    actor = Actor(name=order.customer_name, kind="customer")
    orders.check_message(text)  # a message that cannot be sent does not count
    limiter.count("customer-chat", order=order.order_id, ip=ip or None)
    orders.append_message(order.order_id, actor, text)
    params = {"author": order.customer_name}
    if order.technician_id:
        notifications.notify(
            order.company_id,
            [order.technician_id],
            "chat_message",
            order_id=order.order_id,
            order_number=view.number,
            params=params,
        )
    else:
        notifications.notify_company(
            order.company_id,
            "chat_message",
            order_id=order.order_id,
            order_number=view.number,
            params=params,
        )


def check_rating(form: Mapping[str, str]) -> tuple[int, str]:
    check = Checker(form)
    stars = check.choice("stars", ("1", "2", "3", "4", "5"))
    if "stars" in check.errors:
        check.errors["stars"] = ("customer.rating.stars_required", {})
    comment = check.text("comment", max_len=MAX_COMMENT, multiline=True)
    check.done()
    return int(stars), comment


def rate_order(token: str, form: Mapping[str, str]) -> int:
    """The customer rates a completed order, or changes the rating within 7 days of the first."""
    stars, comment = check_rating(form)
    for _attempt in range(3):
        _access_item, view, order, previous = _load(token)
        if order.status != workflow.COMPLETED:
            raise RatingNotYet()
        if previous is not None:
            if view.rating_until is None or now() >= view.rating_until:
                raise RatingLocked()
            if int(previous.stars) == stars and previous.comment == comment:
                return stars  # the same rating twice (a double click): nothing to change
        _reachable_company(order.company_id)
        try:
            orders.rate(
                order, Actor(name=order.customer_name, kind="customer"), stars, comment, previous
            )
        except EditConflict:
            continue  # staff changed the order a moment ago: read it again
        return stars  # a low rating reaches the staff through note_bad_rating
    raise Conflict("customer.busy")


def note_bad_rating(change: OrderChange) -> None:
    """After a rating is saved (order event ``rated``): 1 or 2 stars tell the staff in-app."""
    order = change.after
    stars = int(order.rating or 0)
    if change.event.kind != "rated" or not 1 <= stars <= BAD_RATING_STARS:
        return
    notifications.notify_company(
        order.company_id,
        "bad_rating",
        order_id=order.order_id,
        order_number=int(order.number),
        params={"stars": str(stars)},
        dedupe_key=f"rating-{order.order_id}-{stars}",
    )


def resubscribe(token: str) -> None:
    """From the private link page: the order e-mails start again (recorded in history)."""
    _access_item, _view, order, _rating = _load(token)
    if not order.customer_email:
        return
    delivery.opt_in(order.company_id, order.customer_email)
    orders.record_event(
        order.order_id,
        Actor(name=order.customer_name, kind="customer"),
        "resubscribed",
        delivery.address_key(order.customer_email),
    )


def stop_mail_from_page(token: str) -> None:
    """From the private link page: the same opt-out as the e-mailed link."""
    _access_item, _view, order, _rating = _load(token)
    if order.customer_email:
        opt_out = delivery.opt_out_token(order.company_id, order.order_id, order.customer_email)
        customers.unsubscribe(opt_out)

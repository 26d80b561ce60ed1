"""Customer follow-up: e-mails, the private order link and page, chat, rating, "follow" form.

The customer is never a user: a 256-bit token e-mailed to them, stored only
as its SHA-256 in ``ACCESS#<hash>``, opens one order and nothing else.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib.aws.mail import MailNotSent, MailSuppressed
from chalicelib.config import get_settings
from chalicelib.db import keys
from chalicelib.db.accounts import Company
from chalicelib.db.base import query_page, transaction
from chalicelib.db.customers import CustomerAccess, OrderRating
from chalicelib.db.orders import Order, OrderEntry, OrderEvent, OrderMessage
from chalicelib.domain import limits, visibility, workflow
from chalicelib.domain.errors import AppError, Conflict, Forbidden, NotFound
from chalicelib.domain.tokens import new_token, token_hash
from chalicelib.domain.validation import Checker
from chalicelib.i18n import LOCALES, translate
from chalicelib.services import companies, delivery, limiter, mailer, notifications, orders
from chalicelib.services.logos import logo_url
from chalicelib.services.orders import Actor, EditConflict, OrderView
from chalicelib.services.sessions import now

log = logging.getLogger("checkos.customers")

# A link lives while the order is open (refreshed on every status change) and
# for a while after it closes: enough to read the outcome and rate it.
LINK_DAYS_OPEN = 180
LINK_DAYS_AFTER_CLOSE = 60
RATING_CHANGE_DAYS = 7
MAX_COMMENT = 1000
# The follow form: per IP and per company, in fixed windows; a matched order
# is sent at most a few links per window so nobody can flood its customer.
# Declared in domain/limits.py; these names are views of it (help pages, tests).
FOLLOW_WINDOW = limits.rate_limit("follow", "ip").window
FOLLOW_LIMIT_IP = limits.rate_limit("follow", "ip").maximum
FOLLOW_LIMIT_COMPANY = limits.rate_limit("follow", "company").maximum
FOLLOW_LIMIT_ORDER = limits.rate_limit("follow", "order").maximum
# Customer-link chat (anyone holding the link can write, no sign-in): per link's
# order and per client IP, so a leaked or scripted link cannot flood the order's
# partition, the staff's notifications or the order page. Declared in domain/limits.py.
CHAT_WINDOW = limits.rate_limit("customer-chat", "order").window
CHAT_LIMIT_ORDER = limits.rate_limit("customer-chat", "order").maximum
CHAT_LIMIT_IP = limits.rate_limit("customer-chat", "ip").maximum
# Every accepted follow request answers after the same time, whether an order
# matched (lookup + link + SES) or not, so timing tells nothing either.
FOLLOW_ANSWER_SECONDS = 0.8

SYSTEM = Actor(name="CheckOS", kind="system")
OPT_EVENTS = ("unsubscribed", "resubscribed")
# History lines about the customer's e-mails; the latest decides what staff see.
# "mail_bounced": SES reported a bounce or complaint for a mail about this order.
MAIL_EVENTS = (
    "mail",
    "mail_failed",
    "mail_skipped",
    "mail_bounced",
    "unsubscribed",
    "resubscribed",
)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)

ACCESS_TEMPLATE = "customer_access"
# Status an order moved to -> the e-mail telling its customer.
STATUS_TEMPLATES: dict[str, str] = {
    workflow.SCHEDULED: "customer_scheduled",
    workflow.IN_PROGRESS: "customer_started",
    workflow.COMPLETED: "customer_completed",
    workflow.CANCELLED: "customer_cancelled",
    workflow.REGISTERED: "customer_reopened",
}

# Follow snippet look: a small palette (CSS classes, no inline styles).
ACCENTS: tuple[str, ...] = ("blue", "green", "teal", "purple", "orange", "red", "graphite")
WIDTH_RANGE = (280, 1000)
HEIGHT_RANGE = (260, 900)
DEFAULT_WIDTH, DEFAULT_HEIGHT = 420, 380
MAX_BUTTON, MAX_INTRO = 40, 240


class CompanyNotReachable(Forbidden):
    key = "customer.company_inactive"


class RatingNotYet(Conflict):
    key = "customer.rating.not_completed"


class RatingLocked(Conflict):
    key = "customer.rating.locked"


class MailOff(AppError):
    """Customer e-mails are off for this order; ``key`` says why."""

    status = 409


# -- when and why mail goes out ---------------------------------------------


def mail_off_reason(company: Company, order: Order) -> str | None:
    """Why no customer e-mail can go out for this order (catalogue key), or None."""
    if not company.email_validated:
        return "customer.off.unvalidated"
    if not order.customer_email:
        return "customer.off.no_email"
    return None


def _template_for(order: Order, event: OrderEvent) -> str | None:
    if event.kind == "created":
        # Intake orders get their link from the intake flow once the requester
        # confirms (send_access_link); staff registrations get it right away.
        return None if order.source == "intake" else ACCESS_TEMPLATE
    if event.kind == "status" and event.to_status:
        return STATUS_TEMPLATES.get(event.to_status)
    return None


def link_expiry(status: str, at: datetime) -> datetime:
    days = LINK_DAYS_OPEN if workflow.is_open(status) else LINK_DAYS_AFTER_CLOSE
    return at + timedelta(days=days)


def order_changed(company: Company | None, order: Order, event: OrderEvent) -> None:
    """After a committed order change: tell the customer when it concerns them.

    Never raises: the change is saved, and a mail problem is recorded on the
    order (``mail_failed``) for staff to see and retry.
    """
    try:
        template = _template_for(order, event)
        if template is None or not order.customer_email:
            if order.access_hash and event.kind == "status":
                _touch_link(order, None)
            return
        if company is None:
            company = Company.get(*Company.key(order.company_id))
        if mail_off_reason(company, order):
            if order.access_hash:
                _touch_link(order, None)
            return
        _mail(company, order, template, None)
    except Exception:  # the order change is committed; never turn it into an error page
        log.exception("customer follow-up failed", extra={"order": order.order_id})


def send_access_link(company: Company, order: Order, locale: str | None = None) -> None:
    """Create a fresh private link (the previous one stops working) and e-mail it.

    Records ``mail`` or ``mail_failed`` on the order; sends nothing when the
    company e-mail is not validated or the order has no customer e-mail.
    """
    if mail_off_reason(company, order):
        return
    _mail(company, order, ACCESS_TEMPLATE, locale)


def _mail(
    company: Company, order: Order, template: str, locale: str | None, *, refuse: bool = False
) -> bool:
    """E-mail the customer (counted: customer-mail limits); False when it did not go out.

    At a limit the mail is not sent and the order's history says why; with
    ``refuse`` (a person asked for it) the LimitReached is raised instead.
    """
    try:
        limiter.count(
            "customer-mail",
            company=company.company_id,
            recipient=order.customer_email,
            ip=limiter.request_ip(),
        )
    except limiter.LimitReached as problem:
        if refuse:
            raise
        log.warning("customer mail over its limit", extra={"order": order.order_id})
        note = f"{order.customer_email}: {translate(company.locale, problem.key, **problem.params)}"
        orders.record_event(order.order_id, SYSTEM, "mail_failed", note)
        return False
    link: str | None = None
    if template == ACCESS_TEMPLATE or not order.access_hash:
        # A new link kills the old one: never for a mail that will not go out.
        blocked = delivery.block_reason(order.customer_email, company.company_id)
        if blocked:
            orders.record_event(order.order_id, SYSTEM, "mail_skipped", blocked)
            return False
        link = _new_link(company, order)
    else:
        _touch_link(order, company)
    language = locale if locale in LOCALES else company.locale
    settings = get_settings()
    logo = logo_url(company)
    subject_params = {"company": company.name, "number": order.number}
    try:
        mailer.send_templated(
            order.customer_email,
            template,
            language,
            reply_to=company.email,
            from_name=company.name,
            to_name=order.customer_name,
            # RFC 8058 one-click unsubscribe; the mailer skips an opted-out customer.
            opt_out_company=company.company_id,
            order_id=order.order_id,
            unsubscribe_url=delivery.opt_out_url(
                company.company_id, order.order_id, order.customer_email
            ),
            subject_params=subject_params,
            company=company,
            # Only what the customer may see of the order (domain/visibility.py).
            order=orders.shown(order, visibility.customer_access()),
            link=link,
            follow_url=f"{settings.base_url}/follow/{company.slug}?number={order.number}",
            logo_url=f"{settings.base_url}{logo}" if logo else None,
            days_open=LINK_DAYS_OPEN,
            days_closed=LINK_DAYS_AFTER_CLOSE,
        )
    except MailSuppressed as skipped:
        # Not attempted: the address bounced, complained or unsubscribed (shown to staff).
        orders.record_event(order.order_id, SYSTEM, "mail_skipped", skipped.reason)
        return False
    except MailNotSent as problem:
        log.warning("customer mail failed", extra={"order": order.order_id, "template": template})
        note = f"{order.customer_email}: {problem}"
        orders.record_event(order.order_id, SYSTEM, "mail_failed", note)
        return False
    subject = mailer.subject_for(template, language, subject_params)
    orders.record_event(order.order_id, SYSTEM, "mail", f"{order.customer_email} · {subject}")
    return True


# -- the link ------------------------------------------------------------------


def _contact(company: Company) -> dict[str, object]:
    return {
        "company_name": company.name,
        "company_phone": company.phone,
        "company_email": company.email if company.email_validated else "",
        "company_slug": company.slug,
        "company_logo_key": company.logo_key,
        "company_time_zone": company.time_zone,
    }


def _new_link(company: Company, order: Order) -> str:
    """A new ACCESS item replacing the order's current one, in one transaction."""
    token = new_token()
    digest = token_hash(token)
    at = now()
    access = CustomerAccess(
        *CustomerAccess.key(digest),
        order_id=order.order_id,
        company_id=order.company_id,
        created_at=at,
        expires_at=link_expiry(order.status, at),
        **_contact(company),
    )
    old = order.access_hash
    guard = Order.pk.exists() & (
        (Order.access_hash == old) if old else Order.access_hash.does_not_exist()
    )
    tx = transaction()
    with tx:
        tx.save(access, condition=CustomerAccess.pk.does_not_exist())
        if old:
            tx.delete(CustomerAccess(*CustomerAccess.key(old)))
        # The pointer has its own guard; the version still goes up, so a form
        # read before this change cannot put the old pointer back.
        tx.update(
            order,
            actions=[Order.access_hash.set(digest)],
            condition=guard,
            add_version_condition=False,
        )
    order.access_hash = digest
    return f"{get_settings().base_url}/o/{token}"


def _touch_link(order: Order, company: Company | None) -> None:
    """Expiry follows the order's state; the contact copy follows the company."""
    assert order.access_hash
    access = CustomerAccess(*CustomerAccess.key(order.access_hash))
    actions = [CustomerAccess.expires_at.set(link_expiry(order.status, now()))]
    if company is not None:
        actions += [getattr(CustomerAccess, k).set(v) for k, v in _contact(company).items()]
    try:
        access.update(actions=actions, condition=CustomerAccess.order_id == order.order_id)
    except UpdateError:
        log.info("customer link already gone", extra={"order": order.order_id})


def _owned_view(company: Company, order_id: str) -> OrderView:
    """The order page data, for the company the customer dealt with only."""
    view = orders.order_view(company.company_id, order_id)
    if view.order.company_id != company.company_id:
        raise NotFound()  # a partner executing it does not manage the customer's link
    return view


def resend_link(company: Company, order_id: str) -> bool:
    """Staff: replace the customer's link with a new one and e-mail it. False: SES refused."""
    companies.require_active(company)
    order = _owned_view(company, order_id).order
    reason = mail_off_reason(company, order)
    if reason:
        raise MailOff(reason)
    return _mail(company, order, ACCESS_TEMPLATE, None, refuse=True)


def revoke_link(company: Company, order_id: str, actor: Actor) -> bool:
    """Staff: delete the customer's link now (ACCESS item and pointer in one transaction)."""
    order = _owned_view(company, order_id).order
    old = order.access_hash
    if not old:
        return False
    tx = transaction()
    try:
        with tx:
            tx.delete(CustomerAccess(*CustomerAccess.key(old)))
            tx.update(
                order,
                actions=[Order.access_hash.remove()],
                condition=Order.pk.exists() & (Order.access_hash == old),
                add_version_condition=False,
            )
    except TransactWriteError as error:
        raise Conflict("customer.link_busy") from error
    order.access_hash = None
    orders.record_event(order.order_id, actor, "link_revoked", "")
    return True


@dataclass(frozen=True)
class StaffPanel:
    """What the staff order page says about the customer's link and e-mails (no extra read)."""

    owner: bool
    off_reason: str | None
    link_live: bool
    last_mail: OrderEvent | None
    rating: OrderRating | None

    @property
    def mail_failed(self) -> bool:
        return self.last_mail is not None and self.last_mail.kind == "mail_failed"

    @property
    def mail_blocked(self) -> str | None:
        """Why e-mails to the customer stopped (bounced, complained, unsubscribed), or None."""
        if self.last_mail is None:
            return None
        if self.last_mail.kind in ("mail_skipped", "mail_bounced"):
            return self.last_mail.note
        if self.last_mail.kind == "unsubscribed":
            return delivery.UNSUBSCRIBED
        return None


def staff_panel(company: Company, view: OrderView) -> StaffPanel:
    """The last customer e-mail is looked for in the history page shown (the newest 50)."""
    order = view.order
    mails = [e for e in view.events if e.kind in MAIL_EVENTS]
    rating = next((x for x in view.extras if isinstance(x, OrderRating)), None)
    return StaffPanel(
        owner=order.company_id == company.company_id,
        off_reason=mail_off_reason(company, order),
        link_live=bool(order.access_hash),
        last_mail=max(mails, key=lambda e: e.sk) if mails else None,
        rating=rating,
    )


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
    watchers = [order.technician_id] if order.technician_id else None
    kwargs = {
        "order_id": order.order_id,
        "order_number": view.number,
        "params": {"author": order.customer_name},
    }
    if watchers:
        notifications.notify(order.company_id, watchers, "chat_message", **kwargs)  # type: ignore[arg-type]
    else:
        notifications.notify_company(order.company_id, "chat_message", **kwargs)


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
        if stars <= 2:
            notifications.notify_company(
                order.company_id,
                "bad_rating",
                order_id=order.order_id,
                order_number=int(order.number),
                params={"stars": str(stars)},
                dedupe_key=f"rating-{order.order_id}-{stars}",
            )
        return stars
    raise Conflict("customer.busy")


# -- "follow your order" form (embeddable) -------------------------------------


@dataclass(frozen=True)
class FollowLook:
    button: str
    intro: str
    accent: str
    width: int
    height: int


def default_texts(locale: str) -> tuple[str, str]:
    """The follow form's button and introduction when the company wrote none."""
    return translate(locale, "follow.default_button"), translate(locale, "follow.default_intro")


def follow_look(company: Company, locale: str) -> FollowLook:
    button, intro = default_texts(locale)
    return FollowLook(
        button=company.follow_button or button,
        intro=company.follow_intro or intro,
        accent=company.follow_accent if company.follow_accent in ACCENTS else ACCENTS[0],
        width=int(company.follow_width or DEFAULT_WIDTH),
        height=int(company.follow_height or DEFAULT_HEIGHT),
    )


def follow_values(company: Company) -> dict[str, str]:
    return {
        "button": company.follow_button or "",
        "intro": company.follow_intro or "",
        "accent": company.follow_accent or ACCENTS[0],
        "width": str(int(company.follow_width or DEFAULT_WIDTH)),
        "height": str(int(company.follow_height or DEFAULT_HEIGHT)),
    }


def _whole(check: Checker, name: str, bounds: tuple[int, int]) -> int:
    raw = (check.data.get(name) or "").strip()
    low, high = bounds
    if not raw.isdigit() or not low <= int(raw) <= high:
        check.fail(name, "follow.bad_size", low=low, high=high)
        return 0
    return int(raw)


def save_follow_settings(company: Company, form: Mapping[str, str]) -> None:
    """Admin: the snippet's texts and look, on the Company item (blank text = default)."""
    check = Checker(form)
    button = check.text("button", max_len=MAX_BUTTON)
    intro = check.text("intro", max_len=MAX_INTRO, multiline=True)
    accent = check.choice("accent", ACCENTS)
    width = _whole(check, "width", WIDTH_RANGE)
    height = _whole(check, "height", HEIGHT_RANGE)
    check.done()
    actions = [
        Company.follow_button.set(button) if button else Company.follow_button.remove(),
        Company.follow_intro.set(intro) if intro else Company.follow_intro.remove(),
        Company.follow_accent.set(accent),
        Company.follow_width.set(width),
        Company.follow_height.set(height),
    ]
    # These attributes belong to this page alone: no version condition (a
    # profile edit elsewhere must not block it); the version still goes up.
    company.update(actions=actions, condition=Company.pk.exists(), add_version_condition=False)


def snippet(company: Company) -> str:
    """The HTML a company pastes into its website."""
    look = follow_look(company, company.locale)
    src = f"{get_settings().base_url}/follow/{company.slug}?lang={company.locale}"
    title = translate(company.locale, "follow.iframe_title", company=company.name)
    from markupsafe import escape

    return (
        f'<iframe src="{escape(src)}" title="{escape(title)}" width="{look.width}" '
        f'height="{look.height}" loading="lazy" style="border:0;max-width:100%"></iframe>'
    )


def _another_link_allowed(order: Order) -> bool:
    """A matched order gets a few links per window, so nobody can flood its customer."""
    try:
        limiter.count("follow", order=order.order_id)
    except limiter.LimitReached:
        return False  # enough links for this order for now; the answer stays the same
    return True


def check_follow_form(form: Mapping[str, str]) -> tuple[int, str]:
    check = Checker(form)
    raw = (form.get("number") or "").strip().lstrip("#").strip()
    if not raw:
        check.fail("number", "form.required")
    elif not raw.isdigit() or len(raw) > 9:
        check.fail("number", "follow.bad_number")
    email = check.email("email")
    check.done()
    return int(raw), email


def _matching_order(company: Company, number: int, email: str) -> Order | None:
    """The company's order with this number, if its customer e-mail is ``email``."""
    entries, _ = query_page(keys.order_entries(company.company_id, f"NUM#{number}"), page_size=5)
    for entry in entries:
        # A partner's NUM# list also holds orders it executes for others.
        if not isinstance(entry, OrderEntry) or entry.owner_id != company.company_id:
            continue
        try:
            order = Order.get(*Order.key(entry.order_id))
        except DoesNotExist:
            continue
        if order.company_id == company.company_id and order.customer_email == email:
            return order
    return None


def request_link(company: Company, form: Mapping[str, str], ip: str, locale: str) -> None:
    """The follow form: (re)send the private link if number and e-mail match an order.

    The answer is the same whether or not they match (no enumeration): same
    result, and the same answer time. Rate-limited per IP and per company.
    """
    number, email = check_follow_form(form)
    limiter.count("follow", ip=ip, company=company.company_id)
    started = time.monotonic()
    try:
        order = _matching_order(company, number, email)
        if order is not None and _another_link_allowed(order):
            send_access_link(company, order, locale)
    except Exception:  # a failure must look like any other answer
        log.exception("follow request failed", extra={"company": company.company_id})
    finally:
        time.sleep(max(0.0, FOLLOW_ANSWER_SECONDS - (time.monotonic() - started)))


# -- opting out of order e-mails (RFC 8058 one-click) and back in -----------------------


def unsubscribe_link(token: str) -> delivery.OptOutLink:
    """What an unsubscribe link names; a forged, altered or expired one is the 404 page."""
    link = delivery.read_opt_out_token(token)
    if link is None:
        raise NotFound()
    return link


def unsubscribe(token: str) -> delivery.OptOutLink:
    """One-click: no session, no CSRF token; the signed link is the authority.

    Stops the company's order e-mails to the address (the private link keeps
    working) and records it in the order's history. Repeating it changes nothing.
    """
    link = unsubscribe_link(token)
    if delivery.opt_out(link.company_id, link.address, link.order_id):
        name = ""
        try:
            order = Order.get(*Order.key(link.order_id))
            if order.company_id == link.company_id:
                name = order.customer_name
        except DoesNotExist:
            return link  # the order is gone; the opt-out still holds
        orders.record_event(
            link.order_id, Actor(name=name, kind="customer"), "unsubscribed", link.address
        )
    return link


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
        unsubscribe(delivery.opt_out_token(order.company_id, order.order_id, order.customer_email))

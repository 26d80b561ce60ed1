"""Customer e-mails about an order and the private link they carry: send, renew, revoke, opt out.

The customer is never a user: a 256-bit token e-mailed to them, stored only
as its SHA-256 in ``ACCESS#<hash>``, opens one order and nothing else. The
page behind the link is ``customer_page``; the form that sends it again is
``follow_form``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.aws.mail import MailNotSent, MailSuppressed
from chalicelib.config import get_settings
from chalicelib.db.accounts import Company
from chalicelib.db.base import transaction
from chalicelib.db.customers import CustomerAccess, OrderRating
from chalicelib.db.orders import Order, OrderEvent
from chalicelib.domain import limits, visibility, workflow
from chalicelib.domain.errors import AppError, Conflict, NotFound
from chalicelib.domain.tokens import new_token, token_hash
from chalicelib.i18n import LOCALES, translate
from chalicelib.services import companies, delivery, limiter, mailer, orders
from chalicelib.services.logos import logo_url
from chalicelib.services.orders import Actor, OrderView
from chalicelib.services.sessions import now

log = logging.getLogger("checkos.customers")

# A link lives while the order is open (refreshed on every status change) and
# for a while after it closes: enough to read the outcome and rate it.
LINK_DAYS_OPEN = 180
LINK_DAYS_AFTER_CLOSE = 60
# The customer's side in figures, quoted by the help pages (services.help): the
# page (customer_page) and the follow form (follow_form) read them from here.
RATING_CHANGE_DAYS = 7
MAX_COMMENT = 1000
# The follow form: per IP and per company, in fixed windows; a matched order
# is sent at most a few links per window so nobody can flood its customer.
# Declared in domain/limits.py; these names are views of it (help pages, tests).
FOLLOW_WINDOW = limits.rate_limit("follow", "ip").window
FOLLOW_LIMIT_IP = limits.rate_limit("follow", "ip").maximum
FOLLOW_LIMIT_COMPANY = limits.rate_limit("follow", "company").maximum
FOLLOW_LIMIT_ORDER = limits.rate_limit("follow", "order").maximum
# The follow snippet's size bounds (pixels).
WIDTH_RANGE = (280, 1000)
HEIGHT_RANGE = (260, 900)

SYSTEM = Actor(name="CheckOS", kind="system")
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
ACCESS_TEMPLATE = "customer_access"
# Status an order moved to -> the e-mail telling its customer.
STATUS_TEMPLATES: dict[str, str] = {
    workflow.SCHEDULED: "customer_scheduled",
    workflow.IN_PROGRESS: "customer_started",
    workflow.COMPLETED: "customer_completed",
    workflow.CANCELLED: "customer_cancelled",
    workflow.REGISTERED: "customer_reopened",
}


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


class Contact(TypedDict):
    """The company's contact details copied onto the ACCESS item (the page reads no Company)."""

    company_name: str
    company_phone: str
    company_email: str
    company_slug: str
    company_logo_key: str | None
    company_time_zone: str


def _contact(company: Company) -> Contact:
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
    if not order.access_hash:
        return  # no link to keep alive (callers check; a revoke may have won meanwhile)
    access = CustomerAccess(*CustomerAccess.key(order.access_hash))
    actions: list[Action] = [CustomerAccess.expires_at.set(link_expiry(order.status, now()))]
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

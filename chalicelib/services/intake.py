"""The embeddable intake form: whose form a code opens, screening, limits, pending requests.

A website visitor's submission is stored as a pending IntakeRequest the
company cannot see, with a lock that allows one pending request per e-mail
address, and a single-use link is e-mailed to confirm it
(``intake_confirmation``). The company's code and allowed origins are set in
``intake_codes``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.aws.mail import MailNotSent
from chalicelib.config import get_settings
from chalicelib.db.accounts import Company
from chalicelib.db.base import conflicted, failed_keys, transaction
from chalicelib.db.intake import PENDING, FormKey, IntakeRequest, PendingLock
from chalicelib.domain import limits
from chalicelib.domain.errors import AppError, Conflict, NotFound, TooManyRequests, ValidationFailed
from chalicelib.domain.tokens import new_token, token_hash
from chalicelib.domain.validation import email_problem, normalise_email
from chalicelib.services import limiter, mailer, orders
from chalicelib.services.sessions import now

log = logging.getLogger("checkos.intake")

PENDING_LIFETIME = timedelta(hours=48)
# A person needs a few seconds to fill the form; a signed form token older than
# this is refused so a harvested token cannot be replayed for ever.
MIN_SECONDS_TO_SUBMIT = 3
FORM_TOKEN_MAX_AGE = timedelta(hours=2)
RESEND_INTERVAL = timedelta(minutes=2)
MAX_JSON_BYTES = 32 * 1024
MAX_ORIGINS = 10  # websites allowed to embed the form (intake_codes)
HONEYPOT = "website"

# The standard order fields a visitor fills; everything else of an order
# (priority, technician, notes, value) stays for the staff.
FIELDS: tuple[str, ...] = (
    "customer_name",
    "customer_email",
    "customer_phone",
    "service_type",
    "brand",
    "model",
    "problem",
)
# The order rules (name and problem) plus the e-mail: it is how they confirm.
REQUIRED_FIELDS = frozenset({"customer_name", "customer_email", "problem"})


@dataclass(frozen=True)
class RateLimit:
    """A view of a declared intake limit (domain/limits.py), in the shape tests adjust."""

    scope: str  # ip | form | recipient
    window: str  # hour | day
    limit: int


_WINDOW_NAMES = {limits.HOUR: "hour", limits.DAY: "day"}
# Declared in domain/limits.py; this view is what count_submission reads.
RATE_LIMITS: tuple[RateLimit, ...] = tuple(
    RateLimit(r.scope, _WINDOW_NAMES[r.window], r.maximum) for r in limits.rate_limits("intake")
)
_WINDOWS = {"hour": limits.HOUR, "day": limits.DAY}


# -- errors ------------------------------------------------------------------


class FormClosed(NotFound):
    """Unknown or rotated code: the form does not accept requests."""

    key = "intake.closed"
    code = "form_closed"

    def __init__(self, company: Company | None = None) -> None:
        super().__init__()
        self.company = company


class FormInactive(FormClosed):
    """The company is inactive: its form is closed until it is reactivated."""

    status = 410


class AutomatedSubmission(AppError):
    status = 422
    key = "intake.automated"
    code = "automated"


class TooFast(AppError):
    status = 422
    key = "intake.too_fast"
    code = "too_fast"


class FormExpired(AppError):
    status = 422
    key = "intake.form_expired"
    code = "form_expired"


class RateLimited(TooManyRequests):
    key = "intake.rate_limited"
    code = "rate_limited"


class PendingExists(Conflict):
    key = "intake.pending_exists"
    code = "pending_exists"


class ResendTooSoon(TooManyRequests):
    key = "intake.resend_too_soon"
    code = "resend_too_soon"


class NothingPending(Conflict):
    """Resend asked for an address with no request waiting (confirmed or expired)."""

    key = "intake.nothing_pending"
    code = "nothing_pending"


class MailFailed(AppError):
    status = 503
    key = "intake.mail_failed"
    code = "mail_failed"


# -- the form code and who may embed it -----------------------------------------


def form_company(code: str) -> Company:
    """The active company a form code belongs to (2 GetItems), or FormClosed/FormInactive."""
    if not code or len(code) > 128:
        raise FormClosed()
    try:
        owner = FormKey.get(*FormKey.key(code))
        company = Company.get(*Company.key(owner.company_id))
    except DoesNotExist:
        raise FormClosed() from None
    if company.intake_code != code:
        raise FormClosed()
    if not company.active:
        raise FormInactive(company)
    return company


def frame_ancestors(company: Company | None) -> str:
    """The CSP ``frame-ancestors`` sources: the company's origins, or any site."""
    # str(): pynamodb types a ListAttribute(of=UnicodeAttribute) as attributes; the values are str.
    origins = [str(o) for o in company.intake_origins or []] if company else []
    return " ".join(origins) if origins else "*"


def allowed_origin(company: Company, origin: str | None) -> bool:
    """CORS: only an exact configured origin may read the JSON API's answers."""
    return bool(origin) and origin in (company.intake_origins or [])


# -- anti-automation -------------------------------------------------------------


def screen_browser_form(form: Mapping[str, object], issued_at: float | None) -> None:
    """Honeypot and timing of the HTML form (``issued_at`` from its signed token)."""
    if str(form.get(HONEYPOT) or "").strip():
        raise AutomatedSubmission()
    age = time.time() - issued_at if issued_at is not None else None
    if age is None or age > FORM_TOKEN_MAX_AGE.total_seconds():
        raise FormExpired()
    if age < MIN_SECONDS_TO_SUBMIT:
        raise TooFast(seconds=MIN_SECONDS_TO_SUBMIT)


def count_submission(company_id: str, ip: str, email: str | None = None) -> None:
    """One conditional UpdateItem per declared intake limit; a full window refuses (RateLimited).

    Without ``email`` the per-IP and per-form limits are counted (before the
    form is even read); with it, the requester address's limit alone.
    """
    rules = tuple(
        replace(limits.rate_limit("intake", r.scope, _WINDOWS[r.window]), maximum=r.limit)
        for r in RATE_LIMITS
        if (r.scope == "recipient") == (email is not None)
    )
    try:
        limiter.count("intake", ip=ip, form=company_id, recipient=email, rules=rules)
    except limiter.LimitReached as error:
        raise RateLimited() from error


# -- submitting ------------------------------------------------------------------


def clean_request(
    company: Company, form: Mapping[str, object], locale: str = "en"
) -> tuple[dict[str, str], dict[str, str]]:
    """The order rules (``orders.check_order_form``) on the fields a visitor may fill."""
    visible = {name: str(form.get(name) or "") for name in FIELDS}
    for spec in company.custom_fields or []:
        name = f"cf_{spec.field_id}"
        visible[name] = str(form.get(name) or "")
    errors: dict[str, tuple[str, dict[str, object]]] = {}
    values: Mapping[str, str | None] = {}
    custom: dict[str, str] = {}
    try:
        values, custom = orders.check_order_form(visible, company, {}, locale)
    except ValidationFailed as problem:
        errors.update(problem.errors)
    if not visible["customer_email"].strip():
        errors.setdefault("customer_email", ("form.required", {}))
    if errors:
        raise ValidationFailed(errors)
    return {name: str(values[name]) for name in FIELDS if values.get(name)}, custom


@dataclass(frozen=True)
class Submitted:
    email: str
    expires_at: datetime


def submit_request(
    company: Company,
    form: Mapping[str, object],
    *,
    locale: str,
    ip: str,
    browser: bool = True,
    issued_at: float | None = None,
) -> Submitted:
    """Screen, count, validate, store as pending (one per e-mail) and e-mail the link."""
    if browser:
        screen_browser_form(form, issued_at)
    count_submission(company.company_id, ip)
    values, custom = clean_request(company, form, locale)
    email = values["customer_email"]
    count_submission(company.company_id, ip, email)
    token, expires = _store_pending(company, values, custom, email, locale)
    try:
        _send_link(company, email, values["customer_name"], token, locale, expires)
    except MailNotSent as problem:
        # Nobody can confirm a request whose link never left: undo it, free the address.
        _discard(company.company_id, email, token_hash(token))
        raise MailFailed() from problem
    return Submitted(email=email, expires_at=expires)


def _store_pending(
    company: Company, values: dict[str, str], custom: dict[str, str], email: str, locale: str
) -> tuple[str, datetime]:
    created = now()
    expires = (created + PENDING_LIFETIME).replace(microsecond=0)  # TTL keeps whole seconds
    index = IntakeRequest.company_index(company.company_id, email, "REQ")
    lock_index = IntakeRequest.company_index(company.company_id, email, "LOCK")
    for attempt in range(4):
        token = new_token()
        intake_id = token_hash(token)
        request = IntakeRequest(
            *IntakeRequest.key(intake_id),
            intake_id=intake_id,
            company_id=company.company_id,
            email=email,
            name=values["customer_name"],
            locale=locale,
            values=values,
            custom=custom,
            status=PENDING,
            created_at=created,
            expires_at=expires,
            gsi1pk=index["gsi1pk"],
            gsi1sk=index["gsi1sk"],
        )
        lock = PendingLock(
            *PendingLock.key(company.company_id, email),
            intake_id=intake_id,
            created_at=created,
            sent_at=created,
            expires_at=expires,
            gsi1pk=lock_index["gsi1pk"],
            gsi1sk=lock_index["gsi1sk"],
        )
        tx = transaction()
        try:
            with tx:
                tx.save(request, condition=IntakeRequest.pk.does_not_exist())
                # An expired lock (TTL deletion lags) must not block the address for ever.
                tx.save(
                    lock,
                    condition=PendingLock.pk.does_not_exist() | (PendingLock.expires_at < created),
                )
        except TransactWriteError as error:
            if (lock.pk, lock.sk) in failed_keys(error, tx):
                raise PendingExists(email=email) from error
            if conflicted(error):
                # Another submission for this address is being written right now:
                # the next attempt sees its lock and refuses.
                time.sleep(random.uniform(0, 0.02 * 2**attempt))
                continue
            raise
        return token, expires
    raise PendingExists(email=email)


def _discard(company_id: str, email: str, intake_id: str) -> None:
    try:
        with transaction() as tx:
            tx.delete(IntakeRequest(*IntakeRequest.key(intake_id)))
            tx.delete(
                PendingLock(*PendingLock.key(company_id, email)),
                condition=PendingLock.pk.does_not_exist() | (PendingLock.intake_id == intake_id),
            )
    except TransactWriteError:
        log.warning("could not discard an unsent intake request", extra={"company": company_id})


def _send_link(
    company: Company, email: str, name: str, token: str, locale: str, expires: datetime
) -> None:
    settings = get_settings()
    mailer.send_templated(
        email,
        "intake_confirm",
        locale,
        # Replies reach the company only through an address it proved it owns.
        reply_to=company.email if company.email_validated else None,
        from_name=company.name,
        company=company,
        name=name,
        link=f"{settings.base_url}/intake/confirm/{token}",
        hours=int(PENDING_LIFETIME.total_seconds() // 3600),
        expires=expires,
        subject_params={"company": company.name},
    )


def resend_link(company: Company, raw_email: str, *, locale: str, ip: str) -> Submitted:
    """A new link for the address's pending request (the previous link stops working).

    Allowed once per RESEND_INTERVAL, enforced by a condition on the lock's
    ``sent_at``; the request moves to the new token's key in one transaction.
    """
    email = normalise_email((raw_email or "").strip())
    if not email:
        raise ValidationFailed({"customer_email": (email_problem(raw_email or ""), {})})
    count_submission(company.company_id, ip)
    at = now()
    lock_key = PendingLock.key(company.company_id, email)
    try:
        lock = PendingLock.get(*lock_key, consistent_read=True)
        old = IntakeRequest.get(*IntakeRequest.key(lock.intake_id), consistent_read=True)
    except DoesNotExist:
        raise NothingPending() from None
    if lock.expires_at is None or lock.expires_at <= at or old.status != PENDING:
        raise NothingPending()
    minutes = int(RESEND_INTERVAL.total_seconds() // 60)
    if lock.sent_at > at - RESEND_INTERVAL:
        raise ResendTooSoon(minutes=minutes)
    count_submission(company.company_id, ip, email)
    token = new_token()
    fresh = IntakeRequest.from_raw_data(old.serialize())
    fresh.pk, fresh.intake_id = IntakeRequest.key(token_hash(token))[0], token_hash(token)
    tx = transaction()
    try:
        with tx:
            tx.save(fresh, condition=IntakeRequest.pk.does_not_exist())
            tx.delete(old, condition=IntakeRequest.status == PENDING)
            tx.update(
                lock,
                actions=[PendingLock.intake_id.set(fresh.intake_id), PendingLock.sent_at.set(at)],
                condition=(PendingLock.intake_id == old.intake_id)
                & (PendingLock.sent_at <= at - RESEND_INTERVAL),
            )
    except TransactWriteError as error:
        if (old.pk, old.sk) in failed_keys(error, tx):
            raise NothingPending() from error  # confirmed a moment ago
        raise ResendTooSoon(minutes=minutes) from error  # another resend won
    try:
        _send_link(company, email, old.name, token, old.locale or locale, fresh.expires_at)
    except MailNotSent as problem:
        raise MailFailed() from problem
    return Submitted(email=email, expires_at=fresh.expires_at)

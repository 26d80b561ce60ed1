"""Embeddable intake form: form codes, requests confirmed by e-mail before they become orders.

A website visitor's submission is stored as a pending IntakeRequest the
company cannot see, with a lock that allows one pending request per e-mail
address. The e-mailed single-use link confirms it: one conditional update
claims the request (so parallel confirmations create one order), the order
is registered through ``orders.create_order`` (number, quota), whose
transaction also marks the request confirmed and drops the lock: exactly
one order per request, even across a crash.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.aws.mail import MailNotSent
from chalicelib.config import get_settings
from chalicelib.db.accounts import Company
from chalicelib.db.base import conflicted, failed_keys, single_write_conflicted, transaction
from chalicelib.db.intake import (
    CONFIRMED,
    CONFIRMING,
    PENDING,
    FormKey,
    IntakeRequest,
    PendingLock,
)
from chalicelib.db.orders import Order
from chalicelib.domain import limits
from chalicelib.domain.errors import AppError, Conflict, NotFound, TooManyRequests, ValidationFailed
from chalicelib.domain.tokens import new_id, new_token, token_hash
from chalicelib.domain.validation import email_problem, normalise_email
from chalicelib.services import limiter, mailer, notifications, orders
from chalicelib.services.orders import Actor, QuotaExceeded
from chalicelib.services.sessions import now

log = logging.getLogger("checkos.intake")

PENDING_LIFETIME = timedelta(hours=48)
# A person needs a few seconds to fill the form; a signed form token older than
# this is refused so a harvested token cannot be replayed for ever.
MIN_SECONDS_TO_SUBMIT = 3
FORM_TOKEN_MAX_AGE = timedelta(hours=2)
RESEND_INTERVAL = timedelta(minutes=2)
# A confirmation that claimed the request and then died (Lambda timeout) is
# retried by the next click after this long.
CLAIM_TIMEOUT = timedelta(minutes=2)
# A second click waits this long for the first to finish confirming, then answers as done.
CONFIRM_WAIT_SECONDS = 10.0
MAX_JSON_BYTES = 32 * 1024
MAX_ORIGINS = 10
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


class LinkInvalid(NotFound):
    key = "intake.link_invalid"
    code = "link_invalid"


class LinkExpired(AppError):
    status = 410
    key = "intake.link_expired"
    code = "link_expired"


class ConfirmBusy(Conflict):
    """Another click is confirming this request right now: retry in a moment."""

    key = "intake.confirm_busy"
    code = "confirm_busy"

    def __init__(self, company: Company) -> None:
        super().__init__()
        self.company = company


class IntakeQuotaReached(Conflict):
    """The company's monthly quota is used up: the request stays pending, retry later."""

    key = "intake.quota_reached"
    code = "quota_reached"

    def __init__(self, company: Company) -> None:
        super().__init__(company=company.name)
        self.company = company


class IntakeSettingsChanged(Conflict):
    key = "intake.settings_changed"
    code = "settings_changed"


# -- the form code -------------------------------------------------------------


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
    origins = list(company.intake_origins or []) if company else []
    return " ".join(origins) if origins else "*"


def allowed_origin(company: Company, origin: str | None) -> bool:
    """CORS: only an exact configured origin may read the JSON API's answers."""
    return bool(origin) and origin in (company.intake_origins or [])


def generate_code(company: Company, seen_version: int | None) -> str:
    """Give the company a new form code; the old one stops working at once.

    One transaction: delete the old FORMKEY item, put the new one, update the
    Company (condition: the version the admin's page was read at).
    """
    if seen_version is None or seen_version != (company.version or 0):
        raise IntakeSettingsChanged()
    code = new_token()
    old = company.intake_code
    company_id = company.company_id
    tx = transaction()
    try:
        with tx:
            tx.update(
                company, actions=[Company.intake_code.set(code)], condition=Company.pk.exists()
            )
            tx.save(
                FormKey(*FormKey.key(code), company_id=company_id, created_at=now()),
                condition=FormKey.pk.does_not_exist(),
            )
            if old:
                tx.delete(
                    FormKey(*FormKey.key(old)),
                    condition=FormKey.pk.does_not_exist() | (FormKey.company_id == company_id),
                )
    except TransactWriteError as error:
        if Company.key(company_id) in failed_keys(error, tx) or conflicted(error):
            raise IntakeSettingsChanged() from error
        raise
    company.intake_code = code
    return code


def parse_origins(text: str) -> list[str]:
    """One ``https://host[:port]`` origin per line (plain http only for this machine)."""
    origins: list[str] = []
    for line in (text or "").replace(",", "\n").splitlines():
        raw = line.strip().rstrip("/")
        if not raw:
            continue
        origin = _origin(raw)
        if origin is None:
            raise ValidationFailed({"origins": ("intake.origin_invalid", {"origin": raw[:80]})})
        if origin not in origins:
            origins.append(origin)
    if len(origins) > MAX_ORIGINS:
        raise ValidationFailed({"origins": ("intake.too_many_origins", {"n": MAX_ORIGINS})})
    return origins


def _origin(raw: str) -> str | None:
    if len(raw) > 200 or any(c.isspace() or c in "<>\"'\\;*" for c in raw):
        return None
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.username or parts.password or parts.query or parts.fragment or parts.path:
        return None
    loopback = host in ("localhost", "127.0.0.1")
    if parts.scheme.lower() != "https" and not (parts.scheme.lower() == "http" and loopback):
        return None
    if not loopback and "." not in host.strip("."):
        return None
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port else "")


def save_origins(company: Company, form: Mapping[str, str]) -> list[str]:
    """Store the allowed website origins (condition: the version the form was read at)."""
    origins = parse_origins(form.get("origins", ""))
    seen = (form.get("version") or "").strip()
    if not seen.isdigit() or int(seen) != (company.version or 0):
        raise IntakeSettingsChanged()
    try:
        company.update(actions=[Company.intake_origins.set(origins)], condition=Company.pk.exists())
    except UpdateError as error:
        raise IntakeSettingsChanged() from error
    company.intake_origins = origins
    return origins


# -- anti-automation -------------------------------------------------------------


def screen_browser_form(form: Mapping[str, str], issued_at: float | None) -> None:
    """Honeypot and timing of the HTML form (``issued_at`` from its signed token)."""
    if (form.get(HONEYPOT) or "").strip():
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
        screen_browser_form(form, issued_at)  # type: ignore[arg-type]
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
            **IntakeRequest.company_index(company.company_id, email, "REQ"),
        )
        lock = PendingLock(
            *PendingLock.key(company.company_id, email),
            intake_id=intake_id,
            created_at=created,
            sent_at=created,
            expires_at=expires,
            **IntakeRequest.company_index(company.company_id, email, "LOCK"),
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


# -- confirming ------------------------------------------------------------------


@dataclass(frozen=True)
class PendingView:
    request: IntakeRequest
    company: Company

    @property
    def confirmed(self) -> bool:
        return self.request.status == CONFIRMED


def open_request(token: str) -> PendingView:
    """The request behind an e-mailed link and its company (2 GetItems)."""
    request = _request(token)
    try:
        company = Company.get(*Company.key(request.company_id))
    except DoesNotExist:
        raise LinkInvalid() from None
    if request.status != CONFIRMED and _expired(request, now()):
        raise LinkExpired()
    return PendingView(request=request, company=company)


def _request(token: str, consistent: bool = False) -> IntakeRequest:
    if not token or len(token) > 128:
        raise LinkInvalid()
    try:
        return IntakeRequest.get(*IntakeRequest.key(token_hash(token)), consistent_read=consistent)
    except DoesNotExist:
        raise LinkInvalid() from None


def _expired(request: IntakeRequest, at: datetime) -> bool:
    return request.expires_at is None or request.expires_at <= at


@dataclass(frozen=True)
class Confirmation:
    company: Company
    request: IntakeRequest
    order_id: str
    order_number: int
    just_now: bool  # False: this link had already been confirmed (same order)


def confirm_request(token: str) -> Confirmation:
    """Turn the pending request into an order, exactly once.

    Idempotent: a confirmed request answers with its order. Parallel clicks:
    one conditional update (``status = pending`` → ``confirming``) lets one
    through, the others see "being confirmed" or, a moment later, the order.
    A full quota gives the request back (still pending, retry later).
    """
    request = _request(token, consistent=True)
    try:
        company = Company.get(*Company.key(request.company_id))
    except DoesNotExist:
        raise LinkInvalid() from None
    if request.status == CONFIRMED:
        return _confirmation(company, request, just_now=False)
    at = now()
    if _expired(request, at):
        raise LinkExpired()
    if not company.active:
        raise FormInactive(company)
    claim = _claim(company, request, at)
    if claim is None:  # another click confirmed it a moment ago
        return _confirmation(company, request, just_now=False)
    lock = _own_lock(company, request)
    try:
        order = orders.create_order(
            company,
            Actor(name=request.name, kind="customer"),
            request.value_map,
            request.custom_map,
            source="intake",
            with_order=lambda tx, order: _confirm_with(tx, request, claim, lock, order),
        )
    except QuotaExceeded as problem:
        _release(request, claim)
        raise IntakeQuotaReached(company) from problem
    except Exception:
        _release(request, claim)
        raise
    request.status, request.order_id, request.order_number = CONFIRMED, order.order_id, order.number
    request.confirmed_at = order.created_at
    _announce(company, request, order)
    return _confirmation(company, request, just_now=True)


def _claim(company: Company, request: IntakeRequest, at: datetime) -> str | None:
    """Take the request for this confirmation; None when it is already confirmed.

    A second click (another tab) while the first is confirming waits for it,
    up to CONFIRM_WAIT, and then answers as done with the same order: a double
    submit is never shown as a busy service.
    """
    waited_until = time.monotonic() + CONFIRM_WAIT_SECONDS
    while True:
        claim = new_id()
        stale = at - CLAIM_TIMEOUT
        try:
            request.update(
                actions=[
                    IntakeRequest.status.set(CONFIRMING),
                    IntakeRequest.claim.set(claim),
                    IntakeRequest.claimed_at.set(at),
                ],
                condition=(
                    (IntakeRequest.status == PENDING)
                    | ((IntakeRequest.status == CONFIRMING) & (IntakeRequest.claimed_at < stale))
                )
                & (IntakeRequest.expires_at > at),
            )
        except UpdateError as error:
            held = single_write_conflicted(error)  # the other click's transaction holds it
            if error.cause_response_code != "ConditionalCheckFailedException" and not held:
                raise
            request.refresh(consistent_read=True)
            if request.status == CONFIRMED:
                return None
            if _expired(request, at):
                raise LinkExpired() from error
            if time.monotonic() >= waited_until:
                raise ConfirmBusy(company) from error
            time.sleep(0.1 + random.uniform(0, 0.1))  # the other click is confirming it
            continue
        return claim


def _release(request: IntakeRequest, claim: str) -> None:
    try:
        request.update(
            actions=[
                IntakeRequest.status.set(PENDING),
                IntakeRequest.claim.remove(),
                IntakeRequest.claimed_at.remove(),
            ],
            condition=IntakeRequest.claim == claim,
        )
    except UpdateError:
        log.warning("intake claim already gone", extra={"intake": request.intake_id})


def _own_lock(company: Company, request: IntakeRequest) -> PendingLock | None:
    """The address's pending lock when it is this request's (a newer request keeps its own)."""
    try:
        lock = PendingLock.get(
            *PendingLock.key(company.company_id, request.email), consistent_read=True
        )
    except DoesNotExist:
        return None
    return lock if lock.intake_id == request.intake_id else None


def _confirm_with(
    tx: TransactWrite, request: IntakeRequest, claim: str, lock: PendingLock | None, order: Order
) -> None:
    """Inside the order's transaction: the request confirmed with it, its lock gone.

    One transaction, so a crash leaves either no order and a request still to
    confirm, or both: never an order whose request a retry would confirm twice.
    The claim condition fails if a click that timed out was taken over.
    """
    tx.update(
        request,
        actions=[
            IntakeRequest.status.set(CONFIRMED),
            IntakeRequest.order_id.set(order.order_id),
            IntakeRequest.order_number.set(int(order.number)),
            IntakeRequest.confirmed_at.set(order.created_at),
            IntakeRequest.claim.remove(),
        ],
        condition=IntakeRequest.claim == claim,
    )
    if lock is not None:
        tx.delete(lock, condition=PendingLock.intake_id == request.intake_id)


def _confirmation(company: Company, request: IntakeRequest, *, just_now: bool) -> Confirmation:
    return Confirmation(
        company=company,
        request=request,
        order_id=str(request.order_id),
        order_number=int(request.order_number or 0),
        just_now=just_now,
    )


def _announce(company: Company, request: IntakeRequest, order: Order) -> None:
    """Tell the staff (in-app and by e-mail) and send the requester their access link.

    The order is committed: a failure here is logged, never shown as a failed
    confirmation (which would invite a second, duplicate one).
    """
    try:
        notifications.notify_company(
            company.company_id,
            "intake_order",
            order_id=order.order_id,
            order_number=int(order.number),
            dedupe_key=f"intake#{order.order_id}",
        )
    except Exception:
        log.exception("intake notification failed", extra={"order": order.order_id})
    if company.email_validated:
        try:
            mailer.send_templated(
                company.email,
                "intake_new_order",
                company.locale or "en",
                from_name="CheckOS",
                company=company,
                order=order,
                link=f"{get_settings().base_url}/orders/{order.order_id}",
                subject_params={"number": order.number, "name": order.customer_name},
            )
        except MailNotSent as problem:
            orders.record_event(
                order.order_id, Actor(name="CheckOS", kind="system"), "mail_failed", str(problem)
            )
    try:
        from chalicelib.services import customers  # written alongside; imported on use

        customers.send_access_link(company, order, locale=request.locale)
    except Exception:
        log.exception("intake access link failed", extra={"order": order.order_id})

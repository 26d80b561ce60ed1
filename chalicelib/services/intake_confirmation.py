"""Confirming an intake request by its e-mailed link: exactly one order per request.

One conditional update claims the request (so parallel confirmations create
one order), the order is registered through ``orders.create_order`` (number,
quota), whose transaction also marks the request confirmed and drops the
lock: exactly one order per request, even across a crash.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.aws.mail import MailNotSent
from chalicelib.config import get_settings
from chalicelib.db.accounts import Company
from chalicelib.db.base import single_write_conflicted
from chalicelib.db.intake import CONFIRMED, CONFIRMING, PENDING, IntakeRequest, PendingLock
from chalicelib.db.orders import Order
from chalicelib.domain.errors import AppError, Conflict, NotFound
from chalicelib.domain.tokens import new_id, token_hash
from chalicelib.services import customers, mailer, notifications, orders
from chalicelib.services.intake import FormInactive
from chalicelib.services.orders import Actor, QuotaExceeded
from chalicelib.services.sessions import now

log = logging.getLogger("checkos.intake")

# A confirmation that claimed the request and then died (Lambda timeout) is
# retried by the next click after this long.
CLAIM_TIMEOUT = timedelta(minutes=2)
# A second click waits this long for the first to finish confirming, then answers as done.
CONFIRM_WAIT_SECONDS = 10.0


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
        customers.send_access_link(company, order, locale=request.locale)
    except Exception:
        log.exception("intake access link failed", extra={"order": order.order_id})

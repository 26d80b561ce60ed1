"""Sign-in and sign-out: attempts throttled before the check, lockouts, unlock links."""

from __future__ import annotations

import logging
import math
from datetime import timedelta

from pynamodb.exceptions import DeleteError, DoesNotExist, UpdateError

from chalicelib.aws.mail import MailNotSent
from chalicelib.config import get_settings
from chalicelib.db.accounts import LinkToken, Login, Throttle, User
from chalicelib.domain.errors import AppError, NotFound, TooManyRequests
from chalicelib.domain.passwords import DUMMY_HASH, verify_password
from chalicelib.domain.tokens import new_token, token_hash
from chalicelib.services import limiter, mailer, sessions
from chalicelib.services.sessions import now

log = logging.getLogger("checkos.accounts")

# Map-OS v5 defaults: 5 failures per account or 20 per IP lock for a minute,
# doubling on each new lock up to an hour.
ACCOUNT_FAILURES, IP_FAILURES = 5, 20
FIRST_LOCK_SECONDS, MAX_LOCK_SECONDS = 60, 3600
THROTTLE_MEMORY = timedelta(hours=24)
# A window left full without its lock (the request evaluating its last attempt
# died before writing the lock) frees itself this long after its latest attempt.
STALE_WINDOW = timedelta(minutes=5)
# Unlock links: e-mailed when an address gets locked, at most one an hour.
UNLOCK = "UNLOCK"
UNLOCK_LIFETIME = timedelta(hours=24)


class InvalidCredentials(AppError):
    status = 401
    key = "login.invalid"


def _locked_for(throttles: list[Throttle]) -> int:
    current = now()
    waits = [
        (t.locked_until - current).total_seconds()
        for t in throttles
        if t.locked_until and t.locked_until > current
    ]
    return math.ceil(max(waits)) if waits else 0


def _condition_failed(error: UpdateError) -> bool:
    return error.cause_response_code == "ConditionalCheckFailedException"


def _locked(seconds: int) -> TooManyRequests:
    return TooManyRequests("login.locked", minutes=max(1, (seconds + 59) // 60))


def _reserve_attempt(kind: str, value: str, limit: int, *, full_refuses: bool = True) -> Throttle:
    """Count one attempt *before* it is evaluated (one conditional UpdateItem).

    Refused (TooManyRequests) while locked or once ``limit`` attempts hold
    the window: with any number of parallel guesses, at most ``limit`` reach
    the password check. The attempt stays counted as a failure unless
    ``_attempt_succeeded`` gives it back. With ``full_refuses`` False only a
    lock refuses (loopback, see ``log_in``).
    """
    current = now()
    item = Throttle(*Throttle.key(kind, value))
    condition = Throttle.locked_until.does_not_exist() | (Throttle.locked_until <= current)
    if full_refuses:
        condition &= (
            Throttle.failures.does_not_exist()
            | (Throttle.failures < limit)
            | (Throttle.attempted_at < current - STALE_WINDOW)
        )
    try:
        item.upsert(
            actions=[
                Throttle.failures.add(1),
                Throttle.attempted_at.set(current),
                Throttle.expires_at.set(current + THROTTLE_MEMORY),
            ],
            condition=condition,
        )
    except UpdateError as error:
        if not _condition_failed(error):
            raise
        raise _locked(_refused_wait(kind, value)) from None
    return item


def _refused_wait(kind: str, value: str) -> int:
    """Seconds until a refused reservation may succeed (the lock, or the one being set)."""
    try:
        found = Throttle.get(*Throttle.key(kind, value), consistent_read=True)
    except DoesNotExist:
        return FIRST_LOCK_SECONDS
    return _locked_for([found]) or _next_lock_seconds(found)


def _next_lock_seconds(item: Throttle) -> int:
    return min(MAX_LOCK_SECONDS, max(FIRST_LOCK_SECONDS, int(item.lock_seconds or 0) * 2))


def _attempt_failed(reserved: Throttle, limit: int) -> bool:
    """The reserved attempt failed: the one that filled the window sets the lock.

    Returns True when this call set a lock.
    """
    if int(reserved.failures or 0) < limit:
        return False
    seconds = _next_lock_seconds(reserved)
    try:
        reserved.update(
            actions=[
                Throttle.failures.set(0),
                Throttle.lock_seconds.set(seconds),
                Throttle.locked_until.set(now() + timedelta(seconds=seconds)),
            ],
            condition=Throttle.failures >= limit,
        )
    except UpdateError as error:
        if not _condition_failed(error):
            raise
        return False  # another failed attempt of this window set it
    return True


def log_in(email: str, password: str, ip: str) -> tuple[str, Login]:
    """Verify credentials under throttling; returns (session token, login).

    The attempt is reserved on the address's and the IP's throttles before
    the password is checked (see ``_reserve_attempt``).
    """
    email = email.strip().lower()
    # Loopback is every visitor of the local run (`chalice local` reports
    # 127.0.0.1): its simultaneous right sign-ins must not fill the IP's window,
    # so there only its lock refuses (failures still lock it).
    by_ip = _reserve_attempt("ip", ip, IP_FAILURES, full_refuses=limiter.counted_ip(ip))
    try:
        by_email = _reserve_attempt("email", email, ACCOUNT_FAILURES)
    except TooManyRequests:
        _attempt_failed(by_ip, IP_FAILURES)  # an attempt on a locked address counts for the IP
        raise
    try:
        login = Login.get(*Login.key(email))
    except DoesNotExist:
        verify_password(DUMMY_HASH, password)  # same time as a real check
        login = None
    if login is None or not verify_password(login.password_hash, password):
        if _attempt_failed(by_email, ACCOUNT_FAILURES) and login is not None:
            send_unlock_link(login, email)
        _attempt_failed(by_ip, IP_FAILURES)
        raise InvalidCredentials()
    _attempt_succeeded(email, ip)
    return sessions.start_session(login.user_id, login.company_id), login


def _attempt_succeeded(email: str, ip: str | None) -> None:
    """A right password clears the address's throttle and gives the IP its attempt back.

    Two plain writes, not a transaction: colleagues signing in at the same
    moment from one office address would cancel each other's transactions
    (TransactionConflict) on the shared IP item.
    """
    Throttle(*Throttle.key("email", email)).delete()
    if ip is None:
        return
    try:
        Throttle(*Throttle.key("ip", ip)).update(
            actions=[Throttle.failures.add(-1)], condition=Throttle.pk.exists()
        )
    except UpdateError as error:
        if not _condition_failed(error):
            raise


def password_matches(email: str, user_id: str, password: str) -> bool:
    """A signed-in user's re-entered password (before a destructive action).

    Counted by the same per-address throttle as sign-in, reserved before the
    check, so a left-open session cannot be used to guess the password.
    """
    email = email.strip().lower()
    reserved = _reserve_attempt("email", email, ACCOUNT_FAILURES)
    try:
        login = Login.get(*Login.key(email), consistent_read=True)
    except DoesNotExist:
        login = None
    valid = (
        bool(password)
        and login is not None
        and login.user_id == user_id
        and verify_password(login.password_hash, password)
    )
    if valid:
        _attempt_succeeded(email, None)
    elif _attempt_failed(reserved, ACCOUNT_FAILURES) and login is not None:
        send_unlock_link(login, email)
    return valid


# -- unlock links ----------------------------------------------------------


def send_unlock_link(login: Login, email: str) -> None:
    """E-mail the account's owner a single-use link that lifts the lock.

    A lock must not let anyone keep the owner out: the link (or a password
    reset) clears it. At most one link an hour per address (the declared
    ``account-unlock`` limit), always to the account's own address.
    """
    current = now()
    try:
        limiter.count("account-unlock", recipient=email)
    except limiter.LimitReached:
        return
    token = new_token()
    LinkToken(
        *LinkToken.key(UNLOCK, token_hash(token)),
        kind=UNLOCK,
        company_id=login.company_id,
        user_id=login.user_id,
        email=email,
        expires_at=current + UNLOCK_LIFETIME,
    ).save(condition=LinkToken.pk.does_not_exist())
    try:
        locale = User.get(*User.key(login.company_id, login.user_id)).locale
    except DoesNotExist:
        return
    try:
        mailer.send_templated(
            email,
            "account_unlock",
            locale or get_settings().default_locale,
            link=f"{get_settings().base_url}/login/unlock/{token}",
            hours=int(UNLOCK_LIFETIME.total_seconds() // 3600),
        )
    except MailNotSent:
        log.warning("unlock link not sent")


def unlock_token(token: str) -> LinkToken:
    try:
        found = LinkToken.get(*LinkToken.key(UNLOCK, token_hash(token)), consistent_read=True)
    except DoesNotExist:
        raise NotFound("unlock.invalid") from None
    if found.expires_at is None or found.expires_at <= now():
        raise NotFound("unlock.invalid")
    return found


def unlock_account(token: str) -> None:
    """Burn the unlock link (single use), then clear the address's sign-in lock.

    Two writes, not a transaction: the Throttle item takes parallel sign-in
    reservations, which would cancel a transaction (TransactionConflict). A
    crash between them leaves the lock to expire or a password reset.
    """
    found = unlock_token(token)
    try:
        found.delete(condition=LinkToken.pk.exists())
    except DeleteError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
        # Used a moment ago by another tab with this valid link: the same answer (done),
        # and the lock is cleared here too, so "done" is true whichever tab finishes first.
    Throttle(*Throttle.key("email", found.email)).delete()


def log_out(token: str) -> None:
    sessions.end_session(token)

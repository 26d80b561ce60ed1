"""Sign-up, e-mail validation codes, login with throttling, password reset."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from pynamodb.exceptions import DeleteError, DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.aws.mail import MailNotSent
from chalicelib.config import get_settings
from chalicelib.db.accounts import Company, EmailCode, LinkToken, Login, Slug, Throttle, User
from chalicelib.db.base import (
    CONFLICT_ATTEMPTS,
    Item,
    conflict_pause,
    failed_keys,
    only_conflicted,
    retry_single_write,
    transaction,
    write_transaction,
)
from chalicelib.domain import limits
from chalicelib.domain.errors import (
    AppError,
    Conflict,
    NotFound,
    TooManyRequests,
    ValidationFailed,
)
from chalicelib.domain.passwords import DUMMY_HASH, hash_password, verify_password
from chalicelib.domain.tokens import new_id, new_token, token_hash
from chalicelib.domain.validation import Checker, slugify
from chalicelib.i18n import formatting
from chalicelib.services import activity, directory, limiter, mailer, sessions
from chalicelib.services.sessions import now

log = logging.getLogger("checkos.accounts")

CODE_LIFETIME = timedelta(minutes=30)
CODE_MAX_TRIES = 5
CODE_RESEND_COOLDOWN = timedelta(seconds=60)
RESET_LIFETIME = timedelta(hours=1)
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
# ``CO#<id>`` / this: the code that validated the address last (30 minutes, TTL), so that
# the same code sent again from another tab answers "done".
USED_CODE_SK = "EMAILCODE#USED"
UNLOCK_LIFETIME = timedelta(hours=24)
ROLES = ("admin", "staff")
# Anonymous visitors make these pages e-mail an address they typed: declared
# in domain/limits.py with every other limit (these names are views of it).
SIGNUP_LIMIT_IP = limits.rate_limit("signup", "ip").maximum
RESET_LIMIT_IP = limits.rate_limit("password-reset", "ip").maximum
RESET_LIMIT_EMAIL = limits.rate_limit("password-reset", "recipient").maximum


class InvalidCredentials(AppError):
    status = 401
    key = "login.invalid"


class CodeProblem(AppError):
    status = 400


# -- sign-up -------------------------------------------------------------


SIGNUP_FIELDS = (
    "company_name",
    "business_type",
    "area",
    "contact_name",
    "phone",
    "email",
    "password",
)


@dataclass(frozen=True)
class NewAccount:
    company: Company
    user: User


def check_time_zone(check: Checker, fallback: str) -> str:
    """An IANA zone name from the form; a form without the field keeps ``fallback``."""
    raw = (check.data.get("time_zone") or "").strip()
    if not raw:
        check.clean["time_zone"] = fallback
    elif formatting.is_zone(raw):
        check.clean["time_zone"] = raw
    else:
        check.fail("time_zone", "profile.bad_time_zone")
    return check.clean.get("time_zone", fallback)


def check_signup(form: Mapping[str, str], locale: str = "en") -> dict[str, str]:
    check = Checker(form)
    # The browser's zone (sign-up page script), else the language's market zone.
    check_time_zone(check, formatting.clean_zone(None, locale))
    check.text("company_name", required=True, max_len=120)
    check.text("business_type", required=True, max_len=80)
    check.text("area", required=True, max_len=120)
    check.text("contact_name", required=True, max_len=120)
    check.text("phone", required=True, max_len=40)
    check.email("email")
    check.clean["password"] = check.password("password")
    return check.done()


def sign_up(form: Mapping[str, str], locale: str, ip: str | None = None) -> NewAccount:
    """Create company, first admin, login and unique slug in one transaction."""
    data = check_signup(form, locale)
    limiter.count("signup", ip=ip)
    email = data["email"]
    created = now()
    company_id, user_id = new_id(), new_id()
    password_hash = hash_password(data["password"])
    base_slug = slugify(data["company_name"])
    slug = base_slug
    for attempt in range(CONFLICT_ATTEMPTS + 4):  # taken slugs and conflicts share the tries
        company = Company(
            *Company.key(company_id),
            company_id=company_id,
            name=data["company_name"],
            slug=slug,
            business_type=data["business_type"],
            area=data["area"],
            contact_name=data["contact_name"],
            phone=data["phone"],
            email=email,
            locale=locale,
            time_zone=data["time_zone"],
            created_at=created,
            # Active from day one: the inactivity job's index starts here.
            **activity.index_fields(company_id, created.date()),
            # Listed in the company registry (gsi2) for maintenance tools.
            gsi2pk=Company.registry_partition(company_id),
            gsi2sk=company_id,
        )
        user = User(
            *User.key(company_id, user_id),
            user_id=user_id,
            company_id=company_id,
            email=email,
            name=data["contact_name"],
            role="admin",
            locale=locale,
            created_at=created,
            last_active_day=created.date().isoformat(),
        )
        tx = transaction()
        try:
            with tx:
                tx.save(company, condition=Company.pk.does_not_exist())
                tx.save(
                    Slug(*Slug.key(slug), company_id=company_id), condition=Slug.pk.does_not_exist()
                )
                tx.save(
                    Login(
                        *Login.key(email),
                        user_id=user_id,
                        company_id=company_id,
                        password_hash=password_hash,
                    ),
                    condition=Login.pk.does_not_exist(),
                )
                tx.save(user, condition=User.pk.does_not_exist())
                # The partner directory lists the new company from its first moment.
                directory.write_changes(tx, None, company)
        except TransactWriteError as error:
            failed = failed_keys(error, tx)
            if Login.key(email) in failed:
                raise ValidationFailed({"email": ("signup.email_taken", {})}) from error
            if Slug.key(slug) in failed:
                slug = f"{base_slug[:52]}-{secrets.token_hex(2)}"
                continue  # the slug was taken a moment ago: try another
            if only_conflicted(error):
                # Another sign-up held the same slug or address as we wrote: wait a
                # moment, then the conditions decide (taken address, taken slug).
                conflict_pause(attempt)
                continue
            raise
        company.version = 1
        return NewAccount(company=company, user=user)
    raise Conflict("signup.try_again")


# -- e-mail validation codes --------------------------------------------


def _code_digest(company_id: str, code: str, key: str | None = None) -> str:
    key = key if key is not None else get_settings().secret_key
    return hmac.new(key.encode(), f"{company_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _code_matches(stored: str, company_id: str, given: str) -> bool:
    """A code hashed with any key of the ring: a rotation voids no pending code."""
    return any(
        hmac.compare_digest(stored, _code_digest(company_id, given, key))
        for key in get_settings().signing_keys
    )


def send_email_code(
    company: Company, email: str, locale: str, *, resend: bool = False, ip: str | None = None
) -> None:
    """Store a fresh 6-digit code (hashed) for ``email`` and mail it (counted: LimitReached).

    A resend keeps the tries already spent while the previous code's window
    lasts: asking for new codes never buys more guesses.
    """
    current = now()
    tries, window_ends = 0, current + CODE_LIFETIME
    try:
        existing: EmailCode | None = EmailCode.get(
            *EmailCode.key(company.company_id), consistent_read=True
        )
    except DoesNotExist:
        existing = None
    if existing is not None:
        if resend and existing.sent_at + CODE_RESEND_COOLDOWN > current:
            wait = int((existing.sent_at + CODE_RESEND_COOLDOWN - current).total_seconds()) + 1
            raise TooManyRequests("verify.resend_wait", seconds=wait)
        ends = existing.tries_window_ends or existing.expires_at
        if ends is not None and ends > current:
            tries, window_ends = int(existing.tries or 0), ends
            if resend and tries >= CODE_MAX_TRIES:
                # A code nobody may try is not worth a message.
                raise _too_many_tries(existing)
    limiter.count("email-code", company=company.company_id, recipient=email, ip=ip)
    code = f"{secrets.randbelow(1_000_000):06d}"
    EmailCode(
        *EmailCode.key(company.company_id),
        email=email,
        code_hash=_code_digest(company.company_id, code),
        tries=tries,
        tries_window_ends=window_ends,
        sent_at=current,
        expires_at=current + CODE_LIFETIME,
    ).save()
    try:
        mailer.send_templated(
            email,
            "email_code",
            account_locale(company=company, fallback=locale),
            company=company,
            code=code,
            minutes=int(CODE_LIFETIME.total_seconds() // 60),
        )
    except MailNotSent as problem:
        raise AppError("verify.mail_failed") from problem


def _too_many_tries(pending: EmailCode) -> CodeProblem:
    """The tries are spent until the window of the first code ends (a resend adds none)."""
    ends = pending.tries_window_ends or pending.expires_at or now()
    minutes = max(1, int((ends - now()).total_seconds() + 59) // 60)
    return CodeProblem("verify.too_many_tries", minutes=minutes)


def verify_email_code(company: Company, code: str) -> Company:
    """Check the code; on success the address becomes the company's validated e-mail.

    The try is reserved (a conditional UpdateItem) before the code is
    compared, so parallel guesses never get more than CODE_MAX_TRIES. The
    same right code sent from several tabs at once validates once; the
    other tabs answer as done (the address is validated), never "no code".
    """
    try:
        pending = EmailCode.get(*EmailCode.key(company.company_id), consistent_read=True)
    except DoesNotExist:
        if _used_just_now(company, code):
            return company  # this code validated the address a moment ago (another tab)
        raise CodeProblem("verify.no_code") from None
    if pending.expires_at is None or pending.expires_at <= now():
        raise CodeProblem("verify.expired")
    if pending.tries >= CODE_MAX_TRIES:
        raise _too_many_tries(pending)
    try:
        retry_single_write(
            "code try",
            lambda: pending.update(
                actions=[EmailCode.tries.add(1)],
                condition=(EmailCode.tries < CODE_MAX_TRIES)
                & (EmailCode.code_hash == pending.code_hash),
            ),
        )
    except UpdateError as error:
        if not _condition_failed(error):
            raise
        if _validated_meanwhile(company, pending.email):
            return company  # another tab validated this code a moment ago
        raise _too_many_tries(pending) from None
    given = "".join(ch for ch in code if ch.isdigit())
    if not _code_matches(pending.code_hash, company.company_id, given):
        left = CODE_MAX_TRIES - int(pending.tries)
        if left <= 0:
            raise _too_many_tries(pending)
        raise CodeProblem("verify.wrong_code", left=left)

    def validate(tx: TransactWrite) -> None:
        tx.update(
            company,
            actions=[
                Company.email.set(pending.email),
                Company.email_validated.set(True),
                Company.pending_email.remove(),
            ],
        )
        tx.delete(pending, condition=EmailCode.code_hash == pending.code_hash)
        # What this code did, for a second submit of it (another tab): "done", not "no code".
        tx.save(
            EmailCode(
                company.pk,
                USED_CODE_SK,
                email=pending.email,
                code_hash=pending.code_hash,
                sent_at=now(),
                expires_at=now() + CODE_LIFETIME,
            )
        )

    try:
        write_transaction("e-mail validation", validate)
    except TransactWriteError:
        if _validated_meanwhile(company, pending.email):
            return company  # the other tab's transaction won: same result
        raise
    company.email, company.email_validated, company.pending_email = pending.email, True, None
    return company


def _used_just_now(company: Company, code: str) -> bool:
    """True when ``code`` is the one that validated the company's current address within
    CODE_LIFETIME (its ``EMAILCODE#USED`` record); ``company`` then holds what is stored."""
    try:
        used = EmailCode.get(company.pk, USED_CODE_SK, consistent_read=True)
    except DoesNotExist:
        return False
    if used.expires_at is None or used.expires_at <= now():
        return False
    given = "".join(ch for ch in code if ch.isdigit())
    if not _code_matches(used.code_hash, company.company_id, given):
        return False
    return _validated_meanwhile(company, used.email)


def _validated_meanwhile(company: Company, address: str | None) -> bool:
    """True when ``address`` is now the company's validated e-mail (another tab did it);
    ``company`` then holds what is stored."""
    try:
        fresh = Company.get(*Company.key(company.company_id), consistent_read=True)
    except DoesNotExist:
        return False
    if not (fresh.email_validated and not fresh.pending_email and fresh.email == address):
        return False
    company.email, company.email_validated, company.pending_email = fresh.email, True, None
    company.version = fresh.version
    return True


# -- login ---------------------------------------------------------------


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


# -- password reset -------------------------------------------------------


def account_locale(
    *, login: Login | None = None, company: Company | None = None, fallback: str
) -> str:
    """The language an account's own e-mails (resets, codes) are written in.

    The user's chosen language, else the company's; never the language of
    whichever browser asked (anyone can ask for a reset of any address).
    """
    if company is not None:
        return company.locale or fallback
    if login is None:
        return fallback
    wanted = [User.key(login.company_id, login.user_id), Company.key(login.company_id)]
    found = {type(item): item for item in Item.batch_get(wanted)}
    user, owner = found.get(User), found.get(Company)
    if isinstance(user, User) and user.locale:
        return str(user.locale)
    if isinstance(owner, Company) and owner.locale:
        return str(owner.locale)
    return fallback


def request_password_reset(email: str, locale: str, ip: str | None = None) -> None:
    """E-mail a single-use reset link if the account exists; silent otherwise."""
    email = email.strip().lower()
    limiter.count("password-reset", ip=ip, recipient=email)
    try:
        login = Login.get(*Login.key(email))
    except DoesNotExist:
        return
    token = new_token()
    LinkToken(
        *LinkToken.key("RESET", token_hash(token)),
        kind="RESET",
        company_id=login.company_id,
        user_id=login.user_id,
        email=email,
        expires_at=now() + RESET_LIFETIME,
    ).save()
    try:
        mailer.send_templated(
            email,
            "password_reset",
            account_locale(login=login, fallback=locale),
            link=f"{get_settings().base_url}/password/reset/{token}",
            minutes=int(RESET_LIFETIME.total_seconds() // 60),
        )
    except MailNotSent:
        return


def reset_token(token: str) -> LinkToken:
    try:
        found = LinkToken.get(*LinkToken.key("RESET", token_hash(token)))
    except DoesNotExist:
        raise NotFound("reset.invalid") from None
    if found.expires_at is None or found.expires_at <= now():
        raise NotFound("reset.invalid")
    return found


def reset_password(token: str, form: Mapping[str, str]) -> None:
    """Set the new password, end every session of the user, burn the token."""
    found = reset_token(token)
    check = Checker(form)
    password = check.password("password")
    check.done()
    current = now()
    with transaction() as tx:
        tx.update(
            Login(*Login.key(found.email)),
            actions=[Login.password_hash.set(hash_password(password))],
            condition=Login.user_id == found.user_id,
        )
        tx.update(
            User(*User.key(found.company_id, found.user_id or "")),
            actions=[User.sessions_valid_after.set(current)],
            condition=User.pk.exists(),
        )
        tx.delete(found, condition=LinkToken.pk.exists())
    Throttle(*Throttle.key("email", found.email)).delete()


def log_out(token: str) -> None:
    sessions.end_session(token)

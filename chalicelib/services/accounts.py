"""Sign-up, e-mail validation codes, login with throttling, password reset."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib.aws.mail import MailNotSent
from chalicelib.config import get_settings
from chalicelib.db.accounts import Company, EmailCode, LinkToken, Login, Slug, Throttle, User
from chalicelib.db.base import Item, conflicted, failed_keys, transaction
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
from chalicelib.services import activity, directory, limiter, mailer, sessions
from chalicelib.services.sessions import now

CODE_LIFETIME = timedelta(minutes=30)
CODE_MAX_TRIES = 5
CODE_RESEND_COOLDOWN = timedelta(seconds=60)
RESET_LIFETIME = timedelta(hours=1)
# Map-OS v5 defaults: 5 failures per account or 20 per IP lock for a minute,
# doubling on each new lock up to an hour.
ACCOUNT_FAILURES, IP_FAILURES = 5, 20
FIRST_LOCK_SECONDS, MAX_LOCK_SECONDS = 60, 3600
THROTTLE_MEMORY = timedelta(hours=24)
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


def check_signup(form: Mapping[str, str]) -> dict[str, str]:
    check = Checker(form)
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
    data = check_signup(form)
    limiter.count("signup", ip=ip)
    email = data["email"]
    created = now()
    company_id, user_id = new_id(), new_id()
    password_hash = hash_password(data["password"])
    base_slug = slugify(data["company_name"])
    for attempt in range(8):
        slug = base_slug if attempt == 0 else f"{base_slug[:52]}-{secrets.token_hex(2)}"
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
            if Slug.key(slug) in failed or conflicted(error):
                continue  # the slug was taken a moment ago: try another
            raise
        company.version = 1
        return NewAccount(company=company, user=user)
    raise Conflict("signup.try_again")


# -- e-mail validation codes --------------------------------------------


def _code_digest(company_id: str, code: str) -> str:
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"{company_id}:{code}".encode(), hashlib.sha256).hexdigest()


def send_email_code(
    company: Company, email: str, locale: str, *, resend: bool = False, ip: str | None = None
) -> None:
    """Store a fresh 6-digit code (hashed) for ``email`` and mail it (counted: LimitReached)."""
    current = now()
    if resend:
        try:
            existing = EmailCode.get(*EmailCode.key(company.company_id))
            if existing.sent_at + CODE_RESEND_COOLDOWN > current:
                wait = int((existing.sent_at + CODE_RESEND_COOLDOWN - current).total_seconds()) + 1
                raise TooManyRequests("verify.resend_wait", seconds=wait)
        except DoesNotExist:
            pass
    limiter.count("email-code", company=company.company_id, recipient=email, ip=ip)
    code = f"{secrets.randbelow(1_000_000):06d}"
    EmailCode(
        *EmailCode.key(company.company_id),
        email=email,
        code_hash=_code_digest(company.company_id, code),
        tries=0,
        sent_at=current,
        expires_at=current + CODE_LIFETIME,
    ).save()
    try:
        mailer.send_templated(
            email,
            "email_code",
            locale,
            company=company,
            code=code,
            minutes=int(CODE_LIFETIME.total_seconds() // 60),
        )
    except MailNotSent as problem:
        raise AppError("verify.mail_failed") from problem


def verify_email_code(company: Company, code: str) -> Company:
    """Check the code; on success the address becomes the company's validated e-mail."""
    try:
        pending = EmailCode.get(*EmailCode.key(company.company_id))
    except DoesNotExist:
        raise CodeProblem("verify.no_code") from None
    if pending.expires_at is None or pending.expires_at <= now():
        raise CodeProblem("verify.expired")
    if pending.tries >= CODE_MAX_TRIES:
        raise CodeProblem("verify.too_many_tries")
    given = "".join(ch for ch in code if ch.isdigit())
    if not hmac.compare_digest(pending.code_hash, _code_digest(company.company_id, given)):
        try:
            pending.update(
                actions=[EmailCode.tries.add(1)],
                condition=EmailCode.tries < CODE_MAX_TRIES,
            )
        except UpdateError:
            raise CodeProblem("verify.too_many_tries") from None
        left = CODE_MAX_TRIES - pending.tries
        if left <= 0:
            raise CodeProblem("verify.too_many_tries")
        raise CodeProblem("verify.wrong_code", left=left)
    with transaction() as tx:
        tx.update(
            company,
            actions=[
                Company.email.set(pending.email),
                Company.email_validated.set(True),
                Company.pending_email.remove(),
            ],
        )
        tx.delete(pending, condition=EmailCode.code_hash == pending.code_hash)
    company.email, company.email_validated, company.pending_email = pending.email, True, None
    return company


# -- login ---------------------------------------------------------------


def _locked_for(throttles: list[Throttle]) -> int:
    current = now()
    waits = [
        (t.locked_until - current).total_seconds()
        for t in throttles
        if t.locked_until and t.locked_until > current
    ]
    return int(max(waits)) + 1 if waits else 0


def _record_failure(kind: str, value: str, limit: int) -> None:
    current = now()
    pk, sk = Throttle.key(kind, value)
    item = Throttle(pk, sk)
    item.upsert(
        actions=[
            Throttle.failures.add(1),
            Throttle.expires_at.set(current + THROTTLE_MEMORY),
        ]
    )
    if item.failures >= limit:
        seconds = min(MAX_LOCK_SECONDS, max(FIRST_LOCK_SECONDS, int(item.lock_seconds or 0) * 2))
        item.update(
            actions=[
                Throttle.failures.set(0),
                Throttle.lock_seconds.set(seconds),
                Throttle.locked_until.set(current + timedelta(seconds=seconds)),
            ]
        )


def log_in(email: str, password: str, ip: str) -> tuple[str, Login]:
    """Verify credentials under throttling; returns (session token, login)."""
    email = email.strip().lower()
    throttles = [
        t
        for t in Item.batch_get([Throttle.key("email", email), Throttle.key("ip", ip)])
        if isinstance(t, Throttle)
    ]
    wait = _locked_for(throttles)
    if wait:
        raise TooManyRequests("login.locked", minutes=max(1, (wait + 59) // 60))
    try:
        login = Login.get(*Login.key(email))
    except DoesNotExist:
        verify_password(DUMMY_HASH, password)  # same time as a real check
        login = None
    if login is None or not verify_password(login.password_hash, password):
        _record_failure("email", email, ACCOUNT_FAILURES)
        _record_failure("ip", ip, IP_FAILURES)
        raise InvalidCredentials()
    if any(t.pk == Throttle.key("email", email)[0] for t in throttles):
        Throttle(*Throttle.key("email", email)).delete()
    return sessions.start_session(login.user_id, login.company_id), login


def password_matches(email: str, user_id: str, password: str) -> bool:
    """A signed-in user's re-entered password (before a destructive action).

    Counted by the same per-address throttle as sign-in, so a left-open
    session cannot be used to guess the password.
    """
    email = email.strip().lower()
    key = Throttle.key("email", email)
    wait = _locked_for([t for t in Item.batch_get([key]) if isinstance(t, Throttle)])
    if wait:
        raise TooManyRequests("login.locked", minutes=max(1, (wait + 59) // 60))
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
    if not valid:
        _record_failure("email", email, ACCOUNT_FAILURES)
    return valid


# -- password reset -------------------------------------------------------


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
            locale,
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

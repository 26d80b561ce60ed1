"""Password reset: a single-use link e-mailed to the account, then a new password."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from pynamodb.exceptions import DoesNotExist

from chalicelib.aws.mail import MailNotSent
from chalicelib.config import get_settings
from chalicelib.db.accounts import LinkToken, Login, Throttle, User
from chalicelib.db.base import transaction
from chalicelib.domain import limits
from chalicelib.domain.errors import NotFound
from chalicelib.domain.passwords import hash_password
from chalicelib.domain.tokens import new_token, token_hash
from chalicelib.domain.validation import Checker
from chalicelib.services import limiter, mailer
from chalicelib.services.account_language import account_locale
from chalicelib.services.sessions import now

RESET_LIFETIME = timedelta(hours=1)
# Anonymous visitors make this page e-mail an address they typed: declared in
# domain/limits.py with every other limit (these names are views of it).
RESET_LIMIT_IP = limits.rate_limit("password-reset", "ip").maximum
RESET_LIMIT_EMAIL = limits.rate_limit("password-reset", "recipient").maximum


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
        # The link was written moments ago (the mail it came in): read strongly consistent.
        found = LinkToken.get(*LinkToken.key("RESET", token_hash(token)), consistent_read=True)
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

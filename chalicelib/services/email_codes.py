"""E-mail validation codes: send a 6-digit code, check it within its tries window."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib import signing_keys
from chalicelib.aws.mail import MailNotSent
from chalicelib.db.accounts import Company, EmailCode
from chalicelib.db.base import retry_single_write, write_transaction
from chalicelib.domain.errors import AppError, TooManyRequests
from chalicelib.services import limiter, mailer
from chalicelib.services.account_language import account_locale
from chalicelib.services.sessions import now

CODE_LIFETIME = timedelta(minutes=30)
CODE_MAX_TRIES = 5
CODE_RESEND_COOLDOWN = timedelta(seconds=60)
# ``CO#<id>`` / this: the code that validated the address last (30 minutes, TTL), so that
# the same code sent again from another tab answers "done".
USED_CODE_SK = "EMAILCODE#USED"


class CodeProblem(AppError):
    status = 400


def _code_digest(company_id: str, code: str, key: str | None = None) -> str:
    key = key if key is not None else signing_keys.current()
    return hmac.new(key.encode(), f"{company_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _code_matches(stored: str, company_id: str, given: str) -> bool:
    """A code hashed with any key of the ring: a rotation voids no pending code."""
    return any(
        hmac.compare_digest(stored, _code_digest(company_id, given, key))
        for key in signing_keys.accepted()
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
        if error.cause_response_code != "ConditionalCheckFailedException":
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

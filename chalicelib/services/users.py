"""Staff users of a company: language, roles, invitations, removal."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.aws.mail import MailNotSent
from chalicelib.config import get_settings
from chalicelib.db import keys
from chalicelib.db.accounts import Company, Invitation, LinkToken, Login, User
from chalicelib.db.base import failed_keys, refuse_as, transaction, write_transaction
from chalicelib.db.overlap import together
from chalicelib.domain.errors import AppError, Conflict, NotFound, ValidationFailed
from chalicelib.domain.passwords import hash_password
from chalicelib.domain.tokens import new_id, new_token, token_hash
from chalicelib.domain.validation import Checker
from chalicelib.services import limiter, mailer
from chalicelib.services.sessions import Principal, now

ROLES = ("admin", "staff")
INVITE_KIND = "INVITE"
# Jobber / Housecall Pro keep e-mailed links alive for 7 to 14 days; a week is
# long enough for someone on holiday and short enough to forget stale ones.
INVITE_LIFETIME = timedelta(days=7)
# Invitations are e-mails to addresses nobody validated, sent in the
# company's name: a cap keeps one account from using CheckOS to spam.
MAX_PENDING_INVITATIONS = 25
# Ids come from URLs: anything else is unknown, and must not reach DynamoDB
# as an oversized or odd key (that would answer 500, not 404).
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class LastAdmin(Conflict):
    key = "users.last_admin"


class InvitationGone(NotFound):
    key = "invite.invalid"


def set_user_locale(user: User, locale: str) -> None:
    user.update(actions=[User.locale.set(locale)])


# -- the users page ------------------------------------------------------


@dataclass(frozen=True)
class Team:
    users: list[User]
    invitations: list[Invitation]


def list_team(company_id: str) -> Team:
    """A company's users and pending invitations: one Query for each, sent together."""
    users, invitations = together(
        lambda: list(User.query(keys.company(company_id), User.sk.startswith(User.SK_PREFIX))),
        lambda: pending_invitations(company_id),
    )
    users.sort(key=lambda user: (not user.is_admin, user.name.casefold(), user.email))
    return Team(users=users, invitations=invitations)


def pending_invitations(company_id: str) -> list[Invitation]:
    """Newest first; one Query on the company's ``INVITE#`` items."""
    found = Invitation.query(
        keys.company(company_id), Invitation.sk.startswith(Invitation.SK_PREFIX)
    )
    return sorted(found, key=lambda invitation: invitation.created_at, reverse=True)


def is_expired(invitation: Invitation | LinkToken) -> bool:
    # DynamoDB deletes expired items up to days late (moto never does): the
    # expiry instant itself is the rule.
    return invitation.expires_at is None or invitation.expires_at <= now()


# -- inviting ------------------------------------------------------------


def check_invitation(form: Mapping[str, str]) -> dict[str, str]:
    check = Checker(form)
    check.text("name", required=True, max_len=120)
    check.email("email")
    check.choice("role", ROLES)
    return check.done()


def invite(
    principal: Principal, form: Mapping[str, str], locale: str, ip: str | None = None
) -> Invitation:
    """Store a pending invitation (hashed token, 7-day TTL) and e-mail its link."""
    data = check_invitation(form)
    email = data["email"]
    try:
        Login.get(*Login.key(email))
    except DoesNotExist:
        pass
    else:
        raise ValidationFailed({"email": ("users.email_has_account", {})})
    company = principal.company
    pending = pending_invitations(company.company_id)
    # Inviting an address again replaces its earlier invitation: one live link each.
    replaced = [item for item in pending if item.email == email]
    live = [item for item in pending if not is_expired(item) and item.email != email]
    if len(live) >= MAX_PENDING_INVITATIONS:
        raise ValidationFailed(
            {"email": ("users.too_many_invitations", {"n": MAX_PENDING_INVITATIONS})}
        )
    # Counted before anything is stored: a refusal leaves the list as it was.
    limiter.count("staff-invite", company=company.company_id, recipient=email, ip=ip)
    token = new_token()
    invite_id = token_hash(token)
    created = now()
    expires = created + INVITE_LIFETIME
    invitation = Invitation(
        *Invitation.key(company.company_id, invite_id),
        invite_id=invite_id,
        email=email,
        name=data["name"],
        role=data["role"],
        invited_by=principal.user.name,
        created_at=created,
        expires_at=expires,
    )
    link = LinkToken(
        *LinkToken.key(INVITE_KIND, invite_id),
        kind=INVITE_KIND,
        company_id=company.company_id,
        email=email,
        role=data["role"],
        name=data["name"],
        created_by=principal.user_id,
        expires_at=expires,
    )
    with transaction() as tx:
        tx.save(invitation, condition=Invitation.pk.does_not_exist())
        tx.save(link, condition=LinkToken.pk.does_not_exist())
        for old in replaced:
            tx.delete(old)
            tx.delete(LinkToken(*LinkToken.key(INVITE_KIND, old.invite_id)))
    try:
        mailer.send_templated(
            email,
            "invitation",
            locale,
            # Replies reach the company only through an address it proved it owns.
            reply_to=company.email if company.email_validated else None,
            from_name=company.name,
            company=company,
            inviter=principal.user.name,
            name=data["name"],
            role=data["role"],
            link=f"{get_settings().base_url}/invite/{token}",
            days=INVITE_LIFETIME.days,
            subject_params={"company": company.name},
        )
    except MailNotSent as problem:
        # An invitation nobody received would only sit on the list: undo it.
        _delete_invitation(company.company_id, invite_id)
        raise AppError("users.invite_mail_failed") from problem
    return invitation


def _delete_invitation(company_id: str, invite_id: str) -> None:
    """Invitation and link in one transaction; NotFound if either is gone or not this company's."""

    def delete(tx: TransactWrite) -> None:
        tx.delete(
            Invitation(*Invitation.key(company_id, invite_id)),
            condition=Invitation.pk.exists(),
        )
        # Keyed by the signed-in company: another company's id matches nothing.
        tx.delete(
            LinkToken(*LinkToken.key(INVITE_KIND, invite_id)),
            condition=LinkToken.company_id == company_id,
        )

    write_transaction("invitation deleted", delete, refuse_as(NotFound))


def revoke_invitation(company_id: str, invite_id: str) -> None:
    """Delete the invitation and its link in one transaction; 404 if not this company's."""
    if not _ID.match(invite_id):
        raise NotFound()
    _delete_invitation(company_id, invite_id)


# -- accepting -----------------------------------------------------------


@dataclass(frozen=True)
class PendingInvite:
    link: LinkToken
    company: Company


def invitation_for(token: str) -> PendingInvite:
    """The live invitation behind an e-mailed token, or the 404 page."""
    try:
        link = LinkToken.get(*LinkToken.key(INVITE_KIND, token_hash(token)))
        company = Company.get(*Company.key(link.company_id))
    except DoesNotExist:
        raise InvitationGone() from None
    if link.kind != INVITE_KIND or is_expired(link):
        raise InvitationGone()
    return PendingInvite(link=link, company=company)


def check_acceptance(form: Mapping[str, str]) -> dict[str, str]:
    check = Checker(form)
    check.text("name", required=True, max_len=120)
    check.clean["password"] = check.password("password")
    return check.done()


def accept_invitation(token: str, form: Mapping[str, str], locale: str) -> User:
    """Create Login + User and burn the invitation, all in one transaction."""
    pending = invitation_for(token)
    data = check_acceptance(form)
    link, company = pending.link, pending.company
    role = link.role if link.role in ROLES else "staff"
    user_id = new_id()
    user = User(
        *User.key(company.company_id, user_id),
        user_id=user_id,
        company_id=company.company_id,
        email=link.email,
        name=data["name"],
        role=role,
        locale=locale,
        created_at=now(),
    )
    password_hash = hash_password(data["password"])

    def accept(tx: TransactWrite) -> None:
        tx.save(
            Login(
                *Login.key(link.email),
                user_id=user_id,
                company_id=company.company_id,
                password_hash=password_hash,
            ),
            condition=Login.pk.does_not_exist(),
        )
        tx.save(user, condition=User.pk.does_not_exist())
        # Single use and expiry are checked here, atomically, not only above.
        tx.delete(link, condition=LinkToken.pk.exists() & (LinkToken.expires_at > now()))
        tx.delete(
            Invitation(*Invitation.key(company.company_id, token_hash(token))),
            condition=Invitation.pk.exists(),
        )
        if role == "admin":
            _change_admin_count(tx, company, +1)

    def refuse(error: TransactWriteError, tx: TransactWrite) -> None:
        failed = failed_keys(error, tx)
        # The link itself first: a double submit whose twin just created this very
        # login is "used", not "this address has an account elsewhere".
        if (link.pk, link.sk) not in failed and Login.key(link.email) in failed:
            raise Conflict("invite.email_taken") from error
        # Used a moment ago (a double submit), revoked or just expired.
        raise InvitationGone() from error

    write_transaction("invitation accepted", accept, refuse)
    return user


# -- roles and removal ---------------------------------------------------


def _member(company_id: str, user_id: str) -> User:
    # Always keyed by the signed-in company: a user id of another company
    # simply has no item here, so it answers 404 like an unknown id.
    if not _ID.match(user_id):
        raise NotFound()
    try:
        return User.get(*User.key(company_id, user_id))
    except DoesNotExist:
        raise NotFound() from None


def _change_admin_count(tx: TransactWrite, company: Company, delta: int) -> None:
    """Add ``delta`` to the admin count inside ``tx``; losing the last admin cancels it."""
    condition = Company.pk.exists()
    if delta < 0:
        condition = condition & (Company.admin_count > 1)
    tx.update(
        company,
        actions=[Company.admin_count.add(delta)],
        condition=condition,
        # The count is guarded by its own condition: a profile edit made since
        # the page loaded must not make a role change fail (PynamoDB still
        # bumps the version, so a stale profile form is caught as usual).
        add_version_condition=False,
    )


def _refusal(company_id: str) -> Callable[[TransactWriteError, TransactWrite], NoReturn]:
    """A role change's or removal's answer when a condition failed (conflicts are retried)."""

    def refuse(error: TransactWriteError, tx: TransactWrite) -> NoReturn:
        if Company.key(company_id) in failed_keys(error, tx):
            raise LastAdmin() from error
        # The user changed or left meanwhile: the page was stale.
        raise Conflict("users.changed_meanwhile") from error

    return refuse


def set_role(principal: Principal, user_id: str, role: str) -> User:
    """Promote or demote a user; the last admin of a company cannot be demoted."""
    target = _member(principal.company_id, user_id)
    check = Checker({"role": role})
    check.choice("role", ROLES)
    check.done()
    if target.role == role:
        return target
    delta = 1 if role == "admin" else -1

    def change(tx: TransactWrite) -> None:
        tx.update(
            target,
            actions=[User.role.set(role)],
            condition=User.role == target.role,
        )
        _change_admin_count(tx, principal.company, delta)

    write_transaction("role change", change, _refusal(principal.company_id))
    target.role = role
    return target


def remove_user(principal: Principal, user_id: str) -> User:
    """Delete the User and its Login together: every session of theirs ends at once."""
    target = _member(principal.company_id, user_id)

    def remove(tx: TransactWrite) -> None:
        tx.delete(target, condition=User.role == target.role)
        tx.delete(
            Login(*Login.key(target.email)),
            condition=Login.user_id == target.user_id,
        )
        if target.is_admin:
            _change_admin_count(tx, principal.company, -1)

    write_transaction("user removed", remove, _refusal(principal.company_id))
    return target

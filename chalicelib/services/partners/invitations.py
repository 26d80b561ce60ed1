"""Inviting a company not on CheckOS: the e-mailed link, its expiry, joining by it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.transactions import TransactWrite

from chalicelib.aws.mail import MailNotSent
from chalicelib.config import get_settings
from chalicelib.db.accounts import Company, Login
from chalicelib.db.base import refuse_as, transaction, write_transaction
from chalicelib.db.partners import PartnerInvite, Partnership
from chalicelib.domain.errors import AppError, NotFound, ValidationFailed
from chalicelib.domain.sharing import PROPOSED
from chalicelib.domain.tokens import new_token, token_hash
from chalicelib.domain.validation import Checker
from chalicelib.services import limiter, mailer, notifications
from chalicelib.services.companies import require_active
from chalicelib.services.partners.links import (
    RELATIONS,
    Terms,
    check_terms,
    history_entry,
    mirror,
    overview,
    require_admin,
)
from chalicelib.services.sessions import Principal, now

# Jobber / Housecall Pro keep e-mailed links alive 7-14 days; a company
# deciding whether to join a new service needs the longer end.
INVITE_LIFETIME = timedelta(days=14)


MAX_PENDING_INVITES = 25


_HASH = re.compile(r"^[0-9a-f]{64}$")


class InvitationGone(NotFound):
    key = "partners.invite_invalid"


def is_expired(invite: PartnerInvite) -> bool:
    # TTL deletion lags by up to days: the expiry instant itself is the rule.
    return invite.expires_at is None or invite.expires_at <= now()


def invite(
    principal: Principal, form: Mapping[str, str], locale: str, ip: str | None = None
) -> PartnerInvite:
    """E-mail a company not on CheckOS a 14-day link to sign up and see our proposal."""
    require_admin(principal)
    me = principal.company
    require_active(me)
    check = Checker(form)
    email = check.email("email")
    company_name = check.text("company_name", max_len=120)
    check.choice("relationship", tuple(RELATIONS))
    check.done()
    terms = check_terms(form)
    try:
        Login.get(*Login.key(email))
    except DoesNotExist:
        pass
    else:
        raise ValidationFailed({"email": ("partners.invite_has_account", {})})
    pending = [i for i in overview(me.company_id).invitations]
    replaced = [i for i in pending if i.email == email]
    live = [i for i in pending if not is_expired(i) and i.email != email]
    if len(live) >= MAX_PENDING_INVITES:
        raise ValidationFailed({"email": ("partners.too_many_invites", {"n": MAX_PENDING_INVITES})})
    # Counted before anything is stored: a refusal leaves the list as it was.
    limiter.count("partner-invite", company=me.company_id, recipient=email, ip=ip)
    token = new_token()
    invite_id = token_hash(token)
    created = now()
    fields: dict[str, Any] = {
        "invite_id": invite_id,
        "inviter_id": me.company_id,
        "inviter_name": me.name,
        "invited_by": principal.user.name,
        "email": email,
        "company_name": company_name,
        "we_approve": terms.we_approve,
        "we_execute": terms.we_execute,
        "quote_required": terms.quote_required,
        "created_at": created,
        "expires_at": created + INVITE_LIFETIME,
    }
    listing = PartnerInvite(*PartnerInvite.listing_key(me.company_id, invite_id), **fields)
    with transaction() as tx:
        tx.save(
            PartnerInvite(*PartnerInvite.link_key(invite_id), **fields),
            condition=PartnerInvite.pk.does_not_exist(),
        )
        tx.save(listing, condition=PartnerInvite.pk.does_not_exist())
        for old in replaced:
            tx.delete(old)
            tx.delete(PartnerInvite(*PartnerInvite.link_key(old.invite_id)))
    try:
        mailer.send_templated(
            email,
            "partner_invite",
            locale,
            reply_to=me.email if me.email_validated else None,
            from_name=me.name,
            inviter=me.name,
            person=principal.user.name,
            company_name=company_name,
            relation=Terms(terms.we_execute, terms.we_approve, terms.quote_required).relation,
            link=f"{get_settings().base_url}/signup?invite={token}",
            days=INVITE_LIFETIME.days,
            subject_params={"inviter": me.name},
        )
    except MailNotSent as problem:
        # An invitation nobody received would only sit on the list: undo it.
        _delete_invitation(me.company_id, invite_id)
        raise AppError("partners.invite_mail_failed") from problem
    return listing


def _delete_invitation(company_id: str, invite_id: str) -> None:
    """Listing and link in one transaction; NotFound if either is gone or not this company's."""

    def delete(tx: TransactWrite) -> None:
        tx.delete(
            PartnerInvite(*PartnerInvite.listing_key(company_id, invite_id)),
            condition=PartnerInvite.pk.exists(),
        )
        # Keyed by the signed-in company: another company's id matches nothing.
        tx.delete(
            PartnerInvite(*PartnerInvite.link_key(invite_id)),
            condition=PartnerInvite.inviter_id == company_id,
        )

    write_transaction("partner invitation deleted", delete, refuse_as(NotFound))


def revoke_invitation(principal: Principal, invite_id: str) -> None:
    require_admin(principal)
    if not _HASH.match(invite_id or ""):
        raise NotFound()
    _delete_invitation(principal.company_id, invite_id)


def invitation_for(token: str) -> PartnerInvite:
    """The live invitation behind an e-mailed token (the token is the capability)."""
    if not token or len(token) > 100:
        raise InvitationGone()
    try:
        found = PartnerInvite.get(*PartnerInvite.link_key(token_hash(token)))
    except DoesNotExist:
        raise InvitationGone() from None
    if is_expired(found):
        raise InvitationGone()
    return found


def invitation_prefill(token: str) -> dict[str, str]:
    """What the sign-up form shows for an invitation link."""
    found = invitation_for(token)
    return {"company_name": found.company_name, "email": found.email, "invite": token}


def join_by_invitation(token: str, new_company: Company) -> Partnership:
    """After sign-up: the inviter's proposal, now waiting for the new company's admin.

    Returns the new company's side of it.
    """
    found = invitation_for(token)
    try:
        inviter = Company.get(*Company.key(found.inviter_id))
    except DoesNotExist:
        raise InvitationGone() from None
    at = now()
    terms = Terms.of(found)
    mine = Partnership(
        *Partnership.key(inviter.company_id, new_company.company_id),
        company_id=inviter.company_id,
        partner_id=new_company.company_id,
        partner_name=new_company.name,
        partner_slug=new_company.slug,
        we_approve=terms.we_approve,
        we_execute=terms.we_execute,
        quote_required=terms.quote_required,
        state=PROPOSED,
        awaiting=new_company.company_id,
        proposed_by=inviter.company_id,
        config_version=1,
        rev=1,
        created_at=at,
        updated_at=at,
        history=[history_entry(at, "proposed", PROPOSED, inviter, found.invited_by, terms)],
    )
    theirs = mirror(mine, inviter)

    def link(tx: TransactWrite) -> None:
        tx.save(mine, condition=Partnership.pk.does_not_exist())
        tx.save(theirs, condition=Partnership.pk.does_not_exist())
        # Single use and expiry, checked atomically here too.
        tx.delete(
            PartnerInvite(*PartnerInvite.link_key(found.invite_id)),
            condition=PartnerInvite.pk.exists() & (PartnerInvite.expires_at > at),
        )
        tx.delete(PartnerInvite(*PartnerInvite.listing_key(inviter.company_id, found.invite_id)))

    write_transaction("partner invitation accepted", link, refuse_as(InvitationGone))
    notifications.notify_company(
        inviter.company_id, "partnership", params={"partner": new_company.name}
    )
    notifications.notify_company(
        new_company.company_id, "partnership", params={"partner": inviter.name}
    )
    return theirs

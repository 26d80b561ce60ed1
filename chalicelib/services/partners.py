"""Partnerships: propose, accept, change (suspends), delete (disables), invite, shared orders.

A partnership is two items, one per company, each telling the relationship
from its own side. Every change computes both from the acting company's item
and writes them in ONE transaction conditioned on the ``rev`` (and state) it
was decided from, so the sides never disagree: of two admins racing, one
wins and the other gets PartnershipChanged. Shared orders: the owner (the
company the customer dealt with) approves, the partner executes; every write
by the executor carries a condition check on its partnership item.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.aws.mail import MailNotSent
from chalicelib.config import get_settings
from chalicelib.db import keys
from chalicelib.db.accounts import Company, Login
from chalicelib.db.base import (
    Item,
    cancellation_codes,
    conflicted,
    failed_keys,
    query_page,
    transaction,
)
from chalicelib.db.orders import Order, OrderEntry
from chalicelib.db.overlap import start
from chalicelib.db.partners import PartnerChange, PartnerInvite, Partnership
from chalicelib.domain import workflow
from chalicelib.domain.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed
from chalicelib.domain.tokens import new_token, token_hash
from chalicelib.domain.validation import Checker
from chalicelib.services import limiter, mailer, notifications, orders
from chalicelib.services.companies import CompanyInactive, require_active
from chalicelib.services.orders import Actor, EditConflict
from chalicelib.services.sessions import Principal, now

log = logging.getLogger("checkos.partners")

PROPOSED, ACTIVE, SUSPENDED, DISABLED = "proposed", "active", "suspended", "disabled"
STATES: tuple[str, ...] = (PROPOSED, ACTIVE, SUSPENDED, DISABLED)
# relationship choice -> (we approve, we execute), from the choosing company's side
RELATIONS: dict[str, tuple[bool, bool]] = {
    "approve": (True, False),  # we approve, they execute
    "execute": (False, True),  # they approve, we execute
    "both": (True, True),
}
# Jobber / Housecall Pro keep e-mailed links alive 7-14 days; a company
# deciding whether to join a new service needs the longer end.
INVITE_LIFETIME = timedelta(days=14)
MAX_PENDING_INVITES = 25
HISTORY_KEPT = 50
DELETE_ATTEMPTS = 5
RETURN_PAGE = 100  # list entries read per Query when handing orders back after a deletion
# What the executing partner may do to a shared order; cancelling and
# reopening stay with the owner, who answers to the customer.
EXECUTOR_ACTIONS = frozenset({"schedule", "start", "complete"})
NEEDS_APPROVED_QUOTE = frozenset({"start", "complete"})
QUOTE_TEXT_MAX = 2000
_COMPANY_ID = re.compile(r"^[0-9a-f]{8,32}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


class PartnerActionRefused(Forbidden):
    """A partner may not do this now; the order page shows the reason as a message."""

    key = "partners.refused"


class PartnershipNotActive(PartnerActionRefused):
    key = "partners.not_active"


class QuoteNotApproved(PartnerActionRefused):
    key = "partners.quote_needed"


class OwnerDecides(PartnerActionRefused):
    key = "partners.owner_decides"


class ExecutorOnly(PartnerActionRefused):
    key = "partners.executor_only"


class PartnershipChanged(Conflict):
    key = "partners.changed_meanwhile"


class AlreadyPartners(Conflict):
    key = "partners.already"


class InvitationGone(NotFound):
    key = "partners.invite_invalid"


# -- terms ---------------------------------------------------------------------


@dataclass(frozen=True)
class Terms:
    """The relationship from one company's side."""

    we_approve: bool
    we_execute: bool
    quote_required: bool = True

    @property
    def relation(self) -> str:
        for name, flags in RELATIONS.items():
            if flags == (self.we_approve, self.we_execute):
                return name
        return "both"

    @classmethod
    def of(cls, item: Partnership | PartnerInvite) -> Terms:
        return cls(bool(item.we_approve), bool(item.we_execute), bool(item.quote_required))


def check_terms(form: Mapping[str, str]) -> Terms:
    check = Checker(form)
    relation = check.choice("relationship", tuple(RELATIONS))
    check.done()
    we_approve, we_execute = RELATIONS[relation]
    quote = (form.get("quote_required") or "").lower() in ("1", "on", "yes", "true")
    return Terms(we_approve, we_execute, quote)


def relation_of(item: Partnership | PartnerInvite) -> str:
    return Terms.of(item).relation


# -- the two sides -------------------------------------------------------------


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("error.admin_only")


def _valid_id(company_id: str) -> str:
    # Ids come from URLs and forms: anything odd is simply unknown (404, not 500).
    if not _COMPANY_ID.match(company_id or ""):
        raise NotFound()
    return company_id


def own_side(company_id: str, partner_id: str) -> Partnership:
    """The signed-in company's item of a partnership (keyed by it: others' ids are 404)."""
    try:
        return Partnership.get(
            *Partnership.key(company_id, _valid_id(partner_id)), consistent_read=True
        )
    except DoesNotExist:
        raise NotFound() from None


def _entry(
    at: datetime, kind: str, state: str, by: Company, actor_name: str, terms: Terms
) -> PartnerChange:
    return PartnerChange(
        at=at,
        kind=kind,
        state=state,
        by_company=by.company_id,
        by_name=by.name,
        actor_name=actor_name,
        we_approve=terms.we_approve,
        we_execute=terms.we_execute,
        quote_required=terms.quote_required,
    )


def _mirror_entry(entry: PartnerChange) -> PartnerChange:
    return PartnerChange(
        at=entry.at,
        kind=entry.kind,
        state=entry.state,
        by_company=entry.by_company,
        by_name=entry.by_name,
        actor_name=entry.actor_name,
        we_approve=entry.we_execute,
        we_execute=entry.we_approve,
        quote_required=entry.quote_required,
    )


def mirror(mine: Partnership, me: Company) -> Partnership:
    """The other company's item, computed from ours: the same facts seen from its side."""
    return Partnership(
        *Partnership.key(mine.partner_id, mine.company_id),
        company_id=mine.partner_id,
        partner_id=mine.company_id,
        partner_name=me.name,
        partner_slug=me.slug,
        we_approve=mine.we_execute,
        we_execute=mine.we_approve,
        quote_required=mine.quote_required,
        state=mine.state,
        awaiting=mine.awaiting,
        proposed_by=mine.proposed_by,
        config_version=mine.config_version,
        rev=mine.rev,
        created_at=mine.created_at,
        updated_at=mine.updated_at,
        history=[_mirror_entry(e) for e in mine.history or []],
    )


def next_state(
    current: Partnership,
    me: Company,
    actor_name: str,
    *,
    kind: str,
    state: str,
    awaiting: str | None,
    terms: Terms | None = None,
) -> Partnership:
    """Our item after a change: terms, state, rev + 1, one more history line."""
    at = now()
    terms = terms or Terms.of(current)
    config_changed = terms != Terms.of(current)
    history = list(current.history or [])[-(HISTORY_KEPT - 1) :]
    return Partnership(
        current.pk,
        current.sk,
        company_id=current.company_id,
        partner_id=current.partner_id,
        partner_name=current.partner_name,
        partner_slug=current.partner_slug,
        we_approve=terms.we_approve,
        we_execute=terms.we_execute,
        quote_required=terms.quote_required,
        state=state,
        awaiting=awaiting,
        proposed_by=current.proposed_by,
        config_version=int(current.config_version or 1) + (1 if config_changed else 0),
        rev=int(current.rev or 0) + 1,
        created_at=current.created_at,
        updated_at=at,
        history=[*history, _entry(at, kind, state, me, actor_name, terms)],
    )


def _commit(mine: Partnership, me: Company, expected: Partnership | None) -> Partnership:
    """Both sides in one transaction, each conditioned on the rev/state we decided from."""
    theirs = mirror(mine, me)
    if expected is None:
        condition = Partnership.pk.does_not_exist()
    else:
        condition = (Partnership.rev == int(expected.rev)) & (Partnership.state == expected.state)
    tx = transaction()
    try:
        with tx:
            tx.save(mine, condition=condition)
            tx.save(theirs, condition=condition)
    except TransactWriteError as error:
        if failed_keys(error, tx) or conflicted(error):
            raise PartnershipChanged() from error
        raise
    return mine


def _tell(partner_id: str, me: Company, *, request: Partnership | None = None) -> None:
    """Notify the other company; a change it must accept is also e-mailed to it."""
    notifications.notify_company(partner_id, "partnership", params={"partner": me.name})
    if request is None:
        return
    try:
        partner = Company.get(*Company.key(partner_id))
    except DoesNotExist:
        return
    if not partner.email_validated:
        return
    try:
        # The change is saved and the partner sees it in the app: beyond the
        # sending limits only the e-mail is left out.
        limiter.count(
            "partner-request",
            company=me.company_id,
            recipient=partner.email,
            ip=limiter.request_ip(),
        )
    except limiter.LimitReached:
        log.warning("partner request over its sending limit", extra={"company": partner_id})
        return
    try:
        mailer.send_templated(
            partner.email,
            "partner_request",
            partner.locale or "en",
            reply_to=me.email if me.email_validated else None,
            from_name=me.name,
            partner=me.name,
            relation=Terms.of(mirror(request, me)).relation,
            changed=request.state == SUSPENDED,
            link=f"{get_settings().base_url}/partners/{me.company_id}",
            subject_params={"partner": me.name},
        )
    except MailNotSent:
        log.warning("partner request not e-mailed", extra={"company": partner_id})


# -- proposing, accepting, changing, deleting --------------------------------


@dataclass(frozen=True)
class ProposalTarget:
    company: Company
    existing: Partnership | None


def proposal_target(company_id: str, target_id: str) -> ProposalTarget:
    """The company to propose to and any partnership we already have: one BatchGetItem."""
    _valid_id(target_id)
    wanted = [Company.key(target_id), Partnership.key(company_id, target_id)]
    found = {(item.pk, item.sk): item for item in Item.batch_get(wanted)}
    target, existing = found.get(wanted[0]), found.get(wanted[1])
    if not isinstance(target, Company) or not target.active or target_id == company_id:
        raise NotFound()
    return ProposalTarget(
        company=target, existing=existing if isinstance(existing, Partnership) else None
    )


def propose(principal: Principal, target_id: str, form: Mapping[str, str]) -> Partnership:
    """Propose (or, after a deletion, propose again); it waits for the other admin."""
    _require_admin(principal)
    me = principal.company
    require_active(me)
    terms = check_terms(form)
    target = proposal_target(me.company_id, target_id)
    existing = target.existing
    if existing is not None and existing.state != DISABLED:
        raise AlreadyPartners(partner=target.company.name)
    at = now()
    history = list(existing.history or [])[-(HISTORY_KEPT - 1) :] if existing else []
    mine = Partnership(
        *Partnership.key(me.company_id, target_id),
        company_id=me.company_id,
        partner_id=target_id,
        partner_name=target.company.name,
        partner_slug=target.company.slug,
        we_approve=terms.we_approve,
        we_execute=terms.we_execute,
        quote_required=terms.quote_required,
        state=PROPOSED,
        awaiting=target_id,
        proposed_by=me.company_id,
        config_version=int(existing.config_version or 1) + 1 if existing else 1,
        rev=int(existing.rev or 0) + 1 if existing else 1,
        created_at=at,
        updated_at=at,
        history=[*history, _entry(at, "proposed", PROPOSED, me, principal.user.name, terms)],
    )
    _commit(mine, me, existing)
    _tell(target_id, me, request=mine)
    return mine


def _expect(current: Partnership, rev: str | int | None) -> None:
    """The admin decided on the page at ``rev``: anything newer must be seen first."""
    try:
        seen = int(rev) if rev is not None else -1
    except ValueError:
        seen = -1
    if seen != int(current.rev or 0):
        raise PartnershipChanged()


def accept(principal: Principal, partner_id: str, rev: str | int | None) -> Partnership:
    """Accept the terms the other company proposed or changed: the link becomes active."""
    _require_admin(principal)
    me = principal.company
    require_active(me)
    current = own_side(me.company_id, partner_id)
    _expect(current, rev)
    if current.state not in (PROPOSED, SUSPENDED) or current.awaiting != me.company_id:
        raise PartnershipChanged()
    mine = next_state(
        current, me, principal.user.name, kind="accepted", state=ACTIVE, awaiting=None
    )
    _commit(mine, me, current)
    _tell(partner_id, me)
    return mine


def change(principal: Principal, partner_id: str, form: Mapping[str, str]) -> Partnership | None:
    """New terms: an active link is suspended until the other company accepts them.

    Returns None when nothing changed. Changing a proposal that waits for us
    is a counter-proposal: it then waits for the other company.
    """
    _require_admin(principal)
    me = principal.company
    require_active(me)
    current = own_side(me.company_id, partner_id)
    terms = check_terms(form)
    _expect(current, form.get("rev"))
    if current.state == DISABLED:
        raise PartnershipChanged()
    if terms == Terms.of(current):
        return None
    state = PROPOSED if current.state == PROPOSED else SUSPENDED
    mine = next_state(
        current,
        me,
        principal.user.name,
        kind="changed",
        state=state,
        awaiting=current.partner_id,
        terms=terms,
    )
    _commit(mine, me, current)
    _tell(partner_id, me, request=mine)
    return mine


def delete(principal: Principal, partner_id: str) -> Partnership:
    """Disable the link at once, whatever its state: no acceptance needed.

    A concurrent change only makes us read again: deletion always wins.
    """
    _require_admin(principal)
    me = principal.company
    require_active(me)
    for _attempt in range(DELETE_ATTEMPTS):
        current = own_side(me.company_id, partner_id)
        if current.state == DISABLED:
            # Deleted before: finish handing back what a cut-short run left.
            hand_back_open_orders(principal, partner_id)
            return current
        mine = next_state(
            current, me, principal.user.name, kind="deleted", state=DISABLED, awaiting=None
        )
        try:
            _commit(mine, me, current)
        except PartnershipChanged:
            continue
        _tell(partner_id, me)
        hand_back_open_orders(principal, partner_id)
        return mine
    raise PartnershipChanged()


def _open_orders_executed(executor_id: str, owner_id: str) -> Iterator[str]:
    """Ids of the open orders ``executor_id`` executes for ``owner_id``.

    The executor's OPEN list (its sparse index of open orders), a page of
    RETURN_PAGE items per Query, filtered on the owner: items read ∝ the
    executor's open orders, never a table-wide read.
    """
    cursor: str | None = None
    while True:
        items, cursor = query_page(
            keys.order_entries(executor_id, "OPEN"),
            filter_condition=OrderEntry.owner_id == owner_id,
            page_size=RETURN_PAGE,
            start_sk=cursor,
            consistent=True,
        )
        yield from [e.order_id for e in items if isinstance(e, OrderEntry)]
        if cursor is None:
            return


def hand_back_open_orders(principal: Principal, partner_id: str) -> int:
    """After a deletion: every open order one side executed for the other returns to its owner.

    Both directions (a "both" partnership shares orders each way). Each order
    gets a ``returned`` history event and its owner's users a notification;
    closed orders stay with their executor, read-only (domain/visibility.py).
    Returns how many orders went back.
    """
    me = principal.company
    returned = 0
    for owner_id, executor_id in ((me.company_id, partner_id), (partner_id, me.company_id)):
        kind = "staff" if owner_id == me.company_id else "partner"
        actor = replace(_actor(principal), kind=kind)
        for order_id in list(_open_orders_executed(executor_id, owner_id)):
            if _return_order(order_id, owner_id, executor_id, actor):
                returned += 1
    return returned


def _return_order(order_id: str, owner_id: str, executor_id: str, actor: Actor) -> bool:
    for _attempt in range(DELETE_ATTEMPTS):
        try:
            order = Order.get(*Order.key(order_id), consistent_read=True)
        except DoesNotExist:
            return False
        if (
            order.company_id != owner_id
            or order.executor_id != executor_id
            or not workflow.is_open(order.status)
        ):
            return False  # already back, given to someone else, or closed meanwhile
        name = order.executor_name or ""
        before = orders.snapshot(order)
        order.executor_id = order.executor_name = None
        order.quote_required = False
        clear_quote(order)
        event = orders.new_event(order, actor, "returned", now(), note=name)
        try:
            orders.save_change(before, order, event, expected_version=int(order.version or 0))
        except EditConflict:
            continue  # changed meanwhile: read again
        notifications.notify_company(
            owner_id,
            "order_returned",
            order_id=order.order_id,
            order_number=order.number,
            params={"partner": name},
        )
        return True
    log.warning("order not handed back", extra={"order": order_id})
    return False


# -- reading -----------------------------------------------------------------


_ORDER = {PROPOSED: 0, SUSPENDED: 1, ACTIVE: 2, DISABLED: 3}


@dataclass
class Overview:
    partnerships: list[Partnership] = field(default_factory=list)
    invitations: list[PartnerInvite] = field(default_factory=list)


def overview(company_id: str) -> Overview:
    """Partnerships and pending invitations: ONE Query (both sort keys start with PARTNER)."""
    found = Overview()
    for item in Item.query(
        keys.company(company_id), Item.sk.startswith("PARTNER"), consistent_read=True
    ):
        if isinstance(item, Partnership):
            found.partnerships.append(item)
        elif isinstance(item, PartnerInvite):
            found.invitations.append(item)
    found.partnerships.sort(
        key=lambda p: (p.awaiting != company_id, _ORDER.get(p.state, 9), p.partner_name.casefold())
    )
    found.invitations.sort(key=lambda i: i.created_at, reverse=True)
    return found


def order_page(
    company: Company,
    order_id: str,
    *,
    events_before: str | None = None,
    messages_before: str | None = None,
) -> tuple[orders.OrderView, OrderPanel]:
    """The order page's reads: the order's view and our partnerships go out together
    (``db/overlap.py``), one round trip after the session instead of two.

    The partnerships are read even where the panel needs none (a closed order never
    shared): half a read unit for a round trip less on every open order. An executor's
    link with the owner is the one among them (no GetItem of its own). Nothing is
    shown before ``order_view`` has decided this company may see the order.
    """
    coming = start(lambda: overview(company.company_id).partnerships)

    def link_with(company_id: str, owner_id: str) -> Partnership | None:
        return next((p for p in coming() if p.partner_id == owner_id), None)

    try:
        view = orders.order_view(
            company.company_id,
            order_id,
            events_before=events_before,
            messages_before=messages_before,
            link_reader=link_with,
        )
    except BaseException:
        with contextlib.suppress(Exception):
            coming()  # no read outlives its request
        raise
    return view, order_panel(company, view.order, view.link, mine=coming())


def active_executors(partnerships: list[Partnership]) -> list[Partnership]:
    """Partners that may execute orders we approve."""
    return [p for p in partnerships if p.state == ACTIVE and p.we_approve]


# -- invitations ---------------------------------------------------------------


def is_expired(invite: PartnerInvite) -> bool:
    # TTL deletion lags by up to days: the expiry instant itself is the rule.
    return invite.expires_at is None or invite.expires_at <= now()


def invite(
    principal: Principal, form: Mapping[str, str], locale: str, ip: str | None = None
) -> PartnerInvite:
    """E-mail a company not on CheckOS a 14-day link to sign up and see our proposal."""
    _require_admin(principal)
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
    with transaction() as tx:
        tx.delete(
            PartnerInvite(*PartnerInvite.listing_key(company_id, invite_id)),
            condition=PartnerInvite.pk.exists(),
        )
        # Keyed by the signed-in company: another company's id matches nothing.
        tx.delete(
            PartnerInvite(*PartnerInvite.link_key(invite_id)),
            condition=PartnerInvite.inviter_id == company_id,
        )


def revoke_invitation(principal: Principal, invite_id: str) -> None:
    _require_admin(principal)
    if not _HASH.match(invite_id or ""):
        raise NotFound()
    try:
        _delete_invitation(principal.company_id, invite_id)
    except TransactWriteError as error:
        if "ConditionalCheckFailed" in cancellation_codes(error):
            raise NotFound() from error
        raise


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
        history=[_entry(at, "proposed", PROPOSED, inviter, found.invited_by, terms)],
    )
    theirs = mirror(mine, inviter)
    tx = transaction()
    try:
        with tx:
            tx.save(mine, condition=Partnership.pk.does_not_exist())
            tx.save(theirs, condition=Partnership.pk.does_not_exist())
            # Single use and expiry, checked atomically here too.
            tx.delete(
                PartnerInvite(*PartnerInvite.link_key(found.invite_id)),
                condition=PartnerInvite.pk.exists() & (PartnerInvite.expires_at > at),
            )
            tx.delete(
                PartnerInvite(*PartnerInvite.listing_key(inviter.company_id, found.invite_id))
            )
    except TransactWriteError as error:
        if failed_keys(error, tx) or conflicted(error):
            raise InvitationGone() from error
        raise
    notifications.notify_company(
        inviter.company_id, "partnership", params={"partner": new_company.name}
    )
    notifications.notify_company(
        new_company.company_id, "partnership", params={"partner": inviter.name}
    )
    return theirs


# -- shared orders -------------------------------------------------------------


def _link_check(company_id: str, partner_id: str, role: str, partner_name: str) -> tuple:
    """A transaction condition: our link is active and lets us play ``role``."""
    flag = Partnership.we_execute if role == "execute" else Partnership.we_approve
    return (
        Partnership(*Partnership.key(company_id, partner_id)),
        (Partnership.state == ACTIVE) & (flag == True),  # noqa: E712 - a DynamoDB condition
        PartnershipNotActive(partner=partner_name),
    )


def _active_check(company_id: str) -> tuple:
    return (Company(*Company.key(company_id)), Company.status == "active", CompanyInactive())


def executor_guard(
    order: Order, company_id: str, actor: Actor, action: str
) -> tuple[Actor, list[tuple[Item, Any, AppError]]]:
    """Rules for a write by the partner executing ``order`` (called by services.orders).

    Refuses what only the owner decides, anything while the link is not
    active, and starting before the quote is approved when the partnership
    requires one; returns the partner actor and the transaction's checks.
    """
    if order.executor_id != company_id:
        raise NotFound()
    if action in workflow.ACTIONS and action not in EXECUTOR_ACTIONS:
        raise OwnerDecides(owner=order.owner_name or "")
    try:
        link = Partnership.get(*Partnership.key(company_id, order.company_id), consistent_read=True)
    except DoesNotExist:
        raise PartnershipNotActive(partner=order.owner_name or "") from None
    if link.state != ACTIVE or not link.we_execute:
        raise PartnershipNotActive(partner=link.partner_name)
    if action in NEEDS_APPROVED_QUOTE and order.quote_required and order.quote_state != "approved":
        raise QuoteNotApproved(owner=link.partner_name)
    checks = [
        _link_check(company_id, order.company_id, "execute", link.partner_name),
        _active_check(company_id),
    ]
    return replace(actor, kind="partner"), checks


def _open_order(company_id: str, order_id: str, version: str | int | None) -> Order:
    order = orders.order_view(company_id, order_id).order
    _expect_order(order, version)
    if not workflow.is_open(order.status):
        raise Conflict("partners.order_closed")
    return order


def _actor(principal: Principal, kind: str = "staff") -> Actor:
    return Actor(
        name=principal.user.name,
        kind=kind,
        user_id=principal.user_id,
        company_id=principal.company_id,
    )


def clear_quote(order: Order) -> None:
    order.quote_state = order.quote_value = order.quote_text = None
    order.quote_at = None


def assign_executor(
    principal: Principal, order_id: str, partner_id: str, version: str | int | None
) -> Order:
    """Share an open order with an active partner that executes what we approve."""
    me = principal.company
    require_active(me)
    order = _open_order(me.company_id, order_id, version)
    orders.require_owner(order, me.company_id)
    try:
        link = own_side(me.company_id, partner_id)
    except NotFound:
        raise ValidationFailed({"partner_id": ("form.bad_choice", {})}) from None
    if link.state != ACTIVE or not link.we_approve:
        raise PartnershipNotActive(partner=link.partner_name)
    if order.executor_id == partner_id:
        return order
    before = orders.snapshot(order)
    order.executor_id, order.executor_name, order.owner_name = (
        partner_id,
        link.partner_name,
        me.name,
    )
    order.quote_required = bool(link.quote_required)
    clear_quote(order)
    event = orders.new_event(order, _actor(principal), "shared", now(), note=link.partner_name)
    orders.save_change(
        before,
        order,
        event,
        expected_version=int(order.version or 0),
        checks=[_link_check(me.company_id, partner_id, "approve", link.partner_name)],
    )
    notifications.notify_company(
        partner_id,
        "partnership",
        order_id=order.order_id,
        order_number=order.number,
        params={"partner": me.name},
    )
    return order


def withdraw_executor(principal: Principal, order_id: str, version: str | int | None) -> Order:
    """Take a shared order back (any time, whatever the partnership's state)."""
    me = principal.company
    require_active(me)
    order = orders.order_view(me.company_id, order_id).order
    orders.require_owner(order, me.company_id)
    _expect_order(order, version)
    former, name = order.executor_id, order.executor_name
    if former is None:
        return order
    before = orders.snapshot(order)
    order.executor_id = order.executor_name = None
    order.quote_required = False
    clear_quote(order)
    event = orders.new_event(order, _actor(principal), "unshared", now(), note=name)
    orders.save_change(before, order, event, expected_version=int(order.version or 0))
    notifications.notify_company(former, "partnership", params={"partner": me.name})
    return order


def _expect_order(order: Order, version: str | int | None) -> None:
    """The form was read at ``version``: a newer order must be seen first (no lost update)."""
    try:
        seen = int(version) if version not in (None, "") else None
    except (TypeError, ValueError):
        seen = -1
    if seen is not None and seen != order.version:
        raise EditConflict(who=order.updated_by_name, when=order.updated_at)


def send_quote(
    principal: Principal, order_id: str, form: Mapping[str, str], locale: str = "en"
) -> Order:
    """The executor quotes value + description; the owner approves or rejects it."""
    me = principal.company
    require_active(me)
    order = _open_order(me.company_id, order_id, form.get("version"))
    if order.company_id == me.company_id or order.executor_id != me.company_id:
        raise ExecutorOnly()
    if order.quote_state == "approved":
        raise Conflict("partners.quote_already_approved")
    check = Checker(form)
    value = orders.check_decimal(check, "quote_value", required=True, locale=locale)
    text = check.text("quote_text", max_len=QUOTE_TEXT_MAX, multiline=True)
    check.done()
    actor, checks = executor_guard(order, me.company_id, _actor(principal), "quote")
    before = orders.snapshot(order)
    at = now()
    order.quote_state, order.quote_value, order.quote_text, order.quote_at = (
        "pending",
        value,
        text,
        at,
    )
    note = f"{value}" + (f" · {text}" if text else "")
    event = orders.new_event(order, actor, "quote", at, note=note[:1000])
    orders.save_change(
        before, order, event, expected_version=int(order.version or 0), checks=checks
    )
    notifications.notify_company(
        order.company_id,
        "partnership",
        order_id=order.order_id,
        order_number=order.number,
        params={"partner": me.name},
    )
    return order


def decide_quote(principal: Principal, order_id: str, form: Mapping[str, str]) -> Order:
    """The owner approves or rejects the pending quote (while the link is active)."""
    me = principal.company
    require_active(me)
    order = _open_order(me.company_id, order_id, form.get("version"))
    orders.require_owner(order, me.company_id)
    decision = form.get("decision", "")
    if decision not in ("approve", "reject"):
        raise ValidationFailed({"decision": ("form.bad_choice", {})})
    if order.quote_state != "pending" or not order.executor_id:
        raise Conflict("partners.no_pending_quote")
    link = own_side(me.company_id, order.executor_id)
    if link.state != ACTIVE:
        raise PartnershipNotActive(partner=link.partner_name)
    before = orders.snapshot(order)
    order.quote_state = "approved" if decision == "approve" else "rejected"
    kind = "quote_approved" if decision == "approve" else "quote_rejected"
    event = orders.new_event(order, _actor(principal), kind, now(), note=order.quote_value)
    orders.save_change(
        before,
        order,
        event,
        expected_version=int(order.version or 0),
        checks=[_link_check(me.company_id, order.executor_id, "approve", link.partner_name)],
    )
    notifications.notify_company(
        order.executor_id,
        "partnership",
        order_id=order.order_id,
        order_number=order.number,
        params={"partner": me.name},
    )
    return order


@dataclass
class OrderPanel:
    """What the order page shows and allows about sharing, for one company."""

    side: str  # owner | executor
    order: Order
    company_active: bool
    link: Partnership | None = None  # our side of the partnership with the other company
    candidates: list[Partnership] = field(default_factory=list)

    @property
    def is_owner(self) -> bool:
        return self.side == "owner"

    @property
    def link_active(self) -> bool:
        return self.link is not None and self.link.state == ACTIVE

    @property
    def can_act(self) -> bool:
        """The executor may work on the order (active link where it executes)."""
        if self.is_owner:
            return self.company_active
        return self.company_active and self.link_active and bool(self.link and self.link.we_execute)

    @property
    def quote_missing(self) -> bool:
        return bool(self.order.quote_required) and self.order.quote_state != "approved"

    def actions(self, available: list[str]) -> list[str]:
        if self.is_owner:
            return available
        if not self.can_act:
            return []
        return [
            a
            for a in available
            if a in EXECUTOR_ACTIONS and not (a in NEEDS_APPROVED_QUOTE and self.quote_missing)
        ]

    @property
    def is_open(self) -> bool:
        return workflow.is_open(self.order.status)

    @property
    def can_quote(self) -> bool:
        return (
            not self.is_owner
            and self.can_act
            and self.is_open
            and self.order.quote_state != "approved"
        )

    @property
    def can_decide(self) -> bool:
        return (
            self.is_owner
            and self.company_active
            and self.is_open
            and self.order.quote_state == "pending"
            and self.link_active
        )

    @property
    def choices(self) -> list[Partnership]:
        return [p for p in self.candidates if p.partner_id != self.order.executor_id]

    @property
    def can_assign(self) -> bool:
        return self.is_owner and self.company_active and self.is_open and bool(self.choices)

    @property
    def can_chat(self) -> bool:
        return self.can_act

    @property
    def visible(self) -> bool:
        return bool(self.order.executor_id) or self.can_assign


def order_panel(
    company: Company,
    order: Order,
    executor_link: Partnership | None = None,
    mine: list[Partnership] | None = None,
) -> OrderPanel:
    """At most one request: our partnerships (owner), unless ``mine`` brings them; the
    executor's link comes with the order's view (``orders.order_view`` read it to decide
    the access)."""
    if order.company_id != company.company_id:
        return OrderPanel("executor", order, company.active, link=executor_link)
    panel = OrderPanel("owner", order, company.active)
    if not workflow.is_open(order.status) and not order.executor_id:
        return panel  # nothing to share or decide: no request
    if mine is None:
        mine = overview(company.company_id).partnerships
    panel.candidates = active_executors(mine)
    panel.link = next((p for p in mine if p.partner_id == order.executor_id), None)
    return panel

"""Proposing, accepting, changing (suspends) and deleting (disables) a partnership."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.db.accounts import Company
from chalicelib.db.base import Item
from chalicelib.db.partners import Partnership
from chalicelib.domain.errors import NotFound
from chalicelib.domain.sharing import ACTIVE, DISABLED, PROPOSED, SUSPENDED
from chalicelib.services.companies import require_active
from chalicelib.services.partners.links import (
    DELETE_ATTEMPTS,
    HISTORY_KEPT,
    AlreadyPartners,
    PartnershipChanged,
    Terms,
    check_terms,
    commit_both,
    history_entry,
    next_state,
    own_side,
    require_admin,
    tell_partner,
    valid_id,
)
from chalicelib.services.partners.shared_orders import hand_back_open_orders
from chalicelib.services.sessions import Principal, now


@dataclass(frozen=True)
class ProposalTarget:
    company: Company
    existing: Partnership | None


def proposal_target(company_id: str, target_id: str) -> ProposalTarget:
    """The company to propose to and any partnership we already have: one BatchGetItem."""
    valid_id(target_id)
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
    require_admin(principal)
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
        history=[*history, history_entry(at, "proposed", PROPOSED, me, principal.user.name, terms)],
    )
    commit_both(mine, me, existing)
    tell_partner(target_id, me, request=mine)
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
    require_admin(principal)
    me = principal.company
    require_active(me)
    current = own_side(me.company_id, partner_id)
    _expect(current, rev)
    if current.state not in (PROPOSED, SUSPENDED) or current.awaiting != me.company_id:
        raise PartnershipChanged()
    mine = next_state(
        current, me, principal.user.name, kind="accepted", state=ACTIVE, awaiting=None
    )
    commit_both(mine, me, current)
    tell_partner(partner_id, me)
    return mine


def change(principal: Principal, partner_id: str, form: Mapping[str, str]) -> Partnership | None:
    """New terms: an active link is suspended until the other company accepts them.

    Returns None when nothing changed. Changing a proposal that waits for us
    is a counter-proposal: it then waits for the other company.
    """
    require_admin(principal)
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
    commit_both(mine, me, current)
    tell_partner(partner_id, me, request=mine)
    return mine


def delete(principal: Principal, partner_id: str) -> Partnership:
    """Disable the link at once, whatever its state: no acceptance needed.

    A concurrent change only makes us read again: deletion always wins.
    """
    require_admin(principal)
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
            commit_both(mine, me, current)
        except PartnershipChanged:
            continue
        tell_partner(partner_id, me)
        hand_back_open_orders(principal, partner_id)
        return mine
    raise PartnershipChanged()

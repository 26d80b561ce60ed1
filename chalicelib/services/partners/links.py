"""A partnership's two items: terms, states, each side from the other, committing both."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pynamodb.exceptions import DoesNotExist
from pynamodb.transactions import TransactWrite

from chalicelib.aws.mail import MailNotSent
from chalicelib.config import get_settings
from chalicelib.db import keys
from chalicelib.db.accounts import Company
from chalicelib.db.base import Item, refuse_as, write_transaction
from chalicelib.db.partners import PartnerChange, PartnerInvite, Partnership
from chalicelib.domain.errors import Conflict, Forbidden, NotFound
from chalicelib.domain.sharing import ACTIVE, DISABLED, PROPOSED, SUSPENDED
from chalicelib.domain.validation import Checker
from chalicelib.services import limiter, mailer, notifications
from chalicelib.services.sessions import Principal, now

log = logging.getLogger("checkos.partners")


# relationship choice -> (we approve, we execute), from the choosing company's side
RELATIONS: dict[str, tuple[bool, bool]] = {
    "approve": (True, False),  # we approve, they execute
    "execute": (False, True),  # they approve, we execute
    "both": (True, True),
}


HISTORY_KEPT = 50
DELETE_ATTEMPTS = 5


_COMPANY_ID = re.compile(r"^[0-9a-f]{8,32}$")


class PartnershipChanged(Conflict):
    key = "partners.changed_meanwhile"


class AlreadyPartners(Conflict):
    key = "partners.already"


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


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("error.admin_only")


def valid_id(company_id: str) -> str:
    # Ids come from URLs and forms: anything odd is simply unknown (404, not 500).
    if not _COMPANY_ID.match(company_id or ""):
        raise NotFound()
    return company_id


def own_side(company_id: str, partner_id: str) -> Partnership:
    """The signed-in company's item of a partnership (keyed by it: others' ids are 404)."""
    try:
        return Partnership.get(
            *Partnership.key(company_id, valid_id(partner_id)), consistent_read=True
        )
    except DoesNotExist:
        raise NotFound() from None


def history_entry(
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
        history=[*history, history_entry(at, kind, state, me, actor_name, terms)],
    )


def commit_both(mine: Partnership, me: Company, expected: Partnership | None) -> Partnership:
    """Both sides in one transaction, each conditioned on the rev/state we decided from."""
    theirs = mirror(mine, me)
    if expected is None:
        condition = Partnership.pk.does_not_exist()
    else:
        condition = (Partnership.rev == int(expected.rev)) & (Partnership.state == expected.state)

    def save(tx: TransactWrite) -> None:
        tx.save(mine, condition=condition)
        tx.save(theirs, condition=condition)

    write_transaction("partnership change", save, refuse_as(PartnershipChanged))
    return mine


def tell_partner(partner_id: str, me: Company, *, request: Partnership | None = None) -> None:
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


def active_executors(partnerships: list[Partnership]) -> list[Partnership]:
    """Partners that may execute orders we approve."""
    return [p for p in partnerships if p.state == ACTIVE and p.we_approve]

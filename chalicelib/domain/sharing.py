"""Who may act on a shared order: partnership states, the executing partner's rules (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain import workflow
from chalicelib.domain.errors import Forbidden

PROPOSED, ACTIVE, SUSPENDED, DISABLED = "proposed", "active", "suspended", "disabled"
STATES: tuple[str, ...] = (PROPOSED, ACTIVE, SUSPENDED, DISABLED)
# What the executing partner may do to a shared order; cancelling and
# reopening stay with the owner, who answers to the customer.
EXECUTOR_ACTIONS = frozenset({"schedule", "start", "complete"})
NEEDS_APPROVED_QUOTE = frozenset({"start", "complete"})


class CompanyInactive(Forbidden):
    """The company is inactive: its data is read-only until an admin reactivates it."""

    key = "profile.inactive_readonly"


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


@dataclass(frozen=True)
class ExecutorLink:
    """The executor's side of its partnership with the owner, as far as the rule needs it."""

    state: str
    we_execute: bool
    partner_name: str


def executor_guard(
    action: str,
    *,
    owner_name: str,
    quote_required: bool,
    quote_state: str | None,
    link: ExecutorLink | None,
) -> ExecutorLink:
    """Refuse a write by the partner executing a shared order, or let it through.

    Only the owner cancels or reopens (OwnerDecides); nothing while the link is
    missing, not active or not one where the partner executes
    (PartnershipNotActive); no start or completion before the quote is approved
    when the partnership requires one (QuoteNotApproved). ``action`` is a
    workflow action, or another write ("message", "quote"). Returns the link it
    allowed the write by.
    """
    if action in workflow.ACTIONS and action not in EXECUTOR_ACTIONS:
        raise OwnerDecides(owner=owner_name)
    if link is None:
        raise PartnershipNotActive(partner=owner_name)
    if link.state != ACTIVE or not link.we_execute:
        raise PartnershipNotActive(partner=link.partner_name)
    if action in NEEDS_APPROVED_QUOTE and quote_required and quote_state != "approved":
        raise QuoteNotApproved(owner=link.partner_name)
    return link

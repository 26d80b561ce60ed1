"""Partnerships between companies: proposals, invitations, shared orders (a module each).

A partnership is two items, one per company, each telling the relationship
from its own side. Every change computes both from the acting company's item
and writes them in ONE transaction conditioned on the ``rev`` (and state) it
was decided from, so the sides never disagree: of two admins racing, one
wins and the other gets PartnershipChanged. Shared orders: the owner (the
company the customer dealt with) approves, the partner executes; every write
by the executor carries a condition check on its partnership item
(``domain/sharing.py`` holds the executor's rules). This package re-exports the
public API its callers name as ``partners.<name>``.
"""

from chalicelib.domain.sharing import (
    ACTIVE,
    DISABLED,
    PROPOSED,
    SUSPENDED,
    PartnerActionRefused,
    PartnershipNotActive,
)
from chalicelib.services.partners.invitations import (
    INVITE_LIFETIME,
    MAX_PENDING_INVITES,
    InvitationGone,
    invitation_prefill,
    invite,
    is_expired,
    join_by_invitation,
    revoke_invitation,
)
from chalicelib.services.partners.links import (
    RELATIONS,
    AlreadyPartners,
    PartnershipChanged,
    mirror,
    next_state,
    overview,
    own_side,
    relation_of,
)
from chalicelib.services.partners.panel import order_page
from chalicelib.services.partners.proposals import accept, change, delete, proposal_target, propose
from chalicelib.services.partners.shared_orders import (
    assign_executor,
    clear_quote,
    decide_quote,
    send_quote,
    withdraw_executor,
)

__all__ = [
    "ACTIVE",
    "DISABLED",
    "INVITE_LIFETIME",
    "MAX_PENDING_INVITES",
    "PROPOSED",
    "RELATIONS",
    "SUSPENDED",
    "AlreadyPartners",
    "InvitationGone",
    "PartnerActionRefused",
    "PartnershipChanged",
    "PartnershipNotActive",
    "accept",
    "assign_executor",
    "change",
    "clear_quote",
    "decide_quote",
    "delete",
    "invitation_prefill",
    "invite",
    "is_expired",
    "join_by_invitation",
    "mirror",
    "next_state",
    "order_page",
    "overview",
    "own_side",
    "proposal_target",
    "propose",
    "relation_of",
    "revoke_invitation",
    "send_quote",
    "withdraw_executor",
]

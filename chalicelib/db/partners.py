"""Partnerships between companies, partner invitations and the partner directory index.

A partnership is two items written together: ``CO#<a>`` / ``PARTNER#<b>`` and
its mirror ``CO#<b>`` / ``PARTNER#<a>``, each telling the relationship from
its own company's point of view. The directory is a token index of active
companies: ``DIR#<field>#<first 3 letters>`` / ``<token>#<company_id>``.
"""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)

from chalicelib.db import keys
from chalicelib.db.base import Item

# Word tokens are indexed under their first letters, so a word prefix of this
# many letters is one Query with ``begins_with`` on the sort key.
DIRECTORY_PREFIX = 3


class DirectoryEntry(Item, discriminator="DirectoryEntry"):
    """One word of one searchable field of an active company, with the company's card.

    The folded ``f_*`` copies hold each field as `` word word `` so other
    search terms are checked as word prefixes (``contains(" " + term)``) by
    the same Query's filter.
    """

    company_id = UnicodeAttribute()
    name = UnicodeAttribute()
    slug = UnicodeAttribute()
    area = UnicodeAttribute(default="")
    business_type = UnicodeAttribute(default="")
    city = UnicodeAttribute(default="")
    logo_key = UnicodeAttribute(null=True)
    f_name = UnicodeAttribute(default="")
    f_contact = UnicodeAttribute(default="")
    f_type = UnicodeAttribute(default="")
    f_area = UnicodeAttribute(default="")

    @classmethod
    def partition(cls, field: str, token: str) -> str:
        return f"DIR#{field}#{token[:DIRECTORY_PREFIX]}"

    @classmethod
    def key(cls, field: str, token: str, company_id: str) -> tuple[str, str]:
        return cls.partition(field, token), f"{token}#{company_id}"


class PartnerChange(MapAttribute):
    """One line of a partnership's history, told from the item's own company's side."""

    at = UTCDateTimeAttribute()
    kind = UnicodeAttribute()  # proposed | accepted | changed | deleted
    state = UnicodeAttribute()  # the state it led to
    by_company = UnicodeAttribute()  # id of the company that made the change
    by_name = UnicodeAttribute()  # that company's name at the time
    actor_name = UnicodeAttribute(default="")
    we_approve = BooleanAttribute(default=False)
    we_execute = BooleanAttribute(default=False)
    quote_required = BooleanAttribute(default=True)


class Partnership(Item, discriminator="Partnership"):
    """``CO#<company>`` / ``PARTNER#<partner>``: one side of a partnership.

    Both sides always carry the same ``rev``; every change writes both in one
    transaction conditioned on the rev (and state) it was decided from.
    """

    SK_PREFIX = "PARTNER#"

    company_id = UnicodeAttribute()
    partner_id = UnicodeAttribute()
    partner_name = UnicodeAttribute()
    partner_slug = UnicodeAttribute(default="")
    # From this company's side: "we approve orders the partner executes" and
    # "we execute orders the partner approves" (both: each way).
    we_approve = BooleanAttribute(default=False)
    we_execute = BooleanAttribute(default=False)
    # The executor needs an approved quote before starting a shared order.
    quote_required = BooleanAttribute(default=True)
    state = UnicodeAttribute()  # proposed | active | suspended | disabled
    awaiting = UnicodeAttribute(null=True)  # company id whose admin must accept
    proposed_by = UnicodeAttribute()
    config_version = NumberAttribute(default=1)
    rev = NumberAttribute(default=1)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    history = ListAttribute(of=PartnerChange, default=list)

    @classmethod
    def key(cls, company_id: str, partner_id: str) -> tuple[str, str]:
        return keys.company(company_id), f"{cls.SK_PREFIX}{partner_id}"


class PartnerInvite(Item, discriminator="PartnerInvite"):
    """An e-mailed invitation to a company not on CheckOS yet (hashed token, TTL).

    Two items with the same attributes, written and deleted together:
    ``PINVITE#<sha256(token)>`` / ``TOKEN`` (what the link resolves) and
    ``CO#<inviter>`` / ``PARTNERINV#<sha256(token)>`` (what /partners lists;
    its sort key shares the ``PARTNER`` prefix so the page reads both kinds
    with one Query).
    """

    LISTING_PREFIX = "PARTNERINV#"

    invite_id = UnicodeAttribute()
    inviter_id = UnicodeAttribute()
    inviter_name = UnicodeAttribute()
    invited_by = UnicodeAttribute(default="")
    email = UnicodeAttribute()
    company_name = UnicodeAttribute(default="")
    we_approve = BooleanAttribute(default=False)  # the inviter's side
    we_execute = BooleanAttribute(default=False)
    quote_required = BooleanAttribute(default=True)
    created_at = UTCDateTimeAttribute()

    @classmethod
    def link_key(cls, invite_id: str) -> tuple[str, str]:
        return f"PINVITE#{invite_id}", "TOKEN"

    @classmethod
    def listing_key(cls, company_id: str, invite_id: str) -> tuple[str, str]:
        return keys.company(company_id), f"{cls.LISTING_PREFIX}{invite_id}"

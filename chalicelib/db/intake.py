"""Intake form items: form codes, requests awaiting confirmation, their locks, rate counters."""

from __future__ import annotations

from pynamodb.attributes import (
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)

from chalicelib.db.base import Item, plain_map

# IntakeRequest.status: a request is invisible to the company until it is confirmed.
PENDING, CONFIRMING, CONFIRMED = "pending", "confirming", "confirmed"


class FormKey(Item, discriminator="FormKey"):
    """``FORMKEY#<code>`` / ``FORMKEY``: the public form code embedded in websites -> company.

    The code is a public identifier (it sits in every embedding page's HTML), not
    a secret, so it is stored as it is. Rotation deletes this item and writes the
    next one in the same transaction as the Company update.
    """

    SK = "FORMKEY"
    company_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()

    @classmethod
    def key(cls, code: str) -> tuple[str, str]:
        return f"FORMKEY#{code}", cls.SK


class IntakeRequest(Item, discriminator="IntakeRequest"):
    """``INTAKE#<sha256(token)>`` / ``INTAKE``: a submission waiting for its e-mailed link.

    Holds the cleaned values until the requester confirms; only then does an
    order exist. ``expires_at`` (TTL, 48 h) is also checked in code because TTL
    deletion lags. ``claim`` marks the one confirmation in progress.
    """

    SK = "INTAKE"
    intake_id = UnicodeAttribute()  # sha256 of the e-mailed token
    company_id = UnicodeAttribute()
    email = UnicodeAttribute()
    name = UnicodeAttribute()
    locale = UnicodeAttribute(default="en")
    values: MapAttribute[str, str] = MapAttribute(default=dict)  # standard order fields, cleaned
    custom: MapAttribute[str, str] = MapAttribute(default=dict)  # custom field id -> cleaned value
    status = UnicodeAttribute(default=PENDING)
    created_at = UTCDateTimeAttribute()
    claim = UnicodeAttribute(null=True)
    claimed_at = UTCDateTimeAttribute(null=True)
    confirmed_at = UTCDateTimeAttribute(null=True)
    order_id = UnicodeAttribute(null=True)
    order_number = NumberAttribute(null=True)

    @classmethod
    def key(cls, intake_id: str) -> tuple[str, str]:
        return f"INTAKE#{intake_id}", cls.SK

    @classmethod
    def company_index(cls, company_id: str, email: str, kind: str) -> dict[str, str]:
        """gsi1 keys listing a company's requests (``REQ#``) and locks (``LOCK#``) for the
        invariant checker: ``CO#<company>#INTAKE`` / ``<kind>#<email>``."""
        return {"gsi1pk": f"CO#{company_id}#INTAKE", "gsi1sk": f"{kind}#{email}"}

    @property
    def value_map(self) -> dict[str, str]:
        return plain_map(self.values)

    @property
    def custom_map(self) -> dict[str, str]:
        return plain_map(self.custom)


class PendingLock(Item, discriminator="PendingLock"):
    """``PENDING#<company>#<email>`` / ``PENDING``: one unconfirmed request per address.

    Created with ``attribute_not_exists`` (or over an expired lock) in the same
    transaction as its IntakeRequest; deleted in the transaction that confirms it.
    """

    SK = "PENDING"
    intake_id = UnicodeAttribute()  # the request this lock belongs to
    created_at = UTCDateTimeAttribute()
    sent_at = UTCDateTimeAttribute()  # last time the link was e-mailed (resend interval)

    @classmethod
    def key(cls, company_id: str, email: str) -> tuple[str, str]:
        return f"PENDING#{company_id}#{email}", cls.SK


class RateCounter(Item, discriminator="RateCounter"):
    """``RATE#<scope>#<subject>#<window>`` / ``RATE``: submissions in one time window (TTL)."""

    SK = "RATE"
    hits = NumberAttribute(default=0)

    @classmethod
    def key(cls, scope: str, subject: str, window: str) -> tuple[str, str]:
        return f"RATE#{scope}#{subject}#{window}", cls.SK

"""Delivery items: addresses never mailed again, and customers who opted out.

``SUPPRESS#<address>`` / ``SUPPRESS``: SES reported a hard bounce or a
complaint for this address (its wire form: ASCII, punycode domain); every
send checks it first (one GetItem). ``OPTOUT#<company>#<address>`` /
``OPTOUT``: the customer unsubscribed from that company's order e-mails. Both
sit outside the company partition: they must outlive an order or a link.
"""

from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute, UTCDateTimeAttribute

from chalicelib.db import keys
from chalicelib.db.base import Item

BOUNCE, COMPLAINT = "bounce", "complaint"


class Suppression(Item, discriminator="Suppression"):
    """``SUPPRESS#<address>`` / ``SUPPRESS``: a hard bounce or complaint; no more mail."""

    SK = "SUPPRESS"

    address = UnicodeAttribute()
    reason = UnicodeAttribute()  # BOUNCE or COMPLAINT
    detail = UnicodeAttribute(default="")  # SES bounce subtype or complaint feedback type
    at = UTCDateTimeAttribute()

    @classmethod
    def key(cls, address: str) -> tuple[str, str]:
        return keys.suppress(address), cls.SK


class OptOut(Item, discriminator="OptOut"):
    """``OPTOUT#<company>#<address>`` / ``OPTOUT``: no order e-mails from that company."""

    SK = "OPTOUT"

    company_id = UnicodeAttribute()
    address = UnicodeAttribute()
    order_id = UnicodeAttribute(default="")  # the order whose e-mail carried the link
    at = UTCDateTimeAttribute()

    @classmethod
    def key(cls, company_id: str, address: str) -> tuple[str, str]:
        return keys.opt_out(company_id, address), cls.SK

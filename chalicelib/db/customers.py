"""Customer follow-up items: the private access link, the rating and public rate windows.

``ACCESS#<sha256(token)>`` / ``ACCESS`` resolves a customer's e-mailed link to
one order. It carries a copy of the company's public contact details so the
customer page is two requests (this GetItem and the order's Query) without
reading the Company item. The order points back at it (``Order.access_hash``)
so staff can revoke it; the plain token is never stored.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute

from chalicelib.db import keys
from chalicelib.db.base import Item


class CustomerAccess(Item, discriminator="CustomerAccess"):
    """``ACCESS#<sha256(token)>`` / ``ACCESS``: an e-mailed customer link → one order."""

    SK = "ACCESS"

    order_id = UnicodeAttribute()
    company_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    # The company's public contact as of the last e-mail (refreshed on every
    # customer e-mail): the customer page never reads the Company item.
    company_name = UnicodeAttribute(default="")
    company_phone = UnicodeAttribute(default="")
    company_email = UnicodeAttribute(default="")  # only a validated address
    company_slug = UnicodeAttribute(default="")
    company_logo_key = UnicodeAttribute(null=True)
    # The company's IANA zone: the customer reads every time in it.
    company_time_zone = UnicodeAttribute(default="UTC")

    @classmethod
    def key(cls, token_hash: str) -> tuple[str, str]:
        return keys.access(token_hash), cls.SK


class OrderRating(Item, discriminator="OrderRating"):
    """``ORDER#<id>`` / ``RATING``: the customer's stars and comment (read with the order)."""

    SK = "RATING"

    stars = NumberAttribute()
    comment = UnicodeAttribute(default="")
    first_rated_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()

    @classmethod
    def key(cls, order_id: str) -> tuple[str, str]:
        return keys.order(order_id), cls.SK


class RateWindow(Item, discriminator="RateWindow"):
    """``THROTTLE#<scope>#<value>#<window start>`` / ``WINDOW``: hits in one fixed window.

    One UpdateItem ADD per request counts and reads back the total; the key
    names the window, so a new window starts from zero and TTL cleans up.
    """

    SK = "WINDOW"

    hits = NumberAttribute(default=0)

    @classmethod
    def key(cls, scope: str, value: str, window: str) -> tuple[str, str]:
        return keys.throttle(scope, f"{value}#{window}"), cls.SK

"""Service orders: the order's item collection, list entries, counters, notifications.

An order lives in its own partition ``ORDER#<id>`` (META, EVENT#…, MSG#…,
RATING) so its page is one Query. Lists and search read *entries*: small
copies of an order's list columns, one per searchable dimension, under
``CO#<company>#IX#<dimension>`` — a page of any filter is one Query that
reads at most a page of items, whatever the company's history.
"""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)

from chalicelib.db import keys
from chalicelib.db.base import Item


class Order(Item, discriminator="Order"):
    SK = "META"

    order_id = UnicodeAttribute()
    company_id = UnicodeAttribute()  # the owner (the company the customer dealt with)
    executor_id = UnicodeAttribute(null=True)  # a partner executing it, if shared
    # Shared orders (services/partners.py): each side's name as the other sees
    # it, and the executor's quote, which the owner (the approver) decides on.
    owner_name = UnicodeAttribute(null=True)
    executor_name = UnicodeAttribute(null=True)
    quote_required = BooleanAttribute(default=False)
    quote_state = UnicodeAttribute(null=True)  # pending | approved | rejected
    quote_value = UnicodeAttribute(null=True)  # decimal as text
    quote_text = UnicodeAttribute(null=True)
    quote_at = UTCDateTimeAttribute(null=True)
    number = NumberAttribute()
    status = UnicodeAttribute()
    source = UnicodeAttribute(default="staff")  # staff | intake
    customer_name = UnicodeAttribute()
    customer_phone = UnicodeAttribute(default="")
    customer_email = UnicodeAttribute(default="")
    customer_address = UnicodeAttribute(default="")
    service_type = UnicodeAttribute(default="")
    brand = UnicodeAttribute(default="")
    model = UnicodeAttribute(default="")
    serial = UnicodeAttribute(default="")
    problem = UnicodeAttribute(default="")
    condition = UnicodeAttribute(default="")
    service_date = UnicodeAttribute(null=True)  # YYYY-MM-DD
    service_time = UnicodeAttribute(null=True)  # HH:MM
    priority = UnicodeAttribute(default="normal")
    technician_id = UnicodeAttribute(null=True)
    technician_name = UnicodeAttribute(null=True)
    internal_notes = UnicodeAttribute(default="")
    estimated_value = UnicodeAttribute(null=True)  # decimal as text, no float rounding
    custom: MapAttribute[str, str] = MapAttribute(default=dict)  # custom field id -> text value
    cancel_reason = UnicodeAttribute(null=True)
    rating = NumberAttribute(null=True)
    # sha256 of the customer's current access token (ACCESS#<hash>), so staff
    # can revoke the link; None when no link is live.
    access_hash = UnicodeAttribute(null=True)
    # Set when the owner deleted its company while a partner executed the order:
    # the executor keeps it, read-only, although its link with the owner is disabled.
    owner_erased_at = UTCDateTimeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    created_by_name = UnicodeAttribute()
    updated_at = UTCDateTimeAttribute()
    updated_by_name = UnicodeAttribute()
    version = VersionAttribute()

    @classmethod
    def key(cls, order_id: str) -> tuple[str, str]:
        return keys.order(order_id), cls.SK

    @property
    def custom_values(self) -> dict[str, str]:
        raw = self.custom
        values = raw.as_dict() if isinstance(raw, MapAttribute) else dict(raw or {})
        return {str(k): str(v) for k, v in values.items()}


class OrderEvent(Item, discriminator="OrderEvent"):
    """One line of the order's history: who, when, from/to, note."""

    kind = UnicodeAttribute()  # created | status | edited | assigned | mail | mail_failed …
    at = UTCDateTimeAttribute()
    actor_name = UnicodeAttribute()
    actor_kind = UnicodeAttribute(default="staff")  # staff | customer | partner | system
    from_status = UnicodeAttribute(null=True)
    to_status = UnicodeAttribute(null=True)
    note = UnicodeAttribute(default="")

    @classmethod
    def key(cls, order_id: str, stamp: str) -> tuple[str, str]:
        return keys.order(order_id), f"EVENT#{stamp}"


class OrderMessage(Item, discriminator="OrderMessage"):
    """One chat message of the order's single thread."""

    at = UTCDateTimeAttribute()
    author_name = UnicodeAttribute()
    author_kind = UnicodeAttribute(default="staff")  # staff | customer | partner
    author_company = UnicodeAttribute(null=True)
    author_id = UnicodeAttribute(null=True)
    text = UnicodeAttribute()

    @classmethod
    def key(cls, order_id: str, stamp: str) -> tuple[str, str]:
        return keys.order(order_id), f"MSG#{stamp}"


class OrderEntry(Item, discriminator="OrderEntry"):
    """A list row of one order under one searchable dimension (a copy, rewritten on change)."""

    order_id = UnicodeAttribute()
    owner_id = UnicodeAttribute()
    number = NumberAttribute()
    status = UnicodeAttribute()
    customer_name = UnicodeAttribute()
    customer_phone = UnicodeAttribute(default="")
    service_type = UnicodeAttribute(default="")
    brand = UnicodeAttribute(default="")
    service_date = UnicodeAttribute(null=True)
    technician_id = UnicodeAttribute(null=True)
    technician_name = UnicodeAttribute(null=True)
    created = UnicodeAttribute()  # ISO timestamp of registration
    rating = NumberAttribute(null=True)
    owner_erased = BooleanAttribute(null=True)  # Order.owner_erased_at is set (visibility rule)
    # Folded copies for filters combined with another dimension.
    f_name = UnicodeAttribute(default="")
    f_type = UnicodeAttribute(default="")
    f_brand = UnicodeAttribute(default="")
    phone_digits = UnicodeAttribute(default="")


class OrderCounter(Item, discriminator="OrderCounter"):
    """``CO#<id>`` / ``COUNTER``: the last order number given (no gaps, no duplicates)."""

    SK = "COUNTER"
    last_number = NumberAttribute(default=0)

    @classmethod
    def key(cls, company_id: str) -> tuple[str, str]:
        return keys.company(company_id), cls.SK


class MonthlyUsage(Item, discriminator="MonthlyUsage"):
    """``CO#<id>`` / ``USAGE#<yyyy-mm>``: orders registered this month (free-plan quota)."""

    # The stored attribute is named "count", shadowing pynamodb's Model.count
    # classmethod (a table-wide count, which this app never runs).
    count = NumberAttribute(default=0)  # type: ignore[assignment]

    @classmethod
    def key(cls, company_id: str, month: str) -> tuple[str, str]:
        return keys.company(company_id), f"USAGE#{month}"


class Notification(Item, discriminator="Notification"):
    """``CO#<id>#USER#<uid>`` / ``NOTE#<stamp>``: one "needs attention" item for one user."""

    kind = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    order_id = UnicodeAttribute(null=True)
    order_number = NumberAttribute(null=True)
    params: MapAttribute[str, object] = MapAttribute(default=dict)
    read = BooleanAttribute(default=False)

    @classmethod
    def partition(cls, company_id: str, user_id: str) -> str:
        return f"{keys.company(company_id)}#USER#{user_id}"

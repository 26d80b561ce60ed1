"""Who may see which fields of an order, and whether they may see or act on it at all.

The one rule every output channel follows (order page, print, XLSX export,
data archive, e-mails, JSON answers, notifications): a channel asks
``order_access`` for the viewer and writes only ``Access.fields`` of the
order. Pure: no AWS, no request; the caller reads the viewer's partnership
state (one GetItem, or the Query it already makes) and passes it in.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.workflow import is_open

OWNER, EXECUTOR, CUSTOMER, NOBODY = "owner", "executor", "customer", "nobody"
# Partnership states (services/partners.py), as seen from the executor's side.
ACTIVE, SUSPENDED = "active", "suspended"

# Never in any output: the hash of the customer's link secret.
SECRET_FIELDS = frozenset({"access_hash"})
# The owner's own business: "only your team sees these" (the field's hint).
OWNER_ONLY_FIELDS = frozenset({"internal_notes", "custom"})
# Every stored field of an order except the owner-only and secret ones.
SHARED_FIELDS = frozenset(
    {
        "order_id",
        "company_id",
        "executor_id",
        "owner_name",
        "executor_name",
        "quote_required",
        "quote_state",
        "quote_value",
        "quote_text",
        "quote_at",
        "number",
        "status",
        "source",
        "customer_name",
        "customer_phone",
        "customer_email",
        "customer_address",
        "service_type",
        "brand",
        "model",
        "serial",
        "problem",
        "condition",
        "service_date",
        "service_time",
        "priority",
        "technician_id",
        "technician_name",
        "estimated_value",
        "cancel_reason",
        "rating",
        "created_at",
        "created_by_name",
        "updated_at",
        "updated_by_name",
        "version",
        "owner_erased_at",
    }
)
ALL_FIELDS = SHARED_FIELDS | OWNER_ONLY_FIELDS | SECRET_FIELDS
# What the customer's private page and e-mails may carry about their own order.
CUSTOMER_FIELDS = frozenset(
    {
        "number",
        "status",
        "customer_name",
        "service_type",
        "brand",
        "model",
        "service_date",
        "service_time",
        "cancel_reason",
        "rating",
        "created_at",
        "updated_at",
        "version",  # the rating form's optimistic lock
    }
)


@dataclass(frozen=True)
class Access:
    """What one viewer gets of one order."""

    role: str  # owner | executor | customer | nobody
    visible: bool  # may open it (page, print, notifications' link)
    can_act: bool  # may change it, chat in it, quote
    exportable: bool  # goes into the viewer's exports and data archive
    fields: frozenset[str]  # the order's fields this viewer may receive

    def hides(self, name: str) -> bool:
        return name not in self.fields


NO_ACCESS = Access(NOBODY, False, False, False, frozenset())


def order_access(
    owner_id: str,
    executor_id: str | None,
    status: str,
    viewer_company_id: str | None,
    link_state: str | None = None,
    owner_erased: bool = False,
) -> Access:
    """The access of a signed-in company to an order.

    ``link_state`` is the viewer's side of its partnership with the owner
    (None when there is none); it matters only for the executor:

    - active: sees the order (without the owner-only fields), acts on it
      while it is open, exports it;
    - suspended: reads it, cannot act; an open order stays out of its new
      exports and archives (a completed one is its own finished work);
    - deleted (disabled) or gone: an open order does not exist for it (404
      everywhere: the deletion hands it back to the owner); a closed order
      stays readable, read-only, and in its exports;
    - the owner deleted its company (``owner_erased``): nobody to hand the
      order back to, so the executor keeps it, read-only, without the
      owner's customer data (services/erasure.py blanks it).
    """
    if viewer_company_id is None:
        return NO_ACCESS
    if viewer_company_id == owner_id:
        return Access(OWNER, True, True, True, SHARED_FIELDS | OWNER_ONLY_FIELDS)
    if not executor_id or viewer_company_id != executor_id:
        return NO_ACCESS
    closed = not is_open(status)
    if link_state == ACTIVE:
        return Access(EXECUTOR, True, True, True, SHARED_FIELDS)
    if link_state == SUSPENDED:
        return Access(EXECUTOR, True, False, closed, SHARED_FIELDS)
    if closed or owner_erased:
        return Access(EXECUTOR, True, False, True, SHARED_FIELDS)
    return NO_ACCESS


def customer_access() -> Access:
    """The holder of the order's private link: read and chat, the customer-facing fields only."""
    return Access(CUSTOMER, True, True, False, CUSTOMER_FIELDS)

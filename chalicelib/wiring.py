"""Wiring: who reacts to a saved change of an order (``services/order_events.py``), set up once.

``app.py`` calls ``wire()`` when it loads; the tests' conftest calls it too. The
reactions' modules are named lazily (``chalicelib/lazy.py``): the first change
that needs one imports it, so wiring costs the cold start nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.lazy import lazy_module
from chalicelib.services import order_events
from chalicelib.services.order_events import OrderChange

if TYPE_CHECKING:  # mypy checks the calls; import-linter sees the dependency
    from chalicelib.services import customer_page, customers
    from chalicelib.services.partners import shared_orders
else:
    customers = lazy_module("chalicelib.services.customers")
    customer_page = lazy_module("chalicelib.services.customer_page")
    shared_orders = lazy_module("chalicelib.services.partners.shared_orders")

CUSTOMER_MAIL = "customer e-mail"
PARTNER_NOTES = "partner notifications"
BAD_RATING_NOTE = "bad rating note"
# The kinds shared_orders.notify_partners tells the other company of (kept here so a
# change of another kind never imports the partners package).
PARTNER_KINDS = ("shared", "unshared", "quote", "quote_approved", "quote_rejected", "returned")


def customer_mail(change: OrderChange) -> None:
    """Registration and status changes: e-mail the customer (``customers.order_changed``)."""
    owner = change.company
    if owner is not None and owner.company_id != change.after.company_id:
        owner = None  # another company made the change: order_changed reads the owner
    customers.order_changed(owner, change.after, change.event)


def partner_notes(change: OrderChange) -> None:
    """Sharing, quotes, hand-back: the other company's in-app notification."""
    shared_orders.notify_partners(change)


def bad_rating_note(change: OrderChange) -> None:
    """A rating of 1 or 2 stars: the staff's in-app notification."""
    customer_page.note_bad_rating(change)


def wire() -> None:
    """Subscribe every reaction to order changes; idempotent (a name subscribes once)."""
    order_events.subscribe_after_commit(CUSTOMER_MAIL, customer_mail, kinds=("created", "status"))
    order_events.subscribe_after_commit(PARTNER_NOTES, partner_notes, kinds=PARTNER_KINDS)
    order_events.subscribe_after_commit(BAD_RATING_NOTE, bad_rating_note, kinds=("rated",))
    order_events.mark_wired()

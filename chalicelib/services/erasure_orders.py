"""What a company's erasure does to its orders: own ones erased, shared ones kept or handed back."""

from __future__ import annotations

from collections.abc import Iterator

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.db import keys
from chalicelib.db.accounts import Company
from chalicelib.db.base import Item, conflicted, failed_keys, query_page, transaction
from chalicelib.db.customers import CustomerAccess
from chalicelib.db.orders import Order, OrderEntry, OrderEvent, OrderMessage
from chalicelib.services import notifications, orders, partners
from chalicelib.services.erasure_steps import ORDER_ATTEMPTS, PAGE, Eraser
from chalicelib.services.orders import Actor
from chalicelib.services.sessions import now

# Placeholder for a customer's name on an order the partner keeps (the field is required).
ERASED_NAME = "—"
# Customer personal data of an order a partner keeps: cleared.
CUSTOMER_FIELDS: tuple[str, ...] = (
    "customer_phone",
    "customer_email",
    "customer_address",
    "internal_notes",
)


# -- orders --------------------------------------------------------------------------------


def erase_orders(eraser: Eraser, company: Company | None) -> None:
    """Every order in our ``ALL`` list; its ALL entry goes last, so a re-run finds the rest."""
    partition = keys.order_entries(eraser.company_id, "ALL")
    for entries in eraser.pages(partition):
        for entry in entries:
            if not isinstance(entry, OrderEntry):
                eraser.delete_keys([(entry.pk, entry.sk)])
            elif entry.owner_id == eraser.company_id:
                _erase_own_order(eraser, entry, company)
            else:
                _hand_back(eraser, entry, company)


def _order_pages(order_id: str) -> Iterator[list[Item]]:
    """The order's items, a page (one consistent Query) at a time, following the cursor.

    The cursor still works after its item is deleted, so a page may be deleted
    before the next one is read; memory holds one page, whatever the chat's length.
    """
    cursor: str | None = None
    while True:
        items, cursor = query_page(
            keys.order(order_id), page_size=PAGE, start_sk=cursor, consistent=True
        )
        if items:
            yield items
        if cursor is None:
            return


def _erase_own_order(eraser: Eraser, entry: OrderEntry, company: Company | None) -> None:
    try:
        order: Order | None = Order.get(*Order.key(entry.order_id), consistent_read=True)
    except DoesNotExist:
        order = None
    if order is not None and order.executor_id and order.executor_id != eraser.company_id:
        _keep_for_executor(eraser, order, entry)
        return
    if order is not None and order.access_hash:
        eraser.delete_keys([CustomerAccess.key(order.access_hash)])
    if order is not None:
        # Every list entry of the order except ALL (the re-run's way back here).
        eraser.delete_keys(k for k in orders.entries_for(order) if k != (entry.pk, entry.sk))
    for items in _order_pages(entry.order_id):
        eraser.delete_keys((i.pk, i.sk) for i in items if i.sk != Order.SK)
    if order is not None:
        eraser.delete_keys([(order.pk, order.sk)])
    eraser.delete_keys([(entry.pk, entry.sk)])


def _is_customer_data(item: Item) -> bool:
    if isinstance(item, OrderMessage):
        return item.author_kind == "customer"
    if isinstance(item, OrderEvent):
        # Customer actions name the customer; mail events quote their address.
        return item.actor_kind == "customer" or item.kind in ("mail", "mail_failed")
    return item.sk == "RATING"  # the customer's stars and comment


def _keep_for_executor(eraser: Eraser, order: Order, entry: OrderEntry) -> None:
    """A partner executes this order: it keeps the order, without our customer's data."""
    if order.access_hash:
        eraser.delete_keys([CustomerAccess.key(order.access_hash)])
    for items in _order_pages(order.order_id):
        eraser.delete_keys((i.pk, i.sk) for i in items if _is_customer_data(i))
    for _attempt in range(ORDER_ATTEMPTS):
        before = orders.snapshot(order)
        order.customer_name = ERASED_NAME
        for name in CUSTOMER_FIELDS:
            setattr(order, name, "")
        order.custom = {}
        order.access_hash = None
        order.rating = None
        if order.source == "intake":
            order.created_by_name = ERASED_NAME  # the customer created it through the form
        event = orders.new_event(
            order, Actor(name=order.owner_name or "", kind="system"), "owner_erased", now()
        )
        # The last change may have been the customer's (a rating): it names them.
        order.updated_at, order.updated_by_name = event.at, event.actor_name
        order.owner_erased_at = event.at  # the executor keeps it (domain/visibility.py)
        old, new = orders.entries_for(before), orders.entries_for(order)
        partner_prefix = keys.order_entries(str(order.executor_id), "")
        kept = {k: e for k, e in new.items() if k[0].startswith(partner_prefix)}
        expected = int(order.version or 0)
        eraser.before_write(len(old) + 2)
        tx = transaction()
        try:
            with tx:
                tx.save(order)  # version condition: a concurrent partner change retries
                tx.save(event)
                for key in old.keys() - kept.keys():
                    tx.delete(OrderEntry(*key))
                for kept_entry in kept.values():
                    tx.save(kept_entry)
                if (entry.pk, entry.sk) not in old:
                    tx.delete(entry)
        except TransactWriteError as error:
            if (order.pk, order.sk) in failed_keys(error, tx) or conflicted(error):
                order = Order.get(*Order.key(order.order_id), consistent_read=True)
                continue
            raise
        order.version = expected + 1
        eraser.after_write(len(old.keys() - kept.keys()))
        return
    raise RuntimeError(f"order {order.order_id} kept changing")


def _hand_back(eraser: Eraser, entry: OrderEntry, company: Company | None) -> None:
    """An order we execute for a partner goes back to the partner (as "take back" does)."""
    for _attempt in range(ORDER_ATTEMPTS):
        try:
            order = Order.get(*Order.key(entry.order_id), consistent_read=True)
        except DoesNotExist:
            order = None
        if order is None or order.executor_id != eraser.company_id:
            eraser.delete_keys([(entry.pk, entry.sk)])
            return
        before = orders.snapshot(order)
        name = order.executor_name or (company.name if company else "")
        order.executor_id = order.executor_name = None
        order.quote_required = False
        partners.clear_quote(order)
        event = orders.new_event(
            order, Actor(name=name, kind="system"), "unshared", now(), note=name
        )
        eraser.before_write(len(orders.entries_for(before)))
        try:
            orders.save_change(before, order, event, expected_version=int(order.version or 0))
        except orders.EditConflict:
            continue
        eraser.after_write(
            len(orders.entries_for(before).keys() - orders.entries_for(order).keys())
        )
        # An entry the order no longer explains (stale copy): gone too, or the walk never ends.
        eraser.delete_keys([(entry.pk, entry.sk)])
        notifications.notify_company(
            before.company_id,
            "partnership",
            order_id=order.order_id,
            order_number=order.number,
            params={"partner": name},
        )
        return
    raise RuntimeError(f"order {entry.order_id} kept changing")

"""Order events: what reacts to a saved change of an order, inside its transaction or after it.

Every saved change of an order (registration, edit, status, rating, sharing,
quotes, hand-back) is one ``OrderChange``: the order before and after, and the
``OrderEvent`` its history gets. ``services.orders`` publishes it and names no
one who reacts; reactions subscribe at wiring time, in ONE place
(``chalicelib/wiring.py: wire()``, called by ``app.py`` and by the tests' conftest).

* In-transaction subscribers return ``Save``/``Update``/``Check`` items that join
  the change's TransactWriteItems: they commit with it or not at all. A failing
  condition fails the whole change (nothing is written) and raises the item's
  ``problem`` (an item without one re-raises the cancelled transaction: a bug).
* After-commit subscribers (the customer's e-mail, partner notifications) run
  once the change is committed and never undo it. An exception is logged
  (``order reaction failed``, with the order id, the event kind and the
  subscriber) and recorded for retry as a ``reaction_failed`` line in the
  order's history, its note naming the subscriber (``orders.changes.publish``
  writes it): staff see it on the order page and redo what was missed (the
  customer e-mail has its resend button); nothing retries by itself.

Publishing before ``wire()`` raises ``NotWired`` before anything is written: a
process that forgot the wiring fails loudly instead of silently skipping mail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pynamodb.expressions.condition import Condition
    from pynamodb.transactions import TransactWrite

    from chalicelib.db.accounts import Company
    from chalicelib.db.base import Item
    from chalicelib.db.orders import Order, OrderEvent
    from chalicelib.domain.errors import AppError

log = logging.getLogger("checkos.order_events")


@dataclass(frozen=True)
class OrderChange:
    """One saved change of an order: ``before`` is None at registration."""

    before: Order | None
    after: Order
    event: OrderEvent
    # The company that made the change, when the caller has it at hand (saves a read).
    company: Company | None = None

    @property
    def kind(self) -> str:
        return str(self.event.kind)


@dataclass(frozen=True)
class Save:
    """Put ``item`` in the change's transaction (``condition``: only if it holds)."""

    item: Item
    condition: Condition | None = None
    problem: AppError | None = None


@dataclass(frozen=True)
class Update:
    """Update ``item`` with ``actions`` in the change's transaction."""

    item: Item
    actions: list[Any]
    condition: Condition | None = None
    problem: AppError | None = None


@dataclass(frozen=True)
class Check:
    """A condition on ``item`` the change's transaction carries; ``problem`` when it fails."""

    item: Item
    condition: Condition
    problem: AppError | None = None


TransactionItem = Save | Update | Check
InTransaction = Callable[[OrderChange], Iterable[TransactionItem]]
AfterCommit = Callable[[OrderChange], None]


class NotWired(RuntimeError):
    """An order change was published before ``chalicelib.wiring.wire()`` ran."""


@dataclass(frozen=True)
class _InTransaction:
    name: str
    kinds: frozenset[str] | None  # None: every kind
    handler: InTransaction


@dataclass(frozen=True)
class _AfterCommit:
    name: str
    kinds: frozenset[str] | None
    handler: AfterCommit


def _wants(subscriber: _InTransaction | _AfterCommit, change: OrderChange) -> bool:
    return subscriber.kinds is None or change.kind in subscriber.kinds


_in_transaction: dict[str, _InTransaction] = {}
_after_commit: dict[str, _AfterCommit] = {}
_wired = False


def subscribe_in_transaction(
    name: str, handler: InTransaction, kinds: Iterable[str] | None = None
) -> None:
    """``handler(change)`` adds items to every change (of ``kinds``) before it commits.

    Subscribing again under the same name replaces the subscriber (wiring is idempotent).
    """
    _after_commit.pop(name, None)
    _in_transaction[name] = _InTransaction(name, _kinds(kinds), handler)


def subscribe_after_commit(
    name: str, handler: AfterCommit, kinds: Iterable[str] | None = None
) -> None:
    """``handler(change)`` runs after every committed change (of ``kinds``)."""
    _in_transaction.pop(name, None)
    _after_commit[name] = _AfterCommit(name, _kinds(kinds), handler)


def unsubscribe(name: str) -> None:
    _in_transaction.pop(name, None)
    _after_commit.pop(name, None)


def mark_wired() -> None:
    """Called by ``wire()`` once every subscriber is in: changes may be published."""
    global _wired
    _wired = True


def _kinds(kinds: Iterable[str] | None) -> frozenset[str] | None:
    return frozenset(kinds) if kinds is not None else None


def transaction_items(change: OrderChange) -> list[TransactionItem]:
    """What the in-transaction subscribers add to this change's transaction.

    Raises ``NotWired`` (before anything is written) when nothing was wired.
    """
    if not _wired:
        raise NotWired("order events are not wired: call chalicelib.wiring.wire() at start")
    items: list[TransactionItem] = []
    for subscriber in list(_in_transaction.values()):
        if _wants(subscriber, change):
            items.extend(subscriber.handler(change))
    return items


def add_to(tx: TransactWrite, items: Iterable[TransactionItem]) -> None:
    """Put the subscribers' items in the change's transaction."""
    for entry in items:
        if isinstance(entry, Save):
            tx.save(entry.item, condition=entry.condition)
        elif isinstance(entry, Update):
            tx.update(entry.item, actions=entry.actions, condition=entry.condition)
        else:
            tx.condition_check(type(entry.item), entry.item.pk, entry.item.sk, entry.condition)


def failed_item(
    items: Iterable[TransactionItem], failed: set[tuple[str, str]]
) -> TransactionItem | None:
    """The subscriber's item whose condition cancelled the transaction, if one did."""
    return next((i for i in items if (i.item.pk, i.item.sk) in failed), None)


def run_after_commit(change: OrderChange) -> list[str]:
    """Run the after-commit subscribers; never raises. Returns the names of those that failed.

    Each failure is logged here; the caller records it on the order for retry.
    """
    failed: list[str] = []
    for subscriber in list(_after_commit.values()):
        if not _wants(subscriber, change):
            continue
        try:
            subscriber.handler(change)
        except Exception:  # the change is committed: a reaction never turns it into an error
            log.exception(
                "order reaction failed: order %s, event %s, subscriber %s",
                change.after.order_id,
                change.kind,
                subscriber.name,
                extra={
                    "order": change.after.order_id,
                    "event_kind": change.kind,
                    "subscriber": subscriber.name,
                },
            )
            failed.append(subscriber.name)
    return failed

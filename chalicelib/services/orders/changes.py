"""Saved changes of an order (edit, workflow, rating): one transaction each, then its reactions."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError

from chalicelib.db.accounts import Company
from chalicelib.db.base import (
    CONFLICT_ATTEMPTS,
    Item,
    conflict_pause,
    failed_keys,
    only_conflicted,
    retried,
    transaction,
)
from chalicelib.db.customers import OrderRating
from chalicelib.db.orders import Order, OrderEvent
from chalicelib.db.stats import rating_updates, stat_updates
from chalicelib.domain import workflow
from chalicelib.domain.errors import AppError, Conflict, ValidationFailed
from chalicelib.services import order_events
from chalicelib.services.order_events import OrderChange
from chalicelib.services.orders.access import load_order, partner_guard, require_owner
from chalicelib.services.orders.entries import write_entries
from chalicelib.services.orders.forms import EDITABLE_FIELDS, check_order_form
from chalicelib.services.orders.history import Actor, new_event, record_event, snapshot
from chalicelib.services.sessions import now

log = logging.getLogger("checkos.orders")
SYSTEM = Actor(name="CheckOS", kind="system")


class EditConflict(Conflict):
    """Someone else saved the order since the form was read: who and when, for the message."""

    key = "order.edit_conflict"

    def __init__(self, *, who: str | None, when: datetime) -> None:
        super().__init__(who=who, when=when)
        self.who = who or ""
        self.when = when


def save_change(
    before: Order,
    after: Order,
    event: OrderEvent,
    *,
    expected_version: int,
    also: Iterable[Item] = (),
    updates: Iterable[tuple[Item, list]] = (),
    checks: Iterable[tuple[Item, Any, AppError]] = (),
    company: Company | None = None,
) -> None:
    """Save one change of an order (public: partners and erasure change orders through it).

    One TransactWriteItems: the order (its version must still be
    ``expected_version``: EditConflict otherwise), the history ``event``, the list
    entries and counters ``before`` → ``after`` imply, the caller's ``also`` (puts),
    ``updates`` and ``checks`` (a failing check raises its error), and what the
    in-transaction subscribers of ``services/order_events.py`` add. Once committed,
    the after-commit subscribers run (``publish``). ``company``: the company making
    the change, when the caller has it (the subscribers may spare a read).
    """
    checks = list(checks)
    also, updates = list(also), list(updates)
    after.updated_at = event.at
    after.updated_by_name = event.actor_name
    change = OrderChange(before, after, event, company)
    reactions = order_events.transaction_items(change)  # NotWired before any write
    for attempt in range(CONFLICT_ATTEMPTS):
        after.version = expected_version
        tx = transaction()
        try:
            with tx:
                tx.save(after)  # VersionAttribute: condition version == expected, then +1
                tx.save(event)
                write_entries(tx, before, after)
                for item, actions in stat_updates(before, after, event.at):
                    tx.update(item, actions=actions)
                for item in also:
                    tx.save(item)
                for item, actions in updates:
                    tx.update(item, actions=actions)
                for item, condition, _problem in checks:
                    tx.condition_check(type(item), item.pk, item.sk, condition=condition)
                order_events.add_to(tx, reactions)
        except TransactWriteError as error:
            failed = failed_keys(error, tx)
            for item, _condition, problem in checks:
                if (item.pk, item.sk) in failed:
                    raise problem from error
            if (after.pk, after.sk) in failed:
                # Only the order's own version says someone else changed it.
                current = Order.get(*Order.key(after.order_id), consistent_read=True)
                raise EditConflict(who=current.updated_by_name, when=current.updated_at) from error
            refused = order_events.failed_item(reactions, failed)
            if refused is not None and refused.problem is not None:
                raise refused.problem from error
            if only_conflicted(error) and attempt + 1 < CONFLICT_ATTEMPTS:
                # Another transaction held an item we share (the company's counters, or
                # the order for a moment): nothing was written; the version condition
                # decides on the next attempt whether this change still applies.
                conflict_pause(attempt)
                continue
            retried("order change", attempt)
            raise  # a busy page that keeps the form, never "changed by someone else"
        retried("order change", attempt)
        break
    after.version = expected_version + 1
    publish(change)


def publish(change: OrderChange) -> None:
    """After the commit: run the after-commit subscribers; never raises.

    A subscriber that failed (logged by ``order_events``) is recorded for retry as a
    ``reaction_failed`` line in the order's history, its note naming the subscriber.
    """
    for name in order_events.run_after_commit(change):
        try:
            record_event(change.after.order_id, SYSTEM, "reaction_failed", name)
        except Exception:  # the log line above is then the only record
            log.exception(
                "order reaction failure not recorded: order %s, subscriber %s",
                change.after.order_id,
                name,
                extra={"order": change.after.order_id, "subscriber": name},
            )


def edit_order(
    company: Company,
    order_id: str,
    actor: Actor,
    form: Mapping[str, str],
    team_members: Mapping[str, str],
    locale: str = "en",
) -> Order:
    """Save the edit form; a stale version is refused with who changed it and when."""
    order = load_order(company.company_id, order_id)
    require_owner(order, company.company_id)
    try:
        expected = int(form.get("version", ""))
    except ValueError:
        expected = -1
    if order.version != expected:
        raise EditConflict(who=order.updated_by_name, when=order.updated_at)
    values, custom = check_order_form(form, company, team_members, locale)
    before = snapshot(order)
    changed = [name for name in EDITABLE_FIELDS if getattr(order, name) != values.get(name)]
    for name in EDITABLE_FIELDS:
        setattr(order, name, values.get(name) if values.get(name) is not None else _blank(name))
    if order.custom_values != custom:
        changed.append("custom")
    order.custom = dict(custom)
    event = new_event(order, actor, "edited", now(), note=", ".join(changed) or None)
    save_change(before, order, event, expected_version=expected)
    return order


def _blank(name: str) -> str | None:
    nullable = {"service_date", "service_time", "technician_id", "technician_name"}
    return None if name in nullable or name == "estimated_value" else ""


def change_status(
    company_id: str,
    order_id: str,
    actor: Actor,
    action: str,
    *,
    note: str = "",
    version: int | None = None,
) -> tuple[Order, OrderEvent]:
    """Move the order through the workflow; invalid moves are refused with a reason."""
    order = load_order(company_id, order_id)
    actor, checks = partner_guard(order, company_id, actor, action)
    if version is not None and order.version != version:
        raise EditConflict(who=order.updated_by_name, when=order.updated_at)
    note = " ".join(note.split())[:1000]
    if action == "cancel" and not note:
        raise ValidationFailed({"note": ("order.cancel_reason_required", {})})
    target = workflow.next_status(order.status, action)
    before = snapshot(order)
    order.status = target
    order.cancel_reason = note if action == "cancel" else None
    event = new_event(
        order,
        actor,
        "status",
        now(),
        from_status=before.status,
        to_status=target,
        note=note or None,
    )
    save_change(before, order, event, expected_version=int(order.version or 0), checks=checks)
    return order, event


def rate(
    order: Order, actor: Actor, stars: int, comment: str, previous: OrderRating | None
) -> OrderEvent:
    """Set or change the customer's rating in one transaction: the order and its list
    entries (``RATING#<n>``), the ``RATING`` item and the ``STAT#RATING`` average counters.
    The order's version guards against a concurrent change (EditConflict)."""
    at = now()
    before = snapshot(order)
    order.rating = stars
    rating = OrderRating(
        *OrderRating.key(order.order_id),
        stars=stars,
        comment=comment,
        first_rated_at=previous.first_rated_at if previous else at,
        updated_at=at,
    )
    note = f"{stars}/5" + (f" · {comment}" if comment else "")
    event = new_event(order, actor, "rated", at, note=note[:1000])
    old = int(previous.stars) if previous else None
    save_change(
        before,
        order,
        event,
        expected_version=int(order.version or 0),
        also=[rating],
        updates=rating_updates(order.company_id, old, stars),
    )
    return event

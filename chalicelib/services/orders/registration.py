"""Registering orders: the next number and the monthly quota, in the order's transaction."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.config import get_settings
from chalicelib.db import keys
from chalicelib.db.accounts import Company, User
from chalicelib.db.base import Item, conflicted, failed_keys, only_conflicted, retried, transaction
from chalicelib.db.orders import MonthlyUsage, Order, OrderCounter
from chalicelib.db.overlap import together
from chalicelib.db.stats import stat_updates
from chalicelib.domain import workflow
from chalicelib.domain.errors import AppError, Conflict
from chalicelib.domain.tokens import new_id
from chalicelib.services import order_events
from chalicelib.services.order_events import OrderChange
from chalicelib.services.orders.access import load_order
from chalicelib.services.orders.changes import publish
from chalicelib.services.orders.entries import write_entries
from chalicelib.services.orders.forms import check_order_form
from chalicelib.services.orders.history import Actor, new_event
from chalicelib.services.sessions import now

# Numbering keeps trying while other registrations take numbers (each failed counter
# condition is someone else's success, so the monthly quota ends it) or hold the
# counter (DynamoDB cancels for the concurrent transaction); only after this many
# attempts does it give up ("many orders are being registered, try again").
REGISTER_ATTEMPTS = 200


class QuotaExceeded(AppError):
    status = 409
    key = "order.quota_exceeded"


def team(company_id: str) -> dict[str, str]:
    """The company's users (technicians to assign), id -> name, in one Query."""
    users = Item.query(keys.company(company_id), Item.sk.startswith("USER#"))
    return {u.user_id: u.name for u in users if isinstance(u, User)}


def team_and_usage(company_id: str) -> tuple[dict[str, str], int]:
    """The new-order form's reads, sent together: the team and this month's usage."""
    found, usage = together(lambda: team(company_id), lambda: usage_this_month(company_id))
    return found, usage


def order_and_team(company_id: str, order_id: str) -> tuple[Order, dict[str, str]]:
    """The edit form's reads, sent together: the order (``load_order``: another
    company's is not found) and the team."""
    order, found = together(lambda: load_order(company_id, order_id), lambda: team(company_id))
    return order, found


def monthly_limit(company: Company) -> int:
    return int(company.monthly_quota or get_settings().free_plan_monthly_orders)


def month_of(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


def usage_this_month(company_id: str) -> int:
    try:
        return int(MonthlyUsage.get(*MonthlyUsage.key(company_id, month_of(now()))).count)
    except DoesNotExist:
        return 0


def register_order(
    company: Company,
    actor: Actor,
    form: Mapping[str, str],
    team_members: Mapping[str, str],
    *,
    source: str = "staff",
    locale: str = "en",
) -> Order:
    """Validate and create an order with the next number, inside the monthly quota.

    ``locale``: the language the person typed in (amounts are read its way).
    """
    values, custom = check_order_form(form, company, team_members, locale)
    return create_order(company, actor, values, custom, source=source)


def create_order(
    company: Company,
    actor: Actor,
    values: Mapping[str, str | None],
    custom: Mapping[str, str],
    *,
    source: str = "staff",
    with_order: Callable[[TransactWrite, Order], None] | None = None,
) -> Order:
    """Create an already-validated order (staff form, confirmed intake).

    ``with_order(tx, order)`` adds writes that must happen with the order or
    not at all (the intake request it confirms): they join its transaction.
    """
    limit = monthly_limit(company)
    order_id = new_id()
    given: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
    for attempt in range(REGISTER_ATTEMPTS):
        created = now()
        counter_key = OrderCounter.key(company.company_id)
        try:
            last = int(OrderCounter.get(*counter_key, consistent_read=True).last_number)
        except DoesNotExist:
            last = 0
        order = Order(
            *Order.key(order_id),
            order_id=order_id,
            company_id=company.company_id,
            number=last + 1,
            status=workflow.REGISTERED,
            source=source,
            custom=dict(custom),
            created_at=created,
            created_by_name=actor.name,
            updated_at=created,
            updated_by_name=actor.name,
            **given,
        )
        counter = OrderCounter(*counter_key)
        usage = MonthlyUsage(*MonthlyUsage.key(company.company_id, month_of(created)))
        counter_guard = (
            OrderCounter.last_number == last if last else OrderCounter.last_number.does_not_exist()
        )
        created_event = new_event(order, actor, "created", created, to_status=order.status)
        change = OrderChange(None, order, created_event, company)
        reactions = order_events.transaction_items(change)  # NotWired before any write
        tx = transaction()
        try:
            with tx:
                tx.update(
                    counter,
                    actions=[
                        OrderCounter.type.set(OrderCounter),
                        OrderCounter.last_number.set(last + 1),
                    ],
                    condition=counter_guard,
                )
                tx.update(
                    usage,
                    actions=[MonthlyUsage.type.set(MonthlyUsage), MonthlyUsage.count.add(1)],
                    condition=MonthlyUsage.count.does_not_exist() | (MonthlyUsage.count < limit),
                )
                tx.save(order, condition=Order.pk.does_not_exist())
                tx.save(created_event)
                write_entries(tx, None, order)
                for item, actions in stat_updates(None, order, created):
                    tx.update(item, actions=actions)
                if with_order is not None:
                    with_order(tx, order)
                order_events.add_to(tx, reactions)
        except TransactWriteError as error:
            failed = failed_keys(error, tx)
            if (usage.pk, usage.sk) in failed:
                raise QuotaExceeded(limit=limit) from error
            refused = order_events.failed_item(reactions, failed)
            if refused is not None and refused.problem is not None:
                raise refused.problem from error
            took_number = (counter.pk, counter.sk) in failed
            if (took_number or only_conflicted(error)) and attempt + 1 < REGISTER_ATTEMPTS:
                # Another registration took this number a moment ago (take the next one),
                # or held a shared item (counters) as we wrote: nothing was written.
                # Exponential backoff with full jitter keeps contention short.
                time.sleep(random.uniform(0, 0.01 * 2 ** min(attempt, 5)))
                continue
            retried("registration", attempt)
            if took_number or conflicted(error):
                raise Conflict("order.busy") from error
            raise
        retried("registration", attempt)
        order.version = 1
        publish(change)
        return order
    raise AssertionError("unreachable")  # pragma: no cover

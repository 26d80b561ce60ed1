"""An order's history: who acts on it, the event a change writes, lines added alone."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.db.orders import Order, OrderEvent
from chalicelib.services.sessions import now


@dataclass(frozen=True)
class Actor:
    """Who changes an order, as the history shows it."""

    name: str
    kind: str = "staff"  # staff | customer | partner | system
    user_id: str | None = None
    company_id: str | None = None


def snapshot(order: Order) -> Order:
    """A detached copy, to diff entries and counters before/after a change.

    Public: the ``before`` a caller of ``save_change`` (partners, erasure) keeps.
    """
    copy = Order.from_raw_data(order.serialize())
    return copy


def new_event(
    order: Order, actor: Actor, kind: str, at: datetime, **extra: str | None
) -> OrderEvent:
    """The history line a change writes (public: ``save_change`` callers build theirs).

    ``extra`` sets ``from_status``, ``to_status`` or ``note``; None leaves it out.
    """
    stamp = f"{at.isoformat()}#{random.randbytes(3).hex()}"
    fields: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    return OrderEvent(
        *OrderEvent.key(order.order_id, stamp),
        kind=kind,
        at=at,
        actor_name=actor.name,
        actor_kind=actor.kind,
        **fields,
    )


def record_event(order_id: str, actor: Actor, kind: str, note: str) -> OrderEvent:
    """A history line without changing the order (e-mail sent or failed, link revoked…)."""
    order = Order(*Order.key(order_id), order_id=order_id)  # new_event keys on order_id
    event = new_event(order, actor, kind, now(), note=note[:1000])
    event.save()
    return event

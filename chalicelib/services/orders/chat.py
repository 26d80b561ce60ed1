"""An order's one chat thread: post and append messages."""

from __future__ import annotations

import random

from chalicelib.db.orders import OrderMessage
from chalicelib.domain.errors import ValidationFailed
from chalicelib.services.orders.access import load_order, partner_guard
from chalicelib.services.orders.history import Actor
from chalicelib.services.sessions import now

MAX_MESSAGE = 4000


def post_message(company_id: str, order_id: str, actor: Actor, text: str) -> OrderMessage:
    """Append to the order's one chat thread; never overwrites (unique sort key)."""
    order = load_order(company_id, order_id)  # access check
    actor, _checks = partner_guard(order, company_id, actor, "message")
    return append_message(order_id, actor, text)


def check_message(text: str) -> str:
    """The message as it will be stored; ValidationFailed when it is empty or too long."""
    body = text.strip()
    if not body:
        raise ValidationFailed({"text": ("form.required", {})})
    if len(body) > MAX_MESSAGE:
        raise ValidationFailed({"text": ("form.too_long", {"n": MAX_MESSAGE})})
    return body


def append_message(order_id: str, actor: Actor, text: str) -> OrderMessage:
    body = check_message(text)
    at = now()
    message = OrderMessage(
        *OrderMessage.key(order_id, f"{at.isoformat()}#{random.randbytes(4).hex()}"),
        at=at,
        author_name=actor.name,
        author_kind=actor.kind,
        author_company=actor.company_id,
        author_id=actor.user_id,
        text=body,
    )
    message.save(condition=OrderMessage.pk.does_not_exist())
    return message

"""Service orders: register, edit, move through the workflow, chat, list and search.

Every change of an order is one TransactWriteItems: the order (optimistic
lock), its history event, its list entries, the dashboard counters and, at
registration, the per-company number and the monthly quota.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from chalicelib.config import get_settings
from chalicelib.db import keys
from chalicelib.db.accounts import Company, User
from chalicelib.db.base import (
    CONFLICT_ATTEMPTS,
    Item,
    conflict_pause,
    conflicted,
    failed_keys,
    only_conflicted,
    query_page,
    retried,
    transaction,
)
from chalicelib.db.customers import OrderRating
from chalicelib.db.orders import (
    MonthlyUsage,
    Order,
    OrderCounter,
    OrderEntry,
    OrderEvent,
    OrderMessage,
)
from chalicelib.db.overlap import together
from chalicelib.db.partners import Partnership
from chalicelib.db.stats import rating_updates, stat_updates
from chalicelib.domain import visibility, workflow
from chalicelib.domain.aging import attention_key
from chalicelib.domain.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed
from chalicelib.domain.tokens import new_id
from chalicelib.domain.validation import Checker, fold, phone_digits
from chalicelib.i18n import formatting
from chalicelib.services.sessions import now

PAGE_SIZE = 20
PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
MAX_MESSAGE = 4000
NAME_TOKENS = 4
# Numbering keeps trying while other registrations take numbers (each failed counter
# condition is someone else's success, so the monthly quota ends it) or hold the
# counter (DynamoDB cancels for the concurrent transaction); only after this many
# attempts does it give up ("many orders are being registered, try again").
REGISTER_ATTEMPTS = 200

# name -> (max length, multi-line)
TEXT_FIELDS: dict[str, tuple[int, bool]] = {
    "customer_name": (120, False),
    "customer_phone": (40, False),
    "customer_address": (300, True),
    "service_type": (80, False),
    "brand": (80, False),
    "model": (80, False),
    "serial": (80, False),
    "problem": (4000, True),
    "condition": (2000, True),
    "internal_notes": (4000, True),
}
REQUIRED_FIELDS = frozenset({"customer_name", "problem"})
EDITABLE_FIELDS: tuple[str, ...] = (
    *TEXT_FIELDS,
    "customer_email",
    "service_date",
    "service_time",
    "priority",
    "technician_id",
    "technician_name",
    "estimated_value",
)


class QuotaExceeded(AppError):
    status = 409
    key = "order.quota_exceeded"


class EditConflict(Conflict):
    key = "order.edit_conflict"


class OwnerOnly(Forbidden):
    """The partner executing a shared order may not change the owner's order details."""

    key = "partners.owner_only"


@dataclass(frozen=True)
class Actor:
    """Who changes an order, as the history shows it."""

    name: str
    kind: str = "staff"  # staff | customer | partner | system
    user_id: str | None = None
    company_id: str | None = None


@dataclass
class OrderView:
    """The order with the newest page (or an older page) of its history and of its chat.

    ``events`` and ``messages`` are oldest first; ``older_*`` are the signed cursors of
    the next older page (None: nothing older), ``*_paged`` say an older page is shown.
    ``order`` is as stored (what writes start from) and never rendered as it is:
    pages show ``shown``, the fields ``access`` allows this viewer.
    """

    order: Order
    events: list[OrderEvent] = field(default_factory=list)
    messages: list[OrderMessage] = field(default_factory=list)
    extras: list[Item] = field(default_factory=list)
    older_events: str | None = None
    older_messages: str | None = None
    events_paged: bool = False
    messages_paged: bool = False
    access: visibility.Access = visibility.NO_ACCESS
    # The viewer's side of its partnership with the owner (executors only).
    link: Partnership | None = None

    @property
    def shown(self) -> Order:
        """The order as this viewer may see it (pages, print): owner-only fields blanked."""
        return shown(self.order, self.access)


# -- validation -----------------------------------------------------------


def _check_date(check: Checker, name: str) -> str | None:
    raw = (check.data.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        check.fail(name, "order.bad_date")
        return None


def _check_time(check: Checker, name: str) -> str | None:
    raw = (check.data.get(name) or "").strip()
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%H:%M").strftime("%H:%M")
    except ValueError:
        check.fail(name, "order.bad_time")
        return None


def check_decimal(
    check: Checker, name: str, *, required: bool = False, locale: str = "en"
) -> str | None:
    """An amount typed the way ``locale`` writes numbers; ambiguous text is refused."""
    raw = (check.data.get(name) or "").strip()
    if not raw:
        if required:
            check.fail(name, "form.required")
        return None
    try:
        value = formatting.parse_amount(raw, locale)
    except formatting.AmountUnclear:
        check.fail(name, "order.bad_amount", example=formatting.amount_example(locale))
        return None
    return str(value)


def check_order_form(
    form: Mapping[str, str], company: Company, team: Mapping[str, str], locale: str = "en"
) -> tuple[dict[str, str | None], dict[str, str]]:
    """Clean standard and custom fields; every problem at once (ValidationFailed)."""
    check = Checker(form)
    values: dict[str, str | None] = {}
    for name, (max_len, multiline) in TEXT_FIELDS.items():
        values[name] = check.text(
            name, required=name in REQUIRED_FIELDS, max_len=max_len, multiline=multiline
        )
    values["customer_email"] = check.email("customer_email", required=False)
    values["service_date"] = _check_date(check, "service_date")
    values["service_time"] = _check_time(check, "service_time")
    values["priority"] = check.choice("priority", PRIORITIES, required=False) or "normal"
    technician = (form.get("technician_id") or "").strip()
    if technician and technician not in team:
        check.fail("technician_id", "form.bad_choice")
        technician = ""
    values["technician_id"] = technician or None
    values["technician_name"] = team.get(technician) if technician else None
    values["estimated_value"] = check_decimal(check, "estimated_value", locale=locale)
    custom = check_custom_fields(check, company, locale)
    check.done()
    return values, custom


def check_custom_fields(check: Checker, company: Company, locale: str = "en") -> dict[str, str]:
    custom: dict[str, str] = {}
    for spec in company.custom_fields or []:
        name = f"cf_{spec.field_id}"
        raw = (check.data.get(name) or "").strip()
        if not raw:
            if spec.required:
                check.fail(name, "form.required")
            continue
        if spec.kind == "number":
            value = check_decimal(check, name, locale=locale)
        elif spec.kind == "date":
            value = _check_date(check, name)
        elif spec.kind == "choice":
            value = raw if raw in (spec.options or []) else None
            if value is None:
                check.fail(name, "form.bad_choice")
        else:
            value = check.text(name, max_len=500, multiline=True)
        if value:
            custom[spec.field_id] = value
    return custom


# -- entries (list rows) ---------------------------------------------------


def _dimensions(order: Order) -> list[tuple[str, str]]:
    """(dimension, sort key) of every list entry the order has in its owner's lists."""
    created = order.created_at.isoformat()
    tail = f"{created}#{order.order_id}"
    dims = [("ALL", tail), (f"STATUS#{order.status}", tail), (f"NUM#{order.number}", tail)]
    if workflow.is_open(order.status):
        service_day = date.fromisoformat(order.service_date) if order.service_date else None
        dims.append(("OPEN", f"{attention_key(order.created_at.date(), service_day)}#{tail}"))
    digits = phone_digits(order.customer_phone)
    if len(digits) >= 4:
        dims.append((f"PHONE#{digits[-8:]}", tail))
    for token in list(dict.fromkeys(fold(order.customer_name).split()))[:NAME_TOKENS]:
        dims.append(("NAME", f"{token}#{tail}"))
    if order.service_type:
        dims.append((f"TYPE#{fold(order.service_type)}", tail))
    if order.brand:
        dims.append((f"BRAND#{fold(order.brand)}", tail))
    if order.technician_id:
        dims.append((f"TECH#{order.technician_id}", tail))
    if order.rating:
        dims.append((f"RATING#{int(order.rating)}", tail))
    return dims


def entry_companies(order: Order) -> list[str]:
    """Companies whose lists show this order (the owner, and a partner executing it)."""
    return [c for c in dict.fromkeys([order.company_id, order.executor_id]) if c]


# Sparse date indexes of the daily aging job, carried only by the owner's OPEN
# entry: closing an order deletes that entry in the same transaction, so closed
# orders drop out of both indexes. gsi1: service date; gsi2: registration day.
def due_partition(day: str) -> str:
    return f"DUE#{day}"


def registered_partition(day: str) -> str:
    return f"REG#{day}"


def _aging_index(order: Order) -> dict[str, str]:
    sort_key = f"{order.company_id}#{order.order_id}"
    index = {
        "gsi2pk": registered_partition(order.created_at.date().isoformat()),
        "gsi2sk": sort_key,
    }
    if order.service_date:
        index.update(gsi1pk=due_partition(order.service_date), gsi1sk=sort_key)
    return index


def entries_for(order: Order | None) -> dict[tuple[str, str], OrderEntry]:
    if order is None:
        return {}
    found: dict[tuple[str, str], OrderEntry] = {}
    for company_id in entry_companies(order):
        for dimension, sort_key in _dimensions(order):
            pk = keys.order_entries(company_id, dimension)
            found[(pk, sort_key)] = OrderEntry(
                pk,
                sort_key,
                order_id=order.order_id,
                owner_id=order.company_id,
                number=order.number,
                status=order.status,
                customer_name=order.customer_name,
                customer_phone=order.customer_phone,
                service_type=order.service_type,
                brand=order.brand,
                service_date=order.service_date,
                technician_id=order.technician_id,
                technician_name=order.technician_name,
                created=order.created_at.isoformat(),
                rating=order.rating,
                owner_erased=True if order.owner_erased_at else None,
                f_name=fold(order.customer_name),
                f_type=fold(order.service_type),
                f_brand=fold(order.brand),
                phone_digits=phone_digits(order.customer_phone),
                **(
                    _aging_index(order)
                    if dimension == "OPEN" and company_id == order.company_id
                    else {}
                ),
            )
    return found


def snapshot(order: Order) -> Order:
    """A detached copy, to diff entries and counters before/after a change."""
    copy = Order.from_raw_data(order.serialize())
    return copy


def _write_entries(tx: object, before: Order | None, after: Order) -> None:
    old, new = entries_for(before), entries_for(after)
    for key in old.keys() - new.keys():
        tx.delete(OrderEntry(*key))  # type: ignore[attr-defined]
    for entry in new.values():
        tx.save(entry)  # type: ignore[attr-defined]


def new_event(
    order: Order, actor: Actor, kind: str, at: datetime, **extra: str | None
) -> OrderEvent:
    stamp = f"{at.isoformat()}#{random.randbytes(3).hex()}"
    return OrderEvent(
        *OrderEvent.key(order.order_id, stamp),
        kind=kind,
        at=at,
        actor_name=actor.name,
        actor_kind=actor.kind,
        **{k: v for k, v in extra.items() if v is not None},
    )


# -- reading ---------------------------------------------------------------


def can_view(order: Order, company_id: str) -> bool:
    """Only a first filter: ``access_for`` decides (the executor's partnership state)."""
    return company_id in (order.company_id, order.executor_id)


def link_of(company_id: str, owner_id: str) -> Partnership | None:
    """The executor's side of its partnership with the owner: one GetItem."""
    try:
        return Partnership.get(*Partnership.key(company_id, owner_id), consistent_read=True)
    except DoesNotExist:
        return None


def access_for(order: Order, company_id: str, link: Partnership | None = None) -> visibility.Access:
    """``visibility.order_access`` for a company, given its link with the owner."""
    return visibility.order_access(
        order.company_id,
        order.executor_id,
        order.status,
        company_id,
        link.state if link is not None else None,
        owner_erased=order.owner_erased_at is not None,
    )


def links_of(company_id: str) -> dict[str, Partnership]:
    """Our side of every partnership, by partner id: one Query (exports, archives)."""
    found = Item.query(keys.company(company_id), Item.sk.startswith("PARTNER#"))
    return {p.partner_id: p for p in found if isinstance(p, Partnership)}


def shown(order: Order, access: visibility.Access) -> Order:
    """A detached copy carrying only the fields ``access`` allows (the rest blank)."""
    copy = snapshot(order)
    for name in visibility.ALL_FIELDS - access.fields:
        if name == "custom":
            copy.custom = {}
        elif name in ("company_id", "order_id", "number", "status"):
            continue  # keys every view needs; never hidden by the rule
        else:
            setattr(copy, name, _hidden_value(name))
    return copy


def _hidden_value(name: str) -> object:
    attribute = Order.get_attributes()[name]
    if attribute.null:
        return None
    default = attribute.default
    return default() if callable(default) else default


def order_view(
    company_id: str,
    order_id: str,
    *,
    events_before: str | None = None,
    messages_before: str | None = None,
    link_reader: Callable[[str, str], Partnership | None] | None = None,
) -> OrderView:
    """Order, newest history and newest chat: two Queries reading at most a page each.

    ``*_before`` are cursors from an "older" link; one that is not a valid cursor of
    this order, for this company, shows the newest page. Another company's order is
    "not found". ``link_reader`` reads an executor's partnership with the owner
    (``link_of`` unless the caller already has the company's partnerships coming).
    """
    scope = f"{company_id}:{order_id}"
    # Strongly consistent: every write (register, edit, status, chat) redirects here,
    # and an eventually consistent read may not show it yet (twice the read units of
    # at most two pages of one partition).
    view = read_partition(
        order_id,
        events_before=read_cursor(scope, events_before, EVENT_PREFIX),
        messages_before=read_cursor(scope, messages_before, MESSAGE_PREFIX),
        consistent=True,
    )
    if view is None or not can_view(view.order, company_id):
        raise NotFound()
    # The executor of a shared order also reads its partnership with the owner (one
    # GetItem): a deleted link hides the open orders, a suspended one leaves them
    # read-only (``visibility.order_access``).
    order = view.order
    read_link = link_reader or link_of
    link = read_link(company_id, order.company_id) if company_id != order.company_id else None
    view.access = access_for(order, company_id, link)
    view.link = link
    if not view.access.visible:
        raise NotFound()
    view.older_events = sign_cursor(scope, view.older_events)
    view.older_messages = sign_cursor(scope, view.older_messages)
    return view


def load_order(company_id: str, order_id: str) -> Order:
    """The order alone (one GetItem), for changes that need no history; foreign: not found.

    An executor's access also follows its partnership with the owner (one more
    GetItem, executors only): after a deletion its open orders do not exist for it.
    """
    try:
        order = Order.get(*Order.key(order_id))
    except DoesNotExist:
        raise NotFound() from None
    if not can_view(order, company_id):
        raise NotFound()
    if company_id != order.company_id:
        link = link_of(company_id, order.company_id)
        if not access_for(order, company_id, link).visible:
            raise NotFound()
    return order


# -- an order's partition, a page at a time ----------------------------------
#
# Sort keys of ``ORDER#<id>``: ``EVENT#<stamp>`` < ``META`` < ``MSG#<stamp>`` <
# ``RATING``. Read backwards, ``sk <= META`` starts with the order and goes on
# with its newest events; ``sk >= MSG#`` starts with the rating and goes on with
# the newest messages. So the newest page of both is two Queries of a page
# each, whatever the number of messages.

EVENT_PREFIX = "EVENT#"
MESSAGE_PREFIX = "MSG#"
RATING_SK = "RATING"
HISTORY_PAGE = 50  # history lines and chat messages an order page shows at once
_CURSOR_SK = re.compile(r"^(EVENT|MSG)#[0-9A-Za-z:.+#-]{10,80}$")


def sign_cursor(scope: str, sk: str | None) -> str | None:
    """An "older" link's cursor: the sort key, bound to who reads which order (HMAC)."""
    if sk is None:
        return None
    raw = sk.encode()
    mac = hmac.new(_cursor_key(), scope.encode() + b"|" + raw, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")


def read_cursor(scope: str, cursor: str | None, prefix: str) -> str | None:
    """The sort key behind a cursor signed for ``scope``; None when it is not one."""
    if not cursor or len(cursor) > 200:
        return None
    try:
        data = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (ValueError, TypeError):
        return None
    mac, raw = data[:12], data[12:]
    signed = scope.encode() + b"|" + raw
    if not any(
        hmac.compare_digest(mac, hmac.new(key, signed, hashlib.sha256).digest()[:12])
        for key in _cursor_keys()
    ):
        return None
    sk = raw.decode(errors="replace")
    return sk if sk.startswith(prefix) and _CURSOR_SK.match(sk) else None


def _cursor_key() -> bytes:
    return _cursor_keys()[0]


def _cursor_keys() -> tuple[bytes, ...]:
    return tuple(
        hashlib.sha256(b"order-cursor|" + key.encode()).digest()
        for key in get_settings().signing_keys
    )


def read_partition(
    order_id: str,
    *,
    events_before: str | None = None,
    messages_before: str | None = None,
    consistent: bool = False,
    page: int = HISTORY_PAGE,
) -> OrderView | None:
    """The order and a page of its history and chat (cursors are plain sort keys here).

    Newest pages: two Queries. An older page of either side reads that side from its
    cursor, and the order (or the rating) with one more GetItem/BatchGetItem.
    None when the order does not exist.
    """
    partition = keys.order(order_id)
    anchors: dict[str, Item] = {}
    # The two sides need nothing from each other: one round trip (``db/overlap.py``).
    (events, older_events), (messages, older_messages) = together(
        lambda: _side(
            partition, Item.sk <= Order.SK, EVENT_PREFIX, events_before, page, consistent, anchors
        ),
        lambda: _side(
            partition,
            Item.sk >= MESSAGE_PREFIX,
            MESSAGE_PREFIX,
            messages_before,
            page,
            consistent,
            anchors,
        ),
    )
    paged = ((Order.SK, events_before), (RATING_SK, messages_before))
    missing = [sk for sk, cursor in paged if cursor]
    if missing:
        for item in Item.batch_get([(partition, sk) for sk in missing], consistent_read=consistent):
            anchors[item.sk] = item
    order = anchors.pop(Order.SK, None)
    if not isinstance(order, Order):
        return None
    return OrderView(
        order=order,
        events=[e for e in events if isinstance(e, OrderEvent)],
        messages=[m for m in messages if isinstance(m, OrderMessage)],
        extras=list(anchors.values()),
        older_events=older_events,
        older_messages=older_messages,
        events_paged=events_before is not None,
        messages_paged=messages_before is not None,
    )


def _side(
    partition: str,
    newest: Condition,
    prefix: str,
    before: str | None,
    page: int,
    consistent: bool,
    anchors: dict[str, Item],
) -> tuple[list[Item], str | None]:
    """One Query, newest first: ``page`` items of ``prefix`` (oldest first) and the cursor
    of the next older page. Without a cursor the Query starts at the anchor (the order,
    the rating) and keeps what is not of ``prefix`` in ``anchors``."""
    if before is None:
        found, _next = query_page(
            partition,
            range_key_condition=newest,
            page_size=page + 2,  # the anchor, and one more to know whether older ones exist
            forward=False,
            consistent=consistent,
        )
    else:
        found, _next = query_page(
            partition,
            range_key_condition=Item.sk.startswith(prefix),
            page_size=page + 1,
            forward=False,
            start_sk=before,
            consistent=consistent,
        )
    items: list[Item] = []
    for item in found:
        if item.sk.startswith(prefix):
            items.append(item)
        elif before is None:
            anchors[item.sk] = item
    older = items[page - 1].sk if len(items) > page else None
    return items[:page][::-1], older


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


# -- writing ---------------------------------------------------------------


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
            **{k: v for k, v in values.items() if v is not None},
        )
        counter = OrderCounter(*counter_key)
        usage = MonthlyUsage(*MonthlyUsage.key(company.company_id, month_of(created)))
        counter_guard = (
            OrderCounter.last_number == last if last else OrderCounter.last_number.does_not_exist()
        )
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
                created_event = new_event(order, actor, "created", created, to_status=order.status)
                tx.save(created_event)
                _write_entries(tx, None, order)
                for item, actions in stat_updates(None, order, created):
                    tx.update(item, actions=actions)
                if with_order is not None:
                    with_order(tx, order)
        except TransactWriteError as error:
            failed = failed_keys(error, tx)
            if (usage.pk, usage.sk) in failed:
                raise QuotaExceeded(limit=limit) from error
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
        _tell_customer(company, order, created_event)
        return order
    raise AssertionError("unreachable")  # pragma: no cover


def _tell_customer(company: Company | None, order: Order, event: OrderEvent) -> None:
    """E-mail the customer about a saved change; never raises (the change is committed)."""
    from chalicelib.services import customers  # late import: customers builds on this module

    customers.order_changed(company, order, event)


def save_change(
    before: Order,
    after: Order,
    event: OrderEvent,
    *,
    expected_version: int,
    also: Iterable[Item] = (),
    updates: Iterable[tuple[Item, list]] = (),
    checks: Iterable[tuple[Item, Any, AppError]] = (),
) -> None:
    checks = list(checks)
    also, updates = list(also), list(updates)
    after.updated_at = event.at
    after.updated_by_name = event.actor_name
    for attempt in range(CONFLICT_ATTEMPTS):
        after.version = expected_version
        tx = transaction()
        try:
            with tx:
                tx.save(after)  # VersionAttribute: condition version == expected, then +1
                tx.save(event)
                _write_entries(tx, before, after)
                for item, actions in stat_updates(before, after, event.at):
                    tx.update(item, actions=actions)
                for item in also:
                    tx.save(item)
                for item, actions in updates:
                    tx.update(item, actions=actions)
                for item, condition, _problem in checks:
                    tx.condition_check(type(item), item.pk, item.sk, condition=condition)
        except TransactWriteError as error:
            failed = failed_keys(error, tx)
            for item, _condition, problem in checks:
                if (item.pk, item.sk) in failed:
                    raise problem from error
            if (after.pk, after.sk) in failed:
                # Only the order's own version says someone else changed it.
                current = Order.get(*Order.key(after.order_id), consistent_read=True)
                raise EditConflict(who=current.updated_by_name, when=current.updated_at) from error
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
    actor, checks = _partner_guard(order, company_id, actor, action)
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
    _tell_customer(None, order, event)
    return order, event


def require_owner(order: Order, company_id: str) -> None:
    if order.company_id != company_id:
        raise OwnerOnly(owner=order.owner_name or "")


def _partner_guard(
    order: Order, company_id: str, actor: Actor, action: str
) -> tuple[Actor, list[tuple[Item, Any, AppError]]]:
    """Writes by the partner executing a shared order follow the partnership's rules.

    Returns the actor as the history shows it (kind "partner") and the
    condition checks the write's transaction must carry; raises when the
    partner may not act (link suspended or deleted, quote not approved...).
    """
    if company_id == order.company_id:
        return actor, []
    from chalicelib.services import partners  # late import: partners builds on this module

    return partners.executor_guard(order, company_id, actor, action)


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


def record_event(order_id: str, actor: Actor, kind: str, note: str) -> OrderEvent:
    """A history line without changing the order (e-mail sent or failed, link revoked…)."""
    order = Order(*Order.key(order_id), order_id=order_id)  # _event keys on order_id
    event = new_event(order, actor, kind, now(), note=note[:1000])
    event.save()
    return event


def post_message(company_id: str, order_id: str, actor: Actor, text: str) -> OrderMessage:
    """Append to the order's one chat thread; never overwrites (unique sort key)."""
    order = load_order(company_id, order_id)  # access check
    actor, _checks = _partner_guard(order, company_id, actor, "message")
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


# -- lists and search --------------------------------------------------------


@dataclass(frozen=True)
class OrderFilters:
    name: str = ""
    phone: str = ""
    service_type: str = ""
    brand: str = ""
    status: str = ""
    technician: str = ""
    number: str = ""
    rating: str = ""
    colour: str = ""
    date_from: str = ""
    date_to: str = ""
    view: str = ""  # "" = needs attention first (open orders); "all" = every order, newest first

    FIELDS = (
        "name",
        "phone",
        "service_type",
        "brand",
        "status",
        "technician",
        "number",
        "rating",
        "colour",
        "date_from",
        "date_to",
        "view",
    )

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> OrderFilters:
        clean = {k: " ".join((query.get(k) or "").split())[:80] for k in cls.FIELDS}
        if clean["status"] not in workflow.STATUSES:
            clean["status"] = ""
        if not clean["number"].lstrip("#").isdigit():
            clean["number"] = ""
        clean["number"] = clean["number"].lstrip("#")
        if clean["rating"] not in ("1", "2", "3", "4", "5"):
            clean["rating"] = ""
        for name in ("date_from", "date_to"):
            try:
                clean[name] = date.fromisoformat(clean[name]).isoformat() if clean[name] else ""
            except ValueError:
                clean[name] = ""
        return cls(**clean)

    def active(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in self.FIELDS if getattr(self, k)}


@dataclass
class OrderPage:
    entries: list[OrderEntry]
    next_cursor: str | None
    dimension: str


def _plan(filters: OrderFilters) -> tuple[str, bool, list[str]]:
    """Pick the indexed dimension (most selective first) and what remains to filter."""
    digits = phone_digits(filters.phone)
    name_tokens = fold(filters.name).split()
    candidates: list[tuple[str, str | None, bool]] = [
        ("number", f"NUM#{filters.number}" if filters.number else None, False),
        ("phone", f"PHONE#{digits[-8:]}" if len(digits) >= 4 else None, False),
        ("name", "NAME" if name_tokens else None, True),
        ("technician", f"TECH#{filters.technician}" if filters.technician else None, False),
        (
            "service_type",
            f"TYPE#{fold(filters.service_type)}" if filters.service_type else None,
            False,
        ),
        ("brand", f"BRAND#{fold(filters.brand)}" if filters.brand else None, False),
        ("rating", f"RATING#{filters.rating}" if filters.rating else None, False),
        ("status", f"STATUS#{filters.status}" if filters.status else None, False),
        ("colour", "OPEN" if filters.colour else None, True),
    ]
    for used, dimension, forward in candidates:
        if dimension:
            return dimension, forward, [used]
    if filters.view == "all" or filters.date_from or filters.date_to:
        return "ALL", False, []
    return "OPEN", True, []


def _colour_condition(colour: str, today: date) -> object | None:
    cut20 = (today - timedelta(days=20)).isoformat()
    cut30 = (today - timedelta(days=30)).isoformat()
    day = today.isoformat()
    if colour == "red":
        return OrderEntry.created < cut30
    if colour == "orange":
        return (OrderEntry.created >= cut30) & (OrderEntry.created < cut20)
    young = OrderEntry.created >= cut20
    if colour == "yellow":
        return young & (OrderEntry.service_date < day)
    if colour == "blue":
        return young & (OrderEntry.service_date == day)
    if colour == "green":
        return young & (OrderEntry.service_date > day)
    return None


def list_orders(
    company_id: str, filters: OrderFilters, cursor: str | None = None, page_size: int = PAGE_SIZE
) -> OrderPage:
    """One page of the company's orders: one Query, at most ``page_size`` reads (+ one Query
    of our partnerships when the page holds orders we execute: ``visible_entries``)."""
    dimension, forward, used = _plan(filters)
    partition = keys.order_entries(company_id, dimension)
    range_condition = None
    conditions: list[object] = []
    name_tokens = fold(filters.name).split()
    if dimension == "NAME":
        range_condition = Item.sk.startswith(name_tokens[0])
        for token in name_tokens[1:]:
            conditions.append(OrderEntry.f_name.contains(token))
    elif name_tokens:
        for token in name_tokens:
            conditions.append(OrderEntry.f_name.contains(token))
    date_from = filters.date_from
    date_to = (
        (date.fromisoformat(filters.date_to) + timedelta(days=1)).isoformat()
        if (filters.date_to)
        else ""
    )
    if dimension in ("NAME", "OPEN"):
        if date_from:
            conditions.append(OrderEntry.created >= date_from)
        if date_to:
            conditions.append(OrderEntry.created < date_to)
    elif date_from or date_to:
        range_condition = Item.sk.between(date_from or "0", date_to or "9")
    digits = phone_digits(filters.phone)
    if digits and "phone" not in used:
        conditions.append(OrderEntry.phone_digits.contains(digits[-8:]))
    if filters.service_type and "service_type" not in used:
        conditions.append(OrderEntry.f_type == fold(filters.service_type))
    if filters.brand and "brand" not in used:
        conditions.append(OrderEntry.f_brand == fold(filters.brand))
    if filters.status and "status" not in used:
        conditions.append(OrderEntry.status == filters.status)
    if filters.technician and "technician" not in used:
        conditions.append(OrderEntry.technician_id == filters.technician)
    if filters.number and "number" not in used:
        conditions.append(OrderEntry.number == int(filters.number))
    if filters.rating and "rating" not in used:
        conditions.append(OrderEntry.rating == int(filters.rating))
    if filters.colour:
        colour = _colour_condition(filters.colour, now().date())
        if colour is not None:
            conditions.append(colour)
    condition = None
    for part in conditions:
        condition = part if condition is None else condition & part  # type: ignore[operator]
    items, next_sk = query_page(
        partition,
        range_key_condition=range_condition,
        filter_condition=condition,  # type: ignore[arg-type]
        page_size=page_size,
        forward=forward,
        start_sk=cursor,
    )
    entries = list({e.order_id: e for e in items if isinstance(e, OrderEntry)}.values())
    return OrderPage(
        entries=visible_entries(company_id, entries), next_cursor=next_sk, dimension=dimension
    )


def visible_entries(company_id: str, entries: list[OrderEntry]) -> list[OrderEntry]:
    """The rows the company may see (``domain/visibility.py``).

    Rows of orders we execute for a partner pass the rule with our link's
    state: a deletion hands open orders back and removes their rows, and
    should that be cut short, the rows still never show. Costs one Query of
    our partnerships, only on a page holding such rows.
    """
    if all(e.owner_id == company_id for e in entries):
        return entries
    links = links_of(company_id)

    def visible(entry: OrderEntry) -> bool:
        if entry.owner_id == company_id:
            return True
        link = links.get(entry.owner_id)
        return visibility.order_access(
            entry.owner_id,
            company_id,
            entry.status,
            company_id,
            link.state if link is not None else None,
            owner_erased=bool(entry.owner_erased),
        ).visible

    return [e for e in entries if visible(e)]


def open_entries(company_id: str) -> Iterable[OrderEntry]:
    """Every open order of the company (dashboard, jobs): items ∝ open orders."""
    for item in Item.query(keys.order_entries(company_id, "OPEN")):
        if isinstance(item, OrderEntry):
            yield item

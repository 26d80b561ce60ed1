"""Orders: register, edit, move through the workflow, chat, list and search (a module each).

Every change of an order is one TransactWriteItems (``changes.save_change``): the
order (optimistic lock), its history event, its list entries, the dashboard
counters and, at registration, the per-company number and the monthly quota;
what reacts to it subscribes in ``services/order_events.py``. This package
re-exports the public API its callers name as ``orders.<name>``.
"""

from chalicelib.db.orders import Order
from chalicelib.services.orders.access import (
    access_for,
    can_view,
    links_of,
    load_order,
    require_owner,
    shown,
)
from chalicelib.services.orders.changes import (
    EditConflict,
    change_status,
    edit_order,
    rate,
    save_change,
)
from chalicelib.services.orders.chat import (
    MAX_MESSAGE,
    append_message,
    check_message,
    post_message,
)
from chalicelib.services.orders.entries import due_partition, entries_for, registered_partition
from chalicelib.services.orders.forms import (
    EDITABLE_FIELDS,
    PRIORITIES,
    TEXT_FIELDS,
    check_decimal,
    check_order_form,
)
from chalicelib.services.orders.history import Actor, new_event, record_event, snapshot
from chalicelib.services.orders.lists import PAGE_SIZE, OrderFilters, list_orders, open_entries
from chalicelib.services.orders.partition import (
    EVENT_PREFIX,
    HISTORY_PAGE,
    MESSAGE_PREFIX,
    OrderView,
    order_view,
    read_cursor,
    read_partition,
    sign_cursor,
)
from chalicelib.services.orders.registration import (
    QuotaExceeded,
    create_order,
    month_of,
    monthly_limit,
    order_and_team,
    register_order,
    team,
    team_and_usage,
    usage_this_month,
)

__all__ = [
    "EDITABLE_FIELDS",
    "EVENT_PREFIX",
    "HISTORY_PAGE",
    "MAX_MESSAGE",
    "MESSAGE_PREFIX",
    "PAGE_SIZE",
    "PRIORITIES",
    "TEXT_FIELDS",
    "Actor",
    "EditConflict",
    "Order",
    "OrderFilters",
    "OrderView",
    "QuotaExceeded",
    "access_for",
    "append_message",
    "can_view",
    "change_status",
    "check_decimal",
    "check_message",
    "check_order_form",
    "create_order",
    "due_partition",
    "edit_order",
    "entries_for",
    "links_of",
    "list_orders",
    "load_order",
    "month_of",
    "monthly_limit",
    "new_event",
    "open_entries",
    "order_and_team",
    "order_view",
    "post_message",
    "rate",
    "read_cursor",
    "read_partition",
    "record_event",
    "register_order",
    "registered_partition",
    "require_owner",
    "save_change",
    "shown",
    "sign_cursor",
    "snapshot",
    "team",
    "team_and_usage",
    "usage_this_month",
]

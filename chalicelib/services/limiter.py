"""Counting against the declared rate limits (domain/limits.py): one conditional UpdateItem each.

``count(path, company=…, recipient=…, ip=…)`` counts one attempt of ``path``
in the current window of every declared limit whose scope is given. The
write is conditional (``hits < maximum``), so parallel requests can never
pass more than the maximum, and a refused attempt is not counted in that
window. Counters are keyed by the window, never by the item they protect:
deleting and re-creating an invitation does not reset anything.
"""

from __future__ import annotations

import ipaddress
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

from pynamodb.exceptions import UpdateError

from chalicelib.db.customers import RateWindow
from chalicelib.domain import limits
from chalicelib.domain.errors import TooManyRequests
from chalicelib.domain.limits import RateLimit
from chalicelib.services.sessions import now

# The client IP of the web request being served (set by the route decorator for
# each request), for sends that happen deep inside a use case (an order's
# status e-mail). None outside a request: scheduled jobs are not counted per IP.
_REQUEST_IP: ContextVar[str | None] = ContextVar("checkos_request_ip", default=None)


def set_request_ip(ip: str | None) -> None:
    _REQUEST_IP.set(ip)


def request_ip() -> str | None:
    return _REQUEST_IP.get()


class LimitReached(TooManyRequests):
    """At a declared limit: ``limit`` says which, ``key`` is its translated message."""

    key = "limits.company"

    def __init__(self, limit: RateLimit, wait: timedelta) -> None:
        minutes = max(1, int(wait.total_seconds() + 59) // 60)
        message = limit.message or "limits.company"
        if minutes > 120:
            super().__init__(f"{message}_hours", hours=(minutes + 59) // 60)
        else:
            super().__init__(message, minutes=minutes)
        self.limit = limit


def counted_ip(ip: str | None) -> bool:
    """Loopback is not counted: the local gateway reports 127.0.0.1 for every visitor."""
    if not ip:
        return False
    try:
        return not ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return True  # "unknown" and the like still count, as one visitor


def window_of(limit: RateLimit, at: datetime) -> tuple[str, datetime]:
    """(label, end) of the fixed window holding ``at``."""
    size = int(limit.window.total_seconds())
    begins = datetime.fromtimestamp(int(at.timestamp()) // size * size, UTC)
    return begins.strftime("%Y%m%dT%H%M"), begins + limit.window


def counter_key(limit: RateLimit, value: str, at: datetime) -> tuple[str, str]:
    label, _ends = window_of(limit, at)
    return RateWindow.key(limit.name, value, label)


def _value(rule: RateLimit, value: str | None) -> str | None:
    if value is None:
        return None
    if rule.scope == "ip":
        return value if rule.loopback_counted or counted_ip(value) else None
    value = value.strip()
    return (value.lower() if rule.scope == "recipient" else value) or None


def hit(limit: RateLimit, value: str) -> None:
    """Count one attempt against ``limit`` for ``value``; at the maximum refuse (LimitReached)."""
    at = now()
    label, ends = window_of(limit, at)
    counter = RateWindow(*RateWindow.key(limit.name, value, label))
    try:
        counter.upsert(
            [RateWindow.hits.add(1), RateWindow.expires_at.set(ends + timedelta(hours=1))],
            condition=RateWindow.hits.does_not_exist() | (RateWindow.hits < limit.maximum),
        )
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            raise LimitReached(limit, ends - at) from error
        raise


def count(
    path: str,
    *,
    company: str | None = None,
    recipient: str | None = None,
    ip: str | None = None,
    form: str | None = None,
    order: str | None = None,
    rules: tuple[RateLimit, ...] | None = None,
) -> None:
    """Count one ``path`` attempt in every declared limit whose scope is given here.

    The narrowest scopes are counted first (recipient, order, ip), so an
    address that is full does not use up the company's allowance.
    """
    given = {"company": company, "recipient": recipient, "ip": ip, "form": form, "order": order}
    order_of = {"recipient": 0, "order": 1, "ip": 2, "form": 3, "company": 4}
    declared = limits.rate_limits(path) if rules is None else rules
    for rule in sorted(declared, key=lambda r: order_of[r.scope]):
        value = _value(rule, given[rule.scope])
        if value is not None:
            hit(rule, value)


def company_counter_keys(company_id: str, at: datetime) -> list[tuple[str, str]]:
    """Keys of every live counter keyed by the company (erasure deletes them)."""
    found = []
    for rule in limits.RATE_LIMITS:
        if rule.scope not in ("company", "form"):
            continue
        # The current window and the ones before it that may still exist (TTL lags).
        steps = max(1, int(timedelta(hours=2) / rule.window)) + 1
        for n in range(steps):
            found.append(counter_key(rule, company_id, at - rule.window * n))
    return found

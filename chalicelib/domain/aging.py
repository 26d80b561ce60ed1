"""Aging colours of open orders, and the attention order of the list.

Precedence when several apply (most critical wins):
red (30+ days since registration) > orange (20+ days) > yellow (service date
passed) > blue (service date today) > green (service date in the future).
An open order with no service date and under 20 days old is "none".
"""

from __future__ import annotations

from datetime import date

COLOURS: tuple[str, ...] = ("green", "blue", "yellow", "orange", "red")
ORANGE_DAYS, RED_DAYS = 20, 30


def aging_colour(registered: date, service_date: date | None, today: date) -> str:
    age = (today - registered).days
    if age >= RED_DAYS:
        return "red"
    if age >= ORANGE_DAYS:
        return "orange"
    if service_date is None:
        return "none"
    if service_date < today:
        return "yellow"
    if service_date == today:
        return "blue"
    return "green"


def attention_key(registered: date, service_date: date | None) -> str:
    """Sort key of the open list: what is due earliest comes first.

    "Due" is the service date when there is one, else the registration date:
    an overdue service date and a long-waiting unscheduled order both sort
    before anything due later; future appointments come last.
    """
    return (service_date or registered).isoformat()

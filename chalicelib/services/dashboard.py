"""The dashboard: three charts, open-order count and average rating, from two Queries.

Everything comes from counters kept current inside each order's transaction
(``STAT#…``, one Query) and from the open-order entries (``IX#OPEN``, one
Query, items ∝ open orders): the cost never depends on the company's history.
Until the company completes its first order the charts show example data,
clearly labelled, so a new account sees what it will get.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from chalicelib.db.orders import OrderEntry
from chalicelib.db.overlap import together
from chalicelib.db.stats import StatSnapshot, read_stats, week_of
from chalicelib.domain.aging import aging_colour
from chalicelib.domain.charts import ColumnChart, HBarChart, column_chart, hbar_chart
from chalicelib.i18n import translate
from chalicelib.services import orders
from chalicelib.services.sessions import now

TOP = 10
WEEKS = 12
# Most critical first: the order people read the chart in (see domain/aging.py).
AGING_ORDER: tuple[str, ...] = ("red", "orange", "yellow", "blue", "green", "none")
SERIES: tuple[str, ...] = ("registered", "completed")

# Example data: realistic, fixed (same picture on every load), catalogue-translated types.
EXAMPLE_TYPES: tuple[int, ...] = (48, 41, 33, 27, 22, 18, 13, 9, 6, 4)
EXAMPLE_BRANDS: tuple[tuple[str, int], ...] = (
    ("Samsung", 39),
    ("Apple", 31),
    ("LG", 24),
    ("Bosch", 19),
    ("Whirlpool", 15),
    ("HP", 12),
    ("Dell", 9),
    ("Electrolux", 7),
    ("Xiaomi", 5),
    ("Brastemp", 3),
)
EXAMPLE_AGING: dict[str, int] = {
    "red": 2,
    "orange": 3,
    "yellow": 5,
    "blue": 4,
    "green": 11,
    "none": 6,
}
# Registrations slightly outpace completions: the example shows a backlog growing.
EXAMPLE_REGISTERED: tuple[int, ...] = (14, 16, 15, 18, 17, 19, 21, 20, 22, 24, 23, 25)
EXAMPLE_COMPLETED: tuple[int, ...] = (13, 15, 15, 16, 16, 17, 18, 18, 19, 20, 20, 21)


@dataclass(frozen=True)
class WeekRow:
    week: str  # 2025-W07
    monday: date
    registered: int
    completed: int

    @property
    def difference(self) -> int:
        return self.registered - self.completed


@dataclass(frozen=True)
class Dashboard:
    example: bool
    types: HBarChart
    brands: HBarChart
    aging: HBarChart
    weeks: ColumnChart
    week_rows: tuple[WeekRow, ...]
    open_orders: int
    rating_average: str | None  # formatted for the locale, one decimal
    rating_count: int
    reads: int  # items the two Queries returned (STAT# items + open entries)


def build_dashboard(company_id: str, locale: str) -> Dashboard:
    """Read the counters (one Query) and the open entries (one Query), lay out the charts.

    The two Queries go out together (``db/overlap.py``): one round trip after the session.
    """
    stats, open_now = together(
        lambda: read_stats(company_id), lambda: list(orders.open_entries(company_id))
    )
    return layout(stats, open_now, now().date(), locale)


def layout(
    stats: StatSnapshot, open_now: Sequence[OrderEntry], today: date, locale: str
) -> Dashboard:
    """Pure: turn what was read into chart geometry (real data, or example data until then)."""
    example = sum(completed for _, completed in stats.weeks.values()) == 0
    weeks = last_weeks(today)
    if example:
        types = [
            (f"example{n}", translate(locale, f"dashboard.example.type{n}"), count)
            for n, count in enumerate(EXAMPLE_TYPES, 1)
        ]
        brands = [(name.casefold(), name, count) for name, count in EXAMPLE_BRANDS]
        aging = dict(EXAMPLE_AGING)
        rows = [
            WeekRow(key, monday, registered, completed)
            for (key, monday), registered, completed in zip(
                weeks, EXAMPLE_REGISTERED, EXAMPLE_COMPLETED, strict=True
            )
        ]
    else:
        types, brands = top(stats.types), top(stats.brands)
        aging = count_colours(open_now, today)
        rows = [WeekRow(key, monday, *stats.weeks.get(key, (0, 0))) for key, monday in weeks]
    aging_rows = [
        (colour, translate(locale, f"aging.{colour}"), aging.get(colour, 0))
        for colour in AGING_ORDER
    ]
    week_groups = [
        (row.week, row.week[-2:], [("registered", row.registered), ("completed", row.completed)])
        for row in rows
    ]
    average = None
    if stats.rating_count > 0:
        average = format_decimal(stats.rating_total / stats.rating_count, locale)
    return Dashboard(
        example=example,
        types=hbar_chart(types),
        brands=hbar_chart(brands),
        aging=hbar_chart(aging_rows),
        weeks=column_chart(week_groups),
        week_rows=tuple(rows),
        open_orders=len(open_now),
        rating_average=average,
        rating_count=stats.rating_count,
        reads=stats.items + len(open_now),
    )


def top(counters: Iterable[tuple[str, str, int]], limit: int = TOP) -> list[tuple[str, str, int]]:
    """Highest counts first (ties by name, so the order is stable); empty counters dropped."""
    kept = [(key, label, count) for key, label, count in counters if count > 0]
    return sorted(kept, key=lambda row: (-row[2], row[0]))[:limit]


def count_colours(entries: Iterable[OrderEntry], today: date) -> dict[str, int]:
    counts = dict.fromkeys(AGING_ORDER, 0)
    for entry in entries:
        registered = date.fromisoformat(entry.created[:10])
        service = date.fromisoformat(entry.service_date) if entry.service_date else None
        counts[aging_colour(registered, service, today)] += 1
    return counts


def last_weeks(today: date, count: int = WEEKS) -> list[tuple[str, date]]:
    """The ISO weeks ending with this one, oldest first: (yyyy-Www, its Monday)."""
    this_monday = today - timedelta(days=today.weekday())
    mondays = [this_monday - timedelta(weeks=back) for back in range(count - 1, -1, -1)]
    return [(week_of_day(monday), monday) for monday in mondays]


def week_of_day(day: date) -> str:
    # The same key the counters are written under (db/stats.week_of takes a datetime).
    return week_of(datetime(day.year, day.month, day.day))


def format_decimal(value: float, locale: str) -> str:
    text = f"{value:.1f}"
    return text if locale == "en" else text.replace(".", ",")

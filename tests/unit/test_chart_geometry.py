"""Dashboard chart geometry and layout rules, without AWS."""

from __future__ import annotations

from datetime import date

import pytest

from chalicelib.db.orders import OrderEntry
from chalicelib.db.stats import StatSnapshot
from chalicelib.domain import charts
from chalicelib.services import dashboard


@pytest.mark.parametrize(
    ("maximum", "top", "step"),
    [(0, 4, 1), (1, 1, 1), (3, 3, 1), (7, 8, 2), (11, 15, 5), (48, 60, 20), (1234, 1500, 500)],
)
def test_axis_tops_are_round_and_cover_the_largest_value(maximum, top, step):
    assert charts.nice_scale(maximum) == (top, step)
    assert top >= maximum and top % step == 0


def test_horizontal_bars_scale_to_the_axis_and_keep_the_given_order():
    chart = charts.hbar_chart([("a", "Alpha", 10), ("b", "Beta", 5), ("c", "Gamma", 0)])
    alpha, beta, gamma = chart.bars
    span = charts.HBAR_RIGHT - charts.HBAR_LEFT
    assert alpha.width == pytest.approx(span * 10 / 10)
    assert beta.width == pytest.approx(span / 2)
    assert gamma.width == 0  # nothing drawn for zero, the label and 0 still are
    assert alpha.row_y < beta.row_y < gamma.row_y
    assert chart.height > gamma.bar_y + charts.BAR_THICKNESS
    assert [t.value for t in chart.ticks] == [0, 5, 10]
    assert chart.total == 15


def test_a_tiny_count_stays_visible_and_long_labels_are_shortened():
    name = "Very long service type name that would not fit on a phone screen"
    chart = charts.hbar_chart([("big", "Big", 1000), ("tiny", name, 1)])
    assert chart.bars[1].width >= 2
    assert chart.bars[1].label.endswith("…") and len(chart.bars[1].label) <= charts.MAX_LABEL
    assert chart.bars[1].full_label == name


def test_columns_share_one_scale_and_stand_on_the_axis():
    chart = charts.column_chart(
        [("2025-W01", "01", [("registered", 8), ("completed", 4)]), ("2025-W02", "02", [])]
    )
    registered, completed = chart.groups[0].columns
    assert registered.y + registered.height == pytest.approx(charts.COL_BOTTOM)
    assert registered.height == pytest.approx(2 * completed.height)
    assert registered.x < completed.x < chart.groups[1].label_x
    assert chart.ticks[0].position == charts.COL_BOTTOM and chart.ticks[-1].value == 8


def _entry(created: str, service: str | None = None) -> OrderEntry:
    return OrderEntry(
        "CO#x#IX#OPEN",
        f"{created}#1",
        order_id="o",
        owner_id="x",
        number=1,
        status="registered",
        customer_name="A",
        created=f"{created}T10:00:00+00:00",
        service_date=service,
    )


def _stats(completed: int = 0, types=(), weeks=None, rating=(0, 0)) -> StatSnapshot:
    return StatSnapshot(
        types=list(types),
        brands=[],
        weeks=weeks if weeks is not None else {"2025-W10": (3, completed)},
        rating_total=rating[0],
        rating_count=rating[1],
        items=0,
    )


TODAY = date(2025, 3, 12)  # a Wednesday of 2025-W11


def test_until_an_order_is_completed_the_charts_show_fixed_example_data():
    first = dashboard.layout(_stats(completed=0), [], TODAY, "en")
    again = dashboard.layout(_stats(completed=0), [], TODAY, "en")
    assert first.example and first == again
    assert len(first.types.bars) == 10 and first.types.bars[0].label == "Screen replacement"
    assert [row.week for row in first.week_rows][-1] == "2025-W11"


def test_one_completed_order_switches_to_real_counts_highest_first():
    types = [("b", "Boiler", 2), ("s", "Screen", 9), ("z", "Zero", 0)]
    board = dashboard.layout(_stats(completed=1, types=types), [], TODAY, "en")
    assert not board.example
    assert [(b.label, b.value) for b in board.types.bars] == [("Screen", 9), ("Boiler", 2)]
    assert not board.brands.bars


def test_open_orders_are_counted_by_aging_colour():
    entries = [
        _entry("2025-01-01"),  # 70 days: red
        _entry("2025-02-15", "2025-03-20"),  # 25 days: orange beats the future date
        _entry("2025-03-01", "2025-03-10"),  # passed: yellow
        _entry("2025-03-01", "2025-03-12"),  # today: blue
        _entry("2025-03-01", "2025-03-30"),  # ahead: green
        _entry("2025-03-10"),  # young, unscheduled: none
    ]
    board = dashboard.layout(_stats(completed=1), entries, TODAY, "en")
    counts = {bar.key: bar.value for bar in board.aging.bars}
    assert counts == {"red": 1, "orange": 1, "yellow": 1, "blue": 1, "green": 1, "none": 1}
    assert [bar.key for bar in board.aging.bars][:2] == ["red", "orange"]
    assert board.open_orders == 6


def test_twelve_iso_weeks_end_with_this_one_and_missing_weeks_are_zero():
    weeks = {"2025-W11": (5, 2), "2024-W52": (1, 1), "2025-W01": (7, 7)}
    board = dashboard.layout(_stats(weeks=weeks), [], TODAY, "en")
    keys = [row.week for row in board.week_rows]
    assert len(keys) == 12 and keys[-1] == "2025-W11" and keys[0] == "2024-W52"
    assert board.week_rows[-1].difference == 3
    assert sum(row.registered for row in board.week_rows) == 13


def test_average_rating_is_formatted_for_the_language():
    board = dashboard.layout(_stats(completed=1, rating=(23, 5)), [], TODAY, "pt-BR")
    assert board.rating_average == "4,6" and board.rating_count == 5
    assert dashboard.layout(_stats(completed=1), [], TODAY, "en").rating_average is None

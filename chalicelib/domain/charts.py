"""Chart geometry for server-rendered SVG: round scales and bar positions, pure arithmetic.

Every size is in viewBox units. The viewBox is about as wide as a phone's
content column (some 310 CSS px at 390 px), so text drawn at 12 to 14 units
reads at nearly that size there; the SVG scales with ``width: 100%`` (capped
in dashboard.css) everywhere else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

VIEW_WIDTH = 320
TICK_COUNT = 4
# Horizontal bars: the label sits above its bar, so long names never squeeze the bars.
ROW_HEIGHT = 38
BAR_THICKNESS = 14
HBAR_LEFT, HBAR_RIGHT = 6.0, 276.0  # the value is written after the bar, up to VIEW_WIDTH
# Columns (weekly chart): room on the left for the count ticks.
COL_LEFT, COL_RIGHT, COL_TOP, COL_BOTTOM = 38.0, 314.0, 14.0, 196.0
MAX_LABEL = 36


@dataclass(frozen=True)
class Tick:
    value: int
    position: float


@dataclass(frozen=True)
class HBar:
    key: str  # what the bar stands for (a colour, a folded name)
    label: str  # shown above the bar (shortened)
    full_label: str  # tooltip and data table
    value: int
    label_y: float
    bar_y: float
    width: float
    value_x: float
    value_y: float
    row_y: float  # top of the whole row: the clickable area starts here


@dataclass(frozen=True)
class HBarChart:
    bars: tuple[HBar, ...]
    ticks: tuple[Tick, ...]
    axis_y: float
    tick_label_y: float
    title_y: float
    height: float
    left: float = HBAR_LEFT
    right: float = HBAR_RIGHT
    width: float = VIEW_WIDTH
    row_height: float = ROW_HEIGHT
    thickness: float = BAR_THICKNESS

    @property
    def total(self) -> int:
        return sum(bar.value for bar in self.bars)


@dataclass(frozen=True)
class Column:
    series: str  # registered | completed
    value: int
    x: float
    y: float
    height: float


@dataclass(frozen=True)
class ColumnGroup:
    key: str  # 2025-W07
    label: str  # 07
    label_x: float
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class ColumnChart:
    groups: tuple[ColumnGroup, ...]
    ticks: tuple[Tick, ...]
    bar_width: float
    left: float = COL_LEFT
    right: float = COL_RIGHT
    top: float = COL_TOP
    bottom: float = COL_BOTTOM
    label_y: float = COL_BOTTOM + 16
    title_y: float = COL_BOTTOM + 38
    height: float = COL_BOTTOM + 46
    width: float = VIEW_WIDTH


def nice_scale(maximum: int, ticks: int = TICK_COUNT) -> tuple[int, int]:
    """(axis top, tick step): steps of 1, 2 or 5 times a power of ten; top ≥ maximum."""
    if maximum <= 0:
        return ticks, 1
    raw = maximum / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = magnitude
    for multiple in (1, 2, 5, 10):
        step = multiple * magnitude
        if step * ticks >= maximum:
            break
    whole = max(1, math.ceil(step))
    return whole * math.ceil(maximum / whole), whole


def shorten(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _scale_ticks(top: int, step: int, start: float, end: float, *, inverted: bool) -> list[Tick]:
    ticks = []
    for value in range(0, top + 1, step):
        share = value / top
        position = end - share * (end - start) if inverted else start + share * (end - start)
        ticks.append(Tick(value, round(position, 2)))
    return ticks


def hbar_chart(rows: Sequence[tuple[str, str, int]]) -> HBarChart:
    """Horizontal bars for (key, label, value) rows, in the order given."""
    top, step = nice_scale(max((value for _, _, value in rows), default=0))
    span = HBAR_RIGHT - HBAR_LEFT
    bars = []
    for index, (key, label, value) in enumerate(rows):
        row_y = 4.0 + index * ROW_HEIGHT
        width = span * value / top if value > 0 else 0.0
        width = max(width, 2.0) if value > 0 else 0.0  # a count of 1 among hundreds stays visible
        bars.append(
            HBar(
                key=key,
                label=shorten(label),
                full_label=label,
                value=value,
                label_y=row_y + 13,
                bar_y=row_y + 18,
                width=round(width, 2),
                value_x=round(HBAR_LEFT + width + 5, 2),
                value_y=row_y + 30,
                row_y=row_y,
            )
        )
    axis_y = 4.0 + len(rows) * ROW_HEIGHT + 4
    return HBarChart(
        bars=tuple(bars),
        ticks=tuple(_scale_ticks(top, step, HBAR_LEFT, HBAR_RIGHT, inverted=False)),
        axis_y=axis_y,
        tick_label_y=axis_y + 16,
        title_y=axis_y + 36,
        height=axis_y + 44,
    )


def column_chart(
    groups: Sequence[tuple[str, str, Sequence[tuple[str, int]]]],
) -> ColumnChart:
    """Grouped columns: (key, label, [(series, value), …]) per group, left to right."""
    values = [value for _, _, series in groups for _, value in series]
    top, step = nice_scale(max(values, default=0))
    slot = (COL_RIGHT - COL_LEFT) / max(1, len(groups))
    per_group = max((len(series) for _, _, series in groups), default=1)
    bar_width = slot * 0.78 / per_group
    height_span = COL_BOTTOM - COL_TOP
    out = []
    for index, (key, label, series) in enumerate(groups):
        x0 = COL_LEFT + index * slot + slot * 0.11
        columns = []
        for position, (name, value) in enumerate(series):
            height = height_span * value / top if value > 0 else 0.0
            height = max(height, 1.5) if value > 0 else 0.0
            columns.append(
                Column(
                    series=name,
                    value=value,
                    x=round(x0 + position * bar_width, 2),
                    y=round(COL_BOTTOM - height, 2),
                    height=round(height, 2),
                )
            )
        out.append(
            ColumnGroup(
                key=key,
                label=label,
                label_x=round(COL_LEFT + index * slot + slot / 2, 2),
                columns=tuple(columns),
            )
        )
    return ColumnChart(
        groups=tuple(out),
        ticks=tuple(_scale_ticks(top, step, COL_TOP, COL_BOTTOM, inverted=True)),
        bar_width=round(bar_width - 1, 2),
    )

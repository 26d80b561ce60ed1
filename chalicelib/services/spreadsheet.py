"""The order sheet: its columns for a company and reader, and the streaming workbook.

Shared by the export (``services/export.py``) and the data archive
(``services/takeout.py``). Text cells lose what XML cannot carry, and a text that
starts like a formula is stored as text, never evaluated; dates and times are the
company's local time. openpyxl is imported only inside ``SheetWriter``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import IO

from chalicelib.db.accounts import Company
from chalicelib.db.orders import Order
from chalicelib.domain import workflow
from chalicelib.domain.aging import aging_colour
from chalicelib.i18n import formatting, translate

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# A cell starting with one of these could be read as a formula by a spreadsheet.
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
# Characters XML 1.0 cannot carry (openpyxl refuses them).
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
HEADER_FILL = "1F5FBF"


# -- columns -----------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    title: str
    width: float
    kind: str  # text | int | number | datetime | date | time
    value: Callable[[Order], object]


def _attr(name: str) -> Callable[[Order], object]:
    return lambda order: getattr(order, name) or None


def _naive_local(moment: datetime | None, zone: str) -> datetime | None:
    # Excel has no time zones: write the company's wall time and name the zone in the title.
    return formatting.local(moment, zone).replace(tzinfo=None) if moment else None


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _clock(text: str | None) -> time | None:
    """A service time ("14:30") as a time value: Excel sorts and formats it as a time."""
    try:
        return time.fromisoformat(text) if text else None
    except ValueError:
        return None


def _decimal(text: str | None) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


def columns_for(company: Company, locale: str, today: date) -> list[Column]:
    """Every standard field, then the company's custom fields (their labels as titles)."""

    def _(key: str, **params: object) -> str:
        return translate(locale, key, **params)

    zone = company.time_zone or formatting.DEFAULT_ZONE

    def label(prefix: str, value: str | None) -> str | None:
        return translate(locale, f"{prefix}.{value}") if value else None

    def colour(order: Order) -> str | None:
        if not workflow.is_open(order.status):
            return None
        service = _day(order.service_date)
        return label("aging", aging_colour(order.created_at.date(), service, today))

    def local_time(key: str, moment: Callable[[Order], datetime | None]) -> Column:
        """A moment as the company's clock showed it, the zone named in the title."""
        return Column(_(key, zone=zone), 18, "datetime", lambda o: _naive_local(moment(o), zone))

    columns = [
        Column(_("orders.f.number"), 10, "int", lambda o: int(o.number)),
        Column(_("order.status"), 14, "text", lambda o: label("status", o.status)),
        local_time("export.col.created_in", lambda o: o.created_at),
        Column(_("order.customer_name"), 28, "text", _attr("customer_name")),
        Column(_("order.customer_phone"), 18, "text", _attr("customer_phone")),
        Column(_("order.customer_email"), 28, "text", _attr("customer_email")),
        Column(_("order.customer_address"), 34, "text", _attr("customer_address")),
        Column(_("order.service_type"), 22, "text", _attr("service_type")),
        Column(_("order.brand"), 16, "text", _attr("brand")),
        Column(_("order.model"), 16, "text", _attr("model")),
        Column(_("order.serial"), 18, "text", _attr("serial")),
        Column(_("order.problem"), 48, "text", _attr("problem")),
        Column(_("order.condition"), 36, "text", _attr("condition")),
        Column(_("order.service_date"), 13, "date", lambda o: _day(o.service_date)),
        Column(_("order.service_time"), 10, "time", lambda o: _clock(o.service_time)),
        Column(_("order.priority"), 11, "text", lambda o: label("priority", o.priority)),
        Column(_("order.technician"), 22, "text", _attr("technician_name")),
        Column(_("order.estimated_value"), 14, "number", lambda o: _decimal(o.estimated_value)),
        Column(_("orders.f.rating"), 10, "int", lambda o: int(o.rating) if o.rating else None),
        Column(_("export.col.aging"), 22, "text", colour),
        Column(_("export.col.source"), 14, "text", lambda o: label("export.source", o.source)),
        Column(_("order.cancel_reason"), 30, "text", _attr("cancel_reason")),
        Column(_("order.internal_notes"), 40, "text", _attr("internal_notes")),
        Column(_("export.col.created_by"), 20, "text", _attr("created_by_name")),
        local_time("export.col.updated_in", lambda o: o.updated_at),
        Column(_("export.col.updated_by"), 20, "text", _attr("updated_by_name")),
    ]
    for spec in company.custom_fields or []:
        columns.append(_custom_column(spec.field_id, spec.label, spec.kind))
    return columns


def _custom_column(field_id: str, title: str, kind: str) -> Column:
    def raw(order: Order) -> str | None:
        return order.custom_values.get(field_id) or None

    if kind == "number":
        return Column(title, max(14, len(title) + 2), "number", lambda o: _decimal(raw(o)))
    if kind == "date":
        return Column(title, max(13, len(title) + 2), "date", lambda o: _day(raw(o)))
    return Column(title, max(18, min(40, len(title) + 4)), "text", raw)


# -- the workbook ------------------------------------------------------------


class SheetWriter:
    """One streaming (write-only) worksheet: styled frozen header, auto-filter, typed cells.

    On paper: landscape, fit to the page width, the header row and the order number
    repeated on every page, page numbers in the footer.
    """

    FORMATS = {
        "datetime": "yyyy-mm-dd hh:mm",
        "date": "yyyy-mm-dd",
        "time": "hh:mm",
        "number": "#,##0.00",
    }
    FONT = "Calibri"  # named: without a name LibreOffice falls back to a serif
    LINE_POINTS = 15  # one line of 11 pt text

    # Day-first where the locale writes dates day-first (Excel codes are not localised).
    DAY_FIRST = {"datetime": "dd/mm/yyyy hh:mm", "date": "dd/mm/yyyy"}

    def __init__(self, columns: list[Column], title: str, locale: str = "en") -> None:
        # Imported here only: a cold start of the web Lambda never pays for openpyxl.
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import Cell
        from openpyxl.styles import Alignment, Font, PatternFill
        from openpyxl.utils import get_column_letter

        self._cell = WriteOnlyCell
        self.formats = {**self.FORMATS, **(self.DAY_FIRST if locale != "en" else {})}
        self._cell_type = Cell
        columns = [_fitted(column) for column in columns]
        self.columns = columns
        self.rows = 0
        self.workbook = Workbook(write_only=True)
        self.sheet = self.workbook.create_sheet(title[:31])
        self._last_column = get_column_letter(len(columns))
        # Widths and frozen panes go before the first row: a streamed sheet writes them first.
        for index, column in enumerate(columns, 1):
            self.sheet.column_dimensions[get_column_letter(index)].width = column.width
        self.sheet.freeze_panes = "A2"
        # A streamed sheet writes a row's height with the row: set before the header goes out.
        lines = max(_header_lines(column.title, column.width) for column in columns)
        self.sheet.row_dimensions[1].height = self.LINE_POINTS * lines + 4
        self._page_setup()
        font = Font(name=self.FONT, bold=True, color="FFFFFF")
        fill = PatternFill("solid", fgColor=HEADER_FILL)
        align = Alignment(vertical="center", wrap_text=True)
        header = []
        for column in columns:
            cell = WriteOnlyCell(self.sheet, value=_clean(column.title))
            cell.font, cell.fill, cell.alignment = font, fill, align
            cell.data_type = "s"
            # Custom field labels are typed by users: guard them like the data cells.
            cell.quotePrefix = str(cell.value).startswith(FORMULA_PREFIXES)
            header.append(cell)
        self.sheet.append(header)
        self._converters = [(column, self._converter(column.kind)) for column in columns]
        # Rows go out as the cells the converters made: openpyxl's own row builder would
        # type every value again (and raise, catch and replace each styled cell).
        self.sheet._values_to_row = self._placed

    def _page_setup(self) -> None:
        sheet = self.sheet
        sheet.page_setup.orientation = "landscape"
        sheet.page_setup.fitToWidth = 1
        sheet.page_setup.fitToHeight = 0  # as many pages down as the rows need
        sheet.sheet_properties.pageSetUpPr.fitToPage = True
        sheet.print_title_rows = "1:1"  # the header on every page
        sheet.print_title_cols = "A:A"  # the order number on every page
        sheet.print_options.gridLines = True
        sheet.oddFooter.center.text = "&P / &N"
        sheet.oddHeader.center.text = "&A"  # the sheet's name

    def append(self, order: Order) -> None:
        self.sheet.append([convert(column.value(order)) for column, convert in self._converters])
        self.rows += 1

    # Each column gets its converter once, and its own reusable cells (plain, formatted,
    # guarded text): the streamed sheet writes a row out as it is appended, so the next
    # row can set the same cells again. A converter types the cell itself (it knows its
    # column's kind), so no value is typed twice and no style object is made per cell.
    # This keeps the writer near openpyxl's bare write loop (`make bench`).

    def _converter(self, kind: str) -> Callable[[object], object]:
        guard = self._guarded_text()
        if kind == "text":

            def text(value: object) -> object:
                if value is None or value == "":
                    return None
                return guard(str(value))

            return text
        if kind in self.formats:
            formatted = self._cell(self.sheet)
            formatted.number_format = self.formats[kind]
            data_type = "n" if kind == "number" else "d"

            def styled(value: object) -> object:
                if value is None or value == "":
                    return None
                if isinstance(value, str):
                    return guard(value)
                formatted._value, formatted.data_type = value, data_type
                return formatted

            return styled
        plain = self._cell(self.sheet)

        def number(value: object) -> object:
            if value is None or value == "":
                return None
            if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
                plain._value, plain.data_type = value, "n"
                return plain
            return value  # anything else: openpyxl types it (``_placed``)

        return number

    def _guarded_text(self) -> Callable[[str], object]:
        plain = self._cell(self.sheet)
        plain.data_type = "s"
        cell = self._cell(self.sheet)
        cell.quotePrefix = True
        cell.data_type = "s"

        def text(value: str) -> object:
            value = _clean(value)
            if not value.startswith(FORMULA_PREFIXES):
                plain._value = value
                return plain
            # Keep the value, force the text type: a string cell is never evaluated,
            # and quotePrefix keeps it text when someone edits it in Excel.
            cell._value = value
            return cell

        return text

    def _placed(self, cells: list[object], row_idx: int) -> Iterator[object]:
        """A row's cells at their places, for the streamed sheet's writer (which writes
        each as it comes, so a cell reused by the next row is written before it changes)."""
        for col_idx, cell in enumerate(cells, 1):
            if cell is None:
                continue
            if not isinstance(cell, self._cell_type):  # a value no converter typed: as openpyxl
                cell = self._cell(self.sheet, value=cell)
            cell.row, cell.column = row_idx, col_idx
            yield cell

    def save(self, out: IO[bytes]) -> None:
        self.sheet.auto_filter.ref = f"A1:{self._last_column}{self.rows + 1}"
        self.workbook.save(out)


# Bold header text is wider than a column width's unit (one digit of the default font).
BOLD_FACTOR = 1.25


def _fitted(column: Column) -> Column:
    """The column widened so that no word of its title is cut when the header wraps."""
    longest = max((len(word) for word in column.title.split()), default=1)
    needed = math.ceil(longest * BOLD_FACTOR) + 1
    return column if column.width >= needed else replace(column, width=needed)


def _header_lines(title: str, width: float) -> int:
    """Lines a header title wraps to (at word boundaries) in a column ``width`` wide."""
    import textwrap

    room = max(1, int(width / BOLD_FACTOR))
    return max(1, len(textwrap.wrap(title, room, break_long_words=False)))


def _clean(text: str) -> str:
    return _ILLEGAL.sub("", text)[:32767]

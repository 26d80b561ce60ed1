"""XLSX export of the filtered order list: walk the list, fetch whole orders, stream to S3.

The rows are the ones the order list shows for the same filters (the same
``orders.list_orders`` dimension and conditions, paged with its cursor); whole
orders come with BatchGetItem, 100 keys a request, never a table-wide read. openpyxl
writes in streaming mode to a temporary file that is then streamed to S3, so
memory stays flat however many rows there are. Small exports are written in
the request; larger ones run in the background (an asynchronous Lambda in
AWS, a thread in the local run and the tests) and report progress on their
``EXPORT#`` item. openpyxl is imported only inside ``SheetWriter``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from itertools import islice
from typing import IO, Any
from urllib.parse import urlencode

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.aws import files
from chalicelib.aws.clients import client
from chalicelib.config import get_settings
from chalicelib.db.accounts import Company
from chalicelib.db.base import Item
from chalicelib.db.exports import DONE, FAILED, QUEUED, RUNNING, ExportJob
from chalicelib.db.orders import Order, OrderEntry
from chalicelib.db.partners import Partnership
from chalicelib.domain import workflow
from chalicelib.domain.aging import aging_colour
from chalicelib.domain.errors import NotFound
from chalicelib.domain.tokens import new_id
from chalicelib.i18n import formatting, translate
from chalicelib.services import notifications, orders
from chalicelib.services.orders import OrderFilters
from chalicelib.services.sessions import now

log = logging.getLogger("checkos.export")

IN_REQUEST_ROWS = 500  # up to this many rows the file is written while the user waits
WALK_PAGE = 200  # list entries read per Query while walking the filtered list
IN_REQUEST_PAGES = 3  # Queries the request may spend finding out whether the list is small
BATCH_KEYS = 100  # BatchGetItem's limit
PROGRESS_EVERY = 1000  # rows between progress updates of the EXPORT# item
URL_SECONDS = 600  # the download link lives 10 minutes; the page makes a fresh one
STALLED_MINUTES = 16  # longer than a Lambda may run
JOB_DAYS = 2  # the item and the S3 object (bucket lifecycle on exports/) expire together
CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# A cell starting with one of these could be read as a formula by a spreadsheet.
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
# Characters XML 1.0 cannot carry (openpyxl refuses them).
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
HEADER_FILL = "1F5FBF"
FUNCTION_NAME_VARIABLE = "EXPORT_FUNCTION_NAME"

_threads: list[threading.Thread] = []


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

    columns = [
        Column(_("orders.f.number"), 10, "int", lambda o: int(o.number)),
        Column(_("order.status"), 14, "text", lambda o: label("status", o.status)),
        Column(
            _("export.col.created_in", zone=zone),
            18,
            "datetime",
            lambda o: _naive_local(o.created_at, zone),
        ),
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
        Column(
            _("export.col.updated_in", zone=zone),
            18,
            "datetime",
            lambda o: _naive_local(o.updated_at, zone),
        ),
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


# -- reading the rows ----------------------------------------------------------


def walk_pages(company_id: str, filters: OrderFilters) -> Iterator[tuple[list[OrderEntry], bool]]:
    """The filtered list's pages (one Query each), as the list page shows them: (rows, last?)."""
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        page = orders.list_orders(company_id, filters, cursor, page_size=WALK_PAGE)
        entries = page.entries
        if page.dimension == "NAME":
            # Only a name search can meet one order twice (one entry per name word).
            entries = [e for e in entries if e.order_id not in seen]
            seen.update(e.order_id for e in entries)
        yield entries, page.next_cursor is None
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def walk_entries(company_id: str, filters: OrderFilters) -> Iterator[OrderEntry]:
    for entries, _last in walk_pages(company_id, filters):
        yield from entries


def first_rows(company_id: str, filters: OrderFilters) -> tuple[list[OrderEntry], bool]:
    """What the request may write itself: (rows read, True when that is the whole list).

    Bounded both ways: past IN_REQUEST_ROWS rows, or after IN_REQUEST_PAGES
    Queries (a rare filter can match little of a long list), it is a job.
    """
    rows: list[OrderEntry] = []
    for number, (entries, last) in enumerate(walk_pages(company_id, filters), 1):
        rows.extend(entries)
        if len(rows) > IN_REQUEST_ROWS:
            return rows, False
        if last:
            return rows, True
        if number == IN_REQUEST_PAGES:
            break
    return rows, False


def full_orders(company_id: str, entries: Iterable[OrderEntry]) -> Iterator[Order]:
    """Whole orders for the entries, in list order: one BatchGetItem per 100.

    Each as the company may see it (``domain/visibility.py``): an order it
    executes comes without the owner's internal fields, and not at all when
    the partnership is deleted (open orders) or suspended (open orders).
    """
    links: dict[str, Partnership] | None = None  # read once, at the first executed order
    pending = iter(entries)
    while chunk := list(islice(pending, BATCH_KEYS)):
        found = {
            item.order_id: item
            for item in Item.batch_get([Order.key(e.order_id) for e in chunk])
            if isinstance(item, Order)
        }
        for entry in chunk:
            order = found.get(entry.order_id)
            if order is None or not orders.can_view(order, company_id):
                continue
            if order.company_id != company_id and links is None:
                links = orders.links_of(company_id)
            access = orders.access_for(order, company_id, (links or {}).get(order.company_id))
            if access.exportable:
                yield orders.shown(order, access)


# -- jobs ----------------------------------------------------------------------


@dataclass(frozen=True)
class ExportView:
    job: ExportJob
    download_url: str | None
    status: str  # the job's, or "failed" when it stopped reporting (a Lambda cut off)

    @property
    def list_url(self) -> str:
        """The order list the export was made from (same filters)."""
        active = json.loads(self.job.filters or "{}")
        return "/orders" + ("?" + urlencode(active) if active else "")


def request_export(company: Company, user_id: str, filters: OrderFilters, locale: str) -> ExportJob:
    """Start an export of the list as filtered: written now when small, else in the background."""
    first, whole = first_rows(company.company_id, filters)
    created, export_id = now(), new_id()
    job = ExportJob(
        *ExportJob.key(company.company_id, export_id),
        export_id=export_id,
        company_id=company.company_id,
        user_id=user_id,
        locale=locale,
        filters=json.dumps(filters.active(), sort_keys=True),
        status=QUEUED,
        rows=0,
        created_at=created,
        updated_at=created,
        expires_at=created + timedelta(days=JOB_DAYS),
    )
    if whole:
        job.status = RUNNING
        job.save(condition=ExportJob.pk.does_not_exist())
        try:
            _write(job, company, first)
        except Exception:
            job.update(actions=[ExportJob.status.set(FAILED), ExportJob.updated_at.set(now())])
            raise
        return job
    job.save(condition=ExportJob.pk.does_not_exist())
    try:
        _start_background(job)
    except Exception:
        job.update(actions=[ExportJob.status.set(FAILED), ExportJob.updated_at.set(now())])
        raise
    return job


def run_export(company_id: str, export_id: str) -> str:
    """The background part: claim the queued job, write every row, notify who asked."""
    job = ExportJob(*ExportJob.key(company_id, export_id))
    try:
        # Claiming makes a repeated invocation (Lambda retries events) a no-op.
        job.update(
            actions=[ExportJob.status.set(RUNNING), ExportJob.updated_at.set(now())],
            condition=ExportJob.status == QUEUED,
        )
    except UpdateError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            log.info("export already taken", extra={"company": company_id, "export": export_id})
            return "skipped"
        # Throttled or failed, not taken: say so on the job rather than leave it queued.
        log.exception("export not claimed", extra={"company": company_id, "export": export_id})
        job.update(
            actions=[ExportJob.status.set(FAILED), ExportJob.updated_at.set(now())],
            condition=ExportJob.status == QUEUED,
        )
        return FAILED
    try:
        company = Company.get(*Company.key(company_id))
        filters = OrderFilters.from_query(json.loads(job.filters or "{}"))
        _write(job, company, walk_entries(company_id, filters), progress=True)
    except Exception:
        log.exception("export failed", extra={"company": company_id, "export": export_id})
        job.update(actions=[ExportJob.status.set(FAILED), ExportJob.updated_at.set(now())])
        return FAILED
    notifications.notify(
        company_id, [job.user_id], "export_ready", params={"rows": str(int(job.rows))}
    )
    return DONE


def handle_event(event: dict[str, Any]) -> dict[str, str]:
    """Entry point of the ``export_orders`` Lambda (invoked with InvocationType=Event)."""
    status = run_export(str(event["company_id"]), str(event["export_id"]))
    return {"status": status}


def _write(
    job: ExportJob, company: Company, entries: Iterable[OrderEntry], *, progress: bool = False
) -> None:
    today = now().date()
    columns = columns_for(company, job.locale, today)
    with tempfile.TemporaryFile() as out:
        writer = SheetWriter(columns, translate(job.locale, "export.sheet"), job.locale)
        for order in full_orders(company.company_id, entries):
            writer.append(order)
            if progress and writer.rows % PROGRESS_EVERY == 0:
                job.update(
                    actions=[ExportJob.rows.set(writer.rows), ExportJob.updated_at.set(now())]
                )
        writer.save(out)
        out.seek(0)
        key = f"exports/{company.company_id}/{secrets.token_hex(16)}.xlsx"
        files.put_file(key, out, CONTENT_TYPE)
    word = translate(job.locale, "export.file_word")
    # To the second, plus the job's own id: two exports never share a name.
    filename = f"{company.slug}-{word}-{now():%Y-%m-%d-%H%M%S}-{job.export_id[:4]}.xlsx"
    job.update(
        actions=[
            ExportJob.status.set(DONE),
            ExportJob.rows.set(writer.rows),
            ExportJob.s3_key.set(key),
            ExportJob.filename.set(filename),
            ExportJob.updated_at.set(now()),
        ]
    )


def _start_background(job: ExportJob) -> None:
    if get_settings().is_local:
        # No Lambda in the local run or the tests: the same function in a thread.
        thread = threading.Thread(
            target=run_export, args=(job.company_id, job.export_id), daemon=True
        )
        _threads[:] = [*(t for t in _threads if t.is_alive()), thread]
        thread.start()
        return
    client("lambda").invoke(
        FunctionName=_function_name(),
        InvocationType="Event",
        Payload=json.dumps({"company_id": job.company_id, "export_id": job.export_id}).encode(),
    )


def _function_name() -> str:
    # `chalice deploy` names it <app>-<stage>-export_orders; a packaged stack passes its name.
    stage = get_settings().stage
    return os.environ.get(FUNCTION_NAME_VARIABLE) or f"checkos-{stage}-export_orders"


def join_background(timeout: float = 60.0) -> None:
    """Wait for background exports started by this process (tests, local shutdown)."""
    while _threads:
        _threads.pop().join(timeout)


def export_status(company_id: str, export_id: str) -> ExportView:
    """The job of the signed-in company (another company's id is "not found")."""
    try:
        job = ExportJob.get(*ExportJob.key(company_id, export_id), consistent_read=True)
    except DoesNotExist:
        raise NotFound() from None
    if job.expires_at is not None and job.expires_at <= now():
        raise NotFound()  # TTL deletion lags; the file is gone with the bucket lifecycle
    url = None
    if job.status == DONE and job.s3_key:
        url = files.presigned_get(job.s3_key, URL_SECONDS, job.filename or "orders.xlsx")
    status = job.status
    if status in (QUEUED, RUNNING) and job.updated_at < now() - timedelta(minutes=STALLED_MINUTES):
        status = FAILED  # progress is written every PROGRESS_EVERY rows: silence means it died
    return ExportView(job=job, download_url=url, status=status)

"""XLSX export of the filtered order list: walk the list, fetch whole orders, stream to S3.

The rows are the ones the order list shows for the same filters (the same
``orders.list_orders`` dimension and conditions, paged with its cursor); whole
orders come with BatchGetItem, 100 keys a request, never a table-wide read. openpyxl
writes in streaming mode to a temporary file that is then streamed to S3, so
memory stays flat however many rows there are. Small exports are written in
the request; larger ones run in the background (an asynchronous Lambda in
AWS, a thread in the local run and the tests) and report progress on their
``EXPORT#`` item. The sheet itself is ``services/spreadsheet.py``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice
from typing import Any
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
from chalicelib.domain.errors import NotFound
from chalicelib.domain.tokens import new_id
from chalicelib.i18n import translate
from chalicelib.services import notifications, orders
from chalicelib.services.orders import OrderFilters
from chalicelib.services.sessions import now
from chalicelib.services.spreadsheet import CONTENT_TYPE, SheetWriter, columns_for

log = logging.getLogger("checkos.export")

IN_REQUEST_ROWS = 500  # up to this many rows the file is written while the user waits
WALK_PAGE = 200  # list entries read per Query while walking the filtered list
IN_REQUEST_PAGES = 3  # Queries the request may spend finding out whether the list is small
BATCH_KEYS = 100  # BatchGetItem's limit
PROGRESS_EVERY = 1000  # rows between progress updates of the EXPORT# item
URL_SECONDS = 600  # the download link lives 10 minutes; the page makes a fresh one
STALLED_MINUTES = 16  # longer than a Lambda may run
JOB_DAYS = 2  # the item and the S3 object (bucket lifecycle on exports/) expire together
FUNCTION_NAME_VARIABLE = "EXPORT_FUNCTION_NAME"
_threads: list[threading.Thread] = []


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

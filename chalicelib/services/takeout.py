"""Download all of a company's data: one zip (JSON files + the XLSX of every order) through S3.

Everything is read through the company's own keys: its ``CO#<id>``
partition (profile, users, invitations, partnerships, counters, exports),
its ``ALL`` order list (each order's partition: history, chat, rating), each
user's notification partition and its intake index. Orders stream one at a
time into ``orders.json`` inside the zip (each order's history and chat a page
at a time) and into the XLSX (the export's
``SheetWriter``); customers are gathered in a temporary SQLite file, so
memory stays flat however many orders there are. No secret leaves: no
password hash (Login items are not read), no token or its hash, no session.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import IO, Any

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.aws import files
from chalicelib.db import keys
from chalicelib.db.accounts import Company, Invitation, User
from chalicelib.db.base import Item, query_page
from chalicelib.db.data_rights import DataArchive
from chalicelib.db.exports import ExportJob
from chalicelib.db.intake import IntakeRequest
from chalicelib.db.orders import (
    MonthlyUsage,
    Notification,
    Order,
    OrderCounter,
    OrderEntry,
    OrderEvent,
    OrderMessage,
)
from chalicelib.db.partners import PartnerInvite, Partnership
from chalicelib.db.stats import Stat
from chalicelib.domain import visibility
from chalicelib.domain.errors import NotFound
from chalicelib.domain.tokens import new_id
from chalicelib.i18n import translate
from chalicelib.services import data_rights_lambda, export, notifications, orders, spreadsheet
from chalicelib.services.sessions import now

log = logging.getLogger("checkos.takeout")

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
ARCHIVE_DAYS = export.JOB_DAYS  # same S3 prefix (exports/), same lifecycle rule
URL_SECONDS = export.URL_SECONDS
STALLED_MINUTES = export.STALLED_MINUTES
PAGE = 100
PROGRESS_EVERY = 200  # orders between progress updates of the ARCHIVE# item
LISTED = 5  # archives the settings page lists
FORMAT_VERSION = 1
CONTENT_TYPE = "application/zip"
# Never in an archive: storage keys and anything that is a secret or a hash of one.
HIDDEN_FIELDS = frozenset(
    {
        "pk",
        "sk",
        "type",
        "gsi1pk",
        "gsi1sk",
        "gsi2pk",
        "gsi2sk",
        "gsi3pk",
        "gsi3sk",
        "password_hash",
        "code_hash",
        "access_hash",
        "invite_id",
        "intake_id",
        "claim",
        "s3_key",
        "intake_code",  # the form code: shown on the intake settings page, not archived
        "sessions_valid_after",
    }
)

_runs = data_rights_lambda.Background()


# -- turning items into plain JSON -----------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if hasattr(value, "attribute_values"):  # a MapAttribute
        return _plain(dict(value.attribute_values))
    return value


def document(item: Item, *drop: str) -> dict[str, Any]:
    """The item's attributes as JSON values, without keys, secrets and hashes."""
    hidden = HIDDEN_FIELDS | set(drop)
    return {
        name: _plain(value)
        for name, value in sorted(item.attribute_values.items())
        if name not in hidden and value is not None
    }


# -- reading the company ----------------------------------------------------------------


def _partition(partition: str, prefix: str | None = None) -> Iterator[Item]:
    """Every item of one partition, a page (one Query) at a time."""
    condition = Item.sk.startswith(prefix) if prefix else None
    cursor: str | None = None
    while True:
        items, cursor = query_page(
            partition, range_key_condition=condition, page_size=PAGE, start_sk=cursor
        )
        yield from items
        if cursor is None:
            return


def _order_ids(company_id: str) -> Iterator[str]:
    for entry in _partition(keys.order_entries(company_id, "ALL")):
        if isinstance(entry, OrderEntry):
            yield entry.order_id


def _json_array(out: IO[bytes], documents: Iterator[dict[str, Any] | _OrderDocument]) -> int:
    """Write a JSON array one element at a time; returns how many."""
    count = 0
    out.write(b"[")
    for doc in documents:
        out.write(b",\n" if count else b"\n")
        if isinstance(doc, _OrderDocument):
            doc.write(out)
        else:
            out.write(json.dumps(doc, ensure_ascii=False).encode())
        count += 1
    out.write(b"\n]\n" if count else b"]\n")
    return count


class _Customers:
    """Distinct customers of the company's own orders, gathered on disk (SQLite)."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute(
            "CREATE TABLE c (k TEXT PRIMARY KEY, name TEXT, phone TEXT, email TEXT,"
            " address TEXT, orders TEXT)"
        )

    def add(self, order: Order) -> None:
        key = (order.customer_email or "").lower() or "".join(
            ch for ch in order.customer_phone or "" if ch.isdigit()
        )
        key = key or f"name:{order.customer_name.casefold()}"
        row = self.db.execute("SELECT orders FROM c WHERE k = ?", (key,)).fetchone()
        if row is None:
            self.db.execute(
                "INSERT INTO c VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key,
                    order.customer_name,
                    order.customer_phone,
                    order.customer_email,
                    order.customer_address,
                    json.dumps([int(order.number)]),
                ),
            )
        else:
            numbers = [*json.loads(row[0]), int(order.number)]
            self.db.execute("UPDATE c SET orders = ? WHERE k = ?", (json.dumps(numbers), key))

    def rows(self) -> Iterator[dict[str, Any]]:
        for name, phone, email, address, numbers in self.db.execute(
            "SELECT name, phone, email, address, orders FROM c ORDER BY name, k"
        ):
            yield {
                "name": name,
                "phone": phone,
                "email": email,
                "address": address,
                "order_numbers": sorted(json.loads(numbers)),
            }

    def close(self) -> None:
        self.db.close()


@dataclass
class ArchiveCounts:
    orders: int = 0
    customers: int = 0
    users: int = 0
    files: int = 0


def write_archive(company: Company, locale: str, out: IO[bytes], progress: Any = None) -> dict:
    """Write the whole archive to ``out`` (a zip); returns its manifest."""
    company_id = company.company_id
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "generated_at": now().isoformat(),
        "company_id": company_id,
        "files": {},
    }
    sections: dict[str, list[dict[str, Any]]] = {
        "users": [],
        "invitations": [],
        "partnerships": [],
        "partner_invitations": [],
        "exports": [],
        "archives": [],
        "counters": [],
    }
    users: list[User] = []
    links: dict[str, Partnership] = {}  # our side of each partnership, by partner
    for item in _partition(keys.company(company_id)):
        if isinstance(item, User):
            users.append(item)
            sections["users"].append(document(item))
        elif isinstance(item, Invitation):
            sections["invitations"].append(document(item))
        elif isinstance(item, Partnership):
            links[item.partner_id] = item
            sections["partnerships"].append(document(item))
        elif isinstance(item, PartnerInvite):
            sections["partner_invitations"].append(document(item))
        elif isinstance(item, ExportJob):
            sections["exports"].append(document(item, "filters"))
        elif isinstance(item, DataArchive):
            sections["archives"].append(document(item))
        elif isinstance(item, OrderCounter | MonthlyUsage | Stat):
            sections["counters"].append({"name": item.sk, **document(item)})
    with (
        tempfile.TemporaryDirectory(prefix="checkos-archive-") as folder,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
    ):

        def put_json(name: str, data: object) -> None:
            archive.writestr(name, json.dumps(data, ensure_ascii=False, indent=1) + "\n")
            manifest["files"][name] = len(data) if isinstance(data, list) else 1

        put_json("company.json", document(company, "version"))
        put_json(
            "custom_fields.json", [_plain(f.attribute_values) for f in company.custom_fields or []]
        )
        for name, rows in sections.items():
            put_json(f"{name}.json", rows)
        put_json(
            "notifications.json",
            [
                {"user_id": user.user_id, **document(note)}
                for user in users
                for note in _partition(Notification.partition(company_id, user.user_id))
            ],
        )
        put_json(
            "intake_requests.json",
            [
                document(item)
                for item in _intake_items(company_id)
                if isinstance(item, IntakeRequest)
            ],
        )
        customers = _Customers(os.path.join(folder, "customers.sqlite"))
        sheet_path = os.path.join(folder, "orders.xlsx")
        sheet = spreadsheet.SheetWriter(
            spreadsheet.columns_for(company, locale, now().date()),
            translate(locale, "export.sheet"),
            locale,
        )
        with archive.open("orders.json", "w") as orders_out:
            count = _json_array(orders_out, _orders(company_id, sheet, customers, progress, links))
        manifest["files"]["orders.json"] = count
        with open(sheet_path, "wb") as sheet_out:
            sheet.save(sheet_out)
        archive.write(sheet_path, "orders.xlsx")
        manifest["files"]["orders.xlsx"] = sheet.rows
        with archive.open("customers.json", "w") as customers_out:
            manifest["files"]["customers.json"] = _json_array(customers_out, customers.rows())
        customers.close()
        archive.writestr("manifest.json", json.dumps(manifest, indent=1) + "\n")
    return manifest


def _intake_items(company_id: str) -> Iterator[Item]:
    """The company's intake requests and locks (gsi1 ``CO#<id>#INTAKE``)."""
    yield from Item.gsi1.query(IntakeRequest.company_index(company_id, "", "")["gsi1pk"])


def _orders(
    company_id: str,
    sheet: spreadsheet.SheetWriter,
    customers: _Customers,
    progress: Any,
    links: dict[str, Partnership],
) -> Iterator[_OrderDocument]:
    """Each order of the list (one GetItem), its history, chat and rating streamed later."""
    for order_id in _order_ids(company_id):
        try:
            order = Order.get(*Order.key(order_id))
        except DoesNotExist:
            continue
        if company_id not in (order.company_id, order.executor_id):
            continue
        owned = order.company_id == company_id
        # As the company may see it (domain/visibility.py): an executed order
        # without the owner's internal fields, none while the link forbids it.
        access = orders.access_for(order, company_id, links.get(order.company_id))
        if not access.exportable:
            continue
        order = orders.shown(order, access)
        sheet.append(order)
        if owned:
            customers.add(order)
        doc = document(order, "version", *(visibility.ALL_FIELDS - access.fields))
        doc.update(role="owner" if owned else "executor")
        yield _OrderDocument(doc, order_id)
        if progress is not None and sheet.rows % PROGRESS_EVERY == 0:
            progress(sheet.rows)


class _OrderDocument:
    """One order of ``orders.json``: its fields, then ``history``, ``chat`` and ``rating``
    written while the order's partition is read a page (one Query) at a time, so an
    order with 10,000 messages takes no more memory than one with ten."""

    def __init__(self, doc: dict[str, Any], order_id: str) -> None:
        self.doc = doc
        self.order_id = order_id

    def write(self, out: IO[bytes]) -> None:
        head = json.dumps(self.doc, ensure_ascii=False)[:-1]  # without its closing brace
        out.write(head.encode() + (b", " if self.doc else b"") + b'"history": [')
        section, count, rating = "history", 0, None
        # Sort keys: EVENT#… < META < MSG#… < RATING: the history, then the chat.
        for item in _partition(keys.order(self.order_id)):
            if isinstance(item, OrderEvent | OrderMessage):
                if isinstance(item, OrderMessage) and section == "history":
                    out.write(b'], "chat": [')
                    section, count = "chat", 0
                out.write((b", " if count else b"") + _json(document(item)))
                count += 1
            elif item.sk == "RATING":
                rating = document(item)
        if section == "history":
            out.write(b'], "chat": [')
        out.write(b'], "rating": ' + _json(rating) + b"}")


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


# -- jobs -----------------------------------------------------------------------------


def request_archive(company: Company, user_id: str, locale: str) -> DataArchive:
    """Queue an archive; it is written in the background (a Lambda, a thread locally)."""
    created, archive_id = now(), new_id()
    job = DataArchive(
        *DataArchive.key(company.company_id, archive_id),
        archive_id=archive_id,
        company_id=company.company_id,
        user_id=user_id,
        locale=locale,
        status=QUEUED,
        created_at=created,
        updated_at=created,
        expires_at=created + timedelta(days=ARCHIVE_DAYS),
    )
    job.save(condition=DataArchive.pk.does_not_exist())
    try:
        _start_background(job)
    except Exception:
        _set(job, status=FAILED)
        raise
    return job


def _set(job: DataArchive, **values: object) -> None:
    # Conditioned on existence: a company deleted meanwhile must not get the item back.
    actions = [getattr(DataArchive, name).set(value) for name, value in values.items()]
    job.update(
        actions=[*actions, DataArchive.updated_at.set(now())], condition=DataArchive.pk.exists()
    )


def run_archive(company_id: str, archive_id: str) -> str:
    """The background part: claim the queued job, write the zip, upload it."""
    job = DataArchive(*DataArchive.key(company_id, archive_id))
    try:
        job.update(
            actions=[DataArchive.status.set(RUNNING), DataArchive.updated_at.set(now())],
            condition=DataArchive.status == QUEUED,
        )
    except UpdateError:
        return "skipped"  # a retried event: the first one has it
    try:
        company = Company.get(*Company.key(company_id), consistent_read=True)
        if not company.active and company.status != "inactive":
            raise NotFound()  # being deleted: nothing to archive
        key = f"exports/{company_id}/{secrets.token_hex(16)}.zip"
        with tempfile.TemporaryFile() as out:
            manifest = write_archive(company, job.locale, out, lambda n: _set(job, orders=n))
            size = out.tell()
            out.seek(0)
            files.put_file(key, out, CONTENT_TYPE)
        word = translate(job.locale, "data.file_word")
        filename = f"{company.slug}-{word}-{now():%Y-%m-%d-%H%M%S}-{archive_id[:4]}.zip"
        # Progress is written every PROGRESS_EVERY orders; the final count is the file's own.
        count = int(manifest["files"]["orders.json"])
        _set(job, status=DONE, s3_key=key, filename=filename, size=size, orders=count)
        notifications.notify(
            company_id, [job.user_id], "archive_ready", params={"orders": str(count)}
        )
    except Exception:
        log.exception("archive failed", extra={"company": company_id, "archive": archive_id})
        with contextlib.suppress(UpdateError):  # the company is gone
            _set(job, status=FAILED)
        return FAILED
    return DONE


def handle_event(event: dict[str, Any]) -> dict[str, str]:
    return {"status": run_archive(str(event["company_id"]), str(event["archive_id"]))}


def _start_background(job: DataArchive) -> None:
    payload = {"job": "archive", "company_id": job.company_id, "archive_id": job.archive_id}
    _runs.start(payload, lambda: run_archive(job.company_id, job.archive_id))


def join_background(timeout: float = 60.0) -> None:
    _runs.join(timeout)


@dataclass(frozen=True)
class ArchiveView:
    job: DataArchive
    status: str
    download_url: str | None


def _view(job: DataArchive, *, with_url: bool) -> ArchiveView:
    status = job.status
    if status in (QUEUED, RUNNING) and job.updated_at < now() - timedelta(minutes=STALLED_MINUTES):
        status = FAILED  # no progress for longer than a Lambda runs: it died
    url = None
    if with_url and status == DONE and job.s3_key:
        url = files.presigned_get(job.s3_key, URL_SECONDS, job.filename or "data.zip")
    return ArchiveView(job=job, status=status, download_url=url)


def archive_status(company_id: str, archive_id: str) -> ArchiveView:
    """One archive of the signed-in company (another company's id is "not found")."""
    if not archive_id.isalnum() or len(archive_id) > 32:
        raise NotFound()
    try:
        job = DataArchive.get(*DataArchive.key(company_id, archive_id), consistent_read=True)
    except DoesNotExist:
        raise NotFound() from None
    if job.expires_at is not None and job.expires_at <= now():
        raise NotFound()  # TTL deletion lags; the bucket lifecycle removed the file
    return _view(job, with_url=True)


def recent_archives(company_id: str) -> list[ArchiveView]:
    """The latest archives for the settings page: one Query, newest first."""
    items, _cursor = query_page(
        keys.company(company_id),
        range_key_condition=Item.sk.startswith(DataArchive.SK_PREFIX),
        page_size=50,
        consistent=True,
    )
    jobs = [i for i in items if isinstance(i, DataArchive)]
    jobs = [j for j in jobs if j.expires_at is None or j.expires_at > now()]
    jobs.sort(key=lambda j: j.created_at, reverse=True)
    return [_view(job, with_url=False) for job in jobs[:LISTED]]

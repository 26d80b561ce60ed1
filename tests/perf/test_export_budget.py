"""Exports walk the filtered list page by page and fetch orders 100 at a time; memory stays flat."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chalicelib.aws import files
from chalicelib.db.base import Item
from chalicelib.db.exports import ExportJob
from chalicelib.db.orders import Order
from chalicelib.services import export, sessions
from chalicelib.services.orders import entries_for
from tests.service.factories import new_company
from tests.web.session import WebSession

ROOT = Path(__file__).resolve().parents[2]
ORDERS = 1_200
BRANDS = ["Bosch", "Samsung", "Apple"]  # 400 orders each


@pytest.fixture(scope="module")
def tenant(aws):
    account = new_company("Export Shop")
    company_id = account.company.company_id
    rng = random.Random(3)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with Item.batch_write() as batch:
        for number in range(1, ORDERS + 1):
            created = start + timedelta(minutes=53 * number)
            order = Order(
                *Order.key(f"exp{number:05d}"),
                order_id=f"exp{number:05d}",
                company_id=company_id,
                number=number,
                status=rng.choice(["registered", "completed"]),
                customer_name=f"Customer {number}",
                customer_phone=f"+55 11 9{rng.randrange(10**7, 10**8)}",
                service_type="Screen",
                brand=BRANDS[number % 3],
                problem="Broken screen",
                created_at=created,
                created_by_name="seed",
                updated_at=created,
                updated_by_name="seed",
            )
            batch.save(order)
            for entry in entries_for(order).values():
                batch.save(entry)
    return account


def _sent(call) -> dict:
    """The request a recorded call sent (the hook sees botocore's serialised request)."""
    return json.loads(call.params["body"])


def _tab(client, account) -> WebSession:
    from chalicelib.web.context import _session_cookie

    user_id, company_id = account.user.user_id, account.company.company_id
    tab = WebSession(client)
    token = sessions.start_session(user_id, company_id)
    tab.cookies["sid"] = _session_cookie(token, user_id, company_id)
    tab.get("/orders")
    return tab


def _rows(account, location: str) -> int:
    from openpyxl import load_workbook

    job = ExportJob.get(*ExportJob.key(account.company.company_id, location.rsplit("/", 1)[1]))
    stored = files.get_bytes(job.s3_key)
    sheet = load_workbook(io.BytesIO(stored.data), read_only=True).active
    return sum(1 for _ in sheet.iter_rows(min_row=2))


def test_a_filtered_export_reads_only_the_matching_entries_and_batches_100(client, tenant, budget):
    tab = _tab(client, tenant)
    with budget:
        response = tab.post("/exports", {"brand": "Bosch", "view": "all"})
    assert response.status_code == 303
    calls = budget.dynamodb
    operations = [c.operation for c in calls]
    assert "Scan" not in operations
    queries = [c for c in calls if c.operation == "Query"]
    # Every Query reads the Bosch entries' partition (the list's own dimension), nothing else.
    assert queries and all("#IX#BRAND#bosch" in str(_sent(c)) for c in queries)
    assert budget.items_read_by_queries <= 400 + 1  # the Bosch entries, never the 1,200
    gets = [c for c in calls if c.operation == "BatchGetItem"]
    keys_per_get = [
        sum(len(table["Keys"]) for table in _sent(call)["RequestItems"].values()) for call in gets
    ]
    assert max(keys_per_get) <= 100
    assert sum(keys_per_get) == 400 + 3  # every Bosch order once, plus the session's 3 keys
    assert _rows(tenant, response.headers["Location"]) == 400


def test_a_large_export_goes_to_the_background_and_reports_progress(client, tenant):
    tab = _tab(client, tenant)
    response = tab.post("/exports", {"view": "all"})
    location = response.headers["Location"]
    export.join_background(timeout=300)
    tab.get(location)
    assert f"Your export of {ORDERS:,} orders is ready.".replace(",", "") in tab.text()
    assert _rows(tenant, location) == ORDERS
    tab.get("/notifications")
    assert f"Your Excel export of {ORDERS} orders is ready to download." in tab.text()


def _peak_rss_writing(rows: int) -> tuple[int, int]:
    """(peak RSS in KiB, file bytes) of a fresh process writing ``rows`` rows."""
    code = (
        "from tests.perf.bench_export import own_peak_kib, write_rows; "
        f"result = write_rows({rows}); "
        "print(own_peak_kib(), result.file_bytes)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    peak, size = done.stdout.split()
    return int(peak), int(size)


def test_memory_stays_flat_from_5000_to_20000_rows():
    small_peak, small_size = _peak_rss_writing(5_000)
    large_peak, large_size = _peak_rss_writing(20_000)
    assert large_size > 3 * small_size  # four times the rows really were written
    # Held in memory, 15,000 more rows of 29 cells would take hundreds of MB.
    assert large_peak - small_peak < 8 * 1024, (small_peak, large_peak)

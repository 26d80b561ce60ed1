"""Synthetic orders through the export's own row writer (used by `make bench` and tests/perf).

Writes the workbook to a temporary file exactly as an export does (streaming
openpyxl, then the file goes to S3). No AWS is involved: the rows are built
in memory, one at a time.
"""

from __future__ import annotations

import os

os.environ.setdefault("STAGE", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from chalicelib.db.accounts import Company, CustomField
from chalicelib.db.orders import Order
from chalicelib.services.spreadsheet import SheetWriter, columns_for

NAMES = ["Ana Souza", "Bruno Lima", "Carla Dias", '=HYPERLINK("http://x","y")', "Elena Ruiz"]
TYPES = ["Screen replacement", "Battery", "Boiler service", "Washer repair", "Laptop cleaning"]
BRANDS = ["Samsung", "Apple", "Bosch", "HP", "LG", "Dell"]
STATUSES = ["registered", "scheduled", "in_progress", "completed", "cancelled"]


def bench_company() -> Company:
    return Company(
        "CO#bench",
        "PROFILE",
        company_id="bench",
        name="Bench Repairs",
        slug="bench-repairs",
        custom_fields=[
            CustomField(field_id="f1", label="IMEI", kind="text"),
            CustomField(field_id="f2", label="Deposit", kind="number"),
            CustomField(field_id="f3", label="Warranty until", kind="date"),
        ],
    )


def synthetic_orders(count: int) -> Iterator[Order]:
    """Realistic, varied orders, made one at a time (never all in memory)."""
    start = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
    for number in range(1, count + 1):
        created = start + timedelta(minutes=37 * number)
        yield Order(
            f"ORDER#b{number}",
            "META",
            order_id=f"b{number}",
            company_id="bench",
            number=number,
            status=STATUSES[number % len(STATUSES)],
            customer_name=f"{NAMES[number % len(NAMES)]} {number}",
            customer_phone=f"+55 11 9{number:08d}",
            customer_email=f"customer{number}@example.com",
            customer_address=f"Rua das Flores, {number}, São Paulo",
            service_type=TYPES[number % len(TYPES)],
            brand=BRANDS[number % len(BRANDS)],
            model=f"M-{number % 97}",
            serial=f"SN{number:010d}",
            problem="Does not turn on after a power cut; customer needs it back this week.",
            condition="Scratches on the back, no charger.",
            service_date=(created.date() + timedelta(days=number % 15)).isoformat(),
            service_time="14:30",
            priority="normal",
            technician_name="Bruno Lima",
            estimated_value=f"{100 + number % 900}.50",
            custom={"f1": f"35693803{number:07d}", "f2": "50", "f3": "2030-01-31"},
            created_at=created,
            created_by_name="Ana Souza",
            updated_at=created,
            updated_by_name="Ana Souza",
        )


@dataclass(frozen=True)
class Result:
    rows: int
    seconds: float
    cpu_seconds: float  # less sensitive than wall time to other work on the machine
    file_bytes: int
    traced_peak_bytes: int | None = None


def write_rows(count: int, *, trace: bool = False) -> Result:
    """Write ``count`` rows through SheetWriter into a temporary file, as an export does."""
    columns = columns_for(bench_company(), "en", date(2025, 1, 1))
    if trace:
        tracemalloc.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    with tempfile.TemporaryFile() as out:
        writer = SheetWriter(columns, "Orders")
        for order in synthetic_orders(count):
            writer.append(order)
        writer.save(out)
        size = out.tell()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak = None
    if trace:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return Result(writer.rows, seconds, cpu, size, peak)


def own_peak_kib() -> int:
    """This process's own peak RSS (VmHWM, KiB).

    Not ``ru_maxrss``: Linux carries the parent's peak over fork and exec, so
    a small child of a big test process would report the parent's figure.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        return int(status.read().split("VmHWM:")[1].split()[0])

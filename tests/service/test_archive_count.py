"""The data download says how many orders it holds: the count is the file's own, at every size."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.aws import files
from chalicelib.db.base import Item
from chalicelib.db.orders import Notification, Order
from chalicelib.services import takeout
from chalicelib.services.orders import entries_for
from tests.background import join_background
from tests.service.factories import new_company


def _seed_orders(company_id: str, count: int) -> None:
    """``count`` orders with their list entries, written directly (the count is what is tested)."""
    start = datetime.now(UTC) - timedelta(days=30)
    with Item.batch_write() as batch:
        for number in range(1, count + 1):
            created = start + timedelta(minutes=number)
            order_id = f"arc{company_id[:8]}{number:05d}"
            order = Order(
                *Order.key(order_id),
                order_id=order_id,
                company_id=company_id,
                number=number,
                status="completed",
                customer_name=f"Customer {number}",
                customer_phone="+55 11 91234 5678",
                service_type="Repair",
                brand="Brand",
                created_at=created,
                created_by_name="seed",
                updated_at=created,
                updated_by_name="seed",
            )
            batch.save(order)
            for entry in entries_for(order).values():
                batch.save(entry)


@pytest.mark.parametrize("orders", [0, 1, 199, 200, 201])
def test_the_ready_archive_and_its_notification_count_the_orders_in_the_file(aws, orders):
    account = new_company(f"Count {orders}")
    company = account.company
    _seed_orders(company.company_id, orders)

    job = takeout.request_archive(company, account.user.user_id, "en")
    join_background()

    view = takeout.archive_status(company.company_id, job.archive_id)
    assert view.status == takeout.DONE
    stored = files.get_bytes(view.job.s3_key)
    assert stored is not None
    with zipfile.ZipFile(io.BytesIO(stored.data)) as archive:
        in_file = len(json.loads(archive.read("orders.json")))
    assert in_file == orders
    assert int(view.job.orders or 0) == orders
    notes = [
        n
        for n in Item.query(Notification.partition(company.company_id, account.user.user_id))
        if isinstance(n, Notification) and n.kind == "archive_ready"
    ]
    assert [n.params.as_dict().get("orders") for n in notes] == [str(orders)]

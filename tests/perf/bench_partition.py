"""One order with thousands of chat messages: its pages, its data archive and its erasure.

Used by tests/perf/test_order_partition_budget.py and `make bench`. The order
pages are measured in-process (botocore's hook counts the requests); the
archive and the erasure each run in a fresh process whose own peak RSS
(VmHWM) is read, against a moto server in yet another process, so the table's
size is never counted as our memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXT = (
    "Bom dia! The technician came by and the machine spins again, but it still "
    "leaks a little on the left side when it drains. Can you come back on Tuesday "
    "afternoon? Gracias, quedo atento a su respuesta."
)


def seed_order(company_id: str, order_id: str, messages: int, *, number: int = 1) -> None:
    """An order with ``messages`` chat messages, a tenth as many history lines and a rating,
    written as the app writes them (one item at a time, never all in memory)."""
    from chalicelib.db.base import Item
    from chalicelib.db.customers import OrderRating
    from chalicelib.db.orders import Order
    from chalicelib.services.orders import entries_for

    start = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    order = Order(
        *Order.key(order_id),
        order_id=order_id,
        company_id=company_id,
        number=number,
        status="completed",
        customer_name=f"Joana Prado {number}",
        customer_email=f"joana{number}@example.com",
        customer_phone="+55 11 98888-7777",
        service_type="Washing machine repair",
        brand="Brastemp",
        problem="Does not spin",
        internal_notes="Charge the second visit",
        rating=4,
        created_at=start,
        created_by_name="Ana Souza",
        updated_at=start,
        updated_by_name="Ana Souza",
    )
    with Item.batch_write() as batch:
        batch.save(order)
        for entry in entries_for(order).values():
            batch.save(entry)
        batch.save(
            OrderRating(
                *OrderRating.key(order_id),
                stars=4,
                comment="Fast and kind",
                first_rated_at=start,
                updated_at=start,
            )
        )
        for item in _history(order_id, messages, start):
            batch.save(item)


def _history(order_id: str, messages: int, start: datetime) -> Iterator[object]:
    from chalicelib.db.orders import OrderEvent, OrderMessage

    for n in range(messages):
        at = start + timedelta(minutes=n)
        customer = n % 3 == 0
        yield OrderMessage(
            *OrderMessage.key(order_id, f"{at.isoformat()}#{n:08x}"),
            at=at,
            author_name="Joana Prado" if customer else "Ana Souza",
            author_kind="customer" if customer else "staff",
            text=f"{TEXT} ({n})",
        )
        if n % 10 == 0:
            yield OrderEvent(
                *OrderEvent.key(order_id, f"{at.isoformat()}#{n:06x}"),
                kind="mail",
                at=at,
                actor_name="CheckOS",
                actor_kind="system",
                note=f"joana@example.com · Order update ({n})",
            )


# -- pages: requests and items read, recorded by botocore's hook ------------------------


def _customer_link(order_id: str, company_id: str) -> str:
    from chalicelib.db.customers import CustomerAccess
    from chalicelib.db.orders import Order
    from chalicelib.domain.tokens import new_token, token_hash
    from chalicelib.services import sessions

    token = new_token()
    at = sessions.now()
    CustomerAccess(
        *CustomerAccess.key(token_hash(token)),
        order_id=order_id,
        company_id=company_id,
        created_at=at,
        expires_at=at + timedelta(days=30),
        company_name="Partition Repairs",
    ).save()
    order = Order.get(*Order.key(order_id))
    order.update(actions=[Order.access_hash.set(token_hash(token))])
    return f"/o/{token}"


def page_figures(client: object, scales: tuple[int, ...]) -> dict[int, dict[str, int]]:
    """Per number of messages: what the staff order page and the customer page cost.

    ``*_items_read`` counts the items the page's Queries read (the order's partition).
    """
    from chalicelib.services import sessions
    from chalicelib.web.context import _session_cookie
    from tests.awscalls import CALLS
    from tests.service.factories import new_company
    from tests.web.session import WebSession

    account = new_company("Partition Repairs")
    user_id, company_id = account.user.user_id, account.company.company_id
    staff = WebSession(client)
    staff.cookies["sid"] = _session_cookie(
        sessions.start_session(user_id, company_id), user_id, company_id
    )
    customer = WebSession(client)
    found: dict[int, dict[str, int]] = {}
    for number, messages in enumerate(scales, start=1):
        order_id = f"part{messages}x{number}"
        seed_order(company_id, order_id, messages, number=number)
        link = _customer_link(order_id, company_id)
        row: dict[str, int] = {}
        for name, tab, url in (
            ("page", staff, f"/orders/{order_id}"),
            ("customer_page", customer, link),
        ):
            tab.get(url)  # warm: the first render compiles templates
            mark = CALLS.mark()
            answer = tab.get(url)
            calls = [c for c in CALLS.since(mark) if c.service == "dynamodb"]
            if answer.status_code != 200 or any(c.operation == "Scan" for c in calls):
                raise RuntimeError(f"GET {url}: {answer.status_code}, {calls}")
            row[f"{name}_requests"] = len(calls)
            row[f"{name}_items_read"] = sum(c.scanned or 0 for c in calls if c.operation == "Query")
            row[f"{name}_messages_shown"] = tab.text().count('class="msg msg-')
        found[messages] = row
    return found


# -- memory: archive and erasure in fresh processes ------------------------------------


class MotoProcess:
    """A serialised moto server in a process of its own (stopped by closing its stdin)."""

    CODE = (
        "import sys\n"
        "from infra import moto_patches\n"
        "moto_patches.apply()\n"
        "from infra.moto_server import SerialMotoServer\n"
        "server = SerialMotoServer()\n"
        "server.start()\n"
        "print(server.endpoint, flush=True)\n"
        "sys.stdin.read()\n"
        "server.stop()\n"
    )

    def __enter__(self) -> MotoProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-c", self.CODE],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # werkzeug logs every request
            text=True,
        )
        assert self.process.stdout is not None
        self.endpoint = self.process.stdout.readline().strip()
        if not self.endpoint.startswith("http"):
            raise RuntimeError("the moto server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def run(self, code: str) -> dict:
        """Run ``code`` in a fresh Python talking to this server; its last line, as JSON."""
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "STAGE": "test",
            "AWS_ACCESS_KEY_ID": "partition",
            "AWS_SECRET_ACCESS_KEY": "partition",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "TABLE_NAME": "checkos-partition",
            "BUCKET_NAME": "checkos-partition-files",
            "MAIL_SENDER": "no-reply@checkos.example",
            "BASE_URL": "http://partition",
            "OUTBOX_ENABLED": "1",
            "SECURE_COOKIES": "0",
            "AWS_ENDPOINT_URL": self.endpoint,
            "DYNAMODB_HOST": self.endpoint,
        }
        env.pop("AWS_SESSION_TOKEN", None)
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"child failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


SEED = """
import json, boto3
from infra.provision import provision
from chalicelib.db.accounts import Company
try:
    provision(boto3.session.Session(), table_name="checkos-partition",
              bucket_name="checkos-partition-files", sender="no-reply@checkos.example")
except Exception as problem:  # the second scale: the table is there already
    if "ResourceInUse" not in repr(problem) and "BucketAlready" not in repr(problem):
        raise
from tests.service.factories import new_company
from tests.perf.bench_partition import seed_order
account = new_company("Partition {messages}")
seed_order(account.company.company_id, "big{messages}", {messages})
print(json.dumps({{"company_id": account.company.company_id, "user_id": account.user.user_id}}))
"""

ARCHIVE = """
import json, tempfile, zipfile
from chalicelib.db.accounts import Company
from chalicelib.services import takeout
from tests.perf.bench_export import own_peak_kib
company = Company.get(*Company.key("{company_id}"))
with tempfile.TemporaryFile() as out:
    takeout.write_archive(company, "en", out)
    peak = own_peak_kib()
    out.seek(0)
    chat = 0
    with zipfile.ZipFile(out) as archive, archive.open("orders.json") as orders:
        mark, tail = b'"author_kind"', b""
        while chunk := orders.read(1 << 16):
            data = tail + chunk
            chat += data.count(mark)
            tail = data[-(len(mark) - 1):]
print(json.dumps({{"peak_kib": peak, "messages_archived": chat}}))
"""

ERASURE = """
import json, boto3
from chalicelib.db.accounts import Company
from chalicelib.services import erasure
from tests.perf.bench_export import own_peak_kib
company = Company.get(*Company.key("{company_id}"), consistent_read=True)
erasure.mark(company, "{user_id}")
status = erasure.run_erasure("{company_id}")
peak = own_peak_kib()
left = boto3.client("dynamodb").query(
    TableName="checkos-partition", KeyConditionExpression="pk = :pk",
    ExpressionAttributeValues={{":pk": {{"S": "ORDER#big{messages}"}}}}, Select="COUNT",
)["Count"]
print(json.dumps({{"peak_kib": peak, "status": status, "items_left": left}}))
"""


def memory_figures(scales: tuple[int, ...]) -> dict[int, dict[str, float]]:
    """Per number of messages: archive and erasure peak RSS (MiB) of fresh processes."""
    found: dict[int, dict[str, float]] = {}
    with MotoProcess() as moto:
        for messages in scales:
            ids = moto.run(SEED.format(messages=messages))
            archive = moto.run(ARCHIVE.format(**ids))
            erased = moto.run(ERASURE.format(messages=messages, **ids))
            found[messages] = {
                "archive_peak_mb": round(archive["peak_kib"] / 1024, 1),
                "messages_archived": archive["messages_archived"],
                "erasure_peak_mb": round(erased["peak_kib"] / 1024, 1),
                "erasure_done": erased["status"] == "done",
                "items_left": erased["items_left"],
            }
    return found

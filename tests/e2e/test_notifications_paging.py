"""The notifications page pages through a long list in Chromium: 60 notifications, 30 a page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import boto3

from chalicelib.db.accounts import Login
from chalicelib.db.orders import Notification
from chalicelib.services import notifications
from tests.e2e.flows import sign_up_in_browser

COUNT = 60


def _dynamodb(live_server: str) -> tuple[object, str]:
    """A low-level client of the running `make run`'s moto server, and its table name."""
    from infra.local import stack_file

    found = json.loads(stack_file(urlsplit(live_server).port).read_text())
    client = boto3.client(
        "dynamodb",
        endpoint_url=found["endpoint"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client, found["table"]


def _seed(live_server: str, email: str) -> None:
    """60 notifications stored as the app stores them: sort keys carry '#', ':' and '+'."""
    client, table = _dynamodb(live_server)
    pk, sk = Login.key(email)
    login = client.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}})["Item"]
    partition = Notification.partition(login["company_id"]["S"], login["user_id"]["S"])
    start = datetime.now(UTC) - timedelta(hours=2)
    for n in range(COUNT):
        at = start + timedelta(seconds=n)
        note = Notification(
            partition,
            f"NOTE#{at.isoformat()}#{n:06x}",
            kind="partnership",
            at=at,
            params={"partner": f"Partner {n:02d}"},
        )
        client.put_item(TableName=table, Item=note.serialize())  # type: ignore[attr-defined]


def test_next_page_walks_through_sixty_notifications_once_each(page, live_server):
    email = sign_up_in_browser(page)
    _seed(live_server, email)
    assert notifications.PAGE_SIZE < COUNT
    seen: list[str] = []
    page.goto("/notifications")
    for _ in range(COUNT // notifications.PAGE_SIZE + 2):
        texts = (
            page.locator("#notes li").all_inner_texts() if page.locator("#notes").count() else []
        )
        seen += [m.group(0) for t in texts if (m := re.search(r"Partner \d\d", t))]
        more = page.get_by_role("link", name=re.compile("Next", re.I))
        if not more.count():
            break
        more.first.click()
        page.wait_for_load_state()
    # Newest first, every one exactly once, and the walk ended.
    assert seen == [f"Partner {n:02d}" for n in reversed(range(COUNT))]

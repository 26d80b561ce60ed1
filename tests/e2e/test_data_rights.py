"""Your data in Chromium: sign up, register an order, download everything, delete the company."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest

from tests.e2e.conftest import screenshot
from tests.e2e.flows import PASSWORD, sign_up_in_browser

pytestmark = pytest.mark.e2e


def _register_order(tab) -> None:
    tab.goto("/orders/new")
    tab.fill("#f-customer_name", "Marta Quiroga")
    tab.fill("#f-problem", "Screen flickers")
    tab.get_by_role("button", name="Register order").click()
    tab.wait_for_url(re.compile(r".*/orders/[0-9a-f]{16}$"))


def test_an_admin_downloads_everything_then_deletes_the_company(page, phone_page):
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    email = sign_up_in_browser(page, "Taller Despedida")
    _register_order(page)
    page.goto("/settings")
    page.locator("#settings-links").get_by_role("link", name="Your data").click()
    page.wait_for_url("**/settings/data")
    screenshot(page, "data-rights-settings-desktop")
    page.get_by_role("button", name="Prepare the download").click()
    page.wait_for_url(re.compile(r".*/settings/data/archive/[0-9a-f]{16}$"))
    page.locator("#download").wait_for(timeout=20_000)  # the page refreshes itself until ready
    screenshot(page, "data-rights-archive-desktop")
    with page.expect_download() as waiting:
        page.locator("#download").click()
    with zipfile.ZipFile(io.BytesIO(open(waiting.value.path(), "rb").read())) as archive:
        orders = json.loads(archive.read("orders.json"))
        assert "orders.xlsx" in archive.namelist()
    assert [o["customer_name"] for o in orders] == ["Marta Quiroga"]
    # The same page on a phone, signed in as the same admin.
    phone_page.context.add_cookies(page.context.cookies())
    phone_page.goto("/settings/data")
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone_page, "data-rights-settings-phone")
    page.goto("/settings/data")
    page.fill("#f-password", PASSWORD)
    page.fill("#f-confirmation", "taller despedida")
    page.get_by_role("button", name="Delete the company and all its data").click()
    page.wait_for_url("**/goodbye")
    assert "Your company is being deleted" in page.locator("h1").inner_text()
    screenshot(page, "data-rights-goodbye-desktop")
    page.goto("/orders")
    assert "/login" in page.url
    assert not errors, errors
    assert email

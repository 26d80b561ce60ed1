"""The dashboard and the Excel export in Chromium, against `make run`."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta

import pytest

from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
INJECTED = '=HYPERLINK("http://x","y")'
EXAMPLE = "Example data — your charts appear when you complete your first order"


def _console_errors(tab) -> list[str]:
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


def _sign_up(tab, company: str) -> None:
    tab.goto("/signup")
    tab.fill("#f-company_name", company)
    tab.fill("#f-business_type", "Appliance repair")
    tab.fill("#f-area", "Lisboa")
    tab.fill("#f-contact_name", "Rui Costa")
    tab.fill("#f-phone", "+351 912 345 678")
    tab.fill("#f-email", f"owner-{secrets.token_hex(4)}@example.com")
    tab.fill("#f-password", PASSWORD)
    tab.get_by_role("button", name="Create account").click()
    tab.wait_for_url("**/verify-email")


def _register(tab, customer: str, service_type: str, brand: str, service_date: str = "") -> str:
    tab.goto("/orders/new")
    tab.fill("#f-customer_name", customer)
    tab.fill("#f-service_type", service_type)
    tab.fill("#f-brand", brand)
    tab.fill("#f-problem", "Does not start")
    if service_date:
        tab.fill("#f-service_date", service_date)
    tab.get_by_role("button", name="Register order").click()
    tab.wait_for_url("**/orders/*")
    return tab.url


def _start_and_complete(tab, url: str) -> None:
    tab.goto(url)
    tab.get_by_role("button", name="Start work").click()
    tab.wait_for_load_state()
    tab.get_by_role("button", name="Complete").click()
    tab.wait_for_load_state()
    assert "is completed" in tab.locator(".flash-success").inner_text()


def test_dashboard_from_example_to_real_data_then_export_the_list(page):
    errors = _console_errors(page)
    _sign_up(page, "Oficina Verde Reparações")
    page.goto("/")
    assert EXAMPLE in " ".join(page.locator("#example-note").inner_text().split())
    assert page.locator("figure figcaption").count() == 3
    screenshot(page, "dashboard-example-desktop")

    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    _register(page, "Green Customer", "Boiler service", "Vaillant", service_date=tomorrow)
    _register(page, INJECTED, "Boiler service", "Vaillant")
    done = _register(page, "Done Customer", "Screen replacement", "Samsung")
    _start_and_complete(page, done)

    page.goto("/")
    assert page.locator("#example-note").count() == 0
    assert page.locator(".example-badge").count() == 0
    assert page.locator("#open-orders").inner_text() == "2"
    types = page.locator("#top-chart table").first.inner_text()
    assert "Boiler service" in types and "Screen replacement" in types
    screenshot(page, "dashboard-real-desktop")

    # Clicking a colour's bar lists the open orders of that colour.
    page.locator('#aging-svg [data-colour="green"]').click()
    page.wait_for_url("**/orders?colour=green")
    listed = page.locator("#order-list").inner_text()
    assert "Green Customer" in listed and "Done Customer" not in listed

    # Export the filtered list (all Vaillant orders) and read the file back.
    page.goto("/orders?brand=Vaillant&view=all")
    page.get_by_role("button", name="Export to Excel").click()
    page.wait_for_url("**/exports/*")
    assert "Your export of 2 orders is ready." in page.locator("#export-status").inner_text()
    screenshot(page, "export-ready-desktop")
    with page.expect_download() as info:
        page.locator("#download").click()
    download = info.value
    assert download.suggested_filename.endswith(".xlsx")
    from openpyxl import load_workbook

    with open(download.path(), "rb") as saved:
        sheet = load_workbook(saved).active
    header = [cell.value for cell in sheet[1]]
    rows = [{header[i]: cell for i, cell in enumerate(row)} for row in sheet.iter_rows(min_row=2)]
    assert len(rows) == 2
    assert {row["Customer name"].value for row in rows} == {"Green Customer", INJECTED}
    for row in rows:
        assert isinstance(row["Registered (UTC)"].value, datetime)
        assert row["Brand"].value == "Vaillant"
    injected = next(row["Customer name"] for row in rows if row["Customer name"].value == INJECTED)
    assert injected.data_type == "s"  # text, never a formula
    green = next(row for row in rows if row["Customer name"].value == "Green Customer")
    assert green["Service date"].value == datetime.fromisoformat(tomorrow)
    assert errors == []


def test_dashboard_reads_well_on_a_phone(phone_page):
    errors = _console_errors(phone_page)
    _sign_up(phone_page, "Refrigeração Polar")
    phone_page.goto("/")
    assert phone_page.locator("#example-note").is_visible()
    screenshot(phone_page, "dashboard-example-phone")
    # What sticks out to the right, named in the failure message.
    wide = phone_page.evaluate(
        "[...document.querySelectorAll('main *')]"
        ".filter(e => e.getBoundingClientRect().right > 392)"
        ".map(e => e.tagName + '#' + e.id).slice(0, 8)"
    )
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the dashboard scrolls sideways: {width}px {wide}"
    for chart in ("#aging-svg", "#weeks-svg", "#types-svg", "#brands-svg"):
        box = phone_page.locator(chart).bounding_box()
        assert box and 280 <= box["width"] <= 360, (chart, box)
    screenshot(phone_page, "dashboard-example-phone")
    phone_page.goto("/orders")
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone_page, "orders-export-button-phone")
    assert errors == []

"""Orders in a real browser: custom field error kept, workflow, reopen, chat, history, print."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot
from tests.e2e.flows import sign_up_in_browser

pytestmark = pytest.mark.e2e


def test_order_lifecycle_in_the_browser(page, phone_page):
    sign_up_in_browser(page)
    page.goto("/settings/fields")
    page.fill("#f-label", "IMEI")
    page.check("input[name=required][value=yes]")
    with page.expect_navigation():
        page.get_by_role("button", name="Add field").click()
    expect(page.locator("#custom-field-list")).to_contain_text("IMEI")

    page.goto("/orders/new")
    page.fill("#f-customer_name", "Marta Gómez")
    page.fill("#f-customer_phone", "(11) 98765-4321")
    page.fill("#f-service_type", "Screen replacement")
    page.fill("#f-brand", "Samsung")
    page.fill("#f-problem", "Cracked screen")
    with page.expect_navigation():
        page.get_by_role("button", name="Register order").click()
    imei = page.locator("#custom-fields input").first
    expect(page.locator("#custom-fields .error")).to_have_text("This field is required.")
    assert page.input_value("#f-customer_name") == "Marta Gómez"  # nothing typed is lost
    assert page.input_value("#f-problem") == "Cracked screen"
    screenshot(page, "order-form-error")
    imei.fill("356938035643809")
    page.get_by_role("button", name="Register order").click()
    page.wait_for_url(re.compile(r".*/orders/[0-9a-f]+$"))
    assert "Order #1 registered." in page.inner_text("main")
    order_url = page.url

    for button in ("Start work", "Complete", "Reopen (redo)", "Start work", "Complete"):
        with page.expect_navigation():
            page.locator("[data-action]", has_text=button).first.click()
    expect(page.locator(".status").first).to_have_text("Completed")

    page.fill("#f-text", "Ready for pickup, see https://example.com/warranty")
    with page.expect_navigation():
        page.get_by_role("button", name="Send").click()
    expect(page.locator("#chat-messages a[href='https://example.com/warranty']")).to_have_count(1)
    history = page.locator("#history").inner_text()
    assert history.count("changed the status") == 5
    assert "from Completed to Registered" in history
    screenshot(page, "order-detail-desktop")

    page.goto(order_url + "/print")
    assert page.get_by_text("Customer signature").is_visible()
    page.emulate_media(media="print")
    assert not page.locator(".topbar").is_visible()
    screenshot(page, "order-print")
    page.emulate_media(media="screen")

    page.goto("/orders?view=all&phone=11+9876+54321")
    assert page.locator("#order-list .order-card").count() == 1
    page.goto("/orders?view=all&phone=%2B55+(11)+98765-4321")
    assert page.locator("#order-list .order-card").count() == 1
    page.goto("/orders?view=all&phone=21+5555+0000")
    assert page.locator("#order-list .order-card").count() == 0

    # The same pages at phone width: cards, no horizontal scrolling.
    phone_page.context.add_cookies(page.context.cookies())
    phone_page.goto("/orders?view=all")
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    screenshot(phone_page, "orders-list-phone")
    phone_page.goto(order_url)
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone_page, "order-detail-phone")

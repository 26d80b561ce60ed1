"""A customer follows an order in Chromium: e-mailed link, chat with staff, rating, alert."""

from __future__ import annotations

import re
import secrets

import pytest

from tests.e2e.conftest import DESKTOP, screenshot
from tests.e2e.flows import open_last_mail_to, sign_up_in_browser

pytestmark = pytest.mark.e2e


def _console_errors(tab) -> list[str]:
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


def _register_order(page, customer_email: str) -> str:
    page.goto("/orders/new")
    page.fill("#f-customer_name", "Marta Gómez")
    page.fill("#f-customer_phone", "(11) 98765-4321")
    page.fill("#f-customer_email", customer_email)
    page.fill("#f-service_type", "Washing machine repair")
    page.fill("#f-brand", "Brastemp")
    page.fill("#f-problem", "Does not spin")
    page.fill("#f-internal_notes", "Charge the visit twice")
    page.get_by_role("button", name="Register order").click()
    page.wait_for_url(re.compile(r".*/orders/[0-9a-f]+$"))
    return page.url


def test_customer_follows_writes_and_rates_and_staff_are_told(
    browser, live_server, page, phone_page
):
    staff_errors = _console_errors(page)
    owner = sign_up_in_browser(page, "Assistência Técnica Sol")
    customer_email = f"cliente-{secrets.token_hex(4)}@example.com"
    order_url = _register_order(page, customer_email)
    assert "Last e-mail to the customer" in page.inner_text("#customer")

    # The outbox shows the customer's e-mail, answered to the company's address.
    page.goto("/dev/outbox")
    entry = page.locator("li", has=page.locator(".mail-to", has_text=customer_email)).first
    assert entry.locator(".mail-reply-to").inner_text() == owner
    assert "Assistência Técnica Sol" in entry.inner_text()
    text = open_last_mail_to(page, customer_email)
    link = re.search(r"https?://\S+/o/\S+", text).group(0)

    # The customer opens the link on a phone, with no staff session, and writes.
    customer = phone_page
    customer_errors = _console_errors(customer)
    customer.goto(link)
    assert "Order #1" in customer.inner_text("h1")
    assert "Assistência Técnica Sol" in customer.inner_text(".customer-top")
    assert "Charge the visit twice" not in customer.content()
    customer.fill("#f-text", "Can you come after 5 pm? The doorbell is broken.")
    customer.get_by_role("button", name="Send message").click()
    customer.wait_for_url(re.compile(r".*/o/[^/#]+(#chat)?$"))
    assert "Can you come after 5 pm?" in customer.inner_text("#chat-messages")
    assert customer.evaluate("document.documentElement.scrollWidth") <= 390

    # Staff see it, marked as the customer's, and finish the job.
    page.goto(order_url)
    message = page.locator("#chat-messages .msg-customer").first
    assert "Can you come after 5 pm?" in message.inner_text()
    assert message.locator(".tag").inner_text() == "customer"
    page.fill("#f-text", "Sure, we will ring you at 5:30.")
    page.get_by_role("button", name="Send", exact=True).click()
    for button in ("Start work", "Complete"):
        page.locator("[data-action]", has_text=button).first.click()
        page.wait_for_load_state()
    assert page.locator(".status").first.inner_text() == "Completed"

    # The customer rates 2 stars; the page keeps a desktop-sized look too.
    customer.goto(link)
    assert "Sure, we will ring you at 5:30." in customer.inner_text("#chat-messages")
    customer.locator("label.star-choice", has_text="2 of 5").click()
    customer.fill("#f-comment", "Fixed, but it took three weeks.")
    screenshot(customer, "customer-rating-form-phone")
    customer.get_by_role("button", name="Send rating").click()
    customer.wait_for_url(re.compile(r".*#rating$"))
    assert "Your rating: 2 of 5." in customer.inner_text("#rating")
    assert customer.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(customer, "customer-page-phone")
    desktop = browser.new_context(base_url=live_server, viewport=DESKTOP, locale="en-US")
    customer_desktop = desktop.new_page()
    customer_desktop.goto(link)
    assert "Your rating: 2 of 5." in customer_desktop.inner_text("#rating")
    screenshot(customer_desktop, "customer-page-desktop")
    desktop.close()

    # Staff get the low-rating alert: bell count and notifications page.
    page.goto("/")
    assert int(page.inner_text("#unread-count")) >= 1
    page.locator("a.bell").click()
    assert "Order #1 got a low rating from the customer." in page.inner_text("main")
    page.goto(order_url)
    assert "2 of 5 stars" in page.inner_text("#customer")
    screenshot(page, "customer-panel-staff-desktop")
    assert staff_errors == [] and customer_errors == []


def test_follow_snippet_settings_and_embedded_form(page, phone_page):
    sign_up_in_browser(page, "Refrigeração Polar")
    page.goto("/settings/follow-snippet")
    page.fill("#f-button", "Track my repair")
    page.check("input[name=accent][value=teal]")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/settings/follow-snippet")
    snippet = page.input_value("#snippet-code")
    assert snippet.startswith("<iframe src=") and "/follow/refrigeracao-polar" in snippet
    frame = page.frame_locator("#snippet-preview")
    assert frame.get_by_role("button", name="Track my repair").is_visible()
    screenshot(page, "follow-snippet-settings-desktop")
    src = page.locator("#snippet-preview").get_attribute("src")
    phone_page.goto(src)
    assert phone_page.get_by_role("button", name="Track my repair").is_visible()
    screenshot(phone_page, "follow-form-empty-phone")
    phone_page.fill("#f-number", "12345")
    phone_page.fill("#f-email", "nobody@example.com")
    phone_page.get_by_role("button", name="Track my repair").click()
    assert "If this number and e-mail match" in phone_page.inner_text("#follow-sent")
    screenshot(phone_page, "follow-form-phone")

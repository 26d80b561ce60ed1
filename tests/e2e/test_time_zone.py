"""Sign-up takes the device's time zone, and the company's pages then speak its clock."""

from __future__ import annotations

import re
import secrets

import pytest

from tests.e2e.conftest import DESKTOP
from tests.e2e.flows import PASSWORD, open_last_mail_to

pytestmark = pytest.mark.e2e


def test_sign_up_takes_the_browsers_zone_over_the_languages_guess(browser, live_server):
    # Manaus (GMT-4) rather than English's guess, UTC: only the page script knows it.
    context = browser.new_context(
        base_url=live_server, viewport=DESKTOP, locale="en-US", timezone_id="America/Manaus"
    )
    page = context.new_page()
    try:
        page.goto("/signup")
        assert page.input_value("#f-time_zone") == "America/Manaus"
        email = f"owner-{secrets.token_hex(4)}@example.com"
        page.fill("#f-company_name", f"Oficina {secrets.token_hex(2)}")
        page.fill("#f-business_type", "Refrigeração")
        page.fill("#f-area", "Manaus")
        page.fill("#f-contact_name", "Ana Souza")
        page.fill("#f-phone", "+55 92 91234-5678")
        page.fill("#f-email", email)
        page.fill("#f-password", PASSWORD)
        page.locator("#f-password").press("Enter")
        page.wait_for_url("**/verify-email")
        code = re.search(r"^\s+(\d{6})\s*$", open_last_mail_to(page, email), re.M).group(1)
        page.goto("/verify-email")
        page.fill("#f-code", code)
        page.locator("#f-code").press("Enter")
        page.wait_for_url(re.compile(r".*/$"))
        page.goto("/settings/company")
        assert page.input_value("#f-time_zone") == "America/Manaus"
        page.goto("/orders/new")
        page.fill("#f-customer_name", "Maria")
        page.fill("#f-customer_phone", "(92) 98765-4321")
        page.fill("#f-service_type", "Geladeira")
        page.fill("#f-problem", "Não gela")
        page.fill("#f-estimated_value", "1,500.00")
        page.locator("#f-estimated_value").press("Enter")
        page.wait_for_url(re.compile(r".*/orders/[0-9a-f]+$"))
        history = page.locator("#history").inner_text()
        assert "(GMT-4)" in history
        assert "1,500.00" in page.content()
    finally:
        context.close()

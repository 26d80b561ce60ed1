"""Browser steps shared by e2e tests: sign up through the pages, read the local outbox."""

from __future__ import annotations

import re
import secrets

PASSWORD = "correct horse battery"


def open_last_mail_to(page, address: str) -> str:
    """Open the newest outbox message to ``address``; returns its plain text."""
    page.goto("/dev/outbox")
    page.locator("li", has=page.locator(".mail-to", has_text=address)).first.get_by_role(
        "link", name="Open"
    ).click()
    return page.locator(".mail-text").inner_text()


def sign_up_in_browser(page, company: str | None = None, email: str | None = None) -> str:
    """Sign up, validate the e-mail with the code from the outbox; returns the e-mail."""
    email = email or f"owner-{secrets.token_hex(4)}@example.com"
    page.goto("/signup")
    page.fill("#f-company_name", company or f"Oficina {secrets.token_hex(2)}")
    page.fill("#f-business_type", "Electronics repair")
    page.fill("#f-area", "São Paulo")
    page.fill("#f-contact_name", "Ana Souza")
    page.fill("#f-phone", "+55 11 91234-5678")
    page.fill("#f-email", email)
    page.fill("#f-password", PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/verify-email")
    text = open_last_mail_to(page, email)
    code = re.search(r"^\s+(\d{6})\s*$", text, re.MULTILINE).group(1)
    page.goto("/verify-email")
    page.fill("#f-code", code)
    page.get_by_role("button", name="Validate").click()
    page.wait_for_url(re.compile(r".*/$"))
    return email

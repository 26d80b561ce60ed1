"""The users page in Chromium: an admin invites someone and sees the pending invitation."""

from __future__ import annotations

import secrets

import pytest

from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"


def _sign_up(tab, company: str) -> str:
    email = f"owner-{secrets.token_hex(4)}@example.com"
    tab.goto("/signup")
    tab.fill("#f-company_name", company)
    tab.fill("#f-business_type", "Electronics repair")
    tab.fill("#f-area", "São Paulo")
    tab.fill("#f-contact_name", "Ana Souza")
    tab.fill("#f-phone", "+55 11 91234-5678")
    tab.fill("#f-email", email)
    tab.fill("#f-password", PASSWORD)
    tab.get_by_role("button", name="Create account").click()
    tab.wait_for_url("**/verify-email")
    return email


def _invite(tab, name: str, role: str) -> str:
    email = f"{role}-{secrets.token_hex(4)}@example.com"
    tab.fill("#f-name", name)
    tab.fill("#f-email", email)
    tab.select_option("#f-role", role)
    tab.get_by_role("button", name="Send invitation").click()
    tab.wait_for_url("**/settings/users")
    return email


def _console_errors(tab) -> list[str]:
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


def test_admin_invites_someone_and_sees_the_pending_invitation(page):
    errors = _console_errors(page)
    owner = _sign_up(page, "Oficina Azul Assistência Técnica")
    page.get_by_role("link", name="Settings").click()
    page.locator("#settings-links").get_by_role("link", name="Users").click()
    page.wait_for_url("**/settings/users")
    assert page.get_by_role("heading", level=1).inner_text() == "Users"
    assert owner in page.locator("#users").inner_text()
    invited = _invite(page, "Bruno Lima", "staff")
    assert f"Invitation sent to {invited}." in page.locator(".flash-success").inner_text()
    pending = page.locator("#invitations").inner_text()
    assert invited in pending and "Bruno Lima" in pending and "Staff" in pending
    _invite(page, "Carla Dias de Albuquerque", "admin")
    assert page.locator("#invitations li").count() == 2
    screenshot(page, "users-desktop")
    assert errors == []


def test_users_page_and_invitation_on_a_phone(phone_page):
    errors = _console_errors(phone_page)
    _sign_up(phone_page, "Refrigeração Polar")
    phone_page.goto("/settings/users")
    invited = _invite(phone_page, "Davi Rocha", "staff")
    assert invited in phone_page.locator("#invitations").inner_text()
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways: {width}px"
    screenshot(phone_page, "users-phone")
    # Follow the e-mailed link from the local outbox.
    phone_page.goto("/dev/outbox")
    phone_page.locator(".outbox li", has_text=invited).first.get_by_role("link").first.click()
    link = phone_page.locator("a[href*='/invite/']").first.get_attribute("href")
    assert link
    phone_page.goto(link)
    assert "Join Refrigeração Polar on CheckOS" in phone_page.inner_text("h1")
    assert phone_page.input_value("#f-email") == invited
    screenshot(phone_page, "invite-accept-phone")
    assert errors == []

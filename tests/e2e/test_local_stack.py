"""`make run` serves real pages to a real browser."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e


def test_make_run_serves_the_landing_page_in_chromium(page):
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto("/")
    assert page.get_by_role("heading", level=1).inner_text() == (
        "Run your service orders in one place"
    )
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"  # CSS loaded
    screenshot(page, "landing-desktop")
    assert errors == []  # no CSP violation, no missing asset


def test_phone_menu_opens_and_language_switches(phone_page):
    phone_page.goto("/")
    toggle = phone_page.get_by_role("button", name="Menu")
    assert toggle.is_visible()
    assert not phone_page.locator("#site-nav").is_visible()
    toggle.click()
    assert phone_page.locator("#site-nav").is_visible()
    screenshot(phone_page, "landing-phone-menu")
    with phone_page.expect_navigation():
        phone_page.select_option("#lang-select", "pt-BR")
    assert "Gerencie suas ordens" in phone_page.get_by_role("heading", level=1).inner_text()


def test_outbox_page_is_served_locally(page):
    page.goto("/dev/outbox")
    assert page.get_by_role("heading", level=1).inner_text() == "Local outbox"

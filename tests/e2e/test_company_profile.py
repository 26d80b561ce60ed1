"""In Chromium: sign up, validate the e-mail from the outbox, fill the profile, upload a logo,
see it in the header, and open the public page (desktop and phone)."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import pytest

from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"


def _console_errors(tab) -> list[str]:
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def _code_from_outbox(tab, email: str) -> str:
    tab.goto("/dev/outbox")
    tab.locator("li", has=tab.locator(".mail-to", has_text=email)).first.get_by_role(
        "link", name="Open"
    ).click()
    text = tab.locator(".mail-text").inner_text()
    match = re.search(r"^\s*(\d{6})\s*$", text, re.MULTILINE)
    assert match, text
    return match.group(1)


def _sign_in(tab, email: str) -> None:
    tab.goto("/login")
    tab.fill("#f-email", email)
    tab.fill("#f-password", PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url("**/")


def _logo_png(folder: Path) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (600, 400), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((20, 20, 580, 380), radius=60, fill=(31, 95, 191, 255))
    draw.ellipse((200, 100, 400, 300), fill=(255, 200, 40, 255))
    path = folder / "logo.png"
    image.save(path, "PNG")
    return path


def _natural_width(locator) -> int:
    locator.wait_for(state="visible")
    return locator.evaluate(
        "img => img.complete ? img.naturalWidth : new Promise(done => {"
        " img.addEventListener('load', () => done(img.naturalWidth));"
        " img.addEventListener('error', () => done(0)); })"
    )


def test_company_profile_logo_and_public_page_in_chromium(page, phone_page, tmp_path):
    errors = _console_errors(page)
    email = f"owner-{secrets.token_hex(4)}@example.com"
    name = f"Oficina Zé {secrets.token_hex(2)}"

    # Sign up and validate the e-mail with the code from the local outbox.
    page.goto("/signup")
    page.fill("#f-company_name", name)
    page.fill("#f-business_type", "Electronics repair")
    page.fill("#f-area", "Greater São Paulo")
    page.fill("#f-contact_name", "Ana Souza")
    page.fill("#f-phone", "+55 11 91234-5678")
    page.fill("#f-email", email)
    page.fill("#f-password", PASSWORD)
    page.get_by_role("button", name="Create").click()
    page.wait_for_url("**/verify-email")
    code = _code_from_outbox(page, email)
    page.goto("/verify-email")
    page.fill("#f-code", code)
    page.locator("form[action='/verify-email'] button[type=submit]").click()
    page.wait_for_url("**/")

    # Sign out and in again.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    _sign_in(page, email)

    # Fill the profile; the home page links to the missing fields.
    page.locator("#missing-profile a[href='/settings/company#f-website']").click()
    page.wait_for_url("**/settings/company#f-website")
    page.fill("#f-website", "https://oficina.example.com.br")
    page.fill("#f-description", "Conserto de celulares, tablets e notebooks.\nSegunda a sábado.")
    page.fill("#f-city", "Campinas")
    page.fill("#f-state", "SP")
    page.fill("#f-country", "Brasil")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url("**/settings/company")
    assert "Company info saved." in page.locator("main").inner_text()

    # Upload a logo: previewed at four sizes before saving, then in the header.
    page.locator("#f-logo").click()
    page.wait_for_url("**/settings/company/logo")
    page.set_input_files("#f-logo", str(_logo_png(tmp_path)))
    page.locator("#logo-preview").wait_for(state="visible")
    for size in (32, 64, 128, 256):
        preview = page.locator(f"[data-size='{size}'] img")
        assert _natural_width(preview) == 600
        assert preview.bounding_box()["width"] == size
    screenshot(page, "company-logo-preview-desktop")
    page.get_by_role("button", name="Save logo").click()
    page.wait_for_url("**/settings/company#f-logo")
    header_logo = page.locator("header .brand-logo")
    assert "/logo/" in header_logo.get_attribute("src")
    assert _natural_width(header_logo) == 512
    assert _natural_width(page.locator(".logo-current")) == 512
    screenshot(page, "company-settings-desktop")

    # The public page: title, canonical, JSON-LD, the logo.
    with page.expect_navigation():
        page.locator("#public-link").click()
    assert page.title().startswith(name)
    slug = page.url.rsplit("/", 1)[-1]
    canonical = page.locator("link[rel=canonical]").get_attribute("href")
    assert canonical.endswith(f"/c/{slug}")
    data = json.loads(page.locator("script[type='application/ld+json']").inner_text())
    assert data["@type"] == "LocalBusiness" and data["name"] == name
    assert data["address"]["addressLocality"] == "Campinas"
    assert _natural_width(page.locator(".public-logo")) == 512
    assert page.locator(".public-email").inner_text() == email
    screenshot(page, "company-public-desktop")
    assert errors == []  # no CSP report for the ld+json block, no failed asset

    # Phone width: the public page needs no sign-in; settings after signing in.
    phone_errors = _console_errors(phone_page)
    phone_page.goto(f"/c/{slug}")
    assert _natural_width(phone_page.locator(".public-logo")) == 512
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone_page, "company-public-phone")
    _sign_in(phone_page, email)
    phone_page.goto("/settings/company")
    assert _natural_width(phone_page.locator("header .brand-logo")) == 512
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone_page, "company-settings-phone")
    phone_page.goto("/settings/company/logo")
    phone_page.set_input_files("#f-logo", str(_logo_png(tmp_path)))
    phone_page.locator("#logo-preview").wait_for(state="visible")
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone_page, "company-logo-preview-phone")
    assert phone_errors == []


def test_inactive_company_banner_and_reactivation_in_chromium(page, tmp_path):
    errors = _console_errors(page)
    email = f"owner-{secrets.token_hex(4)}@example.com"
    page.goto("/signup")
    page.fill("#f-company_name", f"Pausada {secrets.token_hex(2)}")
    page.fill("#f-business_type", "Plumbing")
    page.fill("#f-area", "Lisbon")
    page.fill("#f-contact_name", "Rui Costa")
    page.fill("#f-phone", "+351 912 345 678")
    page.fill("#f-email", email)
    page.fill("#f-password", PASSWORD)
    page.get_by_role("button", name="Create").click()
    page.wait_for_url("**/verify-email")
    page.goto("/settings/company")
    page.check("input[name=status][value=inactive]")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url("**/settings/company")
    banner = page.locator("#inactive-banner")
    assert "This company is inactive" in banner.inner_text()
    screenshot(page, "company-inactive-banner-desktop")
    banner.get_by_role("button", name="Reactivate").click()
    page.wait_for_url("**/settings/company")
    assert page.locator("#inactive-banner").count() == 0
    assert "The company is active again." in page.locator("main").inner_text()
    assert errors == []

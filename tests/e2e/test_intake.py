"""In Chromium: the intake form inside an iframe of another site, from submission to order."""

from __future__ import annotations

import functools
import re
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, screenshot
from tests.e2e.flows import open_last_mail_to, sign_up_in_browser

pytestmark = pytest.mark.e2e

WAIT = 3.3  # seconds: a little over the form's minimum time to submit


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Another origin *and* another site: http://localhost:<port> (the app is on 127.0.0.1)."""
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(tmp_path))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}", tmp_path
    server.shutdown()
    server.server_close()


def _embed_page(folder: Path, snippet: str) -> None:
    (folder / "shop.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>Shop</title></head><body style='margin:0;font-family:sans-serif;background:#eef'>"
        "<h1 style='margin:8px'>Casa do Reparo</h1>" + snippet + "</body></html>",
        encoding="utf-8",
    )


def _fill(frame, email: str, *, serial: str | None) -> None:
    frame.locator("#f-customer_name").fill("Marina Duarte")
    frame.locator("#f-customer_email").fill(email)
    frame.locator("#f-customer_phone").fill("+55 31 98888-7777")
    frame.locator("#f-service_type").fill("Notebook repair")
    frame.locator("#f-brand").fill("Lenovo")
    frame.locator("#f-model").fill("IdeaPad 3")
    frame.locator("#f-problem").fill("Does not turn on after a power cut")
    if serial is not None:
        frame.locator("#custom-fields input").fill(serial)


def _open_shop(tab, site: str):
    tab.goto(f"{site}/shop.html")
    frame = tab.frame_locator("iframe")
    frame.locator("h1").wait_for()
    return frame, time.monotonic()


def _settled(tab) -> None:
    """Scroll the shop page back up and let the iframe paint before a screenshot.

    Chromium rasters an out-of-process iframe only where it is on screen: after
    Playwright scrolled down to click, a full-page capture shows the iframe's
    top unpainted (the DOM is fine) unless the page is scrolled back first.
    """
    tab.evaluate("window.scrollTo(0, 0)")
    tab.wait_for_timeout(400)


def _wait_since(started: float) -> None:
    time.sleep(max(0.0, WAIT - (time.monotonic() - started)))


def test_intake_form_in_another_sites_iframe_from_submission_to_order(
    page, browser, live_server, other_site
):
    site, folder = other_site
    company = f"Casa do Reparo {secrets.token_hex(2)}"
    sign_up_in_browser(page, company=company)
    # A required custom field, then the form code and its snippet.
    page.goto("/settings/fields")
    page.fill("#f-label", "Serial number")
    page.check("input[name=required][value=yes]")
    page.get_by_role("button", name="Add field").click()
    page.goto("/settings/intake")
    page.get_by_role("button", name="Create the form code").click()
    page.wait_for_url("**/settings/intake")
    # Width and height edit the snippet as they are typed; below 300 px a warning shows.
    assert page.locator("#size-warning").is_hidden()
    page.fill("#f-width", "250")
    assert 'width="250"' in page.input_value("#snippet")
    assert page.locator("#size-warning").is_visible()
    page.fill("#f-width", "600")
    page.fill("#f-height", "1250")
    assert page.locator("#size-warning").is_hidden()
    snippet = page.input_value("#snippet")
    assert 'width="600" height="1250"' in snippet and live_server + "/intake/" in snippet
    screenshot(page, "intake-settings-desktop")
    _embed_page(folder, snippet)

    visitor = browser.new_context(base_url=live_server, viewport=DESKTOP, locale="en-US")
    tab = visitor.new_page()
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    frame, loaded = _open_shop(tab, site)
    assert company in frame.locator(".intake-company").inner_text()
    email = f"marina-{secrets.token_hex(4)}@example.com"
    _fill(frame, email, serial=None)
    screenshot(tab, "intake-iframe-desktop")
    _wait_since(loaded)
    frame.get_by_role("button", name="Send request").click()
    error = frame.locator("#custom-fields .error")
    error.wait_for()
    assert error.inner_text() == "This field is required."
    assert frame.locator("#f-problem").input_value() == "Does not turn on after a power cut"
    _settled(tab)
    screenshot(tab, "intake-iframe-error-desktop")
    frame.locator("#custom-fields input").fill("PF-2X91")
    frame.get_by_role("button", name="Send request").click()
    frame.locator("#intake-sent").wait_for()
    assert f"We sent a confirmation link to {email}" in frame.locator("#intake-sent").inner_text()
    _settled(tab)
    screenshot(tab, "intake-iframe-sent-desktop")

    # While that request waits, the same address is refused, with a resend offer.
    frame, loaded = _open_shop(tab, site)
    _fill(frame, email, serial="PF-2X91")
    _wait_since(loaded)
    frame.get_by_role("button", name="Send request").click()
    problem = frame.locator("#intake-problem")
    problem.wait_for()
    assert "is already waiting for confirmation" in problem.inner_text()
    assert frame.get_by_role("button", name="Send the link again").is_visible()

    # The requester confirms from the e-mail (local outbox).
    mailbox = visitor.new_page()
    mailbox.set_default_timeout(15_000)
    text = open_last_mail_to(mailbox, email)
    link = re.search(r"http://\S+/intake/confirm/\S+", text).group(0)
    mailbox.goto(link)
    assert "Does not turn on after a power cut" in mailbox.inner_text("#confirm-request")
    screenshot(mailbox, "intake-confirm-desktop")
    mailbox.get_by_role("button", name="Confirm and send").click()
    mailbox.locator("#confirm-done").wait_for()
    assert f"{company} received your request as order #1." in mailbox.inner_text("#confirm-done")
    text = open_last_mail_to(mailbox, email)
    assert "/o/" in text  # the private link to follow the order

    # The company sees the order and a notification.
    page.goto("/orders?view=all")
    assert "Marina Duarte" in page.locator("main").inner_text()
    assert page.locator("#unread-count").inner_text() == "1"
    page.goto("/notifications")
    assert "New order #1 from your website form." in page.locator("main").inner_text()

    # A new code: the old iframe now says the form is not accepting requests.
    page.goto("/settings/intake")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Generate a new code").click()
    page.wait_for_url("**/settings/intake")
    assert page.input_value("#snippet") != snippet
    tab.goto(f"{site}/shop.html")
    closed = tab.frame_locator("iframe").locator("#intake-closed")
    closed.wait_for()
    assert "This form is not accepting requests" in closed.inner_text()
    screenshot(tab, "intake-iframe-closed-desktop")
    # No script or CSP error; Chromium logs each 4xx answer (422, 409, 404) as a failed load.
    assert [e for e in errors if not e.startswith("Failed to load resource")] == [], errors
    visitor.close()


def test_intake_form_inside_an_iframe_on_a_phone(page, browser, other_site):
    site, folder = other_site
    sign_up_in_browser(page, company=f"Refrigeração Polar Assistência {secrets.token_hex(2)}")
    page.goto("/settings/intake")
    page.get_by_role("button", name="Create the form code").click()
    page.wait_for_url("**/settings/intake")
    _embed_page(folder, page.input_value("#snippet"))
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="pt-BR")
    tab = phone.new_page()
    frame, loaded = _open_shop(tab, site)
    assert frame.locator("h1").inner_text() == "Solicitar um serviço"
    inner_width = frame.locator("body").evaluate("b => b.ownerDocument.documentElement.scrollWidth")
    outer = tab.evaluate("document.documentElement.scrollWidth")
    assert outer <= PHONE["width"], f"the shop page scrolls sideways: {outer}px"
    assert inner_width <= PHONE["width"], f"the form scrolls sideways: {inner_width}px"
    screenshot(tab, "intake-iframe-phone")
    # The e-mailed confirmation page on the same phone.
    email = f"davi-{secrets.token_hex(4)}@example.com"
    frame.locator("#f-customer_name").fill("Davi Rocha")
    frame.locator("#f-customer_email").fill(email)
    frame.locator("#f-problem").fill("A geladeira não gela e faz barulho à noite")
    _wait_since(loaded)
    frame.get_by_role("button", name="Enviar solicitação").click()
    frame.locator("#intake-sent").wait_for()
    _settled(tab)
    screenshot(tab, "intake-iframe-sent-phone")
    text = open_last_mail_to(page, email)
    assert "Confirme sua solicitação" in page.locator(".mail-subject").inner_text()
    tab.goto(re.search(r"http://\S+/intake/confirm/\S+", text).group(0))
    assert tab.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(tab, "intake-confirm-phone")
    phone.close()

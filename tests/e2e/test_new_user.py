"""What a new user meets first, in Chromium: the printed order on a phone and on paper,
the order page's details on a phone, and help while signed in."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import screenshot
from tests.e2e.flows import sign_up_in_browser

pytestmark = pytest.mark.e2e

# A long real-world address: beside a label on a 390 px screen it used to break mid-word.
LONG_EMAIL = "maria.figueiredo@oficinaexemplo.com.br"
# Printable width of the paper at 96 px per inch with the print view's 14 mm margins.
PAPER = {"A4": 794 - 2 * 53, "Letter": 816 - 2 * 53}


def _register(page) -> str:
    page.goto("/orders/new")
    page.fill("#f-customer_name", "Maria José da Silva Figueiredo")
    page.fill("#f-customer_phone", "(11) 98765-4321")
    page.fill("#f-customer_email", LONG_EMAIL)
    page.fill("#f-service_type", "Washing machine repair")
    page.fill("#f-brand", "Brastemp")
    page.fill("#f-problem", "Does not spin; noise at the end of the cycle")
    page.get_by_role("button", name="Register order").click()
    page.wait_for_url(re.compile(r".*/orders/[0-9a-f]+$"))
    return page.url.rsplit("/", 1)[1]


def _fits(page) -> None:
    width, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width <= client, f"scrolls sideways: {width} > {client}"


def test_the_printed_order_fits_a_phone_and_paper_and_names_the_order(browser, live_server):
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_up_in_browser(page)
    order_id = _register(page)
    for width in (320, 390):
        page.set_viewport_size({"width": width, "height": 800})
        page.goto(f"/orders/{order_id}/print")
        assert page.locator("h1").count() == 1
        assert "#1" in page.inner_text("h1")
        _fits(page)
        email = page.locator(".print-pair", has_text=LONG_EMAIL).locator("dd")
        label = page.locator(".print-pair", has_text=LONG_EMAIL).locator("dt")
        assert label.bounding_box()["y"] < email.bounding_box()["y"]  # label above value
        screenshot(page, f"print-view-{width}")
    page.emulate_media(media="print")
    for paper, width in PAPER.items():
        page.set_viewport_size({"width": width, "height": 1000})
        page.goto(f"/orders/{order_id}/print")
        _fits(page)
        columns = page.evaluate(
            "getComputedStyle(document.querySelector('.print-details'))"
            ".gridTemplateColumns.split(' ').length"
        )
        assert columns == 2, paper  # the paper layout, not the phone's single column
        assert not page.locator(".topbar").is_visible()
        screenshot(page, f"print-view-{paper}")
    context.close()


def test_the_order_page_gives_values_the_width_on_a_phone(browser, live_server):
    context = browser.new_context(base_url=live_server, viewport={"width": 390, "height": 844})
    page = context.new_page()
    sign_up_in_browser(page)
    _register(page)
    _fits(page)
    screenshot(page, "order-detail-phone-details")
    value = page.locator("dl.meta dd", has_text=LONG_EMAIL)
    label = value.locator("xpath=preceding-sibling::dt[1]")
    assert label.bounding_box()["y"] < value.bounding_box()["y"]  # label above value
    whole = page.locator("dl.meta").first.bounding_box()["width"]
    assert value.bounding_box()["width"] >= 0.95 * whole  # the value gets the whole width
    # Where it must wrap, it wraps after the "@" or before a dot, never inside a word.
    lines = value.evaluate(
        """e => { const r = document.createRange(); const tops = new Map();
          for (const node of e.childNodes) { if (node.nodeType !== 3) continue;
            for (let i = 0; i < node.length; i++) { r.setStart(node, i); r.setEnd(node, i + 1);
              const top = Math.round(r.getBoundingClientRect().top);
              tops.set(top, (tops.get(top) || '') + node.data[i]); } }
          return [...tops.values()]; }"""
    )
    assert "".join(lines) == LONG_EMAIL
    for piece in lines[:-1]:
        assert piece.endswith("@") or lines[lines.index(piece) + 1].startswith("."), lines
    context.close()


def test_help_while_signed_in_shows_the_app_navigation_in_the_profiles_language(
    browser, live_server
):
    context = browser.new_context(base_url=live_server, locale="en-US")
    page = context.new_page()
    sign_up_in_browser(page)
    # Saved in the profile by the signed-in language chooser, then the cookie is gone
    # (another browser, cleared cookies): the profile decides.
    page.goto("/")
    with page.expect_navigation():
        page.locator("footer form select, footer select").first.select_option("pt-BR")
    session = [c for c in context.cookies() if c["name"] != "lang"]
    context.clear_cookies()
    context.add_cookies(session)
    page.goto("/help")
    assert page.locator("html").get_attribute("lang") == "pt-BR"
    nav = page.locator("#site-nav")
    assert nav.locator("a[href='/orders']").count() == 1
    assert nav.locator("form[action='/logout']").count() == 1
    assert nav.locator("a[href='/login']").count() == 0
    screenshot(page, "help-signed-in")
    context.close()

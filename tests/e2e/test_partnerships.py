"""Two companies in two browsers: find, propose, accept, share an order, quote, approve,
execute, chat; then a change suspends the link, re-acceptance restores it, deletion ends it."""

from __future__ import annotations

import re
import secrets

import pytest

from tests.e2e.conftest import screenshot
from tests.e2e.flows import sign_up_in_browser

pytestmark = pytest.mark.e2e


def _console_errors(tab) -> list[str]:
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def _flash(tab) -> str:
    return " ".join(tab.locator(".flash").all_inner_texts())


def _no_sideways_scroll(tab) -> None:
    width = tab.evaluate("document.documentElement.scrollWidth")
    assert width <= tab.viewport_size["width"], f"the page scrolls sideways: {width}px"


def _accept(tab, partner_id: str) -> None:
    tab.goto(f"/partners/{partner_id}")
    tab.locator("#accept").click()
    tab.wait_for_url(f"**/partners/{partner_id}")


def test_two_companies_share_an_order_from_proposal_to_deletion(page, phone_page):
    approver, executor = page, phone_page  # A on a desktop, B on a phone
    errors_a, errors_b = _console_errors(approver), _console_errors(executor)
    word = "Polar" + secrets.token_hex(2)
    sign_up_in_browser(approver, f"Clima Central {secrets.token_hex(2)}")
    sign_up_in_browser(executor, f"Refrigeração {word}")

    # A finds B in the directory (accents and capitals do not matter) and proposes.
    approver.get_by_role("link", name="Partners").click()
    approver.get_by_role("link", name="Find partners").first.click()
    approver.fill("#d-name", word.upper())
    approver.fill("#d-area", "sao paulo")  # B serves "São Paulo"
    approver.get_by_role("button", name="Search").click()
    card = approver.locator(".dir-card", has_text=word)
    assert card.count() == 1
    screenshot(approver, "directory-desktop")
    executor_id = card.get_attribute("data-company")
    card.get_by_role("link", name="Propose a partnership").click()
    assert approver.is_checked("#p-rel-approve") and approver.is_checked("#p-quote")
    approver.get_by_role("button", name="Send the proposal").click()
    approver.wait_for_url(f"**/partners/{executor_id}")
    assert "Proposal sent" in _flash(approver)
    assert "Waiting for acceptance" in approver.locator("#partner-state-badge").inner_text()

    # B sees the proposal waiting for it and accepts.
    executor.goto("/partners")
    row = executor.locator(".partnership.needs-answer")
    assert "They approve, we execute" in row.inner_text()
    approver_id = row.get_attribute("id").removeprefix("partner-")
    row.get_by_role("button", name="Accept").click()
    executor.wait_for_url(f"**/partners/{approver_id}")
    assert "is active" in _flash(executor)

    # A registers an order and shares it with B.
    approver.goto("/orders/new")
    approver.fill("#f-customer_name", "Marta Figueiredo")
    approver.fill("#f-customer_phone", "+55 11 95555-0101")
    approver.fill("#f-problem", "Split air conditioner not cooling")
    approver.get_by_role("button", name="Register").click()
    approver.wait_for_url(re.compile(r".*/orders/[0-9a-f]+$"))
    order_url = approver.url
    order_path = "/orders/" + order_url.rsplit("/", 1)[1]
    approver.select_option("#f-partner_id", executor_id)
    approver.get_by_role("button", name="Share", exact=True).click()
    approver.wait_for_url(f"**{order_path}#partner")
    assert "Executed by Refrigeração" in approver.locator("#partner-state").inner_text()

    # B finds it in its own list; it cannot start before its quote is approved.
    executor.goto("/orders?view=all")
    executor.get_by_role("link", name=re.compile("Marta Figueiredo")).click()
    executor.wait_for_url(f"**{order_path}")
    assert executor.locator("button[data-action='start']").count() == 0
    assert "must approve it before you start" in executor.locator("#quote-wait").inner_text()
    executor.fill("#f-quote_value", "350.00")
    executor.fill("#f-quote_text", "Gas recharge and a new valve")
    executor.get_by_role("button", name="Send the quote").click()
    executor.wait_for_url(f"**{order_path}#partner")
    assert "Waiting for approval" in executor.locator("#quote-state").inner_text()

    # A approves the quote; B starts the work; both chat.
    approver.goto(order_path)
    assert "350.00" in approver.locator("#quote-value").inner_text()
    approver.locator("button[data-action='approve-quote']").click()
    approver.wait_for_url(f"**{order_path}#partner")
    assert "Approved" in approver.locator("#quote-state").inner_text()
    executor.goto(order_path)
    executor.locator("button[data-action='start']").click()
    executor.wait_for_url(f"**{order_path}")
    assert "started" in _flash(executor)
    executor.fill("#f-text", "On site now, replacing the valve.")
    executor.get_by_role("button", name="Send").click()
    approver.goto(order_path)
    assert "On site now" in approver.locator("#chat-messages").inner_text()
    assert "partner · Refrigeração" in approver.locator("#chat-messages").inner_text()
    approver.fill("#f-text", "Thanks! The customer is home until 6 pm.")
    approver.get_by_role("button", name="Send").click()
    executor.goto(order_path)
    assert "The customer is home" in executor.locator("#chat-messages").inner_text()

    # Screenshots of /partners and the shared order page, desktop (A) and phone (B).
    approver.goto("/partners")
    screenshot(approver, "partners-desktop")
    approver.goto(order_path)
    screenshot(approver, "partner-order-desktop")
    executor.goto("/partners")
    _no_sideways_scroll(executor)
    screenshot(executor, "partners-phone")
    executor.goto(order_path)
    _no_sideways_scroll(executor)
    screenshot(executor, "partner-order-phone")
    assert executor.locator("button[data-action='complete']").count() == 1

    # A changes the terms: the link is suspended until B accepts; B cannot act.
    approver.goto(f"/partners/{executor_id}")
    approver.check("#chg-rel-both")
    approver.get_by_role("button", name="Propose the new terms").click()
    approver.wait_for_url(f"**/partners/{executor_id}")
    assert "Suspended" in approver.locator("#partner-state-badge").inner_text()
    # B's page was loaded before the change: its button now meets a clear refusal.
    executor.locator("button[data-action='complete']").click()
    executor.wait_for_url(f"**{order_path}")
    assert "is not active" in _flash(executor)
    assert executor.locator("button[data-action='complete']").count() == 0
    assert executor.locator("#partner-readonly").is_visible()
    assert executor.locator("form[action$='/messages']").count() == 0
    assert "On site now" in executor.locator("#chat-messages").inner_text()  # still readable
    screenshot(executor, "partner-order-suspended-phone")

    # B accepts the new terms: active again, and B completes the order.
    executor.goto(f"/partners/{approver_id}")
    assert "changed the terms" in executor.locator("#partner-history").inner_text()
    _no_sideways_scroll(executor)
    screenshot(executor, "partner-detail-suspended-phone")
    _accept(executor, approver_id)
    assert "Active" in executor.locator("#partner-state-badge").inner_text()
    executor.goto(order_path)
    executor.locator("button[data-action='complete']").click()
    executor.wait_for_url(f"**{order_path}")
    assert "completed" in _flash(executor)

    # A deletes the partnership: disabled at once, no acceptance needed.
    approver.goto(f"/partners/{executor_id}")
    approver.once("dialog", lambda dialog: dialog.accept())
    approver.locator("#delete").click()
    approver.wait_for_url(f"**/partners/{executor_id}")
    assert "Deleted" in approver.locator("#partner-state-badge").inner_text()
    executor.goto("/partners")
    assert "Deleted" in executor.locator(f"#partner-{approver_id}").inner_text()
    executor.goto(order_path)
    assert executor.locator("#partner-readonly").is_visible()
    assert "Marta Figueiredo" in executor.locator("h1").inner_text()
    screenshot(approver, "partners-deleted-desktop")
    assert errors_a == [] and errors_b == []

"""More than a page of chat: staff and the customer (on a phone) walk back with "older"."""

from __future__ import annotations

import re
import secrets

import pytest

from chalicelib.services.orders import HISTORY_PAGE
from tests.e2e.conftest import screenshot
from tests.e2e.flows import open_last_mail_to, sign_up_in_browser

pytestmark = pytest.mark.e2e

MESSAGES = HISTORY_PAGE + 3

POST_MESSAGES = """async (count) => {
  const form = document.querySelector('form.chat-form');
  for (let n = 0; n < count; n++) {
    const body = new URLSearchParams(new FormData(form));
    body.set('text', `Note ${n} ·`);
    const answer = await fetch(form.action, {method: 'POST', body, redirect: 'manual'});
    if (answer.type !== 'opaqueredirect' && !answer.ok) {
      throw new Error(`post ${n}: ${answer.status}`);
    }
  }
}"""


def _shown(tab) -> list[int]:
    texts = tab.locator("#chat-messages .msg-text").all_inner_texts()
    return [int(m.group(1)) for t in texts if (m := re.search(r"Note (\d+) ·", t))]


def test_older_links_page_through_a_long_chat_for_staff_and_customer_on_a_phone(
    browser, live_server, page, phone_page
):
    sign_up_in_browser(page, "Oficina Paginada")
    customer_email = f"cliente-{secrets.token_hex(4)}@example.com"
    page.goto("/orders/new")
    page.fill("#f-customer_name", "Rita Paz")
    page.fill("#f-customer_email", customer_email)
    page.fill("#f-problem", "Screen flickers")
    page.get_by_role("button", name="Register order").click()
    page.wait_for_url(re.compile(r".*/orders/[0-9a-f]+$"))
    order_url = page.url
    page.evaluate(POST_MESSAGES, MESSAGES)

    # Staff: the newest page, newest at the bottom, and an "older" link to the rest.
    page.goto(order_url)
    assert _shown(page) == list(range(MESSAGES - HISTORY_PAGE, MESSAGES))
    page.locator("#chat-older").click()
    page.wait_for_url(re.compile(r".*chat_before=.*"))
    assert _shown(page) == list(range(MESSAGES - HISTORY_PAGE))
    assert page.locator("#chat-older").count() == 0
    assert "You are looking at older entries." in page.inner_text("#chat")
    page.locator("#chat-newest").click()
    page.wait_for_url(re.compile(r".*/orders/[0-9a-f]+(#chat)?$"))
    assert _shown(page)[-1] == MESSAGES - 1

    # The customer, on a phone, through the e-mailed link.
    link = re.search(r"https?://\S+/o/\S+", open_last_mail_to(page, customer_email)).group(0)
    customer = phone_page
    customer.goto(link)
    assert _shown(customer) == list(range(MESSAGES - HISTORY_PAGE, MESSAGES))
    older = customer.locator("#chat-older")
    box = older.bounding_box()
    assert box is not None and box["width"] <= 390 and box["height"] >= 24  # a tappable button
    older.tap()
    customer.wait_for_url(re.compile(r".*/o/[^?]+\?chat_before=.*"))
    assert _shown(customer) == list(range(MESSAGES - HISTORY_PAGE))
    screenshot(customer, "customer-older-chat-phone")
    customer.locator("#chat-newest").tap()
    customer.wait_for_url(re.compile(r".*/o/[^?#]+(#chat)?$"))
    assert _shown(customer)[-1] == MESSAGES - 1

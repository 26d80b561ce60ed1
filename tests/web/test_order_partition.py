"""An order's partition is read a page at a time: the newest history and chat, "older" links."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.db.base import Item
from chalicelib.db.orders import OrderEvent, OrderMessage
from chalicelib.services import customer_page
from chalicelib.services.orders import HISTORY_PAGE
from tests.security.actors import lift_limits
from tests.web.factories import sign_up
from tests.web.session import WebSession
from tests.web.test_customer_access import customer_link, fresh_window, register  # noqa: F401

# After the order's own history (registration, e-mail): the seeded lines are the newest.
START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)


def seed_chat(order_id: str, messages: int, events: int = 0) -> None:
    """``messages`` chat lines "chat 0" (oldest) … and ``events`` history notes, oldest first."""
    with Item.batch_write() as batch:
        for n in range(messages):
            at = START + timedelta(minutes=n)
            batch.save(
                OrderMessage(
                    *OrderMessage.key(order_id, f"{at.isoformat()}#{n:08x}"),
                    at=at,
                    author_name="Seed",
                    author_kind="staff",
                    text=f"chat {n} ·",
                )
            )
        for n in range(events):
            at = START + timedelta(minutes=n)
            batch.save(
                OrderEvent(
                    *OrderEvent.key(order_id, f"{at.isoformat()}#{n:06x}"),
                    kind="mail",
                    at=at,
                    actor_name="CheckOS",
                    actor_kind="system",
                    note=f"note {n} ·",
                )
            )


def _numbers(body: str, word: str) -> list[int]:
    return [int(n) for n in re.findall(rf"{word} (\d+) ·", body)]


def _href(body: str, link_id: str) -> str | None:
    found = re.search(rf'id="{link_id}"[^>]*href="([^"]+)"', body)
    return found.group(1).replace("&amp;", "&") if found else None


def test_order_page_shows_the_newest_page_and_older_links_walk_back(client, budget):
    tab = sign_up(client)
    order_id, _email = register(tab)
    seed_chat(order_id, messages=2 * HISTORY_PAGE + 20, events=HISTORY_PAGE + 5)
    with budget:
        assert tab.get(f"/orders/{order_id}").status_code == 200
    assert budget.dynamodb_requests <= 4
    assert budget.items_read_by_queries <= 2 * HISTORY_PAGE + 4
    body = tab.text()
    total = 2 * HISTORY_PAGE + 20
    newest = list(range(total - HISTORY_PAGE, total))
    assert _numbers(body, "chat") == newest  # oldest first, the newest at the bottom
    assert _numbers(body, "note") == list(range(5, HISTORY_PAGE + 5))
    seen: list[int] = []
    link: str | None = f"/orders/{order_id}"
    pages = 0
    while link:
        # Bounded: older links that never end (a cursor that does not move) fail here.
        pages += 1
        assert pages <= total // HISTORY_PAGE + 1, f"still an older link after {pages} pages"
        assert tab.get(link).status_code == 200
        page = _numbers(tab.text(), "chat")
        assert len(page) <= HISTORY_PAGE
        seen = page + seen
        link = _href(tab.text(), "chat-older")
    assert seen == list(range(total))  # every message once, in order, nothing skipped
    assert _href(tab.text(), "chat-newest") == f"/orders/{order_id}#chat"
    tab.get(_href(body, "history-older"))
    assert _numbers(tab.text(), "note") == list(range(5))  # the history's older page
    assert "Joana Prado" in tab.text()  # still the order's page around it


def test_an_order_with_a_page_of_chat_has_no_older_link(client):
    tab = sign_up(client)
    order_id, _email = register(tab)
    seed_chat(order_id, messages=HISTORY_PAGE)
    tab.get(f"/orders/{order_id}")
    assert len(_numbers(tab.text(), "chat")) == HISTORY_PAGE
    assert 'id="chat-older"' not in tab.text() and 'id="chat-newest"' not in tab.text()


def test_a_forged_or_foreign_cursor_shows_the_newest_page(client):
    a = sign_up(client)
    first, _ = register(a)
    second, _ = register(a)
    for order_id in (first, second):
        seed_chat(order_id, messages=HISTORY_PAGE + 30)
    a.get(f"/orders/{first}")
    older = _href(a.text(), "chat-older")
    cursor = older.split("chat_before=")[1].split("#")[0]
    newest = list(range(30, HISTORY_PAGE + 30))
    # The same cursor on another order, a changed one, or a plain sort key: the newest page.
    for url in (
        f"/orders/{second}?chat_before={cursor}",
        f"/orders/{first}?chat_before={cursor[:-2]}AA",
        f"/orders/{first}?chat_before=MSG%23{START.isoformat()}",
        f"/orders/{first}?history_before={cursor}",
    ):
        assert a.get(url).status_code == 200, url
        assert _numbers(a.text(), "chat") == newest, url
    # Another company, even holding a valid cursor, gets the plain 404.
    b = sign_up(client)
    assert b.get(f"/orders/{first}?chat_before={cursor}").status_code == 404
    assert "chat 3 ·" not in b.text()


def test_customer_page_pages_its_chat_with_a_cursor_signed_for_its_link(client, budget):
    staff = sign_up(client)
    order_id, email = register(staff)
    seed_chat(order_id, messages=HISTORY_PAGE + 10)
    link = customer_link(email)
    customer = WebSession(client)
    with budget:
        assert customer.get(link).status_code == 200
    assert budget.dynamodb_requests <= 3
    assert budget.items_read_by_queries <= 2 * HISTORY_PAGE + 4
    assert _numbers(customer.text(), "chat") == list(range(10, HISTORY_PAGE + 10))
    older = _href(customer.text(), "chat-older")
    assert older.startswith(link + "?chat_before=")
    customer.get(older)
    assert _numbers(customer.text(), "chat") == list(range(10))
    assert _href(customer.text(), "chat-newest") == f"{link}#chat"
    # A staff page's cursor is no cursor here (and the reverse).
    staff.get(f"/orders/{order_id}")
    staff_cursor = _href(staff.text(), "chat-older").split("chat_before=")[1].split("#")[0]
    customer.get(f"{link}?chat_before={staff_cursor}")
    assert _numbers(customer.text(), "chat") == list(range(10, HISTORY_PAGE + 10))
    customer_cursor = older.split("chat_before=")[1].split("#")[0]
    staff.get(f"/orders/{order_id}?chat_before={customer_cursor}")
    assert _numbers(staff.text(), "chat") == list(range(10, HISTORY_PAGE + 10))


@pytest.mark.usefixtures("fresh_window")
def test_customer_chat_is_limited_per_link_with_a_clear_message_and_the_text_kept(client):
    staff = sign_up(client)
    order_id, email = register(staff)
    customer = WebSession(client, accept_language="es")
    link = customer_link(email)
    customer.get(link)
    for n in range(customer_page.CHAT_LIMIT_ORDER):
        assert customer.post(f"{link}/messages", {"text": f"hola {n}"}).status_code == 303
        customer.get(link)
    typed = "¿Cuándo queda lista? Necesito la máquina el lunes."
    answer = customer.post(f"{link}/messages", {"text": typed})
    assert answer.status_code == 429
    body = customer.text()
    assert "Usted envió muchos mensajes en poco tiempo" in body
    assert typed in body  # what they typed is still in the box
    staff.get(f"/orders/{order_id}")
    assert typed not in staff.text()
    assert f"hola {customer_page.CHAT_LIMIT_ORDER - 1}" in staff.text()


@pytest.mark.usefixtures("fresh_window")
def test_customer_chat_is_limited_per_ip_across_links(client, monkeypatch):
    lift_limits(monkeypatch, "customer-chat", "ip", to=3)
    staff = sign_up(client)
    links = [customer_link(register(staff)[1]) for _ in range(2)]
    customer = WebSession(client, accept_language="pt-BR")
    sent = 0
    for link in links * 2:
        customer.get(link)
        answer = customer.post(f"{link}/messages", {"text": "Olá, tudo bem?"})
        sent += answer.status_code == 303
    assert sent == 3
    assert answer.status_code == 429
    assert "Você enviou muitas mensagens em pouco tempo" in customer.text()
    assert "Olá, tudo bem?" in customer.text()


def test_the_order_page_every_write_redirects_to_reads_strongly_consistent(client, budget):
    """Register, edit, status and chat all redirect to the order page: it must show the
    write even where an eventually consistent read would not yet (DynamoDB replicas)."""
    import json

    tab = sign_up(client)
    order_id, _email = register(tab)
    with budget:
        assert tab.get(f"/orders/{order_id}").status_code == 200
    reads = []
    for call in budget.dynamodb:
        if call.operation == "Query":
            body = call.params.get("body") or b"{}"
            request = json.loads(body.decode() if isinstance(body, bytes) else body)
            if "ORDER#" in json.dumps(request.get("ExpressionAttributeValues", {})):
                reads.append(bool(request.get("ConsistentRead")))
    assert reads and all(reads), reads

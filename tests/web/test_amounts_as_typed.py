"""Amounts are read and shown the way the person's language writes them, or refused."""

from __future__ import annotations

import re

from chalicelib.db.orders import Order
from tests.web.factories import sign_up
from tests.web.session import WebSession

ORDER = {
    "customer_name": "Maria Souza",
    "customer_phone": "+55 11 90000-0000",
    "customer_email": "",
    "service_type": "Geladeira",
    "problem": "Não gela",
    "priority": "normal",
}


def _register(tab: WebSession, value: str):
    tab.get("/orders/new")
    return tab.post("/orders/new", {**ORDER, "estimated_value": value})


def _stored(answer) -> str | None:
    order_id = answer.headers["Location"].rsplit("/", 1)[1]
    return Order.get(*Order.key(order_id), consistent_read=True).estimated_value


def test_a_brazilian_one_thousand_five_hundred_is_1500_never_1_50(client):
    tab = sign_up(client, locale="pt-BR")
    for typed in ("1.500", "1.500,00", "1500,00"):
        answer = _register(tab, typed)
        assert answer.status_code == 303, tab.text()
        assert _stored(answer) == "1500.00", typed
    page = tab.get(answer.headers["Location"]).body.decode()
    assert "1.500,00" in page and "1500.00" not in page
    # The edit form gives it back the way it is typed.
    order_id = answer.headers["Location"].rsplit("/", 1)[1]
    edit = tab.get(f"/orders/{order_id}/edit").body.decode()
    assert re.search(r'name="estimated_value" type="text" value="1\.500,00"', edit)


def test_an_amount_the_language_does_not_write_is_refused_and_kept(client):
    tab = sign_up(client, locale="pt-BR")
    answer = _register(tab, "1.50")
    assert answer.status_code == 422
    page = tab.text()
    assert "Informe um valor como 1.500,00" in page
    assert 'value="1.50"' in page  # what was typed stays in the field


def test_english_reads_the_english_way(client):
    tab = sign_up(client, locale="en")
    answer = _register(tab, "1,500.00")
    assert answer.status_code == 303, tab.text()
    assert _stored(answer) == "1500.00"
    assert "1,500.00" in tab.get(answer.headers["Location"]).body.decode()
    refused = _register(tab, "1.500,00")
    assert refused.status_code == 422 and "Enter an amount like 1,500.00" in tab.text()

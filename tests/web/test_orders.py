"""Order pages through HTTP: register, errors, workflow, chat, conflict, print, budget."""

from __future__ import annotations

import re

from tests.web.factories import sign_up
from tests.web.session import WebSession

ORDER = {
    "customer_name": "Carlos Pérez",
    "customer_phone": "+34 600 123 456",
    "customer_email": "carlos@example.com",
    "service_type": "Boiler repair",
    "brand": "Vaillant",
    "problem": "No hot water",
    "priority": "high",
}


def _register(tab: WebSession, **overrides: str) -> str:
    tab.get("/orders/new")
    response = tab.post("/orders/new", {**ORDER, **overrides})
    assert response.status_code == 303, tab.text()
    return response.headers["Location"].rsplit("/", 1)[-1]


def test_register_order_then_see_it_in_the_list_and_its_page(client):
    tab = sign_up(client)
    order_id = _register(tab)
    tab.get(f"/orders/{order_id}")
    assert "#1" in tab.text() and "Carlos Pérez" in tab.text()
    assert "registered the order" in tab.text()
    tab.get("/orders")
    assert f"/orders/{order_id}" in tab.text()


def test_required_custom_field_error_is_beside_the_field_and_values_are_kept(client):
    tab = sign_up(client)
    tab.get("/settings/fields")
    tab.post("/settings/fields", {"label": "IMEI", "kind": "text", "required": "yes"})
    tab.get("/orders/new")
    field_name = re.search(r'name="(cf_[0-9a-f]+)"', tab.text()).group(1)
    response = tab.post("/orders/new", {**ORDER, "customer_name": "Keep Me"})
    assert response.status_code == 422
    body = tab.text()
    assert f'id="e-{field_name}"' in body
    assert 'value="Keep Me"' in body and "No hot water" in body
    ok = tab.post("/orders/new", {**ORDER, field_name: "356938035643809"})
    assert ok.status_code == 303
    tab.get(ok.headers["Location"])
    assert "356938035643809" in tab.text()


def test_workflow_buttons_move_the_order_and_invalid_moves_are_explained(client):
    tab = sign_up(client)
    order_id = _register(tab)
    tab.get(f"/orders/{order_id}")
    tab.post(f"/orders/{order_id}/status", {"action": "complete"})
    tab.get(f"/orders/{order_id}")
    assert "is not possible while the order is" in tab.text()
    for action in ("start", "complete", "reopen"):
        tab.post(f"/orders/{order_id}/status", {"action": action})
    tab.get(f"/orders/{order_id}")
    assert "changed the status from Completed to Registered" in tab.text()


def test_chat_message_is_escaped_and_links_are_clickable(client):
    tab = sign_up(client)
    order_id = _register(tab)
    tab.get(f"/orders/{order_id}")
    tab.post(
        f"/orders/{order_id}/messages",
        {"text": "<script>alert(1)</script> see https://example.com/manual.pdf"},
    )
    tab.get(f"/orders/{order_id}")
    body = tab.text()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body
    assert '<a href="https://example.com/manual.pdf"' in body


def test_stale_edit_is_refused_with_who_and_when_and_text_is_kept(client):
    tab = sign_up(client)
    order_id = _register(tab)
    tab.get(f"/orders/{order_id}/edit")
    version = re.search(r'name="version" value="(\d+)"', tab.text()).group(1)
    other_tab = WebSession(client)
    other_tab.cookies = dict(tab.cookies)
    other_tab.get(f"/orders/{order_id}/edit")
    other_tab.post(f"/orders/{order_id}/edit", {**ORDER, "version": version, "problem": "First"})
    response = tab.post(
        f"/orders/{order_id}/edit", {**ORDER, "version": version, "problem": "Mine, kept"}
    )
    assert response.status_code == 409
    assert "was changed by Ana Souza" in tab.text()
    assert "Mine, kept" in tab.text()


def test_print_view_has_signature_lines(client):
    tab = sign_up(client)
    order_id = _register(tab)
    tab.get(f"/orders/{order_id}/print")
    assert "Customer signature" in tab.text()


def test_phone_filter_ignores_formatting(client):
    tab = sign_up(client)
    _register(tab, customer_phone="(11) 91234-5678", customer_name="Phone Match")
    _register(tab, customer_phone="21 3333 4444", customer_name="Other Person")
    tab.get("/orders?phone=%2B55+11+9+1234+5678")
    assert "Phone Match" in tab.text() and "Other Person" not in tab.text()


# The order page reads its partition in two Queries of a page each (newest history,
# newest chat), whatever the order's size: one more than the other pages, never more.
ORDER_PAGE_REQUESTS = 4


def test_order_pages_cost_at_most_three_dynamodb_requests(client, budget):
    tab = sign_up(client)
    order_id = _register(tab)
    for path in (f"/orders/{order_id}", "/orders", "/orders/new", f"/orders/{order_id}/edit"):
        with budget:
            assert tab.get(path).status_code == 200
        limit = ORDER_PAGE_REQUESTS if path == f"/orders/{order_id}" else 3
        assert budget.dynamodb_requests <= limit, (path, [c.operation for c in budget.dynamodb])


def test_notification_for_a_chat_message_reaches_the_technician(client):
    from chalicelib.db.accounts import User
    from chalicelib.db.base import Item
    from chalicelib.web import http

    tab = sign_up(client)
    _t, _user_id, company_id, _ = http.unpack(tab.cookies["sid"], "session")
    # A second user of the company is the technician.
    User(
        *User.key(company_id, "tech1"),
        user_id="tech1",
        company_id=company_id,
        email="tech@example.com",
        name="Tech One",
        created_at=__import__("datetime").datetime.now(__import__("datetime").UTC),
    ).save()
    order_id = _register(tab, technician_id="tech1")
    tab.get(f"/orders/{order_id}")
    tab.post(f"/orders/{order_id}/messages", {"text": "Parts arrived"})
    tech = User.get(*User.key(company_id, "tech1"))
    assert tech.unread == 1
    notes = list(Item.query(f"CO#{company_id}#USER#tech1"))
    assert notes and notes[0].kind == "chat_message"

"""The customer's private page, the follow form and the staff link panel, through HTTP."""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine

from chalicelib.aws import mail
from chalicelib.db.accounts import Company
from chalicelib.db.customers import CustomerAccess
from chalicelib.domain.tokens import new_token, token_hash
from chalicelib.services import customers, follow_form
from chalicelib.services.sessions import now
from tests.web.company_factories import company_of, staff_member
from tests.web.factories import ids_of, last_mail_to, link_in, mails_to, sign_up, unique_email
from tests.web.session import WebSession

ORDER = {
    "customer_name": "Joana Prado",
    "customer_phone": "+55 11 98888-7777",
    "service_type": "Washing machine repair",
    "brand": "Brastemp",
    "model": "BWK11",
    "problem": "Does not spin",
    "internal_notes": "Secret margin: charge 30% extra",
    "priority": "normal",
}
_windows = itertools.count(1)


@pytest.fixture
def fresh_window() -> Iterator[None]:
    """A rate-limit window of its own (every test client shares one IP)."""
    later = now() + timedelta(hours=next(_windows) * 3 + secrets.randbelow(1000) * 24)
    with time_machine.travel(later, tick=True):
        yield


def register(tab: WebSession, **changes: str) -> tuple[str, str]:
    """Register an order from the staff pages; (order id, customer e-mail)."""
    email = changes.pop("customer_email", None)
    email = unique_email("customer") if email is None else email
    tab.get("/orders/new")
    answer = tab.post("/orders/new", {**ORDER, "customer_email": email, **changes})
    assert answer.status_code == 303, tab.text()
    return answer.headers["Location"].rsplit("/", 1)[1], email


def customer_link(email: str) -> str:
    sent = [m for m in mails_to(email) if "/o/" in m.text]
    assert sent, f"no private link was e-mailed to {email}"
    return link_in(sent[-1], "/o/")


def move(tab: WebSession, order_id: str, *actions: str) -> None:
    for action in actions:
        tab.get(f"/orders/{order_id}")
        version = re.search(r'name="version" value="(\d+)"', tab.text()).group(1)
        answer = tab.post(f"/orders/{order_id}/status", {"action": action, "version": version})
        assert answer.status_code == 303


def is_plain_404(answer, tab: WebSession) -> bool:
    body = tab.text()
    return (
        answer.status_code == 404
        and "Page not found" in body
        and "does not exist or is not available" in body
    )


# -- the private page ----------------------------------------------------------------


def test_the_customer_page_shows_the_order_and_nothing_internal(client, budget):
    staff = sign_up(client, company_name="Lavanderia Estrela")
    order_id, email = register(staff, service_date="2031-03-04", service_time="09:30")
    move(staff, order_id, "schedule")
    customer = WebSession(client)
    link = customer_link(email)
    with budget:
        answer = customer.get(link)
    assert answer.status_code == 200
    # The link, then the order's newest history and newest chat (a page each).
    assert budget.dynamodb_requests <= 3, [c.operation for c in budget.dynamodb]
    assert [c.operation for c in budget.dynamodb] == ["GetItem", "Query", "Query"]
    page = customer.text()
    assert "Order #1" in page and "Lavanderia Estrela" in page
    assert "Scheduled" in page and "Mar 4, 2031 9:30\u202fAM" in page
    assert "+55 11 91234-5678" in page and staff.email in page  # company contact
    assert 'href="/c/' in page
    assert "Secret margin" not in page and "e-mailed the customer" not in page
    assert "noindex" in page and answer.headers["X-Robots-Tag"].startswith("noindex")
    timeline = page[page.index('id="timeline"') :]
    assert timeline.count("<li>") == 2  # registered, scheduled: status events only


def test_unknown_malformed_and_expired_links_answer_the_plain_404(client):
    customer = WebSession(client)
    for path in (f"/o/{new_token()}", "/o/short", "/o/" + "A" * 43):
        assert is_plain_404(customer.get(path), customer), path
    staff = sign_up(client)
    _order_id, email = register(staff)
    link = customer_link(email)
    with time_machine.travel(now() + timedelta(days=181), tick=False):
        answer = customer.get(link)
    assert is_plain_404(answer, customer)
    assert "Joana" not in customer.text()


def test_a_revoked_link_answers_the_plain_404(client):
    staff = sign_up(client)
    order_id, email = register(staff)
    link = customer_link(email)
    customer = WebSession(client)
    assert customer.get(link).status_code == 200
    staff.get(f"/orders/{order_id}")
    assert staff.post(f"/orders/{order_id}/access/revoke").status_code == 303
    assert is_plain_404(customer.get(link), customer)
    assert "Joana" not in customer.text()
    staff.get(f"/orders/{order_id}")
    assert "revoked the customer link" in staff.text()
    assert "No private link has been sent" in staff.text()


def test_staff_send_a_new_link_and_the_old_one_stops_working(client):
    staff = sign_up(client)
    order_id, email = register(staff)
    old = customer_link(email)
    staff.get(f"/orders/{order_id}")
    assert staff.post(f"/orders/{order_id}/access/resend").status_code == 303
    new = customer_link(email)
    assert new != old
    customer = WebSession(client)
    assert customer.get(new).status_code == 200
    assert is_plain_404(customer.get(old), customer)
    assert last_mail_to(email).reply_to == staff.email


def test_only_the_hash_of_the_token_is_in_the_table(client):
    from chalicelib.db import keys
    from chalicelib.db.base import Item

    staff = sign_up(client)
    order_id, email = register(staff)
    token = customer_link(email).rsplit("/", 1)[1]
    stored = [i.serialize() for i in Item.query(keys.order(order_id))]
    stored.append(CustomerAccess.get(*CustomerAccess.key(token_hash(token))).serialize())
    assert token not in repr(stored)
    assert token_hash(token) in repr(stored)


# -- chat ---------------------------------------------------------------------------------


def test_the_customer_writes_and_staff_see_it_marked_as_the_customer(client):
    staff = sign_up(client)
    order_id, email = register(staff)
    customer = WebSession(client)
    link = customer_link(email)
    customer.get(link)
    answer = customer.post(f"{link}/messages", {"text": "Can you come after 5 pm?"})
    assert answer.status_code == 303
    customer.get(link)
    assert "Can you come after 5 pm?" in customer.text() and "Message sent." in customer.text()
    staff.get(f"/orders/{order_id}")
    chat = staff.text()[staff.text().index('id="chat-messages"') :]
    assert re.search(
        r'class="msg msg-customer[^"]*">\s*<div class="msg-head small"><strong>Joana Prado', chat
    )
    assert '<span class="tag">customer</span>' in chat
    assert "The customer reads this conversation" in staff.text()


def test_an_empty_message_keeps_the_page_with_the_error(client):
    staff = sign_up(client)
    _order_id, email = register(staff)
    customer = WebSession(client)
    link = customer_link(email)
    customer.get(link)
    answer = customer.post(f"{link}/messages", {"text": "   "})
    assert answer.status_code == 422
    assert "This field is required." in customer.text()


def test_customer_forms_need_the_csrf_token(client):
    staff = sign_up(client)
    _order_id, email = register(staff)
    customer = WebSession(client)
    link = customer_link(email)
    customer.get(link)
    assert customer.post(f"{link}/messages", {"text": "hi"}, csrf=None).status_code == 403


# -- rating ---------------------------------------------------------------------------------


def test_the_customer_rates_a_completed_order_and_staff_are_alerted(client):
    staff = sign_up(client)
    order_id, email = register(staff)
    customer = WebSession(client)
    link = customer_link(email)
    customer.get(link)
    assert "Rate the service" not in customer.text()
    move(staff, order_id, "start", "complete")
    customer.get(link)
    assert "Rate the service" in customer.text()
    answer = customer.post(f"{link}/rating", {"stars": "2", "comment": "Took three weeks"})
    assert answer.status_code == 303
    customer.get(link)
    assert "Your rating: 2 of 5." in customer.text() and "Took three weeks" in customer.text()
    assert "You can change it until" in customer.text()
    staff.get("/notifications")
    assert "got a low rating" in staff.text()
    staff.get(f"/orders/{order_id}")
    assert "2 of 5 stars" in staff.text() and "rated the order" in staff.text()
    staff.get("/orders?rating=2")
    assert f"/orders/{order_id}" in staff.text()


def test_a_rating_without_stars_is_refused_beside_the_field(client):
    staff = sign_up(client)
    order_id, email = register(staff)
    move(staff, order_id, "start", "complete")
    customer = WebSession(client)
    link = customer_link(email)
    customer.get(link)
    answer = customer.post(f"{link}/rating", {"comment": "Keep this text"})
    assert answer.status_code == 422
    assert "Choose from 1 to 5 stars." in customer.text()
    assert "Keep this text" in customer.text()


def test_rating_an_open_order_is_refused_with_a_reason(client):
    staff = sign_up(client)
    _order_id, email = register(staff)
    customer = WebSession(client)
    link = customer_link(email)
    customer.get(link)
    answer = customer.post(f"{link}/rating", {"stars": "5"})
    assert answer.status_code == 409
    assert "once it is completed" in customer.text()


# -- the staff panel -------------------------------------------------------------------------


def test_staff_see_why_no_email_goes_out(client):
    staff = sign_up(client, validate=False)
    order_id, email = register(staff)
    assert mails_to(email) == []
    staff.get(f"/orders/{order_id}")
    assert "Customer e-mails are off until you validate your company e-mail." in staff.text()
    validated = sign_up(client)
    no_email_id, _ = register(validated, customer_email="")
    validated.get(f"/orders/{no_email_id}")
    assert "the order has no customer e-mail" in validated.text()


def test_a_failed_email_is_shown_to_staff_with_a_retry(client, monkeypatch):
    staff = sign_up(client)

    class Refusing:
        def send_email(self, **_: object) -> dict:
            raise RuntimeError("MessageRejected: Email address is not verified")

    with monkeypatch.context() as patch:
        patch.setattr(mail, "client", lambda _name: Refusing())
        order_id, email = register(staff)
    staff.get(f"/orders/{order_id}")
    page = staff.text()
    assert 'id="mail-failed"' in page and "MessageRejected" in page
    assert "could not e-mail the customer" in page
    assert staff.post(f"/orders/{order_id}/access/resend").status_code == 303
    staff.get(f"/orders/{order_id}")
    assert 'id="mail-failed"' not in staff.text()
    assert "A new private link was e-mailed" in staff.text()
    assert WebSession(client).get(customer_link(email)).status_code == 200


def test_staff_order_page_with_the_panel_stays_within_budget(client, budget):
    staff = sign_up(client)
    order_id, _email = register(staff)
    with budget:
        assert staff.get(f"/orders/{order_id}").status_code == 200
    # Session, partnerships, and the order's newest history and newest chat (a page each).
    assert budget.dynamodb_requests <= 4, [c.operation for c in budget.dynamodb]


def test_staff_members_can_resend_but_another_company_cannot(client):
    admin = sign_up(client)
    order_id, email = register(admin)
    member = staff_member(client, admin)
    member.get(f"/orders/{order_id}")
    assert member.post(f"/orders/{order_id}/access/resend").status_code == 303
    assert len([m for m in mails_to(email) if "/o/" in m.text]) == 2
    stranger = sign_up(client)
    stranger.get("/")
    answer = stranger.post(f"/orders/{order_id}/access/revoke")
    assert is_plain_404(answer, stranger)
    assert WebSession(client).get(customer_link(email)).status_code == 200


# -- the follow form ------------------------------------------------------------------------


def _slug(tab: WebSession) -> str:
    return company_of(tab).slug


def test_the_follow_form_can_be_framed_anywhere(client):
    staff = sign_up(client)
    answer = client.http.get(f"/follow/{_slug(staff)}")
    assert answer.status_code == 200
    assert "frame-ancestors *" in answer.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in answer.headers
    assert "unsafe-inline" not in answer.headers["Content-Security-Policy"]
    # Everything else still refuses to be framed.
    assert client.http.get("/").headers["X-Frame-Options"] == "DENY"


def test_the_follow_form_answers_the_same_whether_or_not_the_order_exists(client, fresh_window):
    staff = sign_up(client)
    _order_id, email = register(staff)
    slug = _slug(staff)
    before = len(mails_to(email))

    def ask(number: str, address: str) -> tuple[int, str, float]:
        visitor = WebSession(client)
        started = time.monotonic()
        answer = visitor.post(f"/follow/{slug}", {"number": number, "email": address}, csrf=None)
        return answer.status_code, visitor.text(), time.monotonic() - started

    match = ask("1", email.upper())
    wrong_email = ask("1", "someone-else@example.com")
    no_order = ask("999", email)
    assert match[0] == wrong_email[0] == no_order[0] == 200
    assert match[1] == wrong_email[1] == no_order[1]
    assert "we have just e-mailed the private link" in match[1]
    assert (
        max(t for *_, t in (match, wrong_email, no_order))
        - min(t for *_, t in (match, wrong_email, no_order))
        < 0.3
    )
    assert len(mails_to(email)) == before + 1  # only the real match got a link
    assert mails_to("someone-else@example.com") == []
    assert WebSession(client).get(customer_link(email)).status_code == 200


def test_another_companys_order_number_is_not_matched(client, fresh_window):
    owner = sign_up(client)
    _order_id, email = register(owner)
    other = sign_up(client)
    before = len(mails_to(email))
    visitor = WebSession(client)
    visitor.post(f"/follow/{_slug(other)}", {"number": "1", "email": email}, csrf=None)
    assert visitor.text().count("we have just e-mailed") == 1
    assert len(mails_to(email)) == before


def test_the_follow_form_is_rate_limited_per_ip(client, fresh_window, monkeypatch):
    monkeypatch.setattr(follow_form, "FOLLOW_ANSWER_SECONDS", 0)
    staff = sign_up(client)
    slug = _slug(staff)
    visitor = WebSession(client, accept_language="es")
    for _ in range(customers.FOLLOW_LIMIT_IP):
        answer = visitor.post(
            f"/follow/{slug}", {"number": "7", "email": "x@example.com"}, csrf=None
        )
        assert answer.status_code == 200
    answer = visitor.post(f"/follow/{slug}", {"number": "7", "email": "x@example.com"}, csrf=None)
    assert answer.status_code == 429
    # The wait is what is left of the 15-minute window.
    waits = re.findall(
        r"Demasiadas solicitudes desde aquí\. Inténtelo de nuevo en (\d+) minutos?\.",
        visitor.text(),
    )
    assert waits and 1 <= int(waits[0]) <= 15
    assert 'value="x@example.com"' in visitor.text()  # nothing typed is lost


def test_follow_form_errors_are_shown_beside_the_fields(client):
    staff = sign_up(client)
    visitor = WebSession(client)
    answer = visitor.post(f"/follow/{_slug(staff)}", {"number": "abc", "email": "nope"}, csrf=None)
    assert answer.status_code == 422
    assert "Enter the order number, like 123." in visitor.text()
    assert "Enter a valid e-mail address" in visitor.text()


def test_the_follow_form_of_an_unknown_company_is_the_404_page(client):
    visitor = WebSession(client)
    assert is_plain_404(visitor.get("/follow/no-such-company-here"), visitor)


# -- the snippet settings --------------------------------------------------------------------


def test_admins_customise_the_snippet_and_the_form_follows(client):
    admin = sign_up(client)
    admin.get("/settings/follow-snippet")
    assert "&lt;iframe src=&#34;http://testserver/follow/" in admin.text()
    answer = admin.post(
        "/settings/follow-snippet",
        {
            "button": "Track my repair",
            "intro": "Where is my washing machine?",
            "accent": "green",
            "width": "500",
            "height": "420",
        },
    )
    assert answer.status_code == 303
    admin.get("/settings/follow-snippet")
    assert "Snippet settings saved" in admin.text()
    assert "width=&#34;500&#34; height=&#34;420&#34;" in admin.text()
    page = client.http.get(f"/follow/{_slug(admin)}").body.decode()
    assert "Track my repair" in page and "Where is my washing machine?" in page
    assert "accent-green" in page
    company = Company.get(*Company.key(ids_of(admin)[0]))
    assert (company.follow_accent, int(company.follow_width)) == ("green", 500)


def test_bad_snippet_settings_are_refused_beside_the_fields(client):
    admin = sign_up(client)
    admin.get("/settings/follow-snippet")
    answer = admin.post(
        "/settings/follow-snippet",
        {"button": "Keep me", "intro": "", "accent": "pink", "width": "5", "height": "x"},
    )
    assert answer.status_code == 422
    assert "Enter a whole number from 280 to 1000." in admin.text()
    assert 'value="Keep me"' in admin.text()


def test_the_snippet_settings_are_for_admins_only(client):
    admin = sign_up(client)
    member = staff_member(client, admin)
    assert member.get("/settings/follow-snippet").status_code == 403

"""Customer follow-up in the services: e-mails, the private link, revocation, rating, failures."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine

from chalicelib.aws import mail
from chalicelib.db import keys
from chalicelib.db.accounts import Company, User
from chalicelib.db.base import Item
from chalicelib.db.customers import CustomerAccess, OrderRating
from chalicelib.db.orders import Notification, Order, OrderEntry, OrderEvent
from chalicelib.db.stats import Stat
from chalicelib.domain.errors import NotFound, ValidationFailed
from chalicelib.domain.tokens import token_hash
from chalicelib.services import customer_page, customers, orders
from chalicelib.services.customer_page import RatingLocked, RatingNotYet
from chalicelib.services.sessions import now
from tests.service.factories import new_company, order_form, staff_actor
from tests.web.factories import last_mail_to, link_in, mails_to, unique_email


def validated_company(name: str = "Oficina Azul"):
    account = new_company(name)
    account.company.update(actions=[Company.email_validated.set(True)])
    return account


def register(account, **form: str) -> Order:
    form.setdefault("customer_email", unique_email("customer"))
    return orders.register_order(account.company, staff_actor(account), order_form(**form), {})


def stored_order(order_id: str) -> Order:
    return Order.get(*Order.key(order_id), consistent_read=True)


def events(order_id: str) -> list[OrderEvent]:
    return [e for e in Item.query(keys.order(order_id)) if isinstance(e, OrderEvent)]


def token_of(order: Order) -> str:
    """The token of the latest private link e-mailed to the order's customer."""
    with_link = [m for m in mails_to(order.customer_email) if "/o/" in m.text]
    assert with_link, f"no link was e-mailed to {order.customer_email}"
    return link_in(with_link[-1], "/o/").rsplit("/", 1)[1]


def advance(order: Order, account, *actions: str, note: str = "") -> Order:
    for action in actions:
        order, _ = orders.change_status(
            account.company.company_id, order.order_id, staff_actor(account), action, note=note
        )
    return order


# -- e-mails ---------------------------------------------------------------------


def test_registration_emails_the_customer_a_private_link_from_the_company(aws):
    account = validated_company("Oficina Azul")
    order = register(account)
    sent = last_mail_to(order.customer_email)
    assert "Oficina Azul" in sent.sender and "no-reply@checkos.example" in sent.sender
    assert sent.reply_to == account.company.email
    assert f"#{order.number}" in sent.subject and "Oficina Azul" in sent.subject
    assert "Maria José da Silva" in sent.text and "Oficina Azul" in sent.html
    token = token_of(order)
    access = CustomerAccess.get(*CustomerAccess.key(token_hash(token)))
    assert access.order_id == order.order_id and access.company_id == order.company_id
    assert stored_order(order.order_id).access_hash == token_hash(token)
    assert [e.kind for e in events(order.order_id)] == ["created", "mail"]


def test_the_logo_in_the_email_is_an_absolute_url(aws):
    account = validated_company()
    account.company.update(actions=[Company.logo_key.set("logos/x/abc123.webp")])
    order = register(account)
    html = last_mail_to(order.customer_email).html
    # A cell background, not a lone <img> (spam filters score image-only HTML).
    logo = f"http://testserver/logo/{account.company.company_id}/abc123.webp"
    assert f"background-image:url(&#39;{logo}&#39;)" in html or f"url('{logo}')" in html


def test_the_email_uses_the_company_language(aws):
    account = validated_company()
    account.company.update(actions=[Company.locale.set("pt-BR")])
    order = register(account)
    sent = last_mail_to(order.customer_email)
    assert "seu link privado" in sent.subject
    assert "Olá, Maria José da Silva" in sent.text


def test_no_mail_while_the_company_email_is_not_validated(aws):
    account = new_company()
    assert not account.company.email_validated
    order = register(account)
    order = advance(order, account, "start", "complete")
    assert mails_to(order.customer_email) == []
    assert stored_order(order.order_id).access_hash is None
    assert {e.kind for e in events(order.order_id)} == {"created", "status"}


def test_no_mail_when_the_order_has_no_customer_email(aws):
    account = validated_company()
    order = register(account, customer_email="")
    order = advance(order, account, "start")
    assert stored_order(order.order_id).access_hash is None
    assert {e.kind for e in events(order.order_id)} == {"created", "status"}


def test_status_changes_email_the_customer_and_keep_the_same_link(aws):
    account = validated_company("Refrigeração Polar")
    order = register(account, service_date="2030-05-06", service_time="14:30")
    first_link = stored_order(order.order_id).access_hash
    order = advance(order, account, "schedule")
    scheduled = last_mail_to(order.customer_email)
    assert "scheduled" in scheduled.subject and "May 6, 2030 2:30\u202fPM" in scheduled.text
    order = advance(order, account, "start", "complete")
    completed = last_mail_to(order.customer_email)
    assert "completed" in completed.subject and "rate" in completed.text
    # Later e-mails carry no new secret: the link from the first one keeps working.
    assert "/o/" not in completed.text and "/follow/" in completed.text
    assert stored_order(order.order_id).access_hash == first_link
    order = advance(order, account, "reopen")
    assert "reopened" in last_mail_to(order.customer_email).subject
    order = advance(order, account, "cancel", note="Customer bought a new one")
    cancelled = last_mail_to(order.customer_email)
    assert "cancelled" in cancelled.subject
    assert "Reason: Customer bought a new one" in cancelled.text
    assert len(mails_to(order.customer_email)) == 6


def test_intake_orders_wait_for_the_intake_flow_to_send_the_link(aws):
    account = validated_company()
    email = unique_email("requester")
    form = order_form(customer_email=email)
    values, custom = orders.check_order_form(form, account.company, {})
    actor = staff_actor(account)
    order = orders.create_order(account.company, actor, values, custom, source="intake")
    assert mails_to(email) == []
    assert stored_order(order.order_id).access_hash is None
    # What the intake flow calls once the requester confirmed, in their language.
    customers.send_access_link(account.company, stored_order(order.order_id), "es")
    assert stored_order(order.order_id).access_hash is not None
    assert "su enlace privado" in last_mail_to(email).subject


# -- header injection ------------------------------------------------------------


def test_names_with_line_breaks_cannot_add_headers():
    message = mail.build_message(
        mail.Mail(
            to="customer@example.com",
            subject="Order 1\r\nBcc: victim@example.com\nX-Evil: yes",
            text="hi",
            html="<p>hi</p>",
            reply_to="shop@example.com",
            from_name="Evil Shop\r\nBcc: spy@example.com",
        ),
        "no-reply@checkos.example",
    )
    raw = message.as_bytes().decode()
    headers = raw.split("\r\n\r\n", 1)[0]
    names = [line.split(":", 1)[0] for line in headers.split("\r\n") if line[:1] not in " \t"]
    assert "Bcc" not in names and "X-Evil" not in names
    assert message["Subject"] == "Order 1 Bcc: victim@example.com X-Evil: yes"
    assert "\n" not in str(message["From"]) and "\r" not in str(message["From"])


def test_a_very_long_subject_is_capped_and_stays_one_header():
    message = mail.build_message(
        mail.Mail(
            to="c@example.com",
            subject="Ä" * 5000,
            text="t",
            html="<p>t</p>",
            from_name="Assistência " * 100,
        ),
        "no-reply@checkos.example",
    )
    assert len(message["Subject"]) <= mail.MAX_SUBJECT
    assert len(message["From"].addresses[0].display_name) <= 70
    raw = message.as_bytes().decode()
    assert raw.count("\r\nSubject:") + raw.startswith("Subject:") == 1


def test_an_address_with_a_line_break_is_refused_not_sent():
    with pytest.raises(mail.MailNotSent):
        mail.send(
            mail.Mail(to="a@example.com\r\nBcc: b@example.com", subject="s", text="t", html="h")
        )


def test_a_company_name_with_line_breaks_reaches_the_customer_flattened(aws):
    account = validated_company("Evil\r\nBcc: spy@example.com")
    order = register(account)
    sent = last_mail_to(order.customer_email)
    # Flattened to one line, and the "@" neutralised: a name never shows an address.
    assert "Evil Bcc: spy at example.com" in sent.sender
    assert mails_to("spy@example.com") == []


# -- SES failures --------------------------------------------------------------------


def _ses_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refusing:
        def send_email(self, **_: object) -> dict:
            raise RuntimeError("Throttling: Maximum sending rate exceeded")

    monkeypatch.setattr(mail, "client", lambda _name: Refusing())


def test_ses_failure_keeps_the_status_change_and_records_it(aws, monkeypatch):
    account = validated_company()
    order = register(account)
    _ses_refuses(monkeypatch)
    order = advance(order, account, "start")
    assert stored_order(order.order_id).status == "in_progress"
    failed = [e for e in events(order.order_id) if e.kind == "mail_failed"]
    assert len(failed) == 1
    assert failed[0].actor_kind == "system" and failed[0].actor_name == "CheckOS"
    assert "Throttling" in failed[0].note and order.customer_email in failed[0].note


def test_ses_failure_at_registration_keeps_the_order(aws, monkeypatch):
    account = validated_company()
    _ses_refuses(monkeypatch)
    order = register(account)
    assert stored_order(order.order_id).number == order.number
    assert [e.kind for e in events(order.order_id)] == ["created", "mail_failed"]


def test_retry_after_a_failure_sends_a_fresh_link(aws, monkeypatch):
    account = validated_company()
    with monkeypatch.context() as patch:
        _ses_refuses(patch)
        order = register(account)
    assert customers.resend_link(account.company, order.order_id) is True
    token = token_of(order)
    assert customer_page.customer_page(token).number == order.number


# -- the link ------------------------------------------------------------------------


def _everything_stored_for(order: Order, token: str) -> str:
    items = list(Item.query(keys.order(order.order_id)))
    items.append(CustomerAccess.get(*CustomerAccess.key(token_hash(token))))
    return json.dumps([item.serialize() for item in items], default=str)


def test_only_the_token_hash_is_stored(aws):
    account = validated_company()
    order = register(account)
    token = token_of(order)
    assert len(token) >= 43  # 256 bits, base64url
    stored = _everything_stored_for(order, token)
    assert token not in stored
    assert token_hash(token) in stored


def test_a_new_link_replaces_the_old_one(aws):
    account = validated_company()
    order = register(account)
    old = token_of(order)
    customers.send_access_link(account.company, stored_order(order.order_id))
    new = token_of(order)
    assert new != old
    assert customer_page.customer_page(new).number == order.number
    with pytest.raises(NotFound):
        customer_page.customer_page(old)
    with pytest.raises(CustomerAccess.DoesNotExist):
        CustomerAccess.get(*CustomerAccess.key(token_hash(old)), consistent_read=True)


def test_revoking_deletes_the_link_and_the_pointer(aws):
    account = validated_company()
    order = register(account)
    token = token_of(order)
    assert customers.revoke_link(account.company, order.order_id, staff_actor(account))
    assert stored_order(order.order_id).access_hash is None
    with pytest.raises(CustomerAccess.DoesNotExist):
        CustomerAccess.get(*CustomerAccess.key(token_hash(token)), consistent_read=True)
    with pytest.raises(NotFound):
        customer_page.customer_page(token)
    assert "link_revoked" in [e.kind for e in events(order.order_id)]


def test_the_link_expires_60_days_after_the_order_closes(aws):
    account = validated_company()
    order = register(account)
    token = token_of(order)
    access = CustomerAccess.get(*CustomerAccess.key(token_hash(token)))
    assert access.expires_at - now() > timedelta(days=179)
    advance(order, account, "start", "complete")
    access.refresh()
    assert timedelta(days=59) < access.expires_at - now() <= timedelta(days=60)
    with time_machine.travel(now() + timedelta(days=61), tick=False), pytest.raises(NotFound):
        customer_page.customer_page(token)


def test_the_customer_view_holds_no_internal_data(aws):
    account = validated_company()
    order = register(account, internal_notes="Customer is difficult, charge extra")
    order = advance(order, account, "start")
    orders.record_event(order.order_id, staff_actor(account), "edited", "internal_notes")
    page = customer_page.customer_page(token_of(order))
    text = repr(page)
    assert "charge extra" not in text and "internal_notes" not in text
    assert [s.status for s in page.timeline] == ["registered", "in_progress"]


# -- rating ----------------------------------------------------------------------------


def _completed(account) -> tuple[Order, str]:
    order = register(account)
    order = advance(order, account, "start", "complete")
    return order, token_of(order)


def _rating_entries(company_id: str, stars: int) -> list[str]:
    partition = keys.order_entries(company_id, f"RATING#{stars}")
    return [e.order_id for e in Item.query(partition) if isinstance(e, OrderEntry)]


def _stat(company_id: str) -> Stat:
    return Stat.get(*Stat.key(company_id, "RATING"), consistent_read=True)


def test_rating_updates_order_list_entries_rating_item_and_average_in_one_go(aws):
    account = validated_company()
    company_id = account.company.company_id
    first, token = _completed(account)
    _second, other_token = _completed(account)
    customer_page.rate_order(token, {"stars": "4", "comment": "Quick and tidy"})
    customer_page.rate_order(other_token, {"stars": "5"})
    assert stored_order(first.order_id).rating == 4
    assert _rating_entries(company_id, 4) == [first.order_id]
    rating = OrderRating.get(*OrderRating.key(first.order_id))
    assert (rating.stars, rating.comment) == (4, "Quick and tidy")
    assert rating.first_rated_at == rating.updated_at
    stat = _stat(company_id)
    assert (stat.total, stat.count) == (9, 2)
    assert "rated" in [e.kind for e in events(first.order_id)]
    # Changing the rating moves the list entry and the total, not the count.
    customer_page.rate_order(token, {"stars": "3", "comment": "Actually a scratch"})
    assert _rating_entries(company_id, 4) == []
    assert _rating_entries(company_id, 3) == [first.order_id]
    stat = _stat(company_id)
    assert (stat.total, stat.count) == (8, 2)


def test_a_rating_can_change_for_seven_days_then_not(aws):
    account = validated_company()
    order, token = _completed(account)
    customer_page.rate_order(token, {"stars": "5"})
    with time_machine.travel(now() + timedelta(days=6, hours=23), tick=False):
        customer_page.rate_order(token, {"stars": "4"})
    with time_machine.travel(now() + timedelta(days=7, minutes=1), tick=False):
        with pytest.raises(RatingLocked):
            customer_page.rate_order(token, {"stars": "1"})
        assert customer_page.customer_page(token).can_rate is False
    assert stored_order(order.order_id).rating == 4


def test_an_open_order_cannot_be_rated(aws):
    account = validated_company()
    order = register(account)
    with pytest.raises(RatingNotYet):
        customer_page.rate_order(token_of(order), {"stars": "5"})
    assert stored_order(order.order_id).rating is None


def test_stars_and_comment_are_checked(aws):
    account = validated_company()
    _order, token = _completed(account)
    with pytest.raises(ValidationFailed) as problem:
        customer_page.rate_order(token, {"stars": "6", "comment": "x" * 1001})
    assert set(problem.value.errors) == {"stars", "comment"}


def test_a_bad_rating_notifies_the_company_staff_once(aws):
    account = validated_company()
    order, token = _completed(account)
    customer_page.rate_order(token, {"stars": "2", "comment": "Late and rude"})
    customer_page.rate_order(token, {"stars": "2", "comment": "Late and rude"})  # double click
    partition = Notification.partition(account.company.company_id, account.user.user_id)
    notes = [n for n in Item.query(partition) if isinstance(n, Notification)]
    assert [(n.kind, n.order_number) for n in notes] == [("bad_rating", order.number)]
    user = User.get(*User.key(account.company.company_id, account.user.user_id))
    assert user.unread == 1


def test_a_good_rating_notifies_nobody(aws):
    account = validated_company()
    _order, token = _completed(account)
    customer_page.rate_order(token, {"stars": "5"})
    partition = Notification.partition(account.company.company_id, account.user.user_id)
    assert [n for n in Item.query(partition) if isinstance(n, Notification)] == []


def test_a_fair_rating_notifies_nobody_and_a_later_bad_one_does(aws):
    account = validated_company()
    _order, token = _completed(account)
    partition = Notification.partition(account.company.company_id, account.user.user_id)
    customer_page.rate_order(token, {"stars": "3", "comment": ""})
    assert not [n for n in Item.query(partition) if isinstance(n, Notification)]
    customer_page.rate_order(token, {"stars": "1", "comment": "It broke again"})
    notes = [n for n in Item.query(partition) if isinstance(n, Notification)]
    assert [(n.kind, n.params["stars"]) for n in notes] == [("bad_rating", "1")]

"""Mail that arrives: one-click unsubscribe, SES bounce/complaint suppression, configuration set.

Bounces and complaints are the JSON SES publishes through SNS, fed to the
app's ``mail_events`` function; the customer side goes through HTTP.
"""

from __future__ import annotations

import email
import json
import re
from email.policy import default

import pytest

from chalicelib.aws import mail
from chalicelib.db import keys
from chalicelib.db.base import Item
from chalicelib.db.orders import OrderEvent
from chalicelib.services import delivery, mailer
from tests.awscalls import CALLS
from tests.web.factories import mails_to, sign_up, unique_email
from tests.web.session import WebSession
from tests.web.test_customer_access import customer_link, move, register


def history(order_id: str) -> list[OrderEvent]:
    return sorted(
        (e for e in Item.query(keys.order(order_id)) if isinstance(e, OrderEvent)),
        key=lambda e: e.sk,
    )


def raw_of(sent) -> email.message.EmailMessage:
    return email.message_from_string(sent.raw, policy=default)


def ses_event(kind: str, address: str, order_id: str | None = None, **details: object) -> dict:
    """An SNS delivery of an SES event-publishing notification (as SES writes it)."""
    message: dict = {
        "eventType": kind,
        "mail": {
            "timestamp": "2026-12-06T00:00:00.000Z",
            "source": "no-reply@checkos.example",
            "messageId": "0100018c-test",
            "destination": [address],
            "tags": {"ses:configuration-set": ["checkos-test-mail"]},
        },
    }
    if order_id:
        message["mail"]["tags"]["order"] = [order_id]
    if kind == "Bounce":
        message["bounce"] = {
            "bounceType": details.get("bounce_type", "Permanent"),
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": address, "action": "failed"}],
            "timestamp": "2026-12-06T00:00:01.000Z",
            "feedbackId": "0100018c-feedback",
        }
    else:
        message["complaint"] = {
            "complainedRecipients": [{"emailAddress": address}],
            "complaintFeedbackType": "abuse",
            "timestamp": "2026-12-06T00:00:01.000Z",
            "feedbackId": "0100018c-feedback",
        }
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "Sns": {
                    "Type": "Notification",
                    "TopicArn": "arn:aws:sns:us-east-1:123456789012:mail-events",
                    "Message": json.dumps(message),
                },
            }
        ]
    }


def feed(client, event: dict) -> dict:
    answer = client.lambda_.invoke("mail_events", event)
    return answer.payload


def unsubscribe_url(sent) -> str:
    header = raw_of(sent)["List-Unsubscribe"]
    match = re.fullmatch(r"<(https?://[^>]+)>", str(header))
    assert match, header
    return "/" + match.group(1).split("/", 3)[3]


# -- one-click unsubscribe -----------------------------------------------------------


def test_customer_order_mail_carries_one_click_unsubscribe_and_a_footer_link(client):
    staff = sign_up(client, company_name="Oficina Azul")
    _order_id, address = register(staff)
    sent = mails_to(address)[-1]
    message = raw_of(sent)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = unsubscribe_url(sent)
    assert path.startswith("/unsubscribe/")
    token = path.rsplit("/", 1)[1]
    _payload, signature = token.split(".")
    assert len(signature) >= 43  # an HMAC-SHA256: 256 bits
    assert path in sent.text and path in sent.html  # the footer link too


def test_one_click_post_stops_status_mail_keeps_the_link_is_recorded_and_can_be_undone(client):
    staff = sign_up(client, company_name="Oficina Azul")
    order_id, address = register(staff)
    link = customer_link(address)
    path = unsubscribe_url(mails_to(address)[-1])
    # A mail program posts, with no cookie and no CSRF token (RFC 8058).
    answer = client.http.post(
        path,
        body=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    before = len(mails_to(address))
    move(staff, order_id, "schedule")
    assert len(mails_to(address)) == before, "a status e-mail went to an unsubscribed customer"
    kinds = [e.kind for e in history(order_id)]
    assert "unsubscribed" in kinds and kinds[-1] == "mail_skipped"
    # Staff see it on the order page, in their language.
    staff.get(f"/orders/{order_id}")
    assert "The customer unsubscribed from your order e-mails" in staff.text()
    # The private link keeps working, and turns the e-mails back on.
    customer = WebSession(client)
    assert customer.get(link).status_code == 200
    assert 'id="mail-resume"' in customer.text()
    assert customer.post(f"{link}/mail", {"mail": "on"}).status_code == 303
    assert "resubscribed" in [e.kind for e in history(order_id)]
    move(staff, order_id, "start")
    assert len(mails_to(address)) == before + 1


def test_the_unsubscribe_page_asks_before_acting_and_a_forged_link_is_404(client):
    staff = sign_up(client)
    order_id, address = register(staff)
    path = unsubscribe_url(mails_to(address)[-1])
    visitor = WebSession(client)
    assert visitor.get(path).status_code == 200
    assert 'id="unsubscribe-button"' in visitor.text()
    assert delivery.block_reason(address, staff_company(staff)) is None  # GET changed nothing
    payload, signature = path.rsplit("/", 1)[1].split(".")
    forged = f"/unsubscribe/{payload}.{signature[:-2]}AA"
    assert visitor.get(forged).status_code == 404
    assert client.http.post(forged).status_code == 404
    assert "unsubscribed" not in [e.kind for e in history(order_id)]


def staff_company(staff: WebSession) -> str:
    staff.get("/settings/company")
    from chalicelib.db.accounts import Login

    login = Login.get(*Login.key(staff.email))
    return login.company_id


# -- SES bounces and complaints ----------------------------------------------------


def test_a_hard_bounce_suppresses_the_address_and_the_next_send_is_skipped_and_shown(client):
    staff = sign_up(client, company_name="Oficina Azul")
    order_id, address = register(staff)
    assert feed(client, ses_event("Bounce", address, order_id)) == {"suppressed": 1}
    staff.get(f"/orders/{order_id}")
    assert "E-mails to this address bounced" in staff.text()
    before = len(mails_to(address))
    move(staff, order_id, "schedule")
    assert len(mails_to(address)) == before
    assert history(order_id)[-1].kind == "mail_skipped"
    assert history(order_id)[-1].note == delivery.BOUNCED


def test_a_complaint_stops_every_kind_of_mail_to_the_address(client):
    staff = sign_up(client, company_name="Oficina Azul")
    order_id, address = register(staff)
    assert feed(client, ses_event("Complaint", address, order_id)) == {"suppressed": 1}
    staff.get(f"/orders/{order_id}")
    assert "marked an e-mail as spam" in staff.text()
    with pytest.raises(mail.MailSuppressed):
        mailer.send_templated(address, "password_reset", "en", link="http://x/r", minutes=60)
    assert delivery.block_reason(address.upper()) == delivery.COMPLAINED


def test_a_transient_bounce_does_not_suppress(client):
    address = unique_email("full-mailbox")
    event = ses_event("Bounce", address, bounce_type="Transient")
    assert feed(client, event) == {"suppressed": 0}
    assert delivery.block_reason(address) is None


def test_an_idn_address_is_suppressed_under_its_wire_form(client):
    shown = "cliente@exemplo-ção.com.br"
    assert feed(client, ses_event("Bounce", "cliente@xn--exemplo-o-s2a7b.com.br")) == {
        "suppressed": 1
    }
    assert delivery.block_reason(shown) == delivery.BOUNCED


def test_every_send_names_the_configuration_set(client):
    mark = CALLS.mark()
    staff = sign_up(client)
    register(staff)
    sends = [c for c in CALLS.since(mark) if c.service == "sesv2" and c.operation == "SendEmail"]
    assert sends
    for call in sends:
        body = call.params.get("body")
        body = body.decode() if isinstance(body, bytes) else str(body)
        assert '"ConfigurationSetName": "checkos-test-mail"' in body


# -- the local outbox -----------------------------------------------------------------


def test_the_outbox_shows_the_raw_message_beside_the_rendered_one(client):
    from chalicelib.web.outbox import sent_mails

    staff = sign_up(client, company_name='Oficina "Do Zé"')
    _order_id, address = register(staff)
    index = next(m.index for m in reversed(sent_mails()) if address in m.to)
    visitor = WebSession(client)
    assert visitor.get(f"/dev/outbox/{index}").status_code == 200
    page = visitor.text()
    assert 'id="raw-message"' in page and f'src="/dev/outbox/{index}/html"' in page
    raw = page[page.index('class="mail-raw"') :]
    for header in ("Message-ID:", "Date:", "Content-Transfer-Encoding: quoted-printable"):
        assert header in raw, header
    assert "From: =?utf-8?" in raw  # the encoded name as it travelled, not re-decoded
    framed = visitor.get(f"/dev/outbox/{index}/html")
    assert "frame-ancestors 'self'" in framed.headers["Content-Security-Policy"]

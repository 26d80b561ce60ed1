"""Intake pages: the embeddable form, its JSON API, the e-mailed confirmation, the settings page."""

from __future__ import annotations

import json
import re
import secrets
import time
from datetime import timedelta

import pytest
import time_machine

from chalicelib.db.accounts import Company
from chalicelib.db.orders import Order
from chalicelib.services import intake as intake_service
from chalicelib.services.intake import RateLimit
from chalicelib.services.sessions import now
from chalicelib.web.intake import form_token
from tests.web.factories import ids_of, invite_member, last_mail_to, link_in, mails_to, sign_up
from tests.web.session import WebSession

_VERSION = re.compile(r'name="version" value="(\d+)"')


@pytest.fixture(autouse=True)
def _generous_limits(monkeypatch):
    """Every test client request comes from 127.0.0.1: only the rate-limit test limits it."""
    monkeypatch.setattr(intake_service, "RATE_LIMITS", (RateLimit("ip", "hour", 100_000),))


def _with_form(client, *, custom: bool = False, locale: str = "en") -> tuple[WebSession, str]:
    """A signed-in admin whose company has a form code (and a required custom field)."""
    admin = sign_up(client, locale=locale)
    if custom:
        admin.get("/settings/fields")
        answer = admin.post(
            "/settings/fields", {"label": "Serial number", "kind": "text", "required": "yes"}
        )
        assert answer.status_code == 303, admin.text()
    admin.get("/settings/intake")
    version = _VERSION.search(admin.text()).group(1)
    answer = admin.post("/settings/intake", {"action": "rotate", "version": version})
    assert answer.status_code == 303, admin.text()
    company_id, _ = ids_of(admin)
    return admin, Company.get(*Company.key(company_id)).intake_code


def _visitor(client, locale: str = "en") -> WebSession:
    return WebSession(client, accept_language=locale)


def _fields(**overrides: str) -> dict[str, str]:
    fields = {
        "customer_name": "Lucía Fernández",
        "customer_email": f"lucia-{secrets.token_hex(4)}@example.com",
        "customer_phone": "+34 600 123 456",
        "service_type": "Boiler service",
        "brand": "Junkers",
        "model": "Cerapur",
        "problem": "No hot water since Monday",
        "website": "",
    }
    fields.update(overrides)
    return fields


def _send(visitor: WebSession, code: str, fields: dict[str, str], waited: float = 10):
    """Post the form as a person would: a token issued ``waited`` seconds ago, no CSRF cookie."""
    data = {**fields, "form_token": form_token(code, time.time() - waited)}
    return visitor.post(f"/intake/{code}", data, csrf=None)


def _confirm_path(email: str) -> str:
    return link_in(last_mail_to(email), "/intake/confirm/")


def _headers(answer) -> dict[str, str]:
    return {k.lower(): v for k, v in answer.headers.items()}


# -- settings ------------------------------------------------------------------------


def test_admin_creates_a_form_code_and_gets_the_iframe_snippet_and_link(client, budget):
    admin, code = _with_form(client)
    assert code and len(code) >= 22
    with budget:
        page = admin.get("/settings/intake")
    assert page.status_code == 200
    assert budget.dynamodb_requests <= 3, [c.operation for c in budget.dynamodb]
    text = admin.text()
    src = f"&lt;iframe src=&#34;http://testserver/intake/{code}&#34;"
    assert f"{src} width=&#34;600&#34; height=&#34;1100&#34;" in text
    assert f'href="http://testserver/intake/{code}"' in text
    assert 'id="size-warning" role="status" data-min="300" hidden' in text
    assert "settings_intake.js" in text


def test_the_snippet_follows_the_size_and_warns_below_300(client):
    admin, _code = _with_form(client)
    admin.get("/settings/intake?width=250&height=700")
    text = admin.text()
    assert "width=&#34;250&#34; height=&#34;700&#34;" in text
    assert 'data-min="300" hidden' not in text
    assert "Below 300 × 300 pixels the form is hard to use" in text


def test_staff_cannot_open_the_intake_settings(client):
    admin, _code = _with_form(client)
    staff = invite_member(client, admin)
    assert staff.get("/settings/intake").status_code == 403


def test_allowed_origins_are_validated_and_saved(client):
    admin, _code = _with_form(client)
    admin.get("/settings/intake")
    version = _VERSION.search(admin.text()).group(1)
    bad = admin.post(
        "/settings/intake", {"action": "origins", "origins": "www.shop.example", "version": version}
    )
    assert bad.status_code == 422
    assert "is not a website address" in admin.text() and "www.shop.example" in admin.text()
    good = admin.post(
        "/settings/intake",
        {"action": "origins", "origins": "https://www.shop.example/\n", "version": version},
    )
    assert good.status_code == 303
    company = Company.get(*Company.key(ids_of(admin)[0]))
    assert company.intake_origins == ["https://www.shop.example"]
    stale = admin.post("/settings/intake", {"action": "origins", "origins": "", "version": version})
    assert stale.status_code == 409  # the page was read before the save above


# -- the embeddable form ---------------------------------------------------------------


def test_the_form_is_embeddable_and_every_other_page_is_not(client, budget):
    admin, code = _with_form(client)
    with budget:
        answer = _visitor(client).get(f"/intake/{code}")
    assert answer.status_code == 200
    assert budget.dynamodb_requests == 2  # FORMKEY + Company
    headers = _headers(answer)
    assert headers["content-security-policy"].endswith("frame-ancestors *")
    assert "x-frame-options" not in headers
    for other in ("/", "/settings/intake", "/login"):
        headers = _headers(admin.get(other))
        assert headers["x-frame-options"] == "DENY", other
        assert "frame-ancestors 'none'" in headers["content-security-policy"], other


def test_configured_origins_alone_may_embed_the_form(client):
    admin, code = _with_form(client)
    admin.get("/settings/intake")
    version = _VERSION.search(admin.text()).group(1)
    origins = "https://www.shop.example\nhttps://book.shop.example"
    admin.post("/settings/intake", {"action": "origins", "origins": origins, "version": version})
    headers = _headers(_visitor(client).get(f"/intake/{code}"))
    csp = headers["content-security-policy"]
    assert csp.endswith("frame-ancestors https://www.shop.example https://book.shop.example")
    assert "x-frame-options" not in headers


def test_the_form_asks_for_the_standard_and_custom_fields_in_the_visitors_language(client):
    _admin, code = _with_form(client, custom=True)
    visitor = _visitor(client, "es-ES,es;q=0.9")
    visitor.get(f"/intake/{code}")
    text = visitor.text()
    for label in ("Su nombre", "Su correo electrónico", "Teléfono", "Marca", "Modelo"):
        assert label in text
    assert "Serial number" in text and 'name="cf_' in text
    assert "no acepta envíos automáticos" in text
    assert 'name="website"' in text and 'tabindex="-1"' in text  # the honeypot
    assert "Fix-It" in text  # the company's name


def test_a_missing_required_custom_field_is_reported_beside_it_and_nothing_is_lost(client):
    _admin, code = _with_form(client, custom=True)
    visitor = _visitor(client)
    visitor.get(f"/intake/{code}")
    fields = _fields(customer_email="")
    answer = _send(visitor, code, fields)
    assert answer.status_code == 422
    text = visitor.text()
    assert text.count("This field is required") == 2  # the e-mail and the custom field
    assert 'aria-invalid="true" aria-describedby="e-customer_email"' in text
    assert re.search(r'aria-describedby="e-cf_\w+"', text)
    assert 'value="Lucía Fernández"' in text and "No hot water since Monday" in text
    assert "frame-ancestors *" in _headers(answer)["content-security-policy"]


def test_a_visitor_confirms_and_the_order_reaches_the_company(client):
    admin, code = _with_form(client)
    visitor = _visitor(client)
    visitor.get(f"/intake/{code}")
    fields = _fields()
    email = fields["customer_email"]
    sent = _send(visitor, code, fields)
    assert sent.status_code == 200, visitor.text()
    assert f"We sent a confirmation link to {email}" in visitor.text()
    mail = last_mail_to(email)
    assert "Confirm your request to Fix-It" in mail.subject
    admin.get("/orders?view=all")
    assert "Lucía Fernández" not in admin.text()  # not before the confirmation
    # The e-mailed link: GET shows the request and a button, POST confirms.
    path = _confirm_path(email)
    reader = _visitor(client)
    assert reader.get(path).status_code == 200
    assert "No hot water since Monday" in reader.text() and "Confirm and send" in reader.text()
    assert reader.post(path, {}, csrf=None).status_code == 200
    assert "received your request as order #1" in reader.text()
    admin.get("/orders?view=all")
    assert "Lucía Fernández" in admin.text()
    admin.get("/notifications")
    assert "New order #1 from your website form." in admin.text()
    assert "private link to order #1" in last_mail_to(email).subject
    # Opening it again shows the same order, never a second one.
    assert reader.post(path, {}, csrf=None).status_code == 200
    assert "already confirmed: it is order #1" in reader.text()
    reader.get(path)
    assert "already confirmed: it is order #1" in reader.text()


def test_a_second_request_while_one_is_pending_is_refused_with_a_resend_offer(client):
    _admin, code = _with_form(client)
    visitor = _visitor(client)
    fields = _fields()
    email = fields["customer_email"]
    assert _send(visitor, code, fields).status_code == 200
    again = _send(visitor, code, {**fields, "problem": "Still broken"})
    assert again.status_code == 409
    text = visitor.text()
    assert f"A request from {email} is already waiting for confirmation" in text
    assert 'name="action" value="resend"' in text and "Still broken" in text
    token = re.search(r'name="form_token" value="([^"]+)"', text).group(1)
    resend = {"action": "resend", "customer_email": email, "form_token": token}
    assert visitor.post(f"/intake/{code}", resend, csrf=None).status_code == 429
    assert "less than 2 minutes ago" in visitor.text()
    with time_machine.travel(now() + timedelta(minutes=3)):
        assert visitor.post(f"/intake/{code}", resend, csrf=None).status_code == 200
        assert "A new link is on its way" in visitor.text()
    assert len(mails_to(email)) == 2


def test_honeypot_and_a_too_quick_submission_are_refused_with_an_explanation(client):
    _admin, code = _with_form(client)
    visitor = _visitor(client)
    trap = _send(visitor, code, _fields(website="http://cheap-pills.example"))
    assert trap.status_code == 422
    assert "Automated submissions are not supported" in visitor.text()
    fields = _fields()
    quick = _send(visitor, code, fields, waited=0.5)
    assert quick.status_code == 422
    assert "That was very fast" in visitor.text()
    assert 'value="Lucía Fernández"' in visitor.text()
    forged = visitor.post(f"/intake/{code}", {**fields, "form_token": "x.y"}, csrf=None)
    assert forged.status_code == 422 and "expired" in visitor.text()
    assert mails_to(fields["customer_email"]) == []


def test_the_rate_limit_answers_a_translated_message(client, monkeypatch):
    _admin, code = _with_form(client)
    monkeypatch.setattr(intake_service, "RATE_LIMITS", (RateLimit("form", "hour", 2),))
    visitor = _visitor(client, "pt-BR")
    for _ in range(2):
        assert _send(visitor, code, _fields()).status_code == 200
    limited = _send(visitor, code, _fields())
    assert limited.status_code == 429
    assert "Muitas solicitações foram enviadas daqui" in visitor.text()


def test_rotated_unknown_and_inactive_forms_are_not_accepting_requests(client):
    admin, code = _with_form(client)
    admin.get("/settings/intake")
    version = _VERSION.search(admin.text()).group(1)
    admin.post("/settings/intake", {"action": "rotate", "version": version})
    visitor = _visitor(client)
    for stale in (code, "unknown-code"):
        answer = visitor.get(f"/intake/{stale}")
        assert answer.status_code == 404
        assert "This form is not accepting requests" in visitor.text()
        assert _headers(answer)["content-security-policy"].endswith("frame-ancestors *")
        assert _send(visitor, stale, _fields()).status_code == 404
    company = Company.get(*Company.key(ids_of(admin)[0]))
    company.update(actions=[Company.status.set("inactive")])
    closed = visitor.get(f"/intake/{company.intake_code}")
    assert closed.status_code == 410 and "not accepting requests" in visitor.text()
    assert "x-frame-options" not in _headers(closed)


def test_an_expired_link_says_so(client):
    _admin, code = _with_form(client)
    fields = _fields()
    _send(_visitor(client), code, fields)
    path = _confirm_path(fields["customer_email"])
    reader = _visitor(client)
    with time_machine.travel(now() + timedelta(hours=49)):
        assert reader.get(path).status_code == 410
        assert "This confirmation link has expired" in reader.text()
        assert reader.post(path, {}, csrf=None).status_code == 410
    assert reader.get("/intake/confirm/" + secrets.token_urlsafe(32)).status_code == 404


# -- the JSON API ---------------------------------------------------------------------------


def _api(client, code: str, body: bytes | str, *, origin: str | None = None, ctype: str = ""):
    headers = {"Content-Type": ctype or "application/json", "Accept-Language": "en"}
    if origin:
        headers["Origin"] = origin
    return client.http.post(f"/api/v1/intake/{code}", headers=headers, body=body)


def test_the_json_api_answers_400_for_bad_json_and_oversized_bodies(client):
    _admin, code = _with_form(client)
    bad = _api(client, code, b'{"customer_name": ')
    assert bad.status_code == 400
    assert bad.json_body == {"error": "bad_json", "message": "The request body is not valid JSON."}
    big = _api(client, code, json.dumps({"problem": "x" * 40_000}))
    assert big.status_code == 400
    assert big.json_body["error"] == "body_too_large" and "32 KB" in big.json_body["message"]
    listed = _api(client, code, b'["not", "an", "object"]')
    assert listed.status_code == 400 and listed.json_body["error"] == "bad_json"
    form = _api(client, code, b"customer_name=x", ctype="application/x-www-form-urlencoded")
    assert form.status_code == 400 and form.json_body["error"] == "not_json"


def test_the_json_api_applies_the_same_rules(client):
    _admin, code = _with_form(client, custom=True)
    schema = client.http.get(f"/api/v1/intake/{code}").json_body
    custom = next(f for f in schema["fields"] if f["name"].startswith("cf_"))
    assert custom["required"] is True and custom["label"] == "Serial number"
    fields = _fields()
    del fields["website"]
    invalid = _api(client, code, json.dumps({**fields, "customer_email": "nope"}))
    assert invalid.status_code == 422
    assert invalid.json_body["error"] == "invalid"
    assert set(invalid.json_body["fields"]) == {"customer_email", custom["name"]}
    accepted = _api(client, code, json.dumps({**fields, custom["name"]: "SN-77"}))
    assert accepted.status_code == 202, accepted.json_body
    assert accepted.json_body["status"] == "pending_confirmation"
    assert "Confirm your request" in last_mail_to(fields["customer_email"]).subject
    twice = _api(client, code, json.dumps({**fields, custom["name"]: "SN-77"}))
    assert twice.status_code == 409 and twice.json_body["error"] == "pending_exists"
    closed = _api(client, "unknown-code", json.dumps(fields))
    assert closed.status_code == 404 and closed.json_body["error"] == "form_closed"


def test_cors_is_granted_only_to_the_companys_origins(client):
    admin, code = _with_form(client)
    path = f"/api/v1/intake/{code}"
    preflight = {"Origin": "https://www.shop.example", "Access-Control-Request-Method": "POST"}
    # No origins configured: no browser on another site may read the answers.
    assert "access-control-allow-origin" not in _headers(
        client.http.options(path, headers=preflight)
    )
    admin.get("/settings/intake")
    version = _VERSION.search(admin.text()).group(1)
    admin.post(
        "/settings/intake",
        {"action": "origins", "origins": "https://www.shop.example", "version": version},
    )
    allowed = _headers(client.http.options(path, headers=preflight))
    assert allowed["access-control-allow-origin"] == "https://www.shop.example"
    assert "POST" in allowed["access-control-allow-methods"]
    assert "content-type" in allowed["access-control-allow-headers"].lower()
    assert allowed["vary"] == "Origin"
    other = _headers(
        client.http.options(path, headers={**preflight, "Origin": "https://evil.example"})
    )
    assert "access-control-allow-origin" not in other
    fields = _fields()
    del fields["website"]
    answer = _api(client, code, json.dumps(fields), origin="https://www.shop.example")
    assert answer.status_code == 202
    assert _headers(answer)["access-control-allow-origin"] == "https://www.shop.example"
    refused = _api(client, code, b"{", origin="https://evil.example")
    assert "access-control-allow-origin" not in _headers(refused)


# -- cancelling an intake order ------------------------------------------------------------------


def test_cancelling_an_intake_order_as_duplicate_tells_the_requester_why(client):
    admin, code = _with_form(client)
    fields = _fields()
    email = fields["customer_email"]
    _send(_visitor(client), code, fields)
    path = _confirm_path(email)
    _visitor(client).post(path, {}, csrf=None)
    order_id = _order_id_from(admin)
    admin.get(f"/orders/{order_id}")
    text = admin.text()
    assert 'id="intake-cancel-reasons"' in text
    assert 'name="note" value="Duplicate request"' in text
    version = re.search(r'name="version" value="(\d+)"', text).group(1)
    answer = admin.post(
        f"/orders/{order_id}/status",
        {"action": "cancel", "note": "Duplicate request", "version": version},
    )
    assert answer.status_code == 303
    order = Order.get(*Order.key(order_id))
    assert order.status == "cancelled" and order.cancel_reason == "Duplicate request"
    assert "Duplicate request" in last_mail_to(email).text


def _order_id_from(admin: WebSession) -> str:
    admin.get("/orders?view=all")
    return re.search(r'href="/orders/([0-9a-f]{16})"', admin.text()).group(1)


def test_staff_orders_have_no_intake_cancel_reasons(client):
    admin = sign_up(client)
    admin.get("/orders/new")
    answer = admin.post(
        "/orders/new", {"customer_name": "Walk-in", "problem": "Broken", "priority": "normal"}
    )
    admin.get(answer.headers["Location"])
    assert 'id="intake-cancel-reasons"' not in admin.text()


def test_a_full_quota_at_confirmation_tells_the_requester_and_allows_a_retry(client):
    admin, code = _with_form(client)
    company = Company.get(*Company.key(ids_of(admin)[0]))
    company.update(actions=[Company.monthly_quota.set(1)])
    admin.get("/orders/new")
    admin.post("/orders/new", {"customer_name": "Walk-in", "problem": "Broken"})
    fields = _fields()
    _send(_visitor(client), code, fields)
    path = _confirm_path(fields["customer_email"])
    reader = _visitor(client)
    assert reader.post(path, {}, csrf=None).status_code == 409
    assert "cannot take new requests online this month" in reader.text()
    assert f'action="{path}"' in reader.text() and "Try again" in reader.text()
    company.update(actions=[Company.monthly_quota.set(2)])
    assert reader.post(path, {}, csrf=None).status_code == 200
    assert "received your request as order #2" in reader.text()

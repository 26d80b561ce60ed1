"""What every page's route checks before its view runs: session, idle time, role, CSRF, headers."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from chalicelib.config import get_settings
from chalicelib.i18n import translate
from tests.security.actors import cheap_passwords, own_ip
from tests.web.company_factories import staff_member
from tests.web.factories import sign_up
from tests.web.session import WebSession


@pytest.fixture(autouse=True)
def _fast(monkeypatch) -> Iterator[None]:
    cheap_passwords(monkeypatch)
    with own_ip():
        yield


def _says(tab: WebSession, key: str) -> bool:
    return html.escape(translate("en", key), quote=True) in tab.text()


def test_a_signed_out_visitor_is_sent_to_sign_in_and_back_to_the_page(client):
    visitor = WebSession(client)
    answer = visitor.get("/orders/new")
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/login?next=/orders/new"


def test_a_signed_out_form_post_is_refused_with_the_reason(client):
    visitor = WebSession(client)
    visitor.get("/login")
    answer = visitor.post("/orders/new", {"customer_name": "Marta"})
    assert answer.status_code == 403
    assert _says(visitor, "error.signed_out")


def test_admin_pages_refuse_staff_and_open_for_admins(client):
    admin = sign_up(client)
    staff = staff_member(client, admin)
    assert staff.get("/settings/users").status_code == 403
    assert _says(staff, "error.admin_only")
    assert admin.get("/settings/users").status_code == 200
    assert staff.get("/orders").status_code == 200  # staff pages stay open to staff


def test_a_post_needs_the_sessions_own_csrf_token(client):
    owner = sign_up(client)
    other = sign_up(client)
    other.get("/orders/new")
    foreign = other.csrf()
    owner.get("/orders/new")
    for token in (None, "", "forged", foreign):
        answer = owner.post("/orders/new", {"customer_name": "Marta"}, csrf=token)
        assert answer.status_code == 403, token
        assert _says(owner, "error.csrf")
    owner.get("/orders/new")
    assert owner.post("/orders/new", {"customer_name": "Marta"}).status_code != 403


def test_the_csrf_token_may_come_in_the_header_instead_of_the_form(client):
    owner = sign_up(client)
    owner.get("/orders/new")
    token = owner.csrf()
    headers = owner._headers(
        {"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": token}
    )
    answer = client.http.post("/orders/new", headers=headers, body="customer_name=Marta")
    assert answer.status_code != 403
    headers["X-CSRF-Token"] = "forged"
    assert client.http.post("/orders/new", headers=headers, body="x=1").status_code == 403


def test_an_anonymous_form_is_bound_to_the_visitors_own_cookie(client):
    visitor = WebSession(client)
    visitor.get("/login")
    stranger = WebSession(client)
    stranger.get("/login")
    answer = visitor.post("/login", {"email": "a@example.com", "password": "x"}, stranger.csrf())
    assert answer.status_code == 403 and _says(visitor, "error.csrf")
    # A too-short anonymous cookie is replaced, never trusted as the seed.
    short = WebSession(client)
    short.cookies["aid"] = "abc"
    short.get("/login")
    assert len(short.cookies["aid"]) >= 32


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    with time_machine.travel(start, tick=False) as traveller:
        yield traveller


def test_a_session_idle_past_the_timeout_ends_and_one_just_inside_it_lives(client, clock):
    idle = timedelta(minutes=get_settings().session_idle_minutes)
    owner = sign_up(client)
    owner.get("/orders")
    clock.shift(idle - timedelta(seconds=1))
    assert owner.get("/orders").status_code == 200  # and the request renews the idle time
    clock.shift(idle - timedelta(seconds=1))
    assert owner.get("/orders").status_code == 200
    clock.shift(idle)  # idle for exactly the timeout: over
    answer = owner.get("/orders")
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/login")
    assert "sid" not in owner.cookies


def test_the_idle_stamp_is_renewed_after_a_minute_not_on_every_request(client, clock):
    owner = sign_up(client)
    owner.get("/orders")
    cookie = owner.cookies["sid"]
    clock.shift(timedelta(seconds=30))
    owner.get("/orders")
    assert owner.cookies["sid"] == cookie
    clock.shift(timedelta(seconds=30))  # a minute exactly since the stamp: not yet renewed
    owner.get("/orders")
    assert owner.cookies["sid"] == cookie
    clock.shift(timedelta(seconds=1))
    owner.get("/orders")
    assert owner.cookies["sid"] != cookie


def test_every_page_carries_the_security_headers(client):
    for answer in (client.http.get("/login"), client.http.get("/no-such-page")):
        headers = answer.headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["Permissions-Policy"] == "camera=(), microphone=(), geolocation=()"
        assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
        assert headers["Cache-Control"] == "no-store"


def test_a_page_made_to_be_framed_keeps_its_own_policy_and_no_frame_denial(client):
    from chalicelib.db.accounts import Company
    from tests.web.factories import ids_of

    owner = sign_up(client)
    slug = Company.get(*Company.key(ids_of(owner)[0])).slug
    answer = client.http.get(f"/follow/{slug}")
    assert answer.status_code == 200
    assert "frame-ancestors *" in answer.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in answer.headers
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_a_page_that_may_be_framed_gets_no_legacy_frame_refusal(client):
    staff = sign_up(client)
    staff.get("/settings/follow-snippet")
    slug = re.search(r"/follow/([\w-]+)", staff.text())
    assert slug, "the snippet page shows the follow form's address"
    answer = WebSession(client).get(f"/follow/{slug.group(1)}")
    assert answer.status_code == 200
    assert "frame-ancestors *" in answer.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in answer.headers
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_an_error_chalice_answers_itself_becomes_the_translated_html_error_page(
    client, monkeypatch
):
    """An exception outside the route's own handling: Chalice's JSON 500 is never shown."""
    from chalicelib.web import context

    real = context.build_context
    calls = []

    def first_call_fails(request, *args, **kwargs):
        calls.append(request.path)
        if len(calls) == 1:
            raise RuntimeError("secret detail")
        return real(request, *args, **kwargs)

    monkeypatch.setattr(context, "build_context", first_call_fails)
    answer = client.http.get("/login", headers={"Accept-Language": "es"})
    body = answer.body.decode()
    assert answer.status_code == 500
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "InternalServerError" not in body and "secret detail" not in body
    assert translate("es", "error.500.title") in body
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert len(calls) == 2  # the route's context failed; the error page built its own


def test_a_method_a_page_does_not_take_is_the_translated_error_page_not_json(client):
    answer = client.http.request("PUT", "/login", headers={"Accept-Language": "pt-BR"}, body=b"")
    body = answer.body.decode()
    assert answer.status_code == 405
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "MethodNotAllowedError" not in body
    assert translate("pt-BR", "error.400.title") in body
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_a_signed_cookie_of_the_wrong_shape_is_no_session(client):
    """Only a list of four (token, user, company, last seen) is a session; anything else
    signed with the key (another purpose's shape) reads as signed out, never a 500."""
    from chalicelib.web import http

    for shape in (["token", "user", "company"], "abcd", {"a": 1, "b": 2, "c": 3, "d": 4}):
        tab = WebSession(client)
        tab.cookies["sid"] = http.pack(shape, "session")
        answer = tab.get("/orders")
        assert answer.status_code == 303, shape
        assert answer.headers["Location"].startswith("/login"), shape


def test_log_lines_of_a_signed_in_request_name_its_company(client, monkeypatch):
    import io
    import json
    import logging

    from chalicelib import logs
    from chalicelib.services import orders
    from tests.web.factories import ids_of

    owner = sign_up(client)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    logging.getLogger("checkos").addHandler(handler)
    real = orders.list_orders

    def logged(*args, **kwargs):
        logging.getLogger("checkos.test").error("listing orders")  # tests log errors only
        return real(*args, **kwargs)

    monkeypatch.setattr(orders, "list_orders", logged)
    try:
        assert owner.get("/orders").status_code == 200
    finally:
        logging.getLogger("checkos").removeHandler(handler)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    mine = [line for line in lines if line["message"] == "listing orders"]
    assert mine and all(line["company_id"] == ids_of(owner)[0] for line in mine)

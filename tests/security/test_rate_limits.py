"""Rate limits on what anonymous visitors repeat: N tries, then 429 with a message, then recovery.

Every test comes from an IP address of its own (``own_ip``): the limits are
per address, and the test client otherwise reports 127.0.0.1 for everyone.
Each limit is driven with its real, configured N; the clock is moved past
the window with time-machine to prove it recovers.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine

from chalicelib.db.accounts import Company
from chalicelib.i18n import translate
from chalicelib.services import accounts, customers, intake
from chalicelib.services.sessions import now
from tests.figures import report
from tests.security.actors import (
    cheap_passwords,
    intake_fields,
    open_intake_form,
    own_ip,
    register_order,
    send_intake,
)
from tests.web.factories import PASSWORD, ids_of, mails_to, sign_up, unique_email
from tests.web.session import WebSession

LIMITS_CHECKED: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    yield
    report("rate-limits", limits=len(LIMITS_CHECKED))


@pytest.fixture(autouse=True)
def _fast(monkeypatch) -> Iterator[str]:
    cheap_passwords(monkeypatch)
    monkeypatch.setattr(customers, "FOLLOW_ANSWER_SECONDS", 0)
    with own_ip() as address:
        yield address


def later(**delta: float):
    """The clock moved forward (ticking), for a window to pass."""
    return time_machine.travel(now() + timedelta(**delta), tick=True)


def shows(tab: WebSession, locale: str, key: str, **params: object) -> bool:
    return html.escape(translate(locale, key, **params), quote=True) in tab.text()


def _login(tab: WebSession, email: str, password: str):
    tab.get("/login")
    return tab.post("/login", {"email": email, "password": password})


# -- login -----------------------------------------------------------------------


def test_login_locks_an_address_after_five_failures_and_unlocks_after_the_lock(client):
    owner = sign_up(client)
    visitor = WebSession(client, accept_language="es")
    for _ in range(accounts.ACCOUNT_FAILURES):
        assert _login(visitor, owner.email, "wrong password").status_code == 401
    # Locked: even the right password is refused, with a translated reason.
    answer = _login(visitor, owner.email, PASSWORD)
    assert answer.status_code == 429
    assert shows(visitor, "es", "login.locked", minutes=1)
    assert "sid" not in visitor.cookies
    with later(seconds=accounts.FIRST_LOCK_SECONDS + 1):
        assert _login(visitor, owner.email, PASSWORD).status_code == 303
    LIMITS_CHECKED.append("login per e-mail")


def test_login_locks_an_address_of_origin_after_twenty_failures(client):
    owner = sign_up(client)
    visitor = WebSession(client, accept_language="pt-BR")
    for _ in range(accounts.IP_FAILURES):
        # Different addresses every time: only the per-IP count can stop this.
        assert _login(visitor, unique_email("guess"), "wrong password").status_code == 401
    answer = _login(visitor, owner.email, PASSWORD)
    assert answer.status_code == 429
    assert shows(visitor, "pt-BR", "login.locked", minutes=1)
    with later(seconds=accounts.FIRST_LOCK_SECONDS + 1):
        assert _login(visitor, owner.email, PASSWORD).status_code == 303
    LIMITS_CHECKED.append("login per IP")


# -- e-mails to typed addresses ---------------------------------------------------------


def _forgot(tab: WebSession, email: str):
    tab.get("/password/forgot")
    return tab.post("/password/forgot", {"email": email})


def test_password_reset_mails_an_address_three_times_an_hour_whether_or_not_it_exists(client):
    owner = sign_up(client)
    ghost = unique_email("ghost")
    visitor = WebSession(client, accept_language="es")
    for address in (owner.email, ghost):
        for _ in range(accounts.RESET_LIMIT_EMAIL):
            assert _forgot(visitor, address).status_code == 200
        answer = _forgot(visitor, address)
        # The same refusal for both: it tells nothing about the account.
        assert answer.status_code == 429
        assert "Demasiadas solicitudes desde aquí" in visitor.text()
        assert f'value="{address}"' in visitor.text()  # nothing typed is lost
    sent = [m for m in mails_to(owner.email) if "/password/reset/" in m.text]
    assert len(sent) == accounts.RESET_LIMIT_EMAIL
    with later(hours=1, minutes=1):
        assert _forgot(visitor, owner.email).status_code == 200
    assert len([m for m in mails_to(owner.email) if "/password/reset/" in m.text]) == 4
    LIMITS_CHECKED.append("password reset per e-mail")


def test_password_reset_requests_from_one_address_are_limited(client):
    visitor = WebSession(client)
    for _ in range(accounts.RESET_LIMIT_IP):
        assert _forgot(visitor, unique_email("spray")).status_code == 200
    assert _forgot(visitor, unique_email("spray")).status_code == 429
    assert "Too many requests from here" in visitor.text()
    with later(hours=1, minutes=1):
        assert _forgot(visitor, unique_email("spray")).status_code == 200
    LIMITS_CHECKED.append("password reset per IP")


def _signup_form(email: str) -> dict[str, str]:
    return {
        "company_name": "Limited Repairs",
        "business_type": "Repairs",
        "area": "Lisbon",
        "contact_name": "Rui",
        "phone": "+351 912 345 678",
        "email": email,
        "password": PASSWORD,
    }


def test_sign_ups_from_one_address_are_limited_and_the_form_is_kept(client):
    for _ in range(accounts.SIGNUP_LIMIT_IP):
        tab = WebSession(client)
        tab.get("/signup")
        assert tab.post("/signup", _signup_form(unique_email("signup"))).status_code == 303
    tab = WebSession(client, accept_language="pt-BR")
    tab.get("/signup")
    email = unique_email("signup")
    answer = tab.post("/signup", _signup_form(email))
    assert answer.status_code == 429
    assert "Solicitações demais daqui" in tab.text()
    assert f'value="{email}"' in tab.text() and 'value="Limited Repairs"' in tab.text()
    assert not mails_to(email)  # no code was e-mailed to the typed address
    with later(hours=1, minutes=1):
        assert tab.post("/signup", _signup_form(email)).status_code == 303
    LIMITS_CHECKED.append("sign-up per IP")


# -- the follow form and the intake form ------------------------------------------------


def test_the_follow_form_answers_five_times_per_window_then_429_then_recovers(client):
    staff = sign_up(client)
    _order, email = register_order(staff)
    slug = Company.get(*Company.key(ids_of(staff)[0])).slug
    visitor = WebSession(client, accept_language="es")
    form = {"number": "1", "email": email}
    with later(hours=2):  # a window of its own
        for _ in range(customers.FOLLOW_LIMIT_IP):
            assert visitor.post(f"/follow/{slug}", form, csrf=None).status_code == 200
        assert visitor.post(f"/follow/{slug}", form, csrf=None).status_code == 429
        assert shows(visitor, "es", "follow.too_many", minutes=15)
    with later(hours=2, minutes=16):
        assert visitor.post(f"/follow/{slug}", form, csrf=None).status_code == 200
    LIMITS_CHECKED.append("follow form per IP")


def test_intake_submissions_are_limited_per_address_with_a_translated_message(client):
    admin = sign_up(client)
    code = open_intake_form(admin)
    (per_hour,) = [r.limit for r in intake.RATE_LIMITS if (r.scope, r.window) == ("ip", "hour")]
    visitor = WebSession(client, accept_language="es")
    with later(hours=3):
        for _ in range(per_hour):
            assert send_intake(visitor, code, intake_fields()).status_code == 200
        fields = intake_fields()
        answer = send_intake(visitor, code, fields)
        assert answer.status_code == 429
        assert shows(visitor, "es", "intake.rate_limited")
        assert f'value="{fields["customer_email"]}"' in visitor.text()
        assert not mails_to(fields["customer_email"])
    with later(hours=4, minutes=1):
        assert send_intake(visitor, code, intake_fields()).status_code == 200
    LIMITS_CHECKED.append("intake per IP")


# -- the customer's chat (anyone holding the link can write) ------------------------------


def test_customer_chat_is_limited_per_order_keeps_the_text_then_recovers(client):
    from tests.security.actors import customer_token

    staff = sign_up(client)
    _order, email = register_order(staff)
    link = f"/o/{customer_token(email)}"
    customer = WebSession(client, accept_language="es")
    customer.get(link)
    with later(hours=5):  # a window of its own
        for n in range(customers.CHAT_LIMIT_ORDER):
            assert customer.post(f"{link}/messages", {"text": f"hola {n}"}).status_code == 303
        typed = "¿Pueden venir el jueves?"
        assert customer.post(f"{link}/messages", {"text": typed}).status_code == 429
        assert shows(customer, "es", "customer.chat_too_many", minutes=15)
        assert typed in customer.text()
    with later(hours=5, minutes=16):
        assert customer.post(f"{link}/messages", {"text": typed}).status_code == 303
    LIMITS_CHECKED.append("customer chat per order")


def test_customer_chat_from_one_address_is_limited_across_links(client):
    from tests.security.actors import customer_token

    staff = sign_up(client)
    links = [f"/o/{customer_token(register_order(staff)[1])}" for _ in range(3)]
    per_link = customers.CHAT_LIMIT_IP // len(links) + 1  # under each order's own limit
    assert per_link <= customers.CHAT_LIMIT_ORDER
    customer = WebSession(client, accept_language="pt-BR")
    customer.get(links[0])
    answers = []
    with later(hours=6):
        for link in links:
            for n in range(per_link):
                answers.append(customer.post(f"{link}/messages", {"text": f"oi {n}"}).status_code)
        assert answers.count(303) == customers.CHAT_LIMIT_IP
        assert answers[-1] == 429
        assert shows(customer, "pt-BR", "customer.chat_too_many", minutes=15)
    LIMITS_CHECKED.append("customer chat per IP")

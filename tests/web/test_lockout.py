"""A sign-in lock cannot keep the owner out; a resent code brings no new tries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine

from chalicelib.db.accounts import Throttle
from chalicelib.i18n import translate
from chalicelib.services import email_codes, signin
from chalicelib.services.sessions import now
from tests.web.factories import PASSWORD, code_in, last_mail_to, link_in, mails_to, sign_up
from tests.web.session import WebSession

UNLOCK_PATH = "/login/unlock/"


@pytest.fixture(autouse=True)
def _loopback_not_locked(aws) -> Iterator[None]:
    # Every test client signs in from 127.0.0.1: the per-IP count must not leak between tests.
    yield
    Throttle(*Throttle.key("ip", "127.0.0.1")).delete()


def _login(tab: WebSession, email: str, password: str):
    tab.get("/login")
    return tab.post("/login", {"email": email, "password": password})


def _lock(client, email: str) -> WebSession:
    attacker = WebSession(client)
    for _ in range(signin.ACCOUNT_FAILURES):
        assert _login(attacker, email, "wrong password").status_code == 401
    return attacker


def _unlock_mails(email: str, locale: str = "en") -> list:
    subject = translate(locale, "email.account_unlock.subject")
    return [m for m in mails_to(email) if m.subject == subject]


@pytest.fixture
def owner(client) -> WebSession:
    tab = sign_up(client, locale="es")
    tab.post("/logout", {})
    return tab


def test_a_lock_emails_the_owner_a_single_use_unlock_link(client, owner):
    assert _unlock_mails(owner.email, "es") == []
    _lock(client, owner.email)
    visitor = WebSession(client)
    assert _login(visitor, owner.email, PASSWORD).status_code == 429
    mails = _unlock_mails(owner.email, "es")
    assert len(mails) == 1
    assert "Desbloquear" in mails[0].html
    link = link_in(mails[0], UNLOCK_PATH)
    token = link.rsplit("/", 1)[1]
    assert len(token) >= 22  # >= 128 bits, url-safe
    # Stored only as a hash.
    assert signin.unlock_token(token).pk.endswith(signin.token_hash(token))
    assert token not in signin.unlock_token(token).pk
    reader = WebSession(client, accept_language="es")
    page = reader.get(link)
    assert page.status_code == 200
    assert translate("es", "unlock.lead") in reader.text()
    # Opening the link changes nothing (mail scanners open links): still locked.
    assert _login(visitor, owner.email, PASSWORD).status_code == 429
    assert reader.post(link, {}).status_code == 303
    assert _login(visitor, owner.email, PASSWORD).status_code == 303
    # Single use.
    assert WebSession(client).get(link).status_code == 404
    assert reader.post(link, {}).status_code in (403, 404)


def test_an_unlock_link_expires(client, owner):
    _lock(client, owner.email)
    link = link_in(_unlock_mails(owner.email, "es")[-1], UNLOCK_PATH)
    later = now() + signin.UNLOCK_LIFETIME + timedelta(minutes=1)
    with time_machine.travel(later.timestamp(), tick=False):
        assert WebSession(client).get(link).status_code == 404


def test_a_second_lock_within_the_hour_sends_no_second_link(client, owner):
    _lock(client, owner.email)
    with time_machine.travel(now().timestamp() + signin.FIRST_LOCK_SECONDS + 1, tick=False):
        _lock(client, owner.email)
        assert _login(WebSession(client), owner.email, PASSWORD).status_code == 429
    assert len(_unlock_mails(owner.email, "es")) == 1


def test_a_password_reset_clears_the_lock(client, owner):
    _lock(client, owner.email)
    visitor = WebSession(client)
    visitor.get("/password/forgot")
    visitor.post("/password/forgot", {"email": owner.email})
    link = link_in(last_mail_to(owner.email), "/password/reset/")
    visitor.get(link)
    assert visitor.post(link, {"password": "a brand new secret"}).status_code == 303
    assert _login(visitor, owner.email, "a brand new secret").status_code == 303


def test_a_resent_code_does_not_reset_the_tries(client):
    tab = sign_up(client, validate=False)
    tab.get("/verify-email")
    for _ in range(email_codes.CODE_MAX_TRIES):
        tab.post(
            "/verify-email",
            {"code": "000000" if code_in(last_mail_to(tab.email)) != "000000" else "111111"},
        )
    sent = len(mails_to(tab.email))
    cooldown = now().timestamp() + email_codes.CODE_RESEND_COOLDOWN.total_seconds() + 1
    with time_machine.travel(cooldown, tick=False):
        tab.get("/verify-email")
        tab.post("/verify-email/resend", {})
        tab.get("/verify-email")
        # No new code: it could not be tried anyway.
        assert len(mails_to(tab.email)) == sent
        assert "Asking for another code does not add tries" in tab.text()
        answer = tab.post("/verify-email", {"code": code_in(last_mail_to(tab.email))})
        assert answer.status_code == 400
        assert "Asking for another code does not add tries" in tab.text()
    # Once the first code's window is over, a new code gets its own tries.
    over = now() + email_codes.CODE_LIFETIME + timedelta(minutes=1)
    with time_machine.travel(over.timestamp(), tick=False):
        tab.get("/verify-email")
        tab.post("/verify-email/resend", {})
        assert len(mails_to(tab.email)) == sent + 1
        tab.get("/verify-email")
        answer = tab.post("/verify-email", {"code": code_in(last_mail_to(tab.email))})
        assert answer.status_code == 303

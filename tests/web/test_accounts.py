"""Sign-up, e-mail codes, sessions, CSRF, throttling and password reset."""

from __future__ import annotations

import time_machine

from chalicelib.db.accounts import Company, EmailCode, Session, Throttle
from chalicelib.domain.tokens import token_hash
from chalicelib.services.sessions import now
from tests.web.factories import (
    PASSWORD,
    code_in,
    last_mail_to,
    link_in,
    mails_to,
    sign_up,
    unique_email,
)
from tests.web.session import WebSession


def _company_of(tab: WebSession) -> Company:
    from chalicelib.web import http

    _token, _user, company_id, _ = http.unpack(tab.cookies["sid"], "session")
    return Company.get(*Company.key(company_id))


def test_sign_up_sends_a_code_and_validating_it_marks_the_email(client):
    tab = sign_up(client, validate=False)
    company = _company_of(tab)
    assert company.email_validated is False
    mail = last_mail_to(tab.email)
    assert "validation code" in mail.subject
    tab.get("/")
    assert "cannot e-mail your customers" in tab.text()
    tab.get("/verify-email")
    response = tab.post("/verify-email", {"code": code_in(mail)})
    assert response.status_code == 303
    assert _company_of(tab).email_validated is True
    tab.get("/")
    assert "cannot e-mail your customers" not in tab.text()


def test_signup_errors_are_shown_beside_fields_and_values_are_kept(client):
    tab = WebSession(client)
    tab.get("/signup")
    response = tab.post(
        "/signup",
        {"company_name": "Oficina do Zé", "email": "not-an-email", "password": "short"},
    )
    assert response.status_code == 422
    body = tab.text()
    assert 'value="Oficina do Zé"' in body
    assert "Enter a valid e-mail address" in body
    assert "Use at least 10 characters" in body
    assert 'id="e-business_type"' in body


def test_signing_up_twice_with_one_email_is_refused(client):
    first = sign_up(client, validate=False)
    tab = WebSession(client)
    tab.get("/signup")
    response = tab.post(
        "/signup",
        {
            "company_name": "Other",
            "business_type": "x",
            "area": "y",
            "contact_name": "z",
            "phone": "1",
            "email": first.email.upper(),
            "password": PASSWORD,
        },
    )
    assert response.status_code == 422
    assert "already has an account" in tab.text()


def test_code_expires_after_30_minutes(client):
    tab = sign_up(client, validate=False)
    code = code_in(last_mail_to(tab.email))
    tab.get("/verify-email")
    token = tab.csrf()
    with time_machine.travel(now().timestamp() + 31 * 60, tick=False):
        # The idle timeout would end the session; refresh the page first.
        response = tab.post("/verify-email", {"code": code}, csrf=token)
    assert response.status_code in (400, 403)
    assert _company_of(tab).email_validated is False


def test_code_allows_five_tries_then_needs_a_new_code(client):
    tab = sign_up(client, validate=False)
    code = code_in(last_mail_to(tab.email))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    tab.get("/verify-email")
    for left in (4, 3, 2, 1):
        tab.post("/verify-email", {"code": wrong})
        assert f"{left} {'try' if left == 1 else 'tries'} left" in tab.text()
    tab.post("/verify-email", {"code": wrong})
    assert tab.text().count("Too many wrong tries") >= 1
    response = tab.post("/verify-email", {"code": code})
    assert response.status_code == 400
    assert "Too many wrong tries" in tab.text()
    assert _company_of(tab).email_validated is False


def test_code_is_stored_only_as_a_hash(client):
    tab = sign_up(client, validate=False)
    code = code_in(last_mail_to(tab.email))
    stored = EmailCode.get(*EmailCode.key(_company_of(tab).company_id))
    assert code not in stored.code_hash
    assert stored.expires_at is not None


def test_resend_has_a_cooldown(client):
    tab = sign_up(client, validate=False)
    before = len(mails_to(tab.email))
    tab.get("/verify-email")
    tab.post("/verify-email/resend", {})
    tab.get("/verify-email")
    assert "Please wait" in tab.text()
    assert len(mails_to(tab.email)) == before


def test_logout_invalidates_the_session_server_side(client):
    tab = sign_up(client)
    stolen = dict(tab.cookies)
    tab.get("/")
    tab.post("/logout", {})
    replay = WebSession(client)
    replay.cookies = stolen
    response = replay.get("/verify-email")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login")


def test_session_ends_after_idle_timeout(client):
    tab = sign_up(client)
    assert tab.get("/verify-email").status_code == 200
    with time_machine.travel(now().timestamp() + 61 * 60, tick=False):
        response = tab.get("/verify-email")
    assert response.status_code == 303


def test_session_item_has_absolute_expiry_and_hashed_id(client):
    tab = sign_up(client)
    from chalicelib.web import http

    token, *_ = http.unpack(tab.cookies["sid"], "session")
    session = Session.get(*Session.key(token_hash(token)))
    assert session.expires_at is not None
    assert token not in session.pk


def test_session_cookie_flags(client):
    tab = WebSession(client)
    email = unique_email()
    tab.get("/signup")
    response = tab.post(
        "/signup",
        {
            "company_name": "Flags",
            "business_type": "x",
            "area": "y",
            "contact_name": "z",
            "phone": "1",
            "email": email,
            "password": PASSWORD,
        },
    )
    cookies = response.headers["Set-Cookie"]
    sid = next(c for c in cookies if c.startswith("sid="))
    assert "HttpOnly" in sid and "SameSite=Lax" in sid
    # Secure is off only because the tests run the local http stage.


def test_login_rotates_the_session_id(client):
    tab = sign_up(client)
    first = tab.cookies["sid"]
    tab.get("/login")
    tab.post("/login", {"email": tab.email, "password": PASSWORD})
    assert tab.cookies["sid"] != first
    old = WebSession(client)
    old.cookies = {"sid": first}
    assert old.get("/verify-email").status_code == 303


def test_post_without_csrf_token_is_403(client):
    tab = sign_up(client)
    assert tab.post("/logout", {}, csrf=None).status_code == 403
    assert tab.post("/logout", {}, csrf="forged").status_code == 403
    assert tab.get("/verify-email").status_code == 200  # still signed in


def test_login_is_throttled_per_account_with_a_clear_message(client):
    tab = sign_up(client)
    tab.post("/logout", {})
    other = WebSession(client)
    other.get("/login")
    for _ in range(5):
        other.post("/login", {"email": tab.email, "password": "wrong password"})
        assert other.text().count("not right") == 1
    response = other.post("/login", {"email": tab.email, "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-ins" in other.text()
    with time_machine.travel(now().timestamp() + 61, tick=False):
        response = other.post("/login", {"email": tab.email, "password": PASSWORD})
    assert response.status_code == 303


def test_login_is_throttled_per_ip(client):
    tab = WebSession(client)
    tab.get("/login")
    try:
        with time_machine.travel(now().timestamp() + 7200, tick=False):
            for index in range(20):
                tab.post("/login", {"email": unique_email(f"x{index}"), "password": "nope nope"})
            response = tab.post("/login", {"email": unique_email(), "password": "nope nope"})
        assert response.status_code == 429
        assert "Too many failed sign-ins" in tab.text()
    finally:
        # Every test client shares 127.0.0.1: lift the lock for the other tests.
        Throttle(*Throttle.key("ip", "127.0.0.1")).delete()


def test_password_reset_link_is_single_use_and_ends_sessions(client):
    owner = sign_up(client)
    anonymous = WebSession(client)
    anonymous.get("/password/forgot")
    anonymous.post("/password/forgot", {"email": owner.email})
    assert "If that e-mail has an account" in anonymous.text()
    link = link_in(last_mail_to(owner.email), "/password/reset/")
    assert anonymous.get(link).status_code == 200
    response = anonymous.post(link, {"password": "a brand new secret"})
    assert response.status_code == 303
    assert owner.get("/verify-email").status_code == 303  # old session ended
    assert anonymous.get(link).status_code == 404  # single use
    anonymous.get("/login")
    assert (
        anonymous.post(
            "/login", {"email": owner.email, "password": "a brand new secret"}
        ).status_code
        == 303
    )


def test_forgot_password_answers_the_same_for_unknown_addresses(client):
    tab = WebSession(client)
    tab.get("/password/forgot")
    tab.post("/password/forgot", {"email": unique_email("ghost")})
    assert "If that e-mail has an account" in tab.text()


def test_signed_in_page_costs_at_most_three_dynamodb_requests(client, budget):
    tab = sign_up(client)
    with budget:
        response = tab.get("/")
    assert response.status_code == 200
    assert budget.dynamodb_requests <= 3, [c.operation for c in budget.dynamodb]

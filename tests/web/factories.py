"""Builders for web tests: sign up a company through the real pages, read the outbox."""

from __future__ import annotations

import re
import secrets

from chalicelib.web.outbox import SentMail, sent_mails
from tests.web.session import WebSession

PASSWORD = "correct horse battery"


def unique_email(prefix: str = "owner") -> str:
    return f"{prefix}-{secrets.token_hex(4)}@example.com"


def mails_to(address: str) -> list[SentMail]:
    return [m for m in sent_mails() if address in m.to]


def last_mail_to(address: str) -> SentMail:
    found = mails_to(address)
    assert found, f"no e-mail was sent to {address}"
    return found[-1]


def code_in(mail: SentMail) -> str:
    match = re.search(r"^\s+(\d{6})\s*$", mail.text, re.MULTILINE)
    assert match, mail.text
    return match.group(1)


def link_in(mail: SentMail, path_fragment: str) -> str:
    match = re.search(r"https?://[^\s]+" + re.escape(path_fragment) + r"[^\s]*", mail.text)
    assert match, mail.text
    return "/" + match.group(0).split("/", 3)[3]


def sign_up(
    client,
    *,
    company_name: str | None = None,
    email: str | None = None,
    validate: bool = True,
    locale: str = "en",
) -> WebSession:
    tab = WebSession(client, accept_language=locale)
    tab.email = email or unique_email()  # type: ignore[attr-defined]
    tab.get("/signup")
    response = tab.post(
        "/signup",
        {
            "company_name": company_name or f"Fix-It {secrets.token_hex(3)}",
            "business_type": "Electronics repair",
            "area": "São Paulo",
            "contact_name": "Ana Souza",
            "phone": "+55 11 91234-5678",
            "email": tab.email,  # type: ignore[attr-defined]
            "password": PASSWORD,
        },
    )
    assert response.status_code == 303, tab.text()
    if validate:
        tab.get("/verify-email")
        answer = tab.post("/verify-email", {"code": code_in(last_mail_to(tab.email))})
        assert answer.status_code == 303, tab.text()
    return tab


def ids_of(tab: WebSession) -> tuple[str, str]:
    """(company id, user id) of the signed-in tab, read from its session cookie."""
    from chalicelib.web import http

    _token, user_id, company_id, _seen = http.unpack(tab.cookies["sid"], "session")
    return company_id, user_id


def invite_member(
    client, admin: WebSession, *, role: str = "staff", name: str = "Bruno Lima"
) -> WebSession:
    """Invite someone from ``admin``'s users page and accept in a fresh tab (signed in)."""
    email = unique_email(role)
    admin.get("/settings/users")
    response = admin.post("/settings/users/invite", {"name": name, "email": email, "role": role})
    assert response.status_code == 303, admin.text()
    link = link_in(last_mail_to(email), "/invite/")
    tab = WebSession(client)
    tab.email = email  # type: ignore[attr-defined]
    assert tab.get(link).status_code == 200, tab.text()
    response = tab.post(link, {"name": name, "password": PASSWORD})
    assert response.status_code == 303, tab.text()
    return tab

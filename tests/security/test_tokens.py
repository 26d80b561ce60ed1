"""Capability tokens: guessing, expiry, reuse and revocation, for every kind of secret link.

Kinds: the customer's private link, a staff invitation, a partner
invitation, a password reset link, the e-mail validation code, an intake
confirmation link and the intake form code, an export's page, and a
partnership (what a partner may do on a shared order). Expiry is checked by
moving the clock past the lifetime while the item is still in the table:
DynamoDB's TTL deletes late, so the code must refuse on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine

from chalicelib.db import keys
from chalicelib.db.accounts import Company, LinkToken, User
from chalicelib.db.base import Item
from chalicelib.db.customers import CustomerAccess
from chalicelib.db.orders import Order, OrderCounter
from chalicelib.domain.tokens import new_token, token_hash
from chalicelib.services import customers, export, intake, partners, users
from chalicelib.services.email_codes import CODE_LIFETIME, CODE_MAX_TRIES
from chalicelib.services.password_reset import RESET_LIFETIME
from chalicelib.services.sessions import now
from tests.figures import report
from tests.security.actors import (
    cheap_passwords,
    customer_token,
    intake_confirmation_token,
    make_partners,
    open_intake_form,
    order_version,
    own_ip,
    register_order,
    share_order,
)
from tests.web.company_factories import save_settings
from tests.web.factories import (
    PASSWORD,
    code_in,
    ids_of,
    last_mail_to,
    link_in,
    sign_up,
    unique_email,
)
from tests.web.session import WebSession

CASES: list[tuple[str, str, bool]] = []  # (kind, case, accepted wrongly)


def refused(kind: str, case: str, accepted: bool) -> None:
    """Record one case, then require the refusal (the figure counts failures too)."""
    CASES.append((kind, case, accepted))
    assert not accepted, f"{kind}: {case} was accepted"


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    yield
    report(
        "tokens",
        require=("kinds", "cases"),
        kinds=len({kind for kind, _, _ in CASES}),
        cases=len(CASES),
        accepted_wrongly=sum(1 for *_, accepted in CASES if accepted),
    )


@pytest.fixture(autouse=True)
def _fast(monkeypatch) -> Iterator[None]:
    cheap_passwords(monkeypatch)
    with own_ip():
        yield


def after(delta: timedelta):
    return time_machine.travel(now() + delta, tick=False)


_CSRF = re.compile(r'name="csrf_token" value="[^"]*"')


def plain(tab: WebSession, *secrets: str) -> str:
    """The page without what differs by visitor (CSRF token) or by link (the token itself)."""
    text = _CSRF.sub("", tab.text())
    for secret in secrets:
        text = text.replace(secret, "TOKEN")
    return text


# -- the customer's private link ----------------------------------------------------------


def test_customer_links_refuse_guesses_expiry_replacement_and_revocation(client):
    staff = sign_up(client)
    order_id, email = register_order(staff)
    token = customer_token(email)
    visitor = WebSession(client)
    assert visitor.get(f"/o/{token}").status_code == 200
    guess = new_token()
    answer = visitor.get(f"/o/{guess}")
    refused("customer link", "guessed", answer.status_code != 404)
    guessed_page = plain(visitor, guess)
    with after(timedelta(days=customers.LINK_DAYS_OPEN, minutes=1)):
        assert CustomerAccess.get(*CustomerAccess.key(token_hash(token)))  # TTL has not run
        answer = visitor.get(f"/o/{token}")
        refused("customer link", "expired", answer.status_code != 404)
        # No hint: an expired link looks exactly like a guessed one.
        assert plain(visitor, token) == guessed_page
    staff.get(f"/orders/{order_id}")
    assert staff.post(f"/orders/{order_id}/access/resend").status_code == 303
    fresh = customer_token(email)
    assert fresh != token and visitor.get(f"/o/{fresh}").status_code == 200
    refused("customer link", "replaced by a new one", visitor.get(f"/o/{token}").status_code != 404)
    staff.get(f"/orders/{order_id}")
    assert staff.post(f"/orders/{order_id}/access/revoke").status_code == 303
    answer = visitor.post(f"/o/{fresh}/messages", {"text": "still here?"})
    refused("customer link", "revoked (write)", answer.status_code != 404)
    refused("customer link", "revoked", visitor.get(f"/o/{fresh}").status_code != 404)
    assert plain(visitor, fresh) == guessed_page


# -- staff invitations ------------------------------------------------------------------------


def _invite(admin: WebSession) -> tuple[str, str]:
    email = unique_email("invitee")
    admin.get("/settings/users")
    answer = admin.post(
        "/settings/users/invite", {"name": "Invitee", "email": email, "role": "admin"}
    )
    assert answer.status_code == 303, admin.text()
    return email, link_in(last_mail_to(email), "/invite/")


def _users_of(company_id: str) -> int:
    return sum(1 for item in Item.query(keys.company(company_id)) if isinstance(item, User))


def test_staff_invitations_refuse_guesses_expiry_reuse_and_revocation(client):
    admin = sign_up(client)
    company_id = ids_of(admin)[0]
    guest = WebSession(client)
    guess = new_token()
    refused("staff invitation", "guessed", guest.get(f"/invite/{guess}").status_code != 404)
    guessed_page = plain(guest, guess)
    _late_email, late = _invite(admin)
    _used_email, used = _invite(admin)
    _revoked_email, revoked = _invite(admin)
    before = _users_of(company_id)
    # Used once: the second acceptance is refused and creates nobody.
    assert guest.get(used).status_code == 200
    assert guest.post(used, {"name": "First", "password": PASSWORD}).status_code == 303
    second = WebSession(client)
    answer = second.post(
        used, {"name": "Second", "password": "another password 1"}, csrf=second.csrf()
    )
    refused("staff invitation", "reused", answer.status_code != 404)
    assert _users_of(company_id) == before + 1
    admin.get("/settings/users")
    revoke = f"/settings/users/invitations/{token_hash(revoked.rsplit('/', 1)[1])}/revoke"
    assert admin.post(revoke).status_code == 303
    tab = WebSession(client)
    refused("staff invitation", "revoked", tab.get(revoked).status_code != 404)
    assert plain(tab, revoked.rsplit("/", 1)[1]) == guessed_page
    late_token = late.rsplit("/", 1)[1]
    with after(users.INVITE_LIFETIME + timedelta(minutes=1)):
        assert LinkToken.get(*LinkToken.key("INVITE", token_hash(late_token)))  # TTL has not run
        tab = WebSession(client)
        refused("staff invitation", "expired", tab.get(late).status_code != 404)
        answer = tab.post(late, {"name": "Late", "password": PASSWORD}, csrf=tab.csrf())
        refused("staff invitation", "expired (accept)", answer.status_code != 404)
    assert _users_of(company_id) == before + 1


# -- partner invitations --------------------------------------------------------------------


def _partner_invite(admin: WebSession) -> str:
    email = unique_email("partner-invitee")
    admin.get("/partners")
    answer = admin.post("/partners/invite", {"email": email, "relationship": "approve"})
    assert answer.status_code == 303, admin.text()
    return link_in(last_mail_to(email), "/signup?invite=").split("invite=", 1)[1]


def _join(client, invite: str) -> str:
    """Sign a new company up through an invitation link; its id."""
    tab = WebSession(client)
    tab.get(f"/signup?invite={invite}")
    answer = tab.post(
        "/signup",
        {
            "company_name": "Joiner",
            "business_type": "HVAC",
            "area": "Manaus",
            "contact_name": "Rita",
            "phone": "+55 92 98888-0000",
            "email": unique_email("joiner"),
            "password": PASSWORD,
            "invite": invite,
        },
    )
    assert answer.status_code == 303, tab.text()
    return ids_of(tab)[0]


def _partners_of(company_id: str) -> int:
    prefix = "PARTNER#"
    return sum(1 for item in Item.query(keys.company(company_id)) if item.sk.startswith(prefix))


def test_partner_invitations_refuse_guesses_expiry_reuse_and_revocation(client):
    inviter = sign_up(client)
    inviter_id = ids_of(inviter)[0]
    refused("partner invitation", "guessed", _partners_of(_join(client, new_token())) != 0)
    used = _partner_invite(inviter)
    assert _partners_of(_join(client, used)) == 1  # the real one works once
    refused("partner invitation", "reused", _partners_of(_join(client, used)) != 0)
    revoked = _partner_invite(inviter)
    inviter.get("/partners")
    answer = inviter.post(f"/partners/invitations/{token_hash(revoked)}/revoke")
    assert answer.status_code == 303
    refused("partner invitation", "revoked", _partners_of(_join(client, revoked)) != 0)
    late = _partner_invite(inviter)
    with after(partners.INVITE_LIFETIME + timedelta(minutes=1)):
        refused("partner invitation", "expired", _partners_of(_join(client, late)) != 0)
    assert _partners_of(inviter_id) == 1


# -- password reset -------------------------------------------------------------------------


def _reset_link(client, email: str) -> str:
    tab = WebSession(client)
    tab.get("/password/forgot")
    tab.post("/password/forgot", {"email": email})
    return link_in(last_mail_to(email), "/password/reset/")


def _can_log_in(client, email: str, password: str) -> bool:
    tab = WebSession(client)
    tab.get("/login")
    return tab.post("/login", {"email": email, "password": password}).status_code == 303


def test_password_reset_links_refuse_guesses_expiry_and_reuse(client):
    owner = sign_up(client)
    tab = WebSession(client)
    guess = new_token()
    refused("password reset", "guessed", tab.get(f"/password/reset/{guess}").status_code != 404)
    guessed_page = plain(tab, guess)
    late = _reset_link(client, owner.email)
    with after(RESET_LIFETIME + timedelta(minutes=1)):
        assert LinkToken.get(*LinkToken.key("RESET", token_hash(late.rsplit("/", 1)[1])))
        late_tab = WebSession(client)
        refused("password reset", "expired", late_tab.get(late).status_code != 404)
        assert plain(late_tab, late.rsplit("/", 1)[1]) == guessed_page
        answer = late_tab.post(late, {"password": "expired link password"}, csrf=late_tab.csrf())
        refused("password reset", "expired (set)", answer.status_code != 404)
    link = _reset_link(client, owner.email)
    tab.get(link)
    assert tab.post(link, {"password": "first new password"}).status_code == 303
    again = WebSession(client)
    answer = again.post(link, {"password": "second new password"}, csrf=again.csrf())
    refused("password reset", "reused", answer.status_code != 404)
    assert _can_log_in(client, owner.email, "first new password")
    assert not _can_log_in(client, owner.email, "second new password")
    assert not _can_log_in(client, owner.email, "expired link password")


# -- the e-mail validation code ------------------------------------------------------------------


def _verify(tab: WebSession, code: str):
    tab.get("/verify-email")
    return tab.post("/verify-email", {"code": code})


def _validated(tab: WebSession) -> bool:
    from chalicelib.db.accounts import Company

    return bool(Company.get(*Company.key(ids_of(tab)[0]), consistent_read=True).email_validated)


def test_email_codes_refuse_guessing_expiry_and_reuse(client):
    guessed = sign_up(client, validate=False)
    code = code_in(last_mail_to(guessed.email))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(CODE_MAX_TRIES):
        _verify(guessed, wrong)
    # Five wrong guesses burn the code: the right one is now refused too.
    _verify(guessed, code)
    refused("e-mail code", "right code after five wrong guesses", _validated(guessed))
    late = sign_up(client, validate=False)
    late_code = code_in(last_mail_to(late.email))
    with after(CODE_LIFETIME + timedelta(minutes=1)):
        _verify(late, late_code)
        refused("e-mail code", "expired", _validated(late))
    used = sign_up(client, validate=False)
    used_code = code_in(last_mail_to(used.email))
    assert _verify(used, used_code).status_code == 303 and _validated(used)
    # Sent again (a second tab, a double click), it answers "done" and changes nothing;
    # it can never validate another address: the one asked for next keeps waiting.
    assert _verify(used, used_code).status_code == 303
    first_address = used.email
    assert save_settings(used, email=unique_email("next")).status_code == 303
    _verify(used, used_code)
    company = Company.get(*Company.key(ids_of(used)[0]), consistent_read=True)
    refused(
        "e-mail code",
        "reused for the next address",
        company.email != first_address or company.pending_email is None,
    )


# -- intake: the confirmation link and the form code -----------------------------------------------


def test_intake_links_refuse_guesses_expiry_and_reuse_and_rotated_codes(client, monkeypatch):
    monkeypatch.setattr(intake, "RATE_LIMITS", ())
    admin = sign_up(client)
    code = open_intake_form(admin)
    visitor = WebSession(client)
    guess = new_token()
    answer = visitor.get(f"/intake/confirm/{guess}")
    refused("intake confirmation", "guessed", answer.status_code != 404)
    refused(
        "intake confirmation",
        "guessed (confirm)",
        visitor.post(f"/intake/confirm/{guess}", {}, csrf=None).status_code != 404,
    )
    _email, late = intake_confirmation_token(visitor, code)
    _email, used = intake_confirmation_token(visitor, code)
    with after(intake.PENDING_LIFETIME + timedelta(minutes=1)):
        answer = visitor.post(f"/intake/confirm/{late}", {}, csrf=None)
        refused("intake confirmation", "expired", answer.status_code not in (404, 410))
    assert visitor.post(f"/intake/confirm/{used}", {}, csrf=None).status_code == 200
    first = re.search(r"#(\d+)", visitor.text())
    visitor.post(f"/intake/confirm/{used}", {}, csrf=None)
    again = re.search(r"#(\d+)", visitor.text())
    # Confirming twice answers with the same order: no second order is created.
    refused(
        "intake confirmation", "reused", not (first and again and first.group(1) == again.group(1))
    )
    counter = OrderCounter.get(*OrderCounter.key(ids_of(admin)[0]), consistent_read=True)
    refused("intake confirmation", "reused (orders)", counter.last_number != 1)
    new_code = open_intake_form(admin)
    assert new_code != code
    refused("intake form code", "rotated (page)", visitor.get(f"/intake/{code}").status_code != 404)
    answer = client.http.post(
        f"/api/v1/intake/{code}", headers={"Content-Type": "application/json"}, body="{}"
    )
    refused("intake form code", "rotated (API)", answer.status_code != 404)
    refused("intake form code", "guessed", visitor.get(f"/intake/{new_token()}").status_code != 404)


# -- export pages ---------------------------------------------------------------------------------


def test_export_pages_refuse_guesses_and_expire_before_ttl(client):
    admin = sign_up(client)
    register_order(admin)
    admin.get("/orders?view=all")
    answer = admin.post("/exports", {"view": "all"})
    assert answer.status_code == 303
    page = answer.headers["Location"]
    export.join_background()
    assert admin.get(page).status_code == 200
    link = re.search(r'href="(https?://[^"]+)"', admin.text())
    assert link and "X-Amz-Expires=600" in link.group(1).replace("&amp;", "&")
    refused("export", "guessed id", admin.get(f"/exports/{new_token()[:32]}").status_code != 404)
    with after(timedelta(days=export.JOB_DAYS, minutes=1)):
        # The session idles out over two days: sign in again, then ask.
        again = WebSession(client)
        again.get("/login")
        assert again.post("/login", {"email": admin.email, "password": PASSWORD}).status_code == 303
        refused("export", "expired", again.get(page).status_code != 404)


# -- partnership ---------------------------------------------------------------------------------


def test_a_deleted_partnership_refuses_the_partners_actions_on_the_shared_order(client):
    owner = sign_up(client)
    partner = sign_up(client)
    make_partners(owner, partner)
    order_id, _ = register_order(owner)
    share_order(owner, order_id, ids_of(partner)[0])
    partner.get(f"/partners/{ids_of(owner)[0]}")
    assert partner.post(f"/partners/{ids_of(owner)[0]}/delete").status_code == 303
    before = Order.get(*Order.key(order_id), consistent_read=True)
    partner.get(f"/orders/{order_id}")
    form = {"action": "start", "version": order_version(order_id)}
    partner.post(f"/orders/{order_id}/status", form)
    partner.get(f"/orders/{order_id}")
    partner.post(
        f"/orders/{order_id}/quote", {"quote_value": "10", "version": order_version(order_id)}
    )
    after_ = Order.get(*Order.key(order_id), consistent_read=True)
    refused(
        "partnership",
        "deleted (act on the shared order)",
        (after_.status, after_.version, after_.quote_value)
        != (before.status, before.version, before.quote_value),
    )
    answer = partner.post(f"/partners/{ids_of(owner)[0]}/accept", {"rev": "9"})
    refused(
        "partnership",
        "deleted (accept again)",
        answer.status_code not in (303, 404) or _partners_active(ids_of(partner)[0]),
    )


def _partners_active(company_id: str) -> bool:
    return any(
        item.sk.startswith("PARTNER#") and getattr(item, "state", "") == partners.ACTIVE
        for item in Item.query(keys.company(company_id))
    )

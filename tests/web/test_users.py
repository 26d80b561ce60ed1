"""Users and roles: invitations, accepting them, role changes, removal, the last admin."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine

from chalicelib.db.accounts import Company, Invitation, Item, LinkToken, Login, User
from chalicelib.db.keys import company as company_pk
from chalicelib.domain.tokens import token_hash
from chalicelib.services.sessions import Principal, now
from chalicelib.services.users import INVITE_LIFETIME, LastAdmin, remove_user, set_role
from tests.web.factories import (
    PASSWORD,
    ids_of,
    invite_member,
    last_mail_to,
    link_in,
    mails_to,
    sign_up,
    unique_email,
)
from tests.web.session import WebSession

USERS = "/settings/users"


def _invite(admin: WebSession, email: str, role: str = "staff", name: str = "Bruno Lima") -> str:
    """Send an invitation from the users page; returns the link path from the e-mail."""
    admin.get(USERS)
    response = admin.post(USERS + "/invite", {"name": name, "email": email, "role": role})
    assert response.status_code == 303, admin.text()
    return link_in(last_mail_to(email), "/invite/")


def _company(tab: WebSession) -> Company:
    return Company.get(*Company.key(ids_of(tab)[0]))


def _user(tab: WebSession) -> User:
    return User.get(*User.key(*ids_of(tab)))


def _admin_links_shown(tab: WebSession) -> bool:
    tab.get("/")
    return 'href="/settings"' in tab.text()  # the nav's Settings hub, admins only


# -- inviting and accepting ----------------------------------------------


def test_invitation_mail_comes_from_the_company_with_a_working_link(client):
    admin = sign_up(client, company_name="Oficina Azul")
    email = unique_email("new")
    link = _invite(admin, email)
    mail = last_mail_to(email)
    assert mail.subject == "Oficina Azul invites you to CheckOS"
    assert mail.sender.startswith("Oficina Azul <")
    assert mail.reply_to == admin.email  # the company e-mail is validated
    assert "7 days" in mail.text
    assert link.startswith("/invite/")
    admin.get(USERS)
    assert email in admin.text() and "Pending invitations (1)" in admin.text()


def test_reply_to_is_left_out_while_the_company_email_is_not_validated(client):
    admin = sign_up(client, validate=False)
    email = unique_email("new")
    _invite(admin, email)
    assert last_mail_to(email).reply_to == ""


def test_accepting_creates_the_user_with_the_invited_role_and_signs_them_in(client):
    admin = sign_up(client, company_name="Oficina Verde")
    email = unique_email("staff")
    link = _invite(admin, email, role="staff", name="Carla Dias")
    guest = WebSession(client)
    page = guest.get(link)
    assert page.status_code == 200
    assert "Join Oficina Verde on CheckOS" in guest.text()
    assert f'value="{email}"' in guest.text() and "readonly" in guest.text()
    assert 'value="Carla Dias"' in guest.text()  # pre-filled from the invitation
    response = guest.post(link, {"name": "Carla Dias", "password": PASSWORD})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    home = guest.get("/")
    assert "Hello, Carla Dias" in guest.text() and "Welcome to Oficina Verde!" in guest.text()
    assert home.status_code == 200
    user = _user(guest)
    assert (user.role, user.email, user.company_id) == ("staff", email, ids_of(admin)[0])
    assert not _admin_links_shown(guest)
    admin.get(USERS)
    assert "Pending invitations (0)" in admin.text() and "Carla Dias" in admin.text()
    # The new login works on its own.
    again = WebSession(client)
    again.get("/login")
    assert again.post("/login", {"email": email, "password": PASSWORD}).status_code == 303


def test_an_invited_admin_is_an_admin_and_counts_as_one(client):
    admin = sign_up(client)
    assert _company(admin).admin_count == 1
    second = invite_member(client, admin, role="admin")
    assert _user(second).role == "admin"
    assert _admin_links_shown(second)
    assert second.get(USERS).status_code == 200
    assert _company(admin).admin_count == 2


def test_invitation_token_is_stored_only_as_its_hash(client):
    admin = sign_up(client)
    email = unique_email("hashed")
    link = _invite(admin, email)
    token = link.rsplit("/", 1)[1]
    assert len(token) >= 43  # 256 bits, url-safe base64
    digest = token_hash(token)
    stored = LinkToken.get(*LinkToken.key("INVITE", digest))
    pending = Invitation.get(*Invitation.key(ids_of(admin)[0], digest))
    for item in (stored, pending):
        assert item.expires_at is not None
        lifetime = item.expires_at - now()
        assert INVITE_LIFETIME - timedelta(minutes=5) < lifetime <= INVITE_LIFETIME
    # No attribute of any item the invitation wrote holds the plain token.
    written = [*Item.query(company_pk(ids_of(admin)[0])), stored]
    for item in written:
        assert token not in json.dumps(item.serialize(), default=str)
    admin.get(USERS)
    assert token not in admin.text()


def test_an_expired_invitation_answers_the_translated_404(client):
    admin = sign_up(client)
    link = _invite(admin, unique_email("late"))
    guest = WebSession(client, accept_language="es")
    later = now() + INVITE_LIFETIME + timedelta(minutes=1)
    with time_machine.travel(later, tick=False):
        page = guest.get(link)
        assert page.status_code == 404
        assert "Esta invitación ya no es válida" in guest.text()
        response = guest.post(link, {"name": "Late", "password": PASSWORD})
        assert response.status_code == 404


def test_an_invitation_link_works_once(client):
    admin = sign_up(client)
    email = unique_email("once")
    link = _invite(admin, email)
    first = WebSession(client)
    first.get(link)
    assert first.post(link, {"name": "Once", "password": PASSWORD}).status_code == 303
    second = WebSession(client)
    assert second.get(link).status_code == 404
    assert "no longer valid" in second.text()
    # Even a form loaded before the first use cannot be replayed.
    replay = first.post(link, {"name": "Twice", "password": PASSWORD})
    assert replay.status_code == 404
    assert len(list(User.query(company_pk(ids_of(admin)[0]), User.sk.startswith("USER#")))) == 2


def test_a_revoked_invitation_stops_working(client):
    admin = sign_up(client)
    email = unique_email("revoked")
    link = _invite(admin, email)
    digest = token_hash(link.rsplit("/", 1)[1])
    admin.get(USERS)
    response = admin.post(f"{USERS}/invitations/{digest}/revoke", {})
    assert response.status_code == 303
    admin.get(USERS)
    assert "link no longer works" in admin.text() and email not in admin.text()
    assert WebSession(client).get(link).status_code == 404
    assert admin.post(f"{USERS}/invitations/{digest}/revoke", {}).status_code == 404


def test_inviting_an_address_again_replaces_the_first_link(client):
    admin = sign_up(client)
    email = unique_email("twice")
    first = _invite(admin, email)
    second = _invite(admin, email)
    assert first != second
    assert WebSession(client).get(first).status_code == 404
    assert WebSession(client).get(second).status_code == 200
    admin.get(USERS)
    assert "Pending invitations (1)" in admin.text()


def test_an_address_that_already_has_a_login_is_refused(client):
    admin = sign_up(client)
    other = sign_up(client)
    before = len(mails_to(other.email))
    admin.get(USERS)
    response = admin.post(
        USERS + "/invite", {"name": "Taken", "email": other.email.upper(), "role": "staff"}
    )
    assert response.status_code == 422
    assert "already has a CheckOS account" in admin.text()
    assert 'value="Taken"' in admin.text()  # what was typed is kept
    assert len(mails_to(other.email)) == before


def test_invite_form_problems_are_shown_beside_the_fields(client):
    admin = sign_up(client)
    admin.get(USERS)
    response = admin.post(USERS + "/invite", {"name": "", "email": "nope", "role": "owner"})
    assert response.status_code == 422
    body = admin.text()
    assert 'id="e-name"' in body and 'id="e-email"' in body and 'id="e-role"' in body
    assert "Team members (1)" in body  # the page around the form is complete


def test_accept_form_errors_keep_the_invitation_usable(client):
    admin = sign_up(client)
    link = _invite(admin, unique_email("typo"))
    guest = WebSession(client)
    guest.get(link)
    response = guest.post(link, {"name": "", "password": "short"})
    assert response.status_code == 422
    assert "Use at least 10 characters" in guest.text()
    assert guest.post(link, {"name": "Fixed", "password": PASSWORD}).status_code == 303


def test_an_address_that_signed_up_meanwhile_cannot_accept(client):
    admin = sign_up(client)
    email = unique_email("meanwhile")
    link = _invite(admin, email)
    sign_up(client, email=email)
    guest = WebSession(client)
    guest.get(link)
    response = guest.post(link, {"name": "Meanwhile", "password": PASSWORD})
    assert response.status_code == 409
    assert "cannot join another company" in guest.text()


def test_accepting_while_signed_in_as_someone_else_signs_them_out_first(client):
    admin = sign_up(client)
    link = _invite(admin, unique_email("switch"))
    someone = sign_up(client)
    old_cookie = someone.cookies["sid"]
    someone.get(link)
    assert f"You are signed in as {someone.email}" in someone.text()
    assert someone.post(link, {"name": "Switch", "password": PASSWORD}).status_code == 303
    assert ids_of(someone)[0] == ids_of(admin)[0]  # now in the inviting company
    replay = WebSession(client)
    replay.cookies = {"sid": old_cookie}
    assert replay.get("/verify-email").status_code == 303  # the old session ended


# -- roles ---------------------------------------------------------------


def test_staff_cannot_open_the_users_page_or_change_anything(client):
    admin = sign_up(client)
    staff = invite_member(client, admin)
    staff_id = ids_of(staff)[1]
    response = staff.get(USERS)
    assert response.status_code == 403
    assert "Only administrators of your company can do this." in staff.text()
    portuguese = WebSession(client)
    portuguese.cookies = {**staff.cookies, "lang": "pt-BR"}
    portuguese.get(USERS)
    assert "Somente administradores" in portuguese.text()
    staff.get("/")
    for path, form in (
        (f"{USERS}/{staff_id}/role", {"role": "admin"}),
        (f"{USERS}/{ids_of(admin)[1]}/remove", {}),
        (f"{USERS}/invite", {"name": "X", "email": unique_email(), "role": "admin"}),
    ):
        assert staff.post(path, form).status_code == 403, path
    assert _user(staff).role == "staff"
    assert _user(admin).role == "admin"


def test_a_role_change_takes_effect_on_the_next_request(client):
    admin = sign_up(client)
    staff = invite_member(client, admin)
    staff_id = ids_of(staff)[1]
    assert not _admin_links_shown(staff)
    admin.get(USERS)
    assert admin.post(f"{USERS}/{staff_id}/role", {"role": "admin"}).status_code == 303
    admin.get(USERS)
    assert "Bruno Lima is now an administrator." in admin.text()
    assert _admin_links_shown(staff)
    assert staff.get(USERS).status_code == 200
    assert _company(admin).admin_count == 2
    assert admin.post(f"{USERS}/{staff_id}/role", {"role": "staff"}).status_code == 303
    assert not _admin_links_shown(staff)
    assert staff.get(USERS).status_code == 403
    assert _company(admin).admin_count == 1


def test_an_unknown_role_is_refused(client):
    admin = sign_up(client)
    staff = invite_member(client, admin)
    admin.get(USERS)
    response = admin.post(f"{USERS}/{ids_of(staff)[1]}/role", {"role": "owner"})
    assert response.status_code == 400
    assert _user(staff).role == "staff"


def test_the_last_admin_can_be_neither_demoted_nor_removed(client):
    admin = sign_up(client)
    invite_member(client, admin)  # a staff member does not count
    me = ids_of(admin)[1]
    admin.get(USERS)
    response = admin.post(f"{USERS}/{me}/role", {"role": "staff"})
    assert response.status_code == 303
    admin.get(USERS)
    assert "must always have at least one administrator" in admin.text()
    response = admin.post(f"{USERS}/{me}/remove", {})
    assert response.status_code == 303
    admin.get(USERS)
    assert "must always have at least one administrator" in admin.text()
    assert _user(admin).role == "admin"
    assert _company(admin).admin_count == 1
    assert Login.get(*Login.key(admin.email)).user_id == me


def test_an_admin_can_step_down_while_another_admin_remains(client):
    admin = sign_up(client)
    other = invite_member(client, admin, role="admin")
    me = ids_of(admin)[1]
    admin.get(USERS)
    response = admin.post(f"{USERS}/{me}/role", {"role": "staff"})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert admin.get(USERS).status_code == 403
    assert _company(other).admin_count == 1
    # Now the other admin is the last one.
    other.get(USERS)
    other.post(f"{USERS}/{ids_of(other)[1]}/role", {"role": "staff"})
    assert _user(other).role == "admin"


def test_two_admins_demoting_each_other_at_once_leave_one_admin(client):
    """Both requests passed the admin check before either wrote: the race a
    read-then-write rule would lose. The count's condition is checked inside
    each transaction, so the second one fails."""
    first = sign_up(client)
    second = invite_member(client, first, role="admin")
    first_seen = Principal(user=_user(first), company=_company(first))
    second_seen = Principal(user=_user(second), company=_company(second))
    set_role(first_seen, ids_of(second)[1], "staff")
    with pytest.raises(LastAdmin):
        set_role(second_seen, ids_of(first)[1], "staff")
    with pytest.raises(LastAdmin):
        remove_user(second_seen, ids_of(first)[1])
    assert _user(first).role == "admin" and _user(second).role == "staff"
    assert _company(first).admin_count == 1


def test_a_removed_admins_next_request_is_refused(client):
    first = sign_up(client)
    second = invite_member(client, first, role="admin")
    first.get(USERS)
    second.get(USERS)
    first_token, second_token = first.csrf(), second.csrf()
    a = first.post(f"{USERS}/{ids_of(second)[1]}/remove", {}, csrf=first_token)
    b = second.post(f"{USERS}/{ids_of(first)[1]}/remove", {}, csrf=second_token)
    assert a.status_code == 303
    assert b.status_code == 403  # the second admin was removed: signed out
    assert _company(first).admin_count == 1
    assert _user(first).role == "admin"


# -- removal -------------------------------------------------------------


def test_a_removed_users_session_ends_at_once(client):
    admin = sign_up(client)
    staff = invite_member(client, admin, name="Davi Rocha")
    assert staff.get("/verify-email").status_code == 200
    admin.get(USERS)
    response = admin.post(f"{USERS}/{ids_of(staff)[1]}/remove", {})
    assert response.status_code == 303
    admin.get(USERS)
    assert "Davi Rocha was removed" in admin.text()
    assert "Team members (1)" in admin.text()
    gone = staff.get("/verify-email")
    assert gone.status_code == 303 and gone.headers["Location"].startswith("/login")
    login = WebSession(client)
    login.get("/login")
    assert login.post("/login", {"email": staff.email, "password": PASSWORD}).status_code == 401


def test_an_admin_removing_themselves_is_signed_out(client):
    admin = sign_up(client)
    other = invite_member(client, admin, role="admin")
    admin.get(USERS)
    response = admin.post(f"{USERS}/{ids_of(admin)[1]}/remove", {})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert "sid" not in admin.cookies
    assert _company(other).admin_count == 1


# -- the page ------------------------------------------------------------


def test_users_page_lists_users_and_invitations_in_three_requests(client, budget):
    admin = sign_up(client)
    invite_member(client, admin, name="Elisa Prado")
    invite_member(client, admin, role="admin", name="Fábio Reis")
    pending = unique_email("pending")
    _invite(admin, pending, name="Gil Neto")
    with budget:
        response = admin.get(USERS)
    assert response.status_code == 200
    assert budget.dynamodb_requests <= 3, [c.operation for c in budget.dynamodb]
    body = admin.text()
    assert "Team members (3)" in body and "Pending invitations (1)" in body
    for text in ("Elisa Prado", "Fábio Reis", admin.email, pending, "Gil Neto"):
        assert text in body
    # Admins are listed first.
    assert body.index("Fábio Reis") < body.index("Elisa Prado")


def test_sending_an_invitation_costs_seven_dynamodb_requests_at_most(client, budget):
    admin = sign_up(client)
    _invite(admin, unique_email("first"))
    admin.get(USERS)
    with budget:
        response = admin.post(
            USERS + "/invite", {"name": "Cost", "email": unique_email("cost"), "role": "staff"}
        )
    assert response.status_code == 303
    # Session, login check, pending invitations, the transaction, the mailer's one
    # BatchGetItem asking whether the address bounced or complained, and the sending
    # limits' counters (company and recipient; the test client's loopback is not counted).
    assert budget.dynamodb_requests <= 5 + 2, [c.operation for c in budget.dynamodb]
    assert [c.operation for c in budget.calls if c.service != "dynamodb"] == ["SendEmail"]


def test_an_invitation_that_could_not_be_mailed_is_not_kept(client, monkeypatch):
    from chalicelib.aws import mail

    def refuse(message: mail.Mail) -> str:
        raise mail.MailNotSent("SES said no")

    admin = sign_up(client)
    admin.get(USERS)
    monkeypatch.setattr(mail, "send", refuse)
    email = unique_email("bounce")
    response = admin.post(USERS + "/invite", {"name": "Bounce", "email": email, "role": "staff"})
    assert response.status_code == 303
    monkeypatch.undo()
    admin.get(USERS)
    assert "could not send the invitation" in admin.text()
    assert "Pending invitations (0)" in admin.text() and email not in admin.text()


def test_odd_ids_in_urls_answer_404(client):
    admin = sign_up(client)
    admin.get(USERS)
    for path in (f"{USERS}/{'x' * 2000}/role", f"{USERS}/invitations/{'%2F' * 3}/revoke"):
        assert admin.post(path, {"role": "staff"}).status_code == 404, path


def test_users_page_speaks_the_users_language(client):
    admin = sign_up(client, locale="pt-BR")
    admin.get(USERS)
    body = admin.text()
    assert "Membros da equipe (1)" in body and "Convidar alguém" in body
    assert "Nenhum convite aguardando resposta." in body

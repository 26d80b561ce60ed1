"""Partnerships through the pages: directory, proposal, acceptance, change, deletion, invitation,
and orders shared between an approving company and an executing partner."""

from __future__ import annotations

import json
import re
import secrets
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine

from chalicelib.db.accounts import Company
from chalicelib.db.orders import Order
from chalicelib.db.partners import Partnership
from chalicelib.i18n import LOCALES
from chalicelib.services import partners
from chalicelib.services.sessions import now
from tests.web.company_factories import save_settings, staff_member
from tests.web.factories import ids_of, last_mail_to, link_in, mails_to, sign_up, unique_email
from tests.web.session import WebSession

CATALOG = Path(__file__).resolve().parents[2] / "chalicelib/i18n/catalog/partners.json"
ORDER_FORM = {
    "customer_name": "Marta Figueiredo",
    "customer_phone": "+55 11 95555-0101",
    "customer_email": "marta@example.com",
    "service_type": "Split air conditioner",
    "brand": "Daikin",
    "problem": "Not cooling",
    "priority": "normal",
}


def _company(tab: WebSession) -> str:
    return ids_of(tab)[0]


def _sides(a: str, b: str) -> tuple[Partnership, Partnership]:
    return (
        Partnership.get(*Partnership.key(a, b), consistent_read=True),
        Partnership.get(*Partnership.key(b, a), consistent_read=True),
    )


def _assert_mirrored(a: str, b: str) -> tuple[Partnership, Partnership]:
    """Both items tell the same facts, each from its own side."""
    mine, theirs = _sides(a, b)
    assert (mine.state, mine.awaiting, mine.rev, mine.config_version) == (
        theirs.state,
        theirs.awaiting,
        theirs.rev,
        theirs.config_version,
    )
    assert (mine.we_approve, mine.we_execute) == (theirs.we_execute, theirs.we_approve)
    assert mine.quote_required == theirs.quote_required
    assert len(mine.history) == len(theirs.history)
    return mine, theirs


def _propose(tab: WebSession, target: str, relationship: str = "approve", quote: bool = True):
    assert tab.get(f"/partners/propose?to={target}").status_code == 200, tab.text()
    form = {"to": target, "relationship": relationship}
    if quote:
        form["quote_required"] = "1"
    return tab.post("/partners/propose", form)


def _accept(tab: WebSession, partner: str):
    tab.get(f"/partners/{partner}")
    rev = re.search(r'name="rev" value="(\d+)"', tab.text())
    assert rev, tab.text()
    return tab.post(f"/partners/{partner}/accept", {"rev": rev.group(1)})


def _change(tab: WebSession, partner: str, relationship: str, quote: bool = True):
    tab.get(f"/partners/{partner}")
    rev = re.search(r'name="rev" value="(\d+)"', tab.text()).group(1)  # type: ignore[union-attr]
    form = {"relationship": relationship, "rev": rev}
    if quote:
        form["quote_required"] = "1"
    return tab.post(f"/partners/{partner}/change", form)


def _partners(client, relationship: str = "approve", quote: bool = True):
    """Two companies whose partnership is active: A approves, B executes (by default)."""
    a = sign_up(client, company_name=f"Aprova {secrets.token_hex(2)}")
    b = sign_up(client, company_name=f"Executa {secrets.token_hex(2)}")
    assert _propose(a, _company(b), relationship, quote).status_code == 303, a.text()
    assert _accept(b, _company(a)).status_code == 303
    assert _sides(_company(a), _company(b))[0].state == "active"
    return a, b


def _order(tab: WebSession) -> str:
    tab.get("/orders/new")
    answer = tab.post("/orders/new", ORDER_FORM)
    assert answer.status_code == 303, tab.text()
    return answer.headers["Location"].rsplit("/", 1)[-1]


def _stored(order_id: str) -> Order:
    return Order.get(*Order.key(order_id), consistent_read=True)


def _share(owner: WebSession, order_id: str, executor: str):
    owner.get(f"/orders/{order_id}")
    return owner.post(
        f"/orders/{order_id}/executor",
        {"action": "assign", "partner_id": executor, "version": str(_stored(order_id).version)},
    )


def _act(tab: WebSession, order_id: str, action: str, note: str = ""):
    tab.get(f"/orders/{order_id}")
    form = {"action": action, "version": str(_stored(order_id).version)}
    if note:
        form["note"] = note
    tab.post(f"/orders/{order_id}/status", form)
    tab.get(f"/orders/{order_id}")
    return tab.text()


def _quote(tab: WebSession, order_id: str, value: str = "350.00", text: str = "Gas and a valve"):
    tab.get(f"/orders/{order_id}")
    return tab.post(
        f"/orders/{order_id}/quote",
        {"quote_value": value, "quote_text": text, "version": str(_stored(order_id).version)},
    )


def _decide(tab: WebSession, order_id: str, decision: str):
    tab.get(f"/orders/{order_id}")
    return tab.post(
        f"/orders/{order_id}/quote/decision",
        {"decision": decision, "version": str(_stored(order_id).version)},
    )


# -- directory -----------------------------------------------------------------


def test_the_directory_finds_active_companies_in_three_requests(client, budget):
    word = "Kx" + secrets.token_hex(3)
    searcher = sign_up(client)
    wanted = sign_up(client, company_name=f"Refrigeração {word} Ltda")
    with budget:
        page = searcher.get(f"/partners/directory?name={word.lower()[:4]}&area=sao")
    assert page.status_code == 200
    assert budget.dynamodb_requests <= 3, [c.operation for c in budget.dynamodb]
    assert f"Refrigeração {word} Ltda" in searcher.text()
    assert f"/partners/propose?to={_company(wanted)}" in searcher.text()


def test_the_directory_never_shows_an_inactive_company(client):
    word = "Kx" + secrets.token_hex(3)
    searcher = sign_up(client)
    leaving = sign_up(client, company_name=f"Oficina {word}")
    searcher.get(f"/partners/directory?name={word}")
    assert f"Oficina {word}" in searcher.text()
    assert save_settings(leaving, status="inactive").status_code == 303
    searcher.get(f"/partners/directory?name={word}")
    assert f"Oficina {word}" not in searcher.text()
    assert 'id="directory-empty"' in searcher.text()


# -- proposal, acceptance, change, deletion ------------------------------------------------


def test_a_proposal_becomes_active_only_when_the_other_admin_accepts(client):
    a = sign_up(client, company_name="Proponente")
    b = sign_up(client, company_name="Aceitante")
    a_id, b_id = _company(a), _company(b)
    assert _propose(a, b_id, "approve").status_code == 303
    mine, theirs = _assert_mirrored(a_id, b_id)
    assert (mine.state, mine.awaiting) == ("proposed", b_id)
    assert (mine.we_approve, mine.we_execute, theirs.we_approve, theirs.we_execute) == (
        True,
        False,
        False,
        True,
    )
    # The proposer cannot accept its own proposal.
    assert _accept(a, b_id).status_code == 303
    assert _sides(a_id, b_id)[0].state == "proposed"
    # The other side sees it waiting, is notified and e-mailed.
    b.get("/partners")
    assert "Proponente" in b.text() and "Waiting for your acceptance." in b.text()
    assert 'action="/partners/' + a_id + '/accept"' in b.text()
    assert "Proponente proposes partnership terms" in last_mail_to(b.email).subject
    assert _accept(b, a_id).status_code == 303
    mine, _theirs = _assert_mirrored(a_id, b_id)
    assert (mine.state, mine.awaiting) == ("active", None)
    assert [h.kind for h in mine.history] == ["proposed", "accepted"]
    a.get("/notifications")
    assert "Partnership update from Aceitante." in a.text()
    # Proposing again while it exists is refused with a clear message.
    _propose(a, b_id)
    a.get(f"/partners/{b_id}")
    assert "You already have a partnership with Aceitante." in a.text()


def test_staff_members_see_partnerships_but_only_admins_decide(client):
    a = sign_up(client)
    b = sign_up(client)
    staff = staff_member(client, b)
    assert staff.get("/partners").status_code == 200
    assert staff.get(f"/partners/propose?to={_company(a)}").status_code == 200
    assert "Only administrators" in staff.text()
    answer = staff.post("/partners/propose", {"to": _company(a), "relationship": "both"})
    assert answer.status_code == 403
    assert "Only administrators of your company can do this." in staff.text()
    _propose(a, _company(b))
    staff.get(f"/partners/{_company(a)}")
    rev = str(_sides(_company(a), _company(b))[0].rev)
    assert staff.post(f"/partners/{_company(a)}/accept", {"rev": rev}).status_code == 403
    assert _sides(_company(a), _company(b))[0].state == "proposed"


def test_a_change_suspends_the_partnership_until_the_other_accepts(client):
    a, b = _partners(client)
    a_id, b_id = _company(a), _company(b)
    assert _change(a, b_id, "both").status_code == 303
    mine, theirs = _assert_mirrored(a_id, b_id)
    assert (mine.state, mine.awaiting, mine.config_version) == ("suspended", b_id, 2)
    assert (theirs.we_approve, theirs.we_execute) == (True, True)
    b.get(f"/partners/{a_id}")
    assert "changed the terms" in b.text() and 'id="accept"' in b.text()
    # The same terms again change nothing.
    _change(b, a_id, "both")
    assert _sides(a_id, b_id)[0].rev == mine.rev
    assert _accept(b, a_id).status_code == 303
    mine, _ = _assert_mirrored(a_id, b_id)
    assert mine.state == "active"
    assert [h.kind for h in mine.history] == ["proposed", "accepted", "changed", "accepted"]


def test_a_decision_taken_on_a_stale_page_gets_a_clear_conflict(client):
    a, b = _partners(client)
    a_id, b_id = _company(a), _company(b)
    _change(a, b_id, "both")
    b.get(f"/partners/{a_id}")
    stale_rev = re.search(r'name="rev" value="(\d+)"', b.text()).group(1)  # type: ignore[union-attr]
    _change(a, b_id, "execute")  # A changes again while B's page is open
    b.post(f"/partners/{a_id}/accept", {"rev": stale_rev})
    b.get(f"/partners/{a_id}")
    assert "The partnership changed meanwhile" in b.text()
    mine, _ = _assert_mirrored(a_id, b_id)
    assert (mine.state, mine.we_approve, mine.we_execute) == ("suspended", False, True)


def test_deleting_disables_at_once_without_acceptance(client):
    a, b = _partners(client)
    a_id, b_id = _company(a), _company(b)
    b.get(f"/partners/{a_id}")
    assert b.post(f"/partners/{a_id}/delete").status_code == 303
    mine, _ = _assert_mirrored(a_id, b_id)
    assert (mine.state, mine.awaiting) == ("disabled", None)
    a.get(f"/partners/{b_id}")
    assert "Deleted" in a.text() and "deleted the partnership" in a.text()
    # After a deletion either side may propose again.
    assert _propose(a, b_id, "both").status_code == 303
    mine, _ = _assert_mirrored(a_id, b_id)
    assert (mine.state, mine.awaiting) == ("proposed", b_id)


def test_an_invitation_leads_to_a_prefilled_sign_up_and_a_pending_proposal(client):
    a = sign_up(client, company_name="Convidante")
    email = unique_email("partner")
    a.get("/partners")
    answer = a.post(
        "/partners/invite",
        {
            "email": email,
            "company_name": "Clima Norte",
            "relationship": "approve",
            "quote_required": "1",
        },
    )
    assert answer.status_code == 303, a.text()
    a.get("/partners")
    assert "Clima Norte" in a.text() and email in a.text()
    mail = last_mail_to(email)
    assert "Convidante invites you" in mail.subject
    link = link_in(mail, "/signup?invite=")
    token = link.split("invite=", 1)[1]
    # The token is stored only as its hash.
    assert token not in json.dumps(
        [i.serialize() for i in partners.overview(_company(a)).invitations], default=str
    )
    guest = WebSession(client)
    guest.get(link)
    assert 'value="Clima Norte"' in guest.text() and f'value="{email}"' in guest.text()
    assert f'name="invite" value="{token}"' in guest.text()
    answer = guest.post(
        "/signup",
        {
            "company_name": "Clima Norte",
            "business_type": "HVAC",
            "area": "Manaus",
            "contact_name": "Rita",
            "phone": "+55 92 98888-0000",
            "email": email,
            "password": "correct horse battery",
            "invite": token,
        },
    )
    assert answer.status_code == 303, guest.text()
    guest_id, a_id = _company(guest), _company(a)
    _mine, theirs = _assert_mirrored(a_id, guest_id)
    assert (theirs.state, theirs.awaiting) == ("proposed", guest_id)
    assert (theirs.we_approve, theirs.we_execute) == (False, True)  # they execute
    guest.get("/partners")
    assert "Convidante" in guest.text() and "Waiting for your acceptance." in guest.text()
    a.get("/partners")
    assert "Clima Norte" not in re.sub(r"(?s).*id=\"invitations\"", "", a.text())
    # Single use: the same link no longer pre-fills anything.
    again = WebSession(client)
    again.get(link)
    assert "no longer valid" in again.text() and 'name="invite"' not in again.text()


def test_a_partner_invitation_expires_after_fourteen_days(client):
    a = sign_up(client)
    email = unique_email("late")
    a.get("/partners")
    a.post("/partners/invite", {"email": email, "relationship": "both"})
    link = link_in(last_mail_to(email), "/signup?invite=")
    with time_machine.travel(now() + timedelta(days=14, minutes=1), tick=False):
        late = WebSession(client)
        late.get(link)
        assert "no longer valid" in late.text() and 'name="invite"' not in late.text()
        token = link.split("invite=", 1)[1]
        with pytest.raises(partners.InvitationGone):
            partners.join_by_invitation(token, Company.get(*Company.key(_company(a))))
    a.get("/partners")
    assert email in a.text()  # still listed (as expired) until cancelled or removed by TTL


def test_inviting_an_address_with_an_account_points_to_the_directory(client):
    a = sign_up(client)
    existing = sign_up(client)
    a.get("/partners")
    answer = a.post("/partners/invite", {"email": existing.email, "relationship": "both"})
    assert answer.status_code == 422
    assert "already has a CheckOS account" in a.text()
    assert not [m for m in mails_to(existing.email) if "invites you" in m.subject]


# -- shared orders -----------------------------------------------------------------


def test_a_shared_order_goes_quote_approval_execution_with_one_chat(client):
    a, b = _partners(client)
    a_id, b_id = _company(a), _company(b)
    order_id = _order(a)
    assert _share(a, order_id, b_id).status_code == 303, a.text()
    order = _stored(order_id)
    assert (order.company_id, order.executor_id, order.quote_required) == (a_id, b_id, True)
    # The executor sees it in its own list, marked as shared by A.
    b.get("/orders?view=all")
    assert "Marta Figueiredo" in b.text()
    # It cannot start before the quote is approved: no button, and the service refuses.
    page = b.get(f"/orders/{order_id}")
    assert page.status_code == 200
    assert 'data-action="start"' not in b.text() and "Send a quote" in b.text()
    text = _act(b, order_id, "start")
    assert re.search(r"Aprova [0-9a-f]{4} must approve your quote first", text), text
    assert _stored(order_id).status == "registered"
    # Cancelling is the owner's decision.
    assert "Only " in _act(b, order_id, "cancel", note="not mine")
    assert _stored(order_id).status == "registered"
    # Quote, approval, execution.
    assert _quote(b, order_id).status_code == 303
    assert (_stored(order_id).quote_state, _stored(order_id).quote_value) == ("pending", "350.00")
    a.get(f"/orders/{order_id}")
    assert 'data-action="approve-quote"' in a.text()
    assert _decide(a, order_id, "approve").status_code == 303
    assert _stored(order_id).quote_state == "approved"
    _act(b, order_id, "start")
    assert _stored(order_id).status == "in_progress"
    _act(b, order_id, "complete")
    assert _stored(order_id).status == "completed"
    # One chat: each side sees the other's messages marked as the partner's.
    b.get(f"/orders/{order_id}")
    b.post(f"/orders/{order_id}/messages", {"text": "Done, the valve was replaced."})
    a.get(f"/orders/{order_id}")
    a.post(f"/orders/{order_id}/messages", {"text": "Thanks, closing with the customer."})
    a.get(f"/orders/{order_id}")
    assert "Done, the valve was replaced." in a.text()
    assert f"partner · {order.executor_name}" in a.text()
    b.get(f"/orders/{order_id}")
    assert "Thanks, closing with the customer." in b.text()
    assert f"partner · {order.owner_name}" in b.text()
    history = b.text()
    for line in ("shared the order with a partner", "sent a quote", "approved the quote"):
        assert line in history
    # The owner stays the owner (customer e-mails come from it).
    assert _stored(order_id).company_id == a_id


def test_the_executor_cannot_edit_the_owners_order(client):
    a, b = _partners(client)
    order_id = _order(a)
    _share(a, order_id, _company(b))
    b.get(f"/orders/{order_id}")
    assert f'href="/orders/{order_id}/edit"' not in b.text()
    assert b.get(f"/orders/{order_id}/edit").status_code == 403
    assert "can edit it" in b.text()


def test_a_rejected_quote_can_be_replaced(client):
    a, b = _partners(client)
    order_id = _order(a)
    _share(a, order_id, _company(b))
    _quote(b, order_id, "900")
    _decide(a, order_id, "reject")
    assert _stored(order_id).quote_state == "rejected"
    answer = _quote(b, order_id, "abc")
    assert answer.status_code == 422 and 'id="e-quote_value"' in b.text()
    assert 'value="abc"' in b.text()  # what was typed is kept
    _quote(b, order_id, "750")
    assert (_stored(order_id).quote_state, _stored(order_id).quote_value) == ("pending", "750.00")


def test_a_suspended_partner_can_read_the_shared_order_but_not_act(client):
    a, b = _partners(client)
    a_id, b_id = _company(a), _company(b)
    order_id = _order(a)
    _share(a, order_id, b_id)
    _quote(b, order_id)
    _decide(a, order_id, "approve")
    _change(a, b_id, "both")  # A changes the terms: suspended until B accepts
    before = _stored(order_id)
    page = b.get(f"/orders/{order_id}")
    assert page.status_code == 200 and "Marta Figueiredo" in b.text()
    assert 'id="partner-readonly"' in b.text()
    assert 'data-action="start"' not in b.text()
    assert f'action="/orders/{order_id}/messages"' not in b.text()
    assert "is not active" in _act(b, order_id, "start")
    b.post(f"/orders/{order_id}/messages", {"text": "can I?"}, csrf=b.csrf())
    _quote(b, order_id, "1")
    after = _stored(order_id)
    assert (after.status, after.version, after.quote_value) == (
        before.status,
        before.version,
        before.quote_value,
    )
    b.get(f"/orders/{order_id}")
    assert "can I?" not in b.text()
    # A new order cannot be shared while suspended.
    other = _order(a)
    a.get(f"/orders/{other}")
    assert 'action="/orders/' + other + '/executor"' not in a.text()
    # Re-accepted: B may act again.
    _accept(b, a_id)
    _act(b, order_id, "start")
    assert _stored(order_id).status == "in_progress"
    # Deleted: at once; the open order goes back to A and B no longer finds it.
    b.get(f"/partners/{a_id}")
    b.post(f"/partners/{a_id}/delete")
    assert b.get(f"/orders/{order_id}").status_code == 404
    assert a.get(f"/orders/{order_id}").status_code == 200
    assert _stored(order_id).executor_id is None


def test_an_inactive_executor_cannot_act(client):
    a, b = _partners(client)
    order_id = _order(a)
    _share(a, order_id, _company(b))
    assert save_settings(b, status="inactive").status_code == 303
    _quote(b, order_id)
    assert _stored(order_id).quote_state is None


def test_only_partners_where_we_approve_are_offered(client):
    a, b = _partners(client, relationship="execute")  # A executes, B approves
    order_id = _order(a)
    a.get(f"/orders/{order_id}")
    assert 'name="partner_id"' not in a.text()
    answer = _share(a, order_id, _company(b))
    assert answer.status_code == 303
    assert _stored(order_id).executor_id is None


def test_partner_pages_and_the_shared_order_page_stay_within_budget(client, budget):
    a, b = _partners(client)
    order_id = _order(a)
    _share(a, order_id, _company(b))
    for tab, path in (
        (a, "/partners"),
        (b, f"/partners/{_company(a)}"),
        (a, f"/partners/propose?to={_company(b)}"),
        (a, f"/orders/{order_id}"),
        (b, f"/orders/{order_id}"),
    ):
        with budget:
            answer = tab.get(path)
        assert answer.status_code == 200, path
        limit = 4 if path.startswith("/orders/") else 3  # the order page: two partition pages
        assert budget.dynamodb_requests <= limit, (path, [c.operation for c in budget.dynamodb])


def test_every_partner_message_exists_in_every_language():
    entries = json.loads(CATALOG.read_text(encoding="utf-8"))
    for key, texts in entries.items():
        assert set(texts) == set(LOCALES), key
        general = {lang: t["other"] if isinstance(t, dict) else t for lang, t in texts.items()}
        placeholders = {lang: set(re.findall(r"{(\w+)}", text)) for lang, text in general.items()}
        assert len({frozenset(p) for p in placeholders.values()}) == 1, (key, placeholders)
        assert texts["es"] != texts["en"] or texts["pt-BR"] != texts["en"], key


def test_the_company_behind_a_public_page_can_be_proposed_to(client):
    visitor = sign_up(client)
    owner = sign_up(client, company_name=f"Pública {secrets.token_hex(2)}")
    slug = Company.get(*Company.key(_company(owner))).slug
    visitor.get(f"/c/{slug}")
    assert f'href="/partners/propose?to={_company(owner)}"' in visitor.text()
    owner.get(f"/c/{slug}")
    assert "propose-partnership" not in owner.text()

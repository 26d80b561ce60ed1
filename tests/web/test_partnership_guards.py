"""A partner executes a shared order only while the partnership is active: one test per action.

Every write the executor can make on the owner's order (schedule, start,
complete, a chat message, a quote) is refused while the partnership is
suspended (terms changed, not yet re-accepted) and once it is deleted, with
the translated reason, and leaves the order as it was. The same action,
taken while the link is active, goes through: the refusal is the guard's.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Callable

import pytest

from chalicelib.db.accounts import Company
from chalicelib.db.orders import Order
from chalicelib.db.partners import Partnership
from chalicelib.i18n import translate
from tests.awscalls import CALLS
from tests.web.counter_writes import item_reads
from tests.web.factories import ids_of, sign_up
from tests.web.session import WebSession

ORDER_FORM = {
    "customer_name": "Marta Figueiredo",
    "customer_phone": "+55 11 95555-0101",
    "customer_email": "marta@example.com",
    "service_type": "Split air conditioner",
    "brand": "Daikin",
    "problem": "Not cooling",
    "priority": "normal",
}
REFUSED = "is not active"


def _company(tab: WebSession) -> str:
    return ids_of(tab)[0]


def _stored(order_id: str) -> Order:
    return Order.get(*Order.key(order_id), consistent_read=True)


def _rev(tab: WebSession, partner: str) -> str:
    tab.get(f"/partners/{partner}")
    found = re.search(r'name="rev" value="(\d+)"', tab.text())
    assert found, tab.text()
    return found.group(1)


def _partners(client) -> tuple[WebSession, WebSession]:
    """A approves (owns the orders), B executes; quotes required."""
    a = sign_up(client, company_name=f"Aprova {secrets.token_hex(2)}")
    b = sign_up(client, company_name=f"Executa {secrets.token_hex(2)}")
    a.get(f"/partners/propose?to={_company(b)}")
    form = {"to": _company(b), "relationship": "approve", "quote_required": "1"}
    assert a.post("/partners/propose", form).status_code == 303, a.text()
    assert (
        b.post(f"/partners/{_company(a)}/accept", {"rev": _rev(b, _company(a))}).status_code == 303
    )
    return a, b


def _shared_order(a: WebSession, b: WebSession, *, quote_approved: bool, started: bool) -> str:
    a.get("/orders/new")
    answer = a.post("/orders/new", ORDER_FORM)
    assert answer.status_code == 303, a.text()
    order_id = answer.headers["Location"].rsplit("/", 1)[-1]
    a.get(f"/orders/{order_id}")
    shared = a.post(
        f"/orders/{order_id}/executor",
        {"action": "assign", "partner_id": _company(b), "version": str(_stored(order_id).version)},
    )
    assert shared.status_code == 303, a.text()
    if quote_approved:
        assert _quote(b, order_id).status_code == 303, b.text()
        a.get(f"/orders/{order_id}")
        decided = a.post(
            f"/orders/{order_id}/quote/decision",
            {"decision": "approve", "version": str(_stored(order_id).version)},
        )
        assert decided.status_code == 303, a.text()
    if started:
        _status(b, order_id, "start")
        assert _stored(order_id).status == "in_progress"
    return order_id


def _status(tab: WebSession, order_id: str, action: str):
    tab.get(f"/orders/{order_id}")
    form = {"action": action, "version": str(_stored(order_id).version)}
    return tab.post(f"/orders/{order_id}/status", form)


def _quote(tab: WebSession, order_id: str, value: str = "350.00"):
    tab.get(f"/orders/{order_id}")
    return tab.post(
        f"/orders/{order_id}/quote",
        {"quote_value": value, "quote_text": "Gas and a valve", "version": _version(order_id)},
    )


def _version(order_id: str) -> str:
    return str(_stored(order_id).version)


def _message(tab: WebSession, order_id: str, text: str):
    tab.get(f"/orders/{order_id}")
    return tab.post(f"/orders/{order_id}/messages", {"text": text})


# What each action needs before it can be taken, and how it is taken.
Action = Callable[[WebSession, str], object]
ACTIONS: dict[str, tuple[dict[str, bool], Action]] = {
    "schedule": (
        {"quote_approved": False, "started": False},
        lambda b, o: _status(b, o, "schedule"),
    ),
    "start": ({"quote_approved": True, "started": False}, lambda b, o: _status(b, o, "start")),
    "complete": ({"quote_approved": True, "started": True}, lambda b, o: _status(b, o, "complete")),
    "message": ({"quote_approved": False, "started": False}, lambda b, o: _message(b, o, "can I?")),
    "quote": ({"quote_approved": False, "started": False}, lambda b, o: _quote(b, o, "777")),
}


def _suspend(a: WebSession, b: WebSession) -> None:
    """A changes the terms: suspended until B accepts them."""
    b_id = _company(b)
    form = {"relationship": "both", "quote_required": "1", "rev": _rev(a, b_id)}
    assert a.post(f"/partners/{b_id}/change", form).status_code == 303, a.text()
    mine = Partnership.get(*Partnership.key(_company(b), _company(a)), consistent_read=True)
    assert mine.state == "suspended"


def _delete(a: WebSession, b: WebSession) -> None:
    b.get(f"/partners/{_company(a)}")
    assert b.post(f"/partners/{_company(a)}/delete").status_code == 303, b.text()


def _written(order_id: str) -> tuple:
    order = _stored(order_id)
    return order.status, order.version, order.quote_value


def _chat_holds(order_id: str, text: str) -> bool:
    from chalicelib.db.base import Item
    from chalicelib.db.orders import OrderMessage

    items = Item.query(Order.key(order_id)[0])
    return any(isinstance(i, OrderMessage) and i.text == text for i in items)


@pytest.mark.parametrize("action", list(ACTIONS))
def test_an_active_partner_may_take_the_action(client, action):
    a, b = _partners(client)
    needs, take = ACTIONS[action]
    order_id = _shared_order(a, b, **needs)
    before = _written(order_id)
    answer = take(b, order_id)
    assert answer.status_code == 303, b.text()
    b.get(f"/orders/{order_id}")
    assert REFUSED not in b.text()
    assert _written(order_id) != before or _chat_holds(order_id, "can I?")


@pytest.mark.parametrize("end", ["suspended", "deleted"])
@pytest.mark.parametrize("action", list(ACTIONS))
def test_a_partner_whose_partnership_is_not_active_cannot_take_the_action(client, action, end):
    a, b = _partners(client)
    needs, take = ACTIONS[action]
    order_id = _shared_order(a, b, **needs)
    (_suspend if end == "suspended" else _delete)(a, b)
    before = _written(order_id)
    take(b, order_id)
    if end == "suspended":
        # The order stays readable to the partner, and the page says why nothing happened.
        assert b.get(f"/orders/{order_id}").status_code == 200
        assert _refusal(a) in b.text()  # the reason, naming the partner
    else:
        # A deleted partnership hands the open order back: it no longer exists for b.
        assert b.get(f"/orders/{order_id}").status_code == 404
        before = _written(order_id)  # the hand-back itself wrote before b's attempt
    assert _written(order_id) == before
    assert not _chat_holds(order_id, "can I?")


# The write alone, the page already open (the page's own read of the link comes before).
POSTS = {
    "start": lambda o: (f"/orders/{o}/status", {"action": "start", "version": _version(o)}),
    "quote": lambda o: (
        f"/orders/{o}/quote",
        {"quote_value": "777", "quote_text": "Gas", "version": _version(o)},
    ),
}


@pytest.mark.parametrize("action", list(POSTS))
def test_a_suspension_landing_between_the_check_and_the_write_still_refuses_it(
    client, monkeypatch, action
):
    """The write itself carries the condition: a link read as active a moment ago is not enough."""
    a, b = _partners(client)
    needs, _take = ACTIONS[action]
    order_id = _shared_order(a, b, **needs)
    b_side = Partnership.key(_company(b), _company(a))
    read = Partnership.get

    def read_then_suspended_by_the_owner(*args, **kwargs):
        found = read(*args, **kwargs)
        if (found.pk, found.sk) == b_side and found.state == "active":
            # The owner's change of terms lands right after this read.
            for pk, sk in (b_side, Partnership.key(_company(a), _company(b))):
                Partnership(pk, sk).update(actions=[Partnership.state.set("suspended")])
        return found

    before = _written(order_id)
    b.get(f"/orders/{order_id}")
    path, form = POSTS[action](order_id)
    monkeypatch.setattr(Partnership, "get", read_then_suspended_by_the_owner)
    b.post(path, form)
    monkeypatch.undo()
    assert Partnership.get(*b_side).state == "suspended"  # the race did happen
    assert _written(order_id) == before
    b.get(f"/orders/{order_id}")
    # The write's own refusal (the flash, not the page's banner) names the partner.
    flashes = re.findall(r'<div class="flash flash-error" role="status">(.*?)</div>', b.text())
    assert _refusal(a) in flashes, flashes


def _name(tab: WebSession) -> str:
    return Company.get(*Company.key(_company(tab))).name


def _refusal(owner: WebSession) -> str:
    return html.escape(translate("en", "partners.not_active", partner=_name(owner)), quote=True)


@pytest.mark.parametrize("action", ["start", "message", "quote"])
def test_the_guard_reads_the_partnership_strongly_consistent(client, action):
    """A suspension written a moment ago must be seen: an eventually consistent read may miss it."""
    a, b = _partners(client)
    needs, take = ACTIONS[action]
    order_id = _shared_order(a, b, **needs)
    b.get(f"/orders/{order_id}")
    mark = CALLS.mark()
    take(b, order_id)
    reads = [r for r in item_reads(mark, "PARTNER#") if r[1].endswith(_company(a))]
    assert reads, "the guard did not read the partnership"
    assert all(consistent for _pk, _sk, consistent in reads), reads


def test_partnership_pages_act_on_a_strongly_consistent_read(client):
    a, b = _partners(client)
    b_id = _company(b)
    form = {"relationship": "both", "quote_required": "1", "rev": _rev(a, b_id)}
    mark = CALLS.mark()  # the change itself, not the page before it
    assert a.post(f"/partners/{b_id}/change", form).status_code == 303, a.text()
    reads = item_reads(mark, "PARTNER#")
    assert reads and all(consistent for _pk, _sk, consistent in reads), reads


def test_the_executor_is_told_who_decides_a_cancellation(client):
    a, b = _partners(client)
    order_id = _shared_order(a, b, quote_approved=False, started=False)
    before = _written(order_id)
    b.get(f"/orders/{order_id}")
    b.post(
        f"/orders/{order_id}/status",
        {"action": "cancel", "note": "x", "version": _version(order_id)},
    )
    assert _written(order_id) == before
    b.get(f"/orders/{order_id}")
    told = translate("en", "partners.owner_decides", owner=_name(a))
    assert html.escape(told, quote=True) in b.text()


def test_the_executor_is_told_to_wait_for_the_owners_approval_of_the_quote(client):
    a, b = _partners(client)
    order_id = _shared_order(a, b, quote_approved=False, started=False)
    before = _written(order_id)
    _status(b, order_id, "start")
    assert _written(order_id) == before
    b.get(f"/orders/{order_id}")
    told = translate("en", "partners.quote_needed", owner=_name(a))
    assert html.escape(told, quote=True) in b.text()


def test_a_partner_whose_partnership_record_is_gone_cannot_see_or_act(client):
    a, b = _partners(client)
    order_id = _shared_order(a, b, quote_approved=False, started=False)
    Partnership(*Partnership.key(_company(b), _company(a))).delete()
    before = _written(order_id)
    _status(b, order_id, "schedule")
    assert _written(order_id) == before
    # No link with the owner: the open order does not exist for b (domain/visibility.py).
    assert b.get(f"/orders/{order_id}").status_code == 404


def test_the_history_shows_the_executors_work_as_the_partners(client):
    from chalicelib.db.base import Item
    from chalicelib.db.orders import OrderEvent

    a, b = _partners(client)
    order_id = _shared_order(a, b, quote_approved=False, started=False)
    assert _status(b, order_id, "schedule").status_code == 303
    moves = [
        i
        for i in Item.query(Order.key(order_id)[0])
        if isinstance(i, OrderEvent) and i.kind == "status"
    ]
    assert [m.actor_kind for m in moves] == ["partner"]


def test_staff_cannot_change_a_partnership_and_are_told_why(client):
    from tests.web.company_factories import staff_member

    a, b = _partners(client)
    staff = staff_member(client, b)
    staff.get("/orders")
    answer = staff.post(f"/partners/{_company(a)}/delete")
    assert answer.status_code == 403
    assert html.escape(translate("en", "error.admin_only"), quote=True) in staff.text()
    assert Partnership.get(*Partnership.key(_company(b), _company(a))).state == "active"

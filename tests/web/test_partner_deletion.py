"""A deleted partnership ends the executor's access to open orders; a suspended one blocks it.

Issue 17, point 2: after a deletion the former partner can no longer open,
act on, chat in or export the owner's open orders, which return to the
owner with a history event and a notification; the completed orders it
executed stay visible to it, read-only and without the owner's internal
notes. A suspended partnership blocks every action of the executor.
"""

from __future__ import annotations

import io
import re

import pytest

from chalicelib.aws import files
from chalicelib.db.exports import ExportJob
from chalicelib.db.orders import Notification, OrderEvent
from chalicelib.services import export
from chalicelib.services.orders import order_view
from tests.web.factories import ids_of
from tests.web.session import WebSession
from tests.web.test_partners import (
    ORDER_FORM,
    _act,
    _change,
    _company,
    _partners,
    _share,
    _stored,
)

NOTE = "owner-only-note-5e1f"


def _order(tab: WebSession, name: str) -> str:
    tab.get("/orders/new")
    form = {**ORDER_FORM, "customer_name": name, "internal_notes": NOTE}
    answer = tab.post("/orders/new", form)
    assert answer.status_code == 303, tab.text()
    return answer.headers["Location"].rsplit("/", 1)[-1]


def _completed_by(executor: WebSession, order_id: str) -> None:
    _act(executor, order_id, "start")
    _act(executor, order_id, "complete")
    assert _stored(order_id).status == "completed"


def _export_cells(tab: WebSession) -> list[str]:
    """Every cell of the company's export of all its orders, as text."""
    from openpyxl import load_workbook

    tab.get("/orders?view=all")
    answer = tab.post("/exports", {"view": "all"})
    assert answer.status_code == 303, tab.text()
    export_id = answer.headers["Location"].rsplit("/", 1)[1]
    job = ExportJob.get(*ExportJob.key(ids_of(tab)[0], export_id), consistent_read=True)
    export.join_background()
    job.refresh(consistent_read=True)
    stored = files.get_bytes(job.s3_key)
    assert stored is not None
    book = load_workbook(io.BytesIO(stored.data))
    return [str(c) for row in book.active.iter_rows(values_only=True) for c in row if c]


def _notes(company_id: str, user_id: str) -> list[Notification]:
    found = Notification.query(Notification.partition(company_id, user_id), consistent_read=True)
    return [n for n in found if isinstance(n, Notification)]


def _post(tab: WebSession, order_id: str, path: str, form: dict[str, str]):
    return tab.post(
        f"/orders/{order_id}{path}", {**form, "version": str(_stored(order_id).version)}
    )


@pytest.mark.parametrize("who_deletes", ["owner", "executor"])
def test_a_deleted_partnership_returns_open_orders_and_keeps_completed_ones_read_only(
    client, who_deletes
):
    a, b = _partners(client, quote=False)
    a_id, b_id = _company(a), _company(b)
    open_id, done_id = _order(a, "Open Olivia"), _order(a, "Done Diego")
    _share(a, open_id, b_id)
    _share(a, done_id, b_id)
    _completed_by(b, done_id)
    deleter, other_side = (a, b_id) if who_deletes == "owner" else (b, a_id)
    deleter.get(f"/partners/{other_side}")
    assert deleter.post(f"/partners/{other_side}/delete").status_code == 303

    # The open order is back with the owner, with a history line and a notification.
    back = _stored(open_id)
    assert back.executor_id is None and back.executor_name is None
    events = [e for e in order_view(a_id, open_id).events if isinstance(e, OrderEvent)]
    assert [e.kind for e in events][-1] == "returned"
    owner_user = ids_of(a)[1]
    returned = [n for n in _notes(a_id, owner_user) if n.kind == "order_returned"]
    assert [n.order_id for n in returned] == [open_id]
    a.get("/notifications")
    assert "is back with you" in a.text()
    assert a.get(f"/orders/{open_id}").status_code == 200

    # The former partner: not found on every path of the open order.
    assert b.get(f"/orders/{open_id}").status_code == 404
    assert b.get(f"/orders/{open_id}/print").status_code == 404
    assert _post(b, open_id, "/status", {"action": "schedule"}).status_code == 404
    assert _post(b, open_id, "/messages", {"text": "still here?"}).status_code == 404
    assert _post(b, open_id, "/quote", {"quote_value": "10"}).status_code == 404
    b.get("/orders?view=all")
    assert "Open Olivia" not in b.text()

    # The completed order stays: read-only, without the owner's internal notes.
    assert b.get(f"/orders/{done_id}").status_code == 200
    page = b.text()
    assert "Done Diego" in page and NOTE not in page
    assert 'action="/orders/' + done_id + '/messages"' not in page
    assert 'action="/orders/' + done_id + '/status"' not in page
    b.get(f"/orders/{done_id}/print")
    assert NOTE not in b.text()
    assert _post(b, done_id, "/messages", {"text": "one more"}).status_code in (303, 403)
    assert all(m.text != "one more" for m in order_view(a_id, done_id).messages)

    # Its export: the completed order, no open one, never the notes.
    cells = _export_cells(b)
    assert "Done Diego" in cells
    assert "Open Olivia" not in cells
    assert not [c for c in cells if NOTE in c]


def test_a_suspended_partnership_blocks_every_action_of_the_executor(client):
    a, b = _partners(client, quote=False)
    b_id = _company(b)
    open_id = _order(a, "Suspended Sofia")
    _share(a, open_id, b_id)
    assert _change(a, b_id, "approve", quote=True).status_code == 303  # suspends
    before = _stored(open_id)

    # Readable, without the notes and without any form to act.
    assert b.get(f"/orders/{open_id}").status_code == 200
    page = b.text()
    assert "Suspended Sofia" in page and NOTE not in page
    assert not re.search(rf'action="/orders/{open_id}/(status|messages|quote)"', page)
    # Every action refused, nothing written.
    for path, form in (
        ("/status", {"action": "schedule"}),
        ("/status", {"action": "start"}),
        ("/messages", {"text": "suspended but talking"}),
        ("/quote", {"quote_value": "10"}),
    ):
        answer = _post(b, open_id, path, form)
        assert answer.status_code in (303, 403), (path, answer.status_code)
    after = _stored(open_id)
    assert (after.version, after.status, after.quote_state) == (
        before.version,
        before.status,
        before.quote_state,
    )
    assert not order_view(_company(a), open_id).messages
    # No new export carries the open order while the link is suspended.
    cells = _export_cells(b)
    assert "Suspended Sofia" not in cells


def test_a_handback_cut_short_never_shows_the_orders_and_deleting_again_finishes_it(
    client, monkeypatch
):
    from chalicelib.services.partners import proposals

    a, b = _partners(client, quote=False)
    a_id, b_id = _company(a), _company(b)
    open_id = _order(a, "Halfway Helena")
    _share(a, open_id, b_id)
    with monkeypatch.context() as patch:
        patch.setattr(proposals, "hand_back_open_orders", lambda *args: 0)  # a run cut short
        a.get(f"/partners/{b_id}")
        assert a.post(f"/partners/{b_id}/delete").status_code == 303
    assert _stored(open_id).executor_id == b_id  # still shared: its rows are still there
    b.get("/orders?view=all")
    assert "Halfway Helena" not in b.text()
    b.get("/orders")
    assert "Halfway Helena" not in b.text()
    assert b.get(f"/orders/{open_id}").status_code == 404
    assert "Halfway Helena" not in _export_cells(b)
    # Deleting again (the link is already disabled) finishes the handback.
    a.get(f"/partners/{b_id}")
    assert a.post(f"/partners/{b_id}/delete").status_code == 303
    assert _stored(open_id).executor_id is None
    kinds = [e.kind for e in order_view(a_id, open_id).events]
    assert kinds.count("returned") == 1

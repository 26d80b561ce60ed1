"""The access matrix's output channels: no field reaches a viewer who may not see it, anywhere.

Issue 17, point 1. Company A plants a distinct marker in every text field of
its orders (standard fields, a custom field, the internal notes, chat
messages by both companies) and in its private items (a pending staff
invitation). Its orders are shared with three partners: one active, one
whose partnership is then suspended and one whose partnership is then
deleted; each executes an open and a completed order. Then every actor of
the matrix's cast (anonymous, another company, the three partners, A's
staff and admin, A's customer holding a private link, an intake visitor)
collects everything each output channel gives it:

- pages (order list, every order page and its print view, home, partners),
- its XLSX export of every order (every cell),
- its data archive (every file in the zip; the XLSX inside, cell by cell),
- the e-mails the local outbox holds for its addresses (text and HTML parts),
- JSON answers (the intake API),
- notifications (the notifications page),

and every marker found is checked against what that actor may see. The
expectations are written out here, independently of
``chalicelib/domain/visibility.py``; positive controls (the owner gets every
marker, each partner gets what it executes) prove the search finds what is
there.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from chalicelib.aws import files
from chalicelib.db import keys
from chalicelib.db.accounts import User
from chalicelib.db.base import Item
from chalicelib.db.data_rights import DataArchive
from chalicelib.db.exports import ExportJob
from chalicelib.services import export, follow_form, takeout
from chalicelib.services import intake as intake_service
from chalicelib.services.intake import RateLimit
from chalicelib.web.outbox import sent_mails
from tests.background import join_background
from tests.figures import report
from tests.security.actors import (
    Cast,
    build_cast,
    cheap_passwords,
    customer_token,
    lift_limits,
    make_partners,
    order_version,
    own_ip,
    share_order,
)
from tests.web.factories import ids_of, sign_up
from tests.web.session import WebSession

# Text fields of the order form that can carry a marker (numbers and dates cannot).
TEXT_FIELDS = (
    "customer_name",
    "customer_phone",
    "customer_address",
    "service_type",
    "brand",
    "model",
    "serial",
    "problem",
    "condition",
    "internal_notes",
)
OWNER_ONLY = frozenset({"internal_notes", "custom", "invitation"})
PARTNERS = ("active", "suspended", "deleted")
CHANNELS = ("page", "export", "archive", "email", "json", "notification")


@dataclass(frozen=True)
class Marker:
    text: str
    order: str  # "active-open", "deleted-done", "private", "company" ...
    field: str


@dataclass
class Plant:
    cast: Cast
    partners: dict[str, WebSession]  # partnership state -> the partner's admin tab
    orders: dict[str, str]  # order tag -> order id
    markers: list[Marker]
    customer: WebSession  # holds the link of the active partner's open order
    customer_email: str
    intake_email: str
    staff_email: str
    actors: dict[str, WebSession] = field(default_factory=dict)


def _marker(tag: str, name: str) -> str:
    return f"mk{secrets.token_hex(3)}-{tag}-{name}".replace("_", "")


def _register(admin: WebSession, tag: str, field_id: str, markers: list[Marker]) -> str:
    form: dict[str, str] = {"priority": "normal"}
    for name in TEXT_FIELDS:
        text = _marker(tag, name)
        markers.append(Marker(text, tag, name))
        form[name] = text
    email = f"{_marker(tag, 'email')}@example.com"
    markers.append(Marker(email, tag, "customer_email"))
    form["customer_email"] = email
    custom = _marker(tag, "custom")
    markers.append(Marker(custom, tag, "custom"))
    form[f"cf_{field_id}"] = custom
    admin.get("/orders/new")
    answer = admin.post("/orders/new", form)
    assert answer.status_code == 303, admin.text()
    return answer.headers["Location"].rsplit("/", 1)[1]


def _chat(tab: WebSession, order_id: str, tag: str, who: str, markers: list[Marker]) -> None:
    text = _marker(tag, f"chat{who}")
    markers.append(Marker(text, tag, f"chat_{who}"))
    tab.get(f"/orders/{order_id}")
    assert tab.post(f"/orders/{order_id}/messages", {"text": text}).status_code == 303


def _act(tab: WebSession, order_id: str, action: str) -> None:
    tab.get(f"/orders/{order_id}")
    form = {"action": action, "version": order_version(order_id)}
    assert tab.post(f"/orders/{order_id}/status", form).status_code == 303, tab.text()


def _custom_field(admin: WebSession) -> str:
    admin.get("/settings/fields")
    answer = admin.post("/settings/fields", {"label": "Warranty code", "kind": "text"})
    assert answer.status_code == 303, admin.text()
    from chalicelib.db.accounts import Company

    company = Company.get(*Company.key(ids_of(admin)[0]), consistent_read=True)
    return company.custom_fields[-1].field_id


def plant(client) -> Plant:
    cast = build_cast(client)
    admin = cast.admin
    markers: list[Marker] = []
    field_id = _custom_field(admin)
    partners = {state: sign_up(client, company_name=f"Partner {state}") for state in PARTNERS}
    orders: dict[str, str] = {}
    for state, tab in partners.items():
        make_partners(admin, tab)
        partner_id = ids_of(tab)[0]
        for stage in ("open", "done"):
            tag = f"{state}-{stage}"
            order_id = _register(admin, tag, field_id, markers)
            share_order(admin, order_id, partner_id)
            _chat(admin, order_id, tag, "owner", markers)
            _chat(tab, order_id, tag, "partner", markers)
            if stage == "done":
                _act(tab, order_id, "start")
                _act(tab, order_id, "complete")
            orders[tag] = order_id
    orders["private"] = _register(admin, "private", field_id, markers)
    _chat(admin, orders["private"], "private", "owner", markers)
    # A's private items: a pending staff invitation.
    invited = _marker("company", "invitation")
    markers.append(Marker(f"{invited}@example.com", "company", "invitation"))
    admin.get("/settings/users")
    answer = admin.post(
        "/settings/users/invite",
        {"name": "Invited Person", "email": f"{invited}@example.com", "role": "staff"},
    )
    assert answer.status_code == 303, admin.text()
    # The partnerships change: one suspended (new terms), one deleted.
    suspended_id = ids_of(partners["suspended"])[0]
    admin.get(f"/partners/{suspended_id}")
    rev = admin.text().split('name="rev" value="', 1)[1].split('"', 1)[0]
    form = {"relationship": "approve", "quote_required": "1", "rev": rev}
    assert admin.post(f"/partners/{suspended_id}/change", form).status_code == 303
    deleted_id = ids_of(partners["deleted"])[0]
    admin.get(f"/partners/{deleted_id}")
    assert admin.post(f"/partners/{deleted_id}/delete").status_code == 303
    # The customer holds the private link of the active partner's open order.
    email = next(
        m.text for m in markers if m.order == "active-open" and m.field == "customer_email"
    )
    customer = WebSession(client)
    token = customer_token(email)
    assert customer.get(f"/o/{token}").status_code == 200
    customer.token = token  # type: ignore[attr-defined]
    intake_mail = next(m for m in sent_mails() if cast.intake_token in m.text)
    staff_user = User.get(*User.key(cast.a_id, ids_of(cast.staff)[1]))
    found = Plant(
        cast=cast,
        partners=partners,
        orders=orders,
        markers=markers,
        customer=customer,
        customer_email=email,
        intake_email=intake_mail.to,
        staff_email=staff_user.email,
    )
    found.actors = {
        "anonymous": cast.anonymous,
        "other": cast.other,
        **{f"partner-{state}": tab for state, tab in partners.items()},
        "staff": cast.staff,
        "admin": admin,
        "customer": customer,
        "intake": cast.intake,
    }
    return found


# -- what each actor may see -------------------------------------------------------


def may_see(actor: str, channel: str, marker: Marker) -> bool:
    """The rule the issue states, written out for this cast."""
    if actor in ("staff", "admin"):
        return True
    if marker.field in OWNER_ONLY:
        return False
    if actor == "customer":
        return marker.order == "active-open"  # their own order, customer-facing or theirs
    if actor.startswith("partner-"):
        state = actor.split("-", 1)[1]
        if not marker.order.startswith(state + "-"):
            return False
        if marker.order.endswith("-done"):
            return True  # a completed order stays readable (and exportable), read-only
        if state == "active":
            return True
        if state == "suspended":
            return channel == "page"  # read-only on the page; no new export of it
        return False  # deleted: the open order went back to the owner
    return False  # anonymous, another company, the intake visitor


# -- collecting what each channel gives ----------------------------------------------


def _xlsx_cells(data: bytes) -> Iterator[str]:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data), read_only=True)
    for sheet in book.worksheets:
        for row in sheet.iter_rows(values_only=True):
            for value in row:
                if value is not None:
                    yield str(value)


def _pages(plant: Plant, actor: str, tab: WebSession) -> Iterator[str]:
    paths = ["/", "/orders?view=all", "/orders", "/partners", "/settings/users"]
    for order_id in plant.orders.values():
        paths += [f"/orders/{order_id}", f"/orders/{order_id}/print"]
    if actor == "customer":
        paths.append(f"/o/{plant.customer.token}")  # type: ignore[attr-defined]
        # The one-click unsubscribe page of their e-mails (issue 30), and its answer.
        paths += _unsubscribe_paths(plant.customer_email)
    if actor == "intake":
        paths.append(f"/intake/{plant.cast.intake_code}")
    paths.append(f"/c/{_slug(plant)}")
    for path in paths:
        tab.get(path)
        yield tab.text()
    if actor == "customer":
        for path in _unsubscribe_paths(plant.customer_email)[:1]:
            tab.post(path, {}, csrf=None)  # one click, no session, no CSRF (RFC 8058)
            yield tab.text()


def _unsubscribe_paths(address: str) -> list[str]:
    """The unsubscribe links of the e-mails sent to ``address`` (newest first)."""
    found = []
    for mail in reversed(sent_mails()):
        if address in mail.to:
            found += re.findall(r"/unsubscribe/[A-Za-z0-9_.~%-]+", mail.text)
    assert found, f"no unsubscribe link in the e-mails to {address}"
    return list(dict.fromkeys(found))


def _slug(plant: Plant) -> str:
    from chalicelib.db.accounts import Company

    return Company.get(*Company.key(plant.cast.a_id)).slug


def _signed_in(tab: WebSession) -> bool:
    return "sid" in tab.cookies


def _export(tab: WebSession) -> Iterator[str]:
    if not _signed_in(tab):
        return
    tab.get("/orders?view=all")
    answer = tab.post("/exports", {"view": "all"})
    assert answer.status_code == 303, tab.text()
    export.join_background()
    export_id = answer.headers["Location"].rsplit("/", 1)[1]
    job = ExportJob.get(*ExportJob.key(ids_of(tab)[0], export_id), consistent_read=True)
    assert job.status == "done" and job.s3_key, job.status
    _presigned_to(tab, answer.headers["Location"], job.s3_key)
    stored = files.get_bytes(job.s3_key)
    assert stored is not None
    yield from _xlsx_cells(stored.data)


def _presigned_to(tab: WebSession, page: str, key: str) -> None:
    """The download page's presigned link leads to exactly the file searched here."""
    from urllib.parse import unquote

    assert tab.get(page).status_code == 200
    links = [unquote(h.replace("&amp;", "&")) for h in re.findall(r'href="([^"]+)"', tab.text())]
    signed = [link for link in links if "X-Amz-Signature" in link]
    assert signed and all(key in link for link in signed), (page, signed)


def _archive(tab: WebSession) -> Iterator[str]:
    if not _signed_in(tab):
        return
    tab.get("/settings/data")
    answer = tab.post("/settings/data/archive")
    if answer.status_code == 403:
        return  # staff: the archive is for admins
    assert answer.status_code == 303, tab.text()
    takeout.join_background()
    archive_id = answer.headers["Location"].rsplit("/", 1)[1]
    job = DataArchive.get(*DataArchive.key(ids_of(tab)[0], archive_id), consistent_read=True)
    assert job.status == "done" and job.s3_key, job.status
    _presigned_to(tab, answer.headers["Location"], job.s3_key)
    stored = files.get_bytes(job.s3_key)
    assert stored is not None
    with zipfile.ZipFile(io.BytesIO(stored.data)) as archive:
        for name in archive.namelist():
            data = archive.read(name)
            if name.endswith(".xlsx"):
                yield from _xlsx_cells(data)
            else:
                yield data.decode("utf-8")


def _mails(addresses: list[str]) -> Iterator[str]:
    for mail in sent_mails():
        if any(address and address in mail.to for address in addresses):
            yield mail.subject
            yield mail.text
            yield mail.html


def _json(plant: Plant, tab: WebSession) -> Iterator[str]:
    url = f"/api/v1/intake/{plant.cast.intake_code}"
    headers = tab._headers({"Content-Type": "application/json"})
    for body in ({}, {"customer_name": "x"}):
        answer = tab._keep(plant.cast.client.http.post(url, headers=headers, body=json.dumps(body)))
        yield tab.text()
        assert answer.headers.get("Content-Type", "").startswith("application/json")


def _notifications(tab: WebSession) -> Iterator[str]:
    if _signed_in(tab):
        tab.get("/notifications")
        yield tab.text()


def _addresses(plant: Plant, actor: str, tab: WebSession) -> list[str]:
    if actor == "customer":
        return [plant.customer_email]
    if actor == "intake":
        return [plant.intake_email]
    if actor == "staff":
        return [plant.staff_email]
    return [getattr(tab, "email", "")]


@pytest.fixture(scope="module")
def planted(aws: None, app) -> Iterator[Plant]:
    from chalice.test import Client

    with own_ip(), Client(app) as client, pytest.MonkeyPatch.context() as patch:
        cheap_passwords(patch)
        patch.setattr(follow_form, "FOLLOW_ANSWER_SECONDS", 0)
        lift_limits(patch, "follow", "ip")
        patch.setattr(intake_service, "RATE_LIMITS", (RateLimit("ip", "hour", 10_000),))
        yield plant(client)
        join_background()


def test_no_marker_reaches_an_actor_through_any_output_channel(planted):
    cells = 0
    leaks: list[str] = []
    seen: dict[tuple[str, str], set[str]] = {}  # (actor, channel) -> marker texts found
    searched: set[str] = set()
    for actor, tab in planted.actors.items():
        sources = {
            "page": _pages(planted, actor, tab),
            "export": _export(tab),
            "archive": _archive(tab),
            "email": _mails(_addresses(planted, actor, tab)),
            "json": _json(planted, tab),
            "notification": _notifications(tab),
        }
        for channel, texts in sources.items():
            found = seen.setdefault((actor, channel), set())
            for text in texts:
                cells += 1
                searched.add(channel)
                for marker in planted.markers:
                    if marker.text in text:
                        found.add(marker.text)
            for marker in planted.markers:
                if marker.text in found and not may_see(actor, channel, marker):
                    leaks.append(f"{actor} got {marker.order}/{marker.field} via {channel}")
    report("access-channels", channels=len(searched), cells=cells, leaks=len(leaks))
    assert searched == set(CHANNELS), searched
    assert not leaks, "leaks:\n" + "\n".join(sorted(leaks))

    # Positive controls: the search finds what each actor may legitimately get.
    def texts(order: str, *, owner_only: bool) -> set[str]:
        return {
            m.text
            for m in planted.markers
            if m.order == order and (m.field in OWNER_ONLY) == owner_only
        }

    every_order = {m.text for m in planted.markers if m.order != "company"}
    assert every_order <= seen[("admin", "export")] | _chat_texts(planted)
    assert every_order <= seen[("admin", "archive")]
    assert {m.text for m in planted.markers} <= seen[("admin", "page")]
    for order in ("active-open", "active-done", "suspended-done", "deleted-done"):
        partner = "partner-" + order.split("-")[0]
        shared = texts(order, owner_only=False)
        assert shared <= seen[(partner, "archive")], (partner, order)
        assert shared - _chat_texts(planted) <= seen[(partner, "export")], (partner, order)
    assert texts("suspended-open", owner_only=False) <= seen[("partner-suspended", "page")]
    name = next(
        m.text for m in planted.markers if (m.order, m.field) == ("active-open", "customer_name")
    )
    assert name in seen[("customer", "page")] and name in seen[("customer", "email")]


def _chat_texts(plant: Plant) -> set[str]:
    return {m.text for m in plant.markers if m.field.startswith("chat_")}


def test_the_planted_orders_are_where_the_scenario_says(planted):
    """The deleted partner's open order went back; the others are still shared."""
    from chalicelib.db.orders import Order

    def stored(tag: str) -> Order:
        return Order.get(*Order.key(planted.orders[tag]), consistent_read=True)

    assert stored("deleted-open").executor_id is None
    assert stored("deleted-done").executor_id == ids_of(planted.partners["deleted"])[0]
    assert stored("suspended-open").executor_id == ids_of(planted.partners["suspended"])[0]
    assert stored("active-done").status == "completed"
    assert not list(Item.query(keys.order_entries(ids_of(planted.partners["deleted"])[0], "OPEN")))

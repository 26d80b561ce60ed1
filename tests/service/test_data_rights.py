"""Data rights: the archive holds every kind of item a company owns and no secret; deleting
the company erases every item and file of it, resumes after a crash, and leaves partners whole.

One realistic company (two users, a pending invitation, a custom field, orders with
history, chat, a customer link and a rating, a partnership both ways with shared
orders, a partner invitation, a pending intake request, an export, a logo, an
archive), its partner and an unrelated company are built through the real pages for
each test: the deletion test erases its company, so the archive test cannot share it
(in reversed order it found the company gone).
"""

from __future__ import annotations

import io
import json
import re
import secrets
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from chalice.test import Client

from chalicelib.aws import files
from chalicelib.db import keys
from chalicelib.db.accounts import DELETING, Company, Login, Slug, User
from chalicelib.db.base import Item
from chalicelib.db.customers import CustomerAccess
from chalicelib.db.data_rights import DataArchive, ErasureJob
from chalicelib.db.intake import FormKey
from chalicelib.db.orders import Notification, Order
from chalicelib.db.partners import Partnership
from chalicelib.services import (
    directory,
    erasure,
    erasure_orders,
    erasure_steps,
    intake,
    intake_codes,
    orders,
    takeout,
)
from chalicelib.services.sessions import now
from tests.figures import report, reporting
from tests.web.company_factories import image_bytes, upload_logo
from tests.web.factories import (
    ids_of,
    invite_member,
    last_mail_to,
    link_in,
    sign_up,
    unique_email,
)
from tests.web.session import WebSession

OWNER = "Ângela Reparos Data"
CUSTOMER = "Joana Prado Customer"
SHARED_CUSTOMER = "Sharedname Personperson"
PARTNER_PRIVATE = "Partner Private Customer"
BYSTANDER_SECRET = "Unrelated Secret Person"


@dataclass
class World:
    client: Client
    owner: WebSession
    staff: WebSession
    partner: WebSession
    bystander: WebSession
    own_order: str = ""  # A's order: chat, customer link, rating
    shared_out: str = ""  # A's order executed by the partner
    shared_in: str = ""  # the partner's order executed by A
    archive: DataArchive | None = None

    @property
    def cid(self) -> str:
        return ids_of(self.owner)[0]

    @property
    def pid(self) -> str:
        return ids_of(self.partner)[0]


def _register(tab: WebSession, name: str, email: str = "") -> str:
    tab.get("/orders/new")
    answer = tab.post(
        "/orders/new",
        {
            "customer_name": name,
            "customer_phone": "+55 11 97777-1234",
            "customer_email": email or unique_email("customer"),
            "customer_address": "Rua das Flores 12",
            "service_type": "Fridge repair",
            "brand": "Consul",
            "problem": "Not cooling",
            "priority": "normal",
        },
    )
    assert answer.status_code == 303, tab.text()
    return answer.headers["Location"].rsplit("/", 1)[1]


def _version(order_id: str) -> str:
    return str(Order.get(*Order.key(order_id), consistent_read=True).version)


def _status(tab: WebSession, order_id: str, action: str) -> None:
    tab.get(f"/orders/{order_id}")
    answer = tab.post(
        f"/orders/{order_id}/status", {"action": action, "version": _version(order_id)}
    )
    assert answer.status_code == 303, tab.text()


def _build(client: Client) -> World:
    owner = sign_up(client, company_name=OWNER)
    world = World(
        client=client,
        owner=owner,
        staff=invite_member(client, owner, name="Bruno Staff"),
        partner=sign_up(client, company_name=f"Partner {secrets.token_hex(2)}"),
        bystander=sign_up(client, company_name=f"Bystander {secrets.token_hex(2)}"),
    )
    cid, pid = world.cid, world.pid
    # A pending invitation, a custom field, a partner invitation.
    assert (
        owner.post(
            "/settings/users/invite",
            {"name": "Pending Person", "email": unique_email("pending"), "role": "staff"},
        ).status_code
        == 303
    )
    owner.get("/settings/fields")
    assert owner.post("/settings/fields", {"label": "Warranty", "kind": "text"}).status_code == 303
    owner.get("/partners")
    assert (
        owner.post(
            "/partners/invite", {"email": unique_email("newpartner"), "relationship": "approve"}
        ).status_code
        == 303
    )
    # Our order: customer link e-mailed, chat both ways, completed and rated.
    customer_email = unique_email("joana")
    world.own_order = _register(owner, CUSTOMER, customer_email)
    link = link_in(last_mail_to(customer_email), "/o/")
    owner.get(f"/orders/{world.own_order}")
    owner.post(f"/orders/{world.own_order}/messages", {"text": "We will call you tomorrow"})
    customer = WebSession(client)
    customer.get(link)
    customer.post(f"{link}/messages", {"text": "Thank you, I am home after 5pm"})
    _status(owner, world.own_order, "start")
    _status(owner, world.own_order, "complete")
    customer.get(link)
    answer = customer.post(f"{link}/rating", {"stars": "5", "comment": "Great service"})
    assert answer.status_code == 303, customer.text()
    # A partnership both ways, one order shared each way.
    owner.get(f"/partners/propose?to={pid}")
    assert owner.post("/partners/propose", {"to": pid, "relationship": "both"}).status_code == 303
    world.partner.get(f"/partners/{cid}")
    rev = re.search(r'name="rev" value="(\d+)"', world.partner.text()).group(1)  # type: ignore[union-attr]
    assert world.partner.post(f"/partners/{cid}/accept", {"rev": rev}).status_code == 303
    world.shared_out = _register(owner, SHARED_CUSTOMER, unique_email("shared"))
    owner.get(f"/orders/{world.shared_out}")
    owner.post(f"/orders/{world.shared_out}/messages", {"text": "Partner, please go on Monday"})
    assign = {"action": "assign", "partner_id": pid, "version": _version(world.shared_out)}
    assert owner.post(f"/orders/{world.shared_out}/executor", assign).status_code == 303
    world.shared_in = _register(world.partner, "Partner Shared Customer")
    world.partner.get(f"/orders/{world.shared_in}")
    assign = {"action": "assign", "partner_id": cid, "version": _version(world.shared_in)}
    assert world.partner.post(f"/orders/{world.shared_in}/executor", assign).status_code == 303
    _register(world.partner, PARTNER_PRIVATE)
    _register(world.bystander, BYSTANDER_SECRET)
    # A pending intake request (form code + request + lock), an export, a logo.
    company = Company.get(*Company.key(cid), consistent_read=True)
    intake_codes.generate_code(company, company.version)
    company = Company.get(*Company.key(cid), consistent_read=True)
    intake.submit_request(
        company,
        {
            "customer_name": "Intake Requester",
            "customer_email": unique_email("requester"),
            "problem": "Oven does not heat",
        },
        locale="en",
        ip=f"10.9.{secrets.randbelow(250)}.{secrets.randbelow(250)}",
        browser=False,
    )
    owner.get("/orders?view=all")
    assert owner.post("/exports", {"view": "all"}).status_code == 303
    assert upload_logo(owner, image_bytes()).status_code == 303
    # The archive of everything.
    world.archive = takeout.request_archive(company, ids_of(owner)[1], "en")
    takeout.join_background()
    return world


@pytest.fixture
def world(aws: None, app) -> Iterator[World]:
    with Client(app) as client:
        yield _build(client)


def _archive_files(world: World) -> dict[str, bytes]:
    assert world.archive is not None
    job = DataArchive.get(*DataArchive.key(world.cid, world.archive.archive_id))
    assert job.status == takeout.DONE, job.status
    assert job.s3_key and job.s3_key.startswith(f"exports/{world.cid}/")
    stored = files.get_bytes(job.s3_key)
    assert stored is not None and stored.content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(stored.data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _company_items(world: World) -> list[Item]:
    """Every item reachable through the company's own keys (what deletion must erase)."""
    cid = world.cid
    found = list(Item.query(keys.company(cid)))
    users = [i for i in found if isinstance(i, User)]
    for user in users:
        found += Item.query(Notification.partition(cid, user.user_id))
    found += Item.gsi1.query(erasure_steps.intake_partition(cid))
    for entry in Item.query(keys.order_entries(cid, "ALL")):
        for item in Item.query(keys.order(entry.order_id)):
            owner = item if isinstance(item, Order) else None
            if owner is not None and owner.company_id != cid:
                break  # an order of the partner's: not ours
            found.append(item)
    return found


# Item kinds a company owns that deliberately stay out of the archive: secrets or their
# hashes (Login, LinkToken, CustomerAccess, EmailCode), locks and public handles that
# repeat what the archive already has (PendingLock, Slug, FormKey, DirectoryEntry).
NOT_ARCHIVED = {"Login", "LinkToken", "CustomerAccess", "EmailCode", "PendingLock"}
ARCHIVE_FILE_OF = {
    "Company": "company.json",
    "User": "users.json",
    "Invitation": "invitations.json",
    "Partnership": "partnerships.json",
    "PartnerInvite": "partner_invitations.json",
    "ExportJob": "exports.json",
    "DataArchive": "archives.json",
    "OrderCounter": "counters.json",
    "MonthlyUsage": "counters.json",
    "Stat": "counters.json",
    "Notification": "notifications.json",
    "IntakeRequest": "intake_requests.json",
    "Order": "orders.json",
    "OrderEvent": "orders.json",
    "OrderMessage": "orders.json",
    "OrderRating": "orders.json",
}


def test_the_archive_holds_every_kind_of_item_the_company_owns_and_no_secret(world):
    content = _archive_files(world)
    report(
        "data_archive",
        require=("archive_files", "archive_bytes"),
        archive_files=len(content),
        archive_bytes=sum(len(body) for body in content.values()),
    )
    kinds = {type(item).__name__ for item in _company_items(world)} - NOT_ARCHIVED
    unmapped = kinds - ARCHIVE_FILE_OF.keys()
    assert not unmapped, f"item kinds with no place in the archive: {unmapped}"
    for kind in kinds:
        assert ARCHIVE_FILE_OF[kind] in content, f"{kind}: {ARCHIVE_FILE_OF[kind]} missing"
    data = {name: json.loads(body) for name, body in content.items() if name.endswith(".json")}
    assert data["company.json"]["name"] == OWNER
    assert [f["label"] for f in data["custom_fields.json"]] == ["Warranty"]
    assert {u["name"] for u in data["users.json"]} == {"Ana Souza", "Bruno Staff"}
    assert [i["name"] for i in data["invitations.json"]] == ["Pending Person"]
    assert len(data["partnerships.json"]) == 1 and len(data["partner_invitations.json"]) == 1
    assert data["intake_requests.json"][0]["name"] == "Intake Requester"
    assert data["exports.json"] and data["notifications.json"]
    assert {c["name"].split("#")[0] for c in data["counters.json"]} == {"COUNTER", "USAGE", "STAT"}
    by_id = {o["order_id"]: o for o in data["orders.json"]}
    assert set(by_id) == {world.own_order, world.shared_out, world.shared_in}
    own = by_id[world.own_order]
    assert own["role"] == "owner" and own["rating"]["comment"] == "Great service"
    assert {m["text"] for m in own["chat"]} == {
        "We will call you tomorrow",
        "Thank you, I am home after 5pm",
    }
    assert {e["kind"] for e in own["history"]} >= {"created", "status", "rated"}
    assert by_id[world.shared_in]["role"] == "executor"
    assert {c["name"] for c in data["customers.json"]} == {CUSTOMER, SHARED_CUSTOMER}
    assert data["manifest.json"]["files"]["orders.json"] == 3
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(content["orders.xlsx"])).active
    assert sheet.max_row == 1 + 3
    # No secret, no hash of one, nothing of another company.
    text = b"\n".join(content.values()).decode("utf-8", "replace")
    secrets_found = []
    for user in [i for i in _company_items(world) if isinstance(i, User)]:
        login = Login.get(*Login.key(user.email))
        secrets_found += [login.password_hash]
    for item in _company_items(world):
        secrets_found += [
            getattr(item, name, None) for name in ("access_hash", "invite_id", "intake_id")
        ]
        if item.sk.startswith("INVITE#") or item.sk.startswith("PARTNERINV#"):
            secrets_found.append(item.sk.split("#", 1)[1])
    leaked = [s for s in secrets_found if s and s in text]
    assert not leaked, f"{len(leaked)} secret values in the archive"
    assert "$argon2" not in text and "password" not in text.lower()
    for foreign in (PARTNER_PRIVATE, BYSTANDER_SECRET, world.bystander.email):
        assert foreign not in text


def _keys_of_company(world: World) -> dict[str, list[tuple[str, str]]]:
    """Every partition and key where the company has items, read before deletion."""
    cid = world.cid
    company = Company.get(*Company.key(cid), consistent_read=True)
    items = _company_items(world)
    partitions = {keys.company(cid), erasure_steps.intake_partition(cid)}
    partitions |= {i.pk for i in items}
    single: list[tuple[str, str]] = [Slug.key(company.slug), FormKey.key(company.intake_code)]
    single += list(directory.entries_for(company))
    for item in items:
        if isinstance(item, User):
            single.append(Login.key(item.email))
        if isinstance(item, Order):
            partitions |= {pk for pk, _ in orders.entries_for(item) if pk.startswith(f"CO#{cid}")}
            if item.access_hash:
                single.append(CustomerAccess.key(item.access_hash))
        if item.sk.startswith("INVITE#"):
            single.append(("INVITE#" + item.sk.split("#", 1)[1], "TOKEN"))
        if item.sk.startswith("PARTNERINV#"):
            single.append(("PINVITE#" + item.sk.split("#", 1)[1], "TOKEN"))
    partitions.discard(keys.order(world.shared_out))  # the partner keeps that order
    partitions.discard(keys.order(world.shared_in))  # the partner's order
    return {"partitions": sorted(partitions), "keys": single}


def _left_of_company(world: World, known: dict[str, list]) -> list[str]:
    left = []
    for partition in known["partitions"]:
        if partition == erasure_steps.intake_partition(world.cid):
            left += [f"gsi1 {partition}: {i.sk}" for i in Item.gsi1.query(partition)]
        else:
            left += [f"{partition} / {i.sk}" for i in Item.query(partition, consistent_read=True)]
    for pk, sk in known["keys"]:
        try:
            Item.get(pk, sk, consistent_read=True)
            left.append(f"{pk} / {sk}")
        except Item.DoesNotExist:
            pass
    return left


def test_a_deletion_cut_short_resumes_and_leaves_nothing_of_the_company(world):
    with reporting("data_rights", require=("partitions_checked", "keys_checked")) as figures:
        _delete_cut_short_then_resume(world, figures)


def _delete_cut_short_then_resume(world: World, figures: dict[str, object]) -> None:
    cid, pid = world.cid, world.pid
    known = _keys_of_company(world)
    figures.update(partitions_checked=len(known["partitions"]), keys_checked=len(known["keys"]))
    assert len(known["partitions"]) > 10 and len(known["keys"]) > 5
    assert erasure_steps.stored_files(cid), "the company has a logo, an export and an archive"
    company = Company.get(*Company.key(cid), consistent_read=True)
    slug = company.slug
    erasure.mark(company, ids_of(world.owner)[1])
    # At once: sessions refused, public page and form code gone, out of the directory.
    refused = world.staff.get("/orders")
    assert refused.status_code == 303 and refused.headers["Location"].startswith("/login")
    assert WebSession(world.client).get(f"/c/{slug}").status_code == 404
    assert Company.get(*Company.key(cid), consistent_read=True).status == DELETING
    with pytest.raises(erasure_steps.SimulatedCrash):
        erasure.run_erasure(cid, crash_after=40)
    half_way = _left_of_company(world, known)
    figures["items_left_after_crash"] = len(half_way)
    assert half_way, "the crash left work to do"
    # The scheduled sweep finds the unfinished deletion through its index and resumes it.
    assert [job.company_id for job in erasure.unfinished()].count(cid) == 1
    assert erasure.sweep()["resumed"] == 0, "a fresh heartbeat means a run may still be going"
    assert erasure.sweep(as_of=now() + erasure.STALE_AFTER + timedelta(minutes=1)) == {"resumed": 1}
    erasure.join_background()
    left = _left_of_company(world, known)
    figures["items_left_after_resume"] = len(left)
    assert not left, f"{len(left)} items of the deleted company remain: {left[:5]}"
    assert erasure_steps.stored_files(cid) == []
    assert cid not in [job.company_id for job in erasure.unfinished()]
    with pytest.raises(ErasureJob.DoesNotExist):
        ErasureJob.get(*ErasureJob.key(cid), consistent_read=True)
    assert erasure.run_erasure(cid) == "nothing"  # and a late re-run is harmless
    _the_partner_side_stays_consistent(world, cid, pid)
    _the_invariant_checker_agrees(world, cid, pid)


def _the_partner_side_stays_consistent(world: World, cid: str, pid: str) -> None:
    theirs = Partnership.get(*Partnership.key(pid, cid), consistent_read=True)
    assert theirs.state == "disabled" and theirs.history[-1].kind == "deleted"
    # The order the partner executes for us stays with it, without our customer's data.
    kept = orders.order_view(pid, world.shared_out)
    assert kept.order.customer_name == erasure_orders.ERASED_NAME
    assert not (kept.order.customer_email or kept.order.customer_phone or kept.order.access_hash)
    assert "Partner, please go on Monday" in {m.text for m in kept.messages}
    page = world.partner.get(f"/orders/{world.shared_out}")
    assert page.status_code == 200 and SHARED_CUSTOMER not in world.partner.text()
    world.partner.get("/orders?view=all")
    listed = world.partner.text()
    assert SHARED_CUSTOMER not in listed and PARTNER_PRIVATE in listed
    # The partner's order we executed came back to it, and its list shows it.
    back = Order.get(*Order.key(world.shared_in), consistent_read=True)
    assert back.executor_id is None
    for pk, sk in orders.entries_for(back):
        Item.get(pk, sk, consistent_read=True)  # every entry of the partner's order exists


def _the_invariant_checker_agrees(world: World, cid: str, pid: str) -> None:
    from chalicelib.services import integrity

    assert integrity.check_company(cid) == [f"company {cid}: no PROFILE item"]
    assert integrity.check_company(ids_of(world.bystander)[0]) == []
    # The partner is whole: a disabled partnership with a company that no longer
    # exists, the order it kept (its own list entries only, no customer data of ours)
    # and the order handed back to it are all consistent.
    violations = integrity.check_company(pid)
    assert violations == [], "\n".join(violations)
    assert integrity.check([pid, ids_of(world.bystander)[0]]) == []

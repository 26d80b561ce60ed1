"""Invariant checker: a company built through the real services is consistent, and every
kind of corruption planted in its items is reported."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from chalicelib.config import get_settings
from chalicelib.db import keys
from chalicelib.db.accounts import Company, User
from chalicelib.db.base import Item
from chalicelib.db.intake import IntakeRequest, PendingLock
from chalicelib.db.orders import Order, OrderEntry, OrderEvent
from chalicelib.db.partners import Partnership
from chalicelib.services import (
    customer_page,
    directory,
    erasure,
    erasure_orders,
    intake,
    intake_codes,
    intake_confirmation,
    integrity,
    orders,
    partners,
)
from chalicelib.services.integrity.orders import ENTRY_FIELDS
from chalicelib.services.sessions import Principal
from tests.service.factories import new_company, order_form, staff_actor
from tests.web.factories import last_mail_to, link_in

Raw = dict[str, Any]


def _table():
    return boto3.client("dynamodb", region_name=get_settings().region)


def _raw(pk: str, sk: str) -> Raw:
    found = _table().get_item(
        TableName=get_settings().table_name,
        Key={"pk": {"S": pk}, "sk": {"S": sk}},
        ConsistentRead=True,
    )
    assert "Item" in found, f"no item {pk} / {sk}"
    return found["Item"]


def _put(raw: Raw) -> None:
    _table().put_item(TableName=get_settings().table_name, Item=raw)


def _delete(pk: str, sk: str) -> None:
    _table().delete_item(
        TableName=get_settings().table_name, Key={"pk": {"S": pk}, "sk": {"S": sk}}
    )


@dataclass
class World:
    """Two partner companies with orders in every state, chat, a rating, intake requests."""

    owner: Company
    executor: Company
    admin: User
    open_order: Order
    done_order: Order  # completed, rated by the customer through its link
    shared_order: Order  # executed by the partner
    pending_email: str  # an intake request awaiting confirmation
    ids: list[str] = field(default_factory=list)


def _fresh(order_id: str) -> Order:
    return Order.get(*Order.key(order_id), consistent_read=True)


@pytest.fixture(scope="module")
def world(aws) -> World:
    owner_account = new_company(f"Integrity Owner {secrets.token_hex(3)}")
    executor_account = new_company(f"Integrity Executor {secrets.token_hex(3)}")
    owner = Company.get(*Company.key(owner_account.company.company_id))
    owner.update(actions=[Company.email_validated.set(True)])
    intake_codes.generate_code(owner, owner.version)
    owner = Company.get(*Company.key(owner.company_id))
    executor = executor_account.company
    actor = staff_actor(owner_account)
    me = Principal(user=owner_account.user, company=owner)
    them = Principal(user=executor_account.user, company=executor)

    proposal = partners.propose(me, executor.company_id, {"relationship": "approve"})
    partners.accept(them, owner.company_id, proposal.rev)

    open_order = orders.register_order(owner, actor, order_form(customer_email=""), {})
    edited = order_form(
        customer_email="",
        customer_name="Ana Lima Souza",
        brand="LG",
        service_date="2030-01-15",
        version=str(open_order.version),
    )
    orders.edit_order(owner, open_order.order_id, actor, edited, {})
    orders.post_message(owner.company_id, open_order.order_id, actor, "Parts ordered")

    customer = f"rating-{secrets.token_hex(4)}@example.com"
    done = orders.register_order(owner, actor, order_form(customer_email=customer), {})
    token = link_in(last_mail_to(customer), "/o/").rsplit("/", 1)[1]
    for action in ("start", "complete"):
        orders.change_status(owner.company_id, done.order_id, actor, action)
    customer_page.rate_order(token, {"stars": "2", "comment": "Slow"})

    shared = orders.register_order(owner, actor, order_form(service_type="Battery"), {})
    shared = partners.assign_executor(me, shared.order_id, executor.company_id, shared.version)
    partners.send_quote(them, shared.order_id, {"quote_value": "120", "quote_text": "New battery"})
    orders.post_message(
        executor.company_id,
        shared.order_id,
        staff_actor(executor_account),
        "Quote sent",
    )
    cancelled = orders.register_order(owner, actor, order_form(), {})
    orders.change_status(owner.company_id, cancelled.order_id, actor, "cancel", note="Duplicate")

    confirmed_email = f"intake-{secrets.token_hex(4)}@example.com"
    pending_email = f"intake-{secrets.token_hex(4)}@example.com"
    for email in (confirmed_email, pending_email):
        form = order_form(customer_email=email)
        intake.submit_request(owner, form, locale="en", ip="10.9.8.7", browser=False)
    confirm = link_in(last_mail_to(confirmed_email), "/intake/confirm/").rsplit("/", 1)[1]
    intake_confirmation.confirm_request(confirm)

    return World(
        owner=owner,
        executor=executor,
        admin=owner_account.user,
        open_order=_fresh(open_order.order_id),
        done_order=_fresh(done.order_id),
        shared_order=_fresh(shared.order_id),
        pending_email=pending_email,
        ids=[owner.company_id, executor.company_id],
    )


@pytest.fixture
def consistent(world: World) -> World:
    """The corruption tests undo what they plant (the original items are put back
    byte for byte); the last test of the module checks the world is clean again."""
    return world


def test_a_company_built_through_the_services_is_consistent(world: World):
    audit = integrity.audit(world.ids)
    assert audit.violations == []
    assert audit.companies == 2
    assert audit.items > 50  # it really read the companies' items
    assert world.shared_order.executor_id == world.executor.company_id
    assert world.done_order.rating == 2


def test_the_registry_lists_every_signed_up_company(world: World):
    assert set(world.ids) <= set(integrity.registered_companies())


def test_the_checker_never_scans(world: World, budget):
    with budget:
        integrity.check(world.ids)
    operations = {c.operation for c in budget.dynamodb}
    assert "Scan" not in operations
    assert operations <= {"Query", "GetItem", "BatchGetItem"}


# -- one planted corruption per invariant ---------------------------------------------

Undo = Callable[[], None]


def _edit(pk: str, sk: str, **changes: Any) -> Undo:
    """Overwrite attributes of one item (raw DynamoDB values); returns the undo."""
    before = _raw(pk, sk)
    _put({**before, **changes})
    return lambda: _put(before)


def _remove(pk: str, sk: str) -> Undo:
    before = _raw(pk, sk)
    _delete(pk, sk)
    return lambda: _put(before)


def _add(raw: Raw) -> Undo:
    _put(raw)
    return lambda: _delete(raw["pk"]["S"], raw["sk"]["S"])


def _entry_key(order: Order, dimension: str, company_id: str | None = None) -> tuple[str, str]:
    pk = keys.order_entries(company_id or order.company_id, dimension)
    return next(key for key in orders.entries_for(order) if key[0] == pk)


def _stat_sk(world: World, prefix: str) -> str:
    stats = Item.query(keys.company(world.owner.company_id), Item.sk.startswith(prefix))
    return next(iter(stats)).sk


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def counter_type(w: World) -> Undo:
    return _edit(keys.company(w.owner.company_id), _stat_sk(w, "STAT#TYPE#"), count=_n(7))


def counter_brand(w: World) -> Undo:
    return _remove(keys.company(w.owner.company_id), _stat_sk(w, "STAT#BRAND#"))


def counter_week(w: World) -> Undo:
    # The counter is sharded (db/stats.py): corrupt the shard that holds the completion.
    weeks = Item.query(keys.company(w.owner.company_id), Item.sk.startswith("STAT#WEEK#"))
    sk = next(i.sk for i in weeks if int(getattr(i, "completed", None) or 0) > 0)
    return _edit(keys.company(w.owner.company_id), sk, completed=_n(0))


def counter_rating(w: World) -> Undo:
    return _edit(keys.company(w.owner.company_id), "STAT#RATING", total=_n(9))


def number_gap(w: World) -> Undo:
    return _edit(keys.company(w.owner.company_id), "COUNTER", last_number=_n(7))


def number_twice(w: World) -> Undo:
    order = w.open_order
    other = w.done_order
    return _edit(*Order.key(order.order_id), number=_n(int(other.number)))


def monthly_usage(w: World) -> Undo:
    usage = next(iter(Item.query(keys.company(w.owner.company_id), Item.sk.startswith("USAGE#"))))
    return _edit(usage.pk, usage.sk, count=_n(1))


def entry_missing(w: World) -> Undo:
    return _remove(*_entry_key(w.open_order, "ALL"))


def entry_stale_copy(w: World) -> Undo:
    return _edit(*_entry_key(w.open_order, "ALL"), status={"S": "completed"})


def entry_left_behind(w: World) -> Undo:
    pk, sk = _entry_key(w.open_order, "ALL")
    raw = _raw(pk, sk)
    old_status = keys.order_entries(w.owner.company_id, "STATUS#cancelled")
    return _add({**raw, "pk": {"S": old_status}})


def open_index_of_a_closed_order(w: World) -> Undo:
    pk, sk = _entry_key(w.done_order, "ALL")
    raw = _raw(pk, sk)
    return _add({**raw, "pk": {"S": keys.order_entries(w.owner.company_id, "OPEN")}})


def open_order_out_of_open_index(w: World) -> Undo:
    return _remove(*_entry_key(w.open_order, "OPEN"))


def shared_order_without_executor_entry(w: World) -> Undo:
    return _remove(*_entry_key(w.shared_order, "ALL", w.executor.company_id))


def partnership_sides_disagree(w: World) -> Undo:
    pk, sk = keys.company(w.executor.company_id), f"PARTNER#{w.owner.company_id}"
    return _edit(pk, sk, state={"S": "suspended"}, rev=_n(9))


def partnership_side_missing(w: World) -> Undo:
    return _remove(keys.company(w.executor.company_id), f"PARTNER#{w.owner.company_id}")


def order_without_meta(w: World) -> Undo:
    return _remove(*Order.key(w.open_order.order_id))


def entry_of_a_missing_order(w: World) -> Undo:
    pk, sk = _entry_key(w.open_order, "ALL")
    raw = _raw(pk, sk)
    ghost = "0000ghost0000000"
    return _add(
        {**raw, "sk": {"S": f"2001-01-01T00:00:00+00:00#{ghost}"}, "order_id": {"S": ghost}}
    )


def orphan_event(w: World) -> Undo:
    """An event under an order id a notification points to, but no order."""
    ghost = "0000orphan00000"
    event = OrderEvent(
        *OrderEvent.key(ghost, "2001-01-01T00:00:00#aa"),
        kind="edited",
        at=w.open_order.created_at,
        actor_name="Nobody",
    )
    note_pk = f"{keys.company(w.owner.company_id)}#USER#{w.admin.user_id}"
    note = {
        "pk": {"S": note_pk},
        "sk": {"S": "NOTE#ghost"},
        "type": {"S": "Notification"},
        "kind": {"S": "chat_message"},
        "at": {"S": "2001-01-01T00:00:00.000000+0000"},
        "order_id": {"S": ghost},
        "read": {"BOOL": True},
    }
    undo_event = _add(event.serialize() | {"pk": {"S": event.pk}, "sk": {"S": event.sk}})
    undo_note = _add(note)

    def undo() -> None:
        undo_event()
        undo_note()

    return undo


def unread_count(w: World) -> Undo:
    return _edit(*User.key(w.owner.company_id, w.admin.user_id), unread=_n(40))


def rating_item(w: World) -> Undo:
    return _edit(keys.order(w.done_order.order_id), "RATING", stars=_n(5))


def customer_link(w: World) -> Undo:
    assert w.done_order.access_hash
    return _edit(keys.access(w.done_order.access_hash), "ACCESS", order_id={"S": "someother"})


def intake_lock_removed(w: World) -> Undo:
    return _remove(*PendingLock.key(w.owner.company_id, w.pending_email))


def intake_request_gone(w: World) -> Undo:
    lock = PendingLock.get(*PendingLock.key(w.owner.company_id, w.pending_email))
    return _remove(*IntakeRequest.key(lock.intake_id))


def admin_count(w: World) -> Undo:
    return _edit(*Company.key(w.owner.company_id), admin_count=_n(2))


def slug_elsewhere(w: World) -> Undo:
    return _edit(f"SLUG#{w.owner.slug}", "SLUG", company_id={"S": w.executor.company_id})


def login_elsewhere(w: World) -> Undo:
    return _edit(f"LOGIN#{w.admin.email}", "LOGIN", user_id={"S": "someone-else"})


def directory_card(w: World) -> Undo:
    entry = next(iter(directory.entries_for(w.owner)))
    return _remove(*entry)


def registry(w: World) -> Undo:
    before = _raw(*Company.key(w.owner.company_id))
    _put({k: v for k, v in before.items() if k not in ("gsi2pk", "gsi2sk")})
    return lambda: _put(before)


CORRUPTIONS: list[tuple[Callable[[World], Undo], str]] = [
    (counter_type, "counter STAT#TYPE#"),
    (counter_brand, "counter STAT#BRAND#"),
    (counter_week, "completed = 0, the orders say 1"),
    (counter_rating, "STAT#RATING total/count = 9/1, the orders say 2/1"),
    (number_gap, "order numbers missing (gaps): [6, 7]"),
    (number_twice, "order numbers used twice"),
    (monthly_usage, "orders registered that month"),
    (entry_missing, "missing for order"),
    (entry_stale_copy, "stale copy of order"),
    (entry_left_behind, "#IX#STATUS#cancelled / "),
    (open_index_of_a_closed_order, "stale, order is completed"),
    (open_order_out_of_open_index, "#IX#OPEN / "),
    (shared_order_without_executor_entry, "missing for order"),
    (partnership_sides_disagree, "the two sides disagree on state, rev"),
    (partnership_side_missing, "the other side is missing"),
    (order_without_meta, "orphan item(s) without META"),
    (entry_of_a_missing_order, "its order does not exist"),
    (orphan_event, "1 orphan item(s) without META"),
    (unread_count, "unread count 40"),
    (rating_item, "RATING item says 5"),
    (customer_link, "customer link points to another order"),
    (intake_lock_removed, "pending without its lock"),
    (intake_request_gone, "its request is gone"),
    (admin_count, "admin_count 2 but 1 admin users"),
    (slug_elsewhere, "points to "),
    (login_elsewhere, "points to user someone-else"),
    (directory_card, "directory entry"),
    (registry, "not in the company registry"),
]


@pytest.mark.parametrize(
    ("corrupt", "expected"), CORRUPTIONS, ids=[c.__name__ for c, _ in CORRUPTIONS]
)
def test_each_planted_corruption_is_reported(
    consistent: World, corrupt: Callable[[World], Undo], expected: str
):
    undo = corrupt(consistent)
    try:
        # The owner's check alone reaches its partner's side of the link and
        # the partner's entries of the shared order.
        found = integrity.check_company(consistent.owner.company_id)
    finally:
        undo()
    assert any(expected in line for line in found), found


def test_one_company_alone_is_checked_with_its_shared_orders(consistent: World):
    undo = shared_order_without_executor_entry(consistent)
    try:
        found = integrity.check_company(consistent.owner.company_id)
    finally:
        undo()
    executor_list = keys.order_entries(consistent.executor.company_id, "ALL")
    assert any(executor_list in line and "missing" in line for line in found), found


def test_pending_intake_lock_survives_its_listing_in_the_index(consistent: World):
    lock = PendingLock.get(*PendingLock.key(consistent.owner.company_id, consistent.pending_email))
    assert lock.gsi1pk == f"CO#{consistent.owner.company_id}#INTAKE"
    request = IntakeRequest.get(*IntakeRequest.key(lock.intake_id))
    assert request.gsi1pk == lock.gsi1pk


def test_an_entry_of_an_unknown_company_order_is_not_mistaken(consistent: World):
    """An OrderEntry class sanity check: the checker compares every copied column."""
    assert set(ENTRY_FIELDS) <= set(OrderEntry.get_attributes())


def test_the_world_is_consistent_again_after_every_corruption_was_undone(world: World):
    assert integrity.check(world.ids) == []


def test_check_data_says_when_no_local_run_is_found(capsys):
    from infra import check_data

    assert check_data.main(["--port", "1"]) == 2
    assert "no `make run` found on port 1" in capsys.readouterr().out


# -- after a partner company was erased ------------------------------------------------

ERASED_CUSTOMER = "Erasmo Customer Personal"


@dataclass
class Erased:
    """A company erased (through the real erasure) while its partner executed one of its
    orders: the partner keeps that order and a disabled side of the partnership."""

    survivor: Company
    erased_id: str
    kept: Order  # created by the customer through the erased company's form


@pytest.fixture(scope="module")
def erased(aws) -> Erased:
    gone_account = new_company(f"Integrity Erased {secrets.token_hex(3)}")
    survivor_account = new_company(f"Integrity Survivor {secrets.token_hex(3)}")
    gone = Company.get(*Company.key(gone_account.company.company_id))
    gone.update(actions=[Company.email_validated.set(True)])
    intake_codes.generate_code(gone, gone.version)
    gone = Company.get(*Company.key(gone.company_id))
    survivor = survivor_account.company
    me = Principal(user=gone_account.user, company=gone)
    them = Principal(user=survivor_account.user, company=survivor)
    proposal = partners.propose(me, survivor.company_id, {"relationship": "approve"})
    partners.accept(them, gone.company_id, proposal.rev)
    email = f"erased-{secrets.token_hex(4)}@example.com"
    form = order_form(customer_email=email, customer_name=ERASED_CUSTOMER)
    intake.submit_request(gone, form, locale="en", ip="10.9.8.6", browser=False)
    intake_confirmation.confirm_request(
        link_in(last_mail_to(email), "/intake/confirm/").rsplit("/", 1)[1]
    )
    listed = next(iter(Item.query(keys.order_entries(gone.company_id, "ALL"))))
    order = _fresh(listed.order_id)
    assert order.source == "intake" and order.created_by_name == ERASED_CUSTOMER
    partners.assign_executor(me, order.order_id, survivor.company_id, order.version)
    erasure.mark(gone, gone_account.user.user_id)
    assert erasure.run_erasure(gone.company_id) == "done"
    return Erased(survivor=survivor, erased_id=gone.company_id, kept=_fresh(order.order_id))


def test_the_partner_of_an_erased_company_is_consistent(erased: Erased):
    gone, survivor = erased.erased_id, erased.survivor.company_id
    side = Partnership.get(*Partnership.key(survivor, gone), consistent_read=True)
    assert side.state == partners.DISABLED and side.history[-1].kind == "deleted"
    assert erased.kept.executor_id == survivor and erased.kept.company_id == gone
    assert erased.kept.customer_name == erasure_orders.ERASED_NAME
    assert ERASED_CUSTOMER not in (erased.kept.created_by_name, erased.kept.updated_by_name)
    assert integrity.check_company(survivor) == []
    assert integrity.check_company(gone) == [f"company {gone}: no PROFILE item"]


def _survivor_side(e: Erased) -> tuple[str, str]:
    return Partnership.key(e.survivor.company_id, e.erased_id)


def erased_partner_link_still_active(e: Erased) -> Undo:
    return _edit(*_survivor_side(e), state={"S": "active"})


def erased_partner_link_still_proposed(e: Erased) -> Undo:
    return _edit(*_survivor_side(e), state={"S": "proposed"}, awaiting={"S": e.erased_id})


def erased_partner_link_disabled_without_deletion(e: Erased) -> Undo:
    raw = _raw(*_survivor_side(e))
    history = raw["history"]["L"]
    last = {"M": {**history[-1]["M"], "kind": {"S": "changed"}}}
    return _edit(*_survivor_side(e), history={"L": [*history[:-1], last]})


def erased_partner_side_left_behind(e: Erased) -> Undo:
    raw = _raw(*_survivor_side(e))
    pk, sk = Partnership.key(e.erased_id, e.survivor.company_id)
    return _add(
        {
            **raw,
            "pk": {"S": pk},
            "sk": {"S": sk},
            "company_id": {"S": e.erased_id},
            "partner_id": {"S": e.survivor.company_id},
        }
    )


def kept_order_without_executor_entry(e: Erased) -> Undo:
    return _remove(*_entry_key(e.kept, "ALL", e.survivor.company_id))


def kept_order_entry_of_erased_owner_left(e: Erased) -> Undo:
    pk, sk = _entry_key(e.kept, "ALL", e.survivor.company_id)
    raw = _raw(pk, sk)
    return _add({**raw, "pk": {"S": keys.order_entries(e.erased_id, "ALL")}})


def kept_order_with_customer_phone(e: Erased) -> Undo:
    return _edit(*Order.key(e.kept.order_id), customer_phone={"S": "(11) 91234-5678"})


def kept_order_with_customer_name(e: Erased) -> Undo:
    return _edit(*Order.key(e.kept.order_id), customer_name={"S": ERASED_CUSTOMER})


def kept_intake_order_names_its_customer_as_creator(e: Erased) -> Undo:
    return _edit(*Order.key(e.kept.order_id), created_by_name={"S": ERASED_CUSTOMER})


def kept_order_with_customer_message(e: Erased) -> Undo:
    pk = keys.order(e.kept.order_id)
    return _add(
        {
            "pk": {"S": pk},
            "sk": {"S": "MSG#2001-01-01T00:00:00#cc"},
            "type": {"S": "OrderMessage"},
            "at": {"S": "2001-01-01T00:00:00.000000+0000"},
            "author_name": {"S": ERASED_CUSTOMER},
            "author_kind": {"S": "customer"},
            "text": {"S": "I am home after 5pm"},
        }
    )


ERASED_CORRUPTIONS: list[tuple[Callable[[Erased], Undo], str]] = [
    (erased_partner_link_still_active, "does not exist but the link is active"),
    (erased_partner_link_still_proposed, "does not exist but the link is proposed"),
    (erased_partner_link_disabled_without_deletion, "no 'deleted' history line"),
    (erased_partner_side_left_behind, "does not exist but its side remains"),
    (kept_order_without_executor_entry, "#IX#ALL / "),
    (kept_order_entry_of_erased_owner_left, "left behind by the erased owner"),
    (kept_order_with_customer_phone, "still holds the customer's data (customer_phone)"),
    (kept_order_with_customer_name, "still holds the customer's data (customer_name)"),
    (kept_intake_order_names_its_customer_as_creator, "data (created_by_name)"),
    (kept_order_with_customer_message, "data (MSG#2001-01-01T00:00:00#cc)"),
]


@pytest.mark.parametrize(
    ("corrupt", "expected"), ERASED_CORRUPTIONS, ids=[c.__name__ for c, _ in ERASED_CORRUPTIONS]
)
def test_each_corruption_after_a_partner_was_erased_is_reported(
    erased: Erased, corrupt: Callable[[Erased], Undo], expected: str
):
    undo = corrupt(erased)
    try:
        found = integrity.check_company(erased.survivor.company_id)
    finally:
        undo()
    assert any(expected in line for line in found), found


def test_the_partner_is_consistent_again_after_every_corruption_was_undone(erased: Erased):
    assert integrity.check_company(erased.survivor.company_id) == []

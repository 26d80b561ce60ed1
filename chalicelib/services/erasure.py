"""Deleting a company: confirm, mark, then erase every item and file of it in resumable batches.

Order of work, each step found through the company's own keys (never a table-wide read):

1. **Mark** (one TransactWriteItems): Company ``status = deleting`` (out of
   the activity index), the ``ERASE#`` job item in the ``ERASING`` index,
   and at once the public handles: Slug, form code, directory cards. From
   that moment sessions are refused (``sessions.authenticate``), the public
   page and the intake form answer 404.
2. **Run** (a background Lambda, resumed by the ``erasure_sweep`` schedule):
   partnerships (the partner's side is disabled, ours deleted), users
   (notifications, throttles, Login, User), invitations, orders (own
   orders erased; orders shared with a partner keep the partner's copy
   without our customers' personal data; orders we execute for a partner
   are handed back to it), intake requests and locks, rate counters,
   every remaining ``CO#<id>`` item, the S3 objects under ``logos/<id>/``
   and ``exports/<id>/``, and last the Company and the job item together.

Every step deletes what it finds and finds only what is left, so a run cut
short (crash, timeout) is finished by the next one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, TransactWriteError

from chalicelib.aws.clients import client
from chalicelib.config import get_settings
from chalicelib.db import keys
from chalicelib.db.accounts import (
    DELETING,
    Company,
    Invitation,
    LinkToken,
    Login,
    Slug,
    Throttle,
    User,
)
from chalicelib.db.base import Item, conflicted, failed_keys, query_page, transaction
from chalicelib.db.customers import CustomerAccess
from chalicelib.db.data_rights import ERASING, ErasureJob
from chalicelib.db.intake import FormKey, IntakeRequest
from chalicelib.db.orders import Notification, Order, OrderEntry, OrderEvent, OrderMessage
from chalicelib.db.partners import PartnerInvite, Partnership
from chalicelib.domain.errors import Conflict, ValidationFailed
from chalicelib.domain.validation import fold
from chalicelib.services import directory, limiter, notifications, orders, partners, signin
from chalicelib.services.orders import Actor
from chalicelib.services.sessions import Principal, now

log = logging.getLogger("checkos.erasure")

BATCH = 25  # BatchWriteItem's limit
PAGE = 100  # items read per Query while erasing
# A Lambda runs at most 15 minutes: a heartbeat older than this means the run died.
STALE_AFTER = timedelta(minutes=20)
HEARTBEAT_SECONDS = 10.0
# Stop a run with this much Lambda time left; the sweep resumes it.
RESERVE_SECONDS = 60.0
ORDER_ATTEMPTS = 4
# Placeholder for a customer's name on an order the partner keeps (the field is required).
ERASED_NAME = "—"
# Customer personal data of an order a partner keeps: cleared.
CUSTOMER_FIELDS: tuple[str, ...] = (
    "customer_phone",
    "customer_email",
    "customer_address",
    "internal_notes",
)
FUNCTION_NAME_VARIABLE = "DATA_RIGHTS_FUNCTION_NAME"
_threads: list[threading.Thread] = []


class SimulatedCrash(RuntimeError):
    """Raised by a run asked to stop after N deletions (tests of resumption)."""


class OutOfTime(Exception):
    """The Lambda is about to time out: stop cleanly, the sweep resumes."""


# -- confirming and marking ------------------------------------------------------------


def confirmation_matches(company: Company, typed: str) -> bool:
    """The typed confirmation is the company's name (case, accents and spacing aside)."""
    return bool(typed.strip()) and fold(" ".join(typed.split())) == fold(
        " ".join(company.name.split())
    )


def check_request(principal: Principal, form: Mapping[str, str]) -> None:
    """The admin re-entered their password and typed the company's name."""
    errors: dict[str, tuple[str, dict[str, object]]] = {}
    if not confirmation_matches(principal.company, form.get("confirmation", "")):
        errors["confirmation"] = ("erase.confirm_mismatch", {})
    password = form.get("password", "")
    if not signin.password_matches(principal.user.email, principal.user_id, password):
        errors["password"] = ("erase.wrong_password", {})
    if errors:
        raise ValidationFailed(errors)


def request_erasure(principal: Principal, form: Mapping[str, str]) -> None:
    """Check the confirmation, mark the company as being deleted, start the erasure."""
    check_request(principal, form)
    mark(principal.company, principal.user_id)
    _start_background(principal.company_id)


# A concurrent write to the Company (a settings save, a logo, a reactivation)
# makes the marking read it again and retry: the deletion always wins.
MARK_ATTEMPTS = 10


def mark(company: Company, user_id: str) -> None:
    """One transaction: status ``deleting``, the job item, and the public handles gone.

    The Company update is conditioned on the version read and bumps it, like
    any versioned save: a settings form read before the deletion then fails
    its own version condition instead of writing ``status = active`` back,
    and the directory cards and handles removed are exactly the stored ones.
    (An update without the version condition would reset a shell's version
    to 1, which an old form could match again.)
    """
    company_id = company.company_id
    for attempt in range(MARK_ATTEMPTS):
        if attempt:
            try:
                company = Company.get(*Company.key(company_id), consistent_read=True)
            except DoesNotExist:
                return
        if company.status == DELETING:
            log.info("company already being deleted", extra={"company": company_id})
            return
        if _try_mark(company, user_id):
            return
    raise Conflict("erase.busy")


def _try_mark(company: Company, user_id: str) -> bool:
    """False when the Company changed since it was read (read it again and retry)."""
    company_id = company.company_id
    at = now()
    job = ErasureJob(
        *ErasureJob.key(company_id),
        company_id=company_id,
        requested_at=at,
        requested_by=user_id,
        updated_at=at,
        **ErasureJob.index_fields(company_id, at.isoformat()),
    )
    tx = transaction()
    try:
        with tx:
            tx.update(
                company,
                actions=[
                    Company.status.set(DELETING),
                    Company.gsi3pk.remove(),  # out of the inactivity job's index
                    Company.gsi3sk.remove(),
                ],
                # The version condition is added (and the version bumped) by the model.
                condition=Company.pk.exists() & (Company.status != DELETING),
            )
            tx.save(job, condition=ErasureJob.pk.does_not_exist())
            tx.delete(
                Slug(*Slug.key(company.slug)),
                condition=(Slug.company_id == company_id) | Slug.pk.does_not_exist(),
            )
            if company.intake_code:
                tx.delete(
                    FormKey(*FormKey.key(company.intake_code)),
                    condition=(FormKey.company_id == company_id) | FormKey.pk.does_not_exist(),
                )
            directory.write_changes(tx, company, None)
    except TransactWriteError as error:
        if Company.key(company_id) in failed_keys(error, tx) or conflicted(error):
            return False
        raise
    return True


# -- running ---------------------------------------------------------------------------


@dataclass
class Eraser:
    """One run over one company. Counts deletions; may be told to crash (tests) or stop."""

    company_id: str
    crash_after: int | None = None
    deadline: float | None = None  # time.monotonic() value to stop at
    deleted: int = 0
    stage: str = "start"
    _beat: float = field(default_factory=time.monotonic)

    @property
    def prefix(self) -> str:
        return keys.company(self.company_id)

    # -- bookkeeping
    def _before_write(self, count: int = 1) -> None:
        if self.crash_after is not None and self.deleted + count > self.crash_after:
            raise SimulatedCrash(f"stopped after {self.deleted} deletions")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise OutOfTime()

    def _after_write(self, count: int) -> None:
        self.deleted += count
        if time.monotonic() - self._beat > HEARTBEAT_SECONDS:
            self.heartbeat()

    def heartbeat(self) -> None:
        self._beat = time.monotonic()
        job = ErasureJob(*ErasureJob.key(self.company_id))
        job.update(
            actions=[
                ErasureJob.updated_at.set(now()),
                ErasureJob.stage.set(self.stage),
                ErasureJob.deleted.add(self.deleted),
            ],
            condition=ErasureJob.pk.exists(),
        )
        self.deleted = 0  # added to the job's total

    # -- primitive deletes
    def delete_keys(self, found: Iterable[tuple[str, str]]) -> None:
        """BatchWriteItem deletes, 25 keys a request."""
        pending = list(dict.fromkeys(found))
        for start in range(0, len(pending), BATCH):
            chunk = pending[start : start + BATCH]
            self._before_write(len(chunk))
            with Item.batch_write() as batch:
                for pk, sk in chunk:
                    batch.delete(Item(pk, sk))
            self._after_write(len(chunk))

    def delete_if(self, item: Item, condition: Any) -> None:
        """One conditional DeleteItem; a failed condition means it is not ours (kept)."""
        self._before_write()
        try:
            item.delete(condition=condition)
        except DeleteError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            return
        self._after_write(1)

    def pages(self, partition: str, prefix: str | None = None) -> Iterator[list[Item]]:
        """The partition's items, a page at a time, re-read from the start after each page.

        Every page is deleted (or made to leave the partition) before the next
        read, so reading from the start again finds only what is left.
        """
        condition = Item.sk.startswith(prefix) if prefix else None
        while True:
            items, _next = query_page(
                partition, range_key_condition=condition, page_size=PAGE, consistent=True
            )
            if not items:
                return
            yield items


def run_erasure(
    company_id: str, *, crash_after: int | None = None, deadline: float | None = None
) -> str:
    """Erase (what is left of) a company marked for deletion; safe to run again at any time."""
    try:
        job = ErasureJob.get(*ErasureJob.key(company_id), consistent_read=True)
    except DoesNotExist:
        return "nothing"
    job.update(
        actions=[ErasureJob.runs.add(1), ErasureJob.updated_at.set(now())],
        condition=ErasureJob.pk.exists(),
    )
    try:
        company: Company | None = Company.get(*Company.key(company_id), consistent_read=True)
    except DoesNotExist:
        company = None
    if company is not None and company.status != DELETING:
        raise RuntimeError(f"company {company_id} is not marked for deletion")
    eraser = Eraser(company_id, crash_after=crash_after, deadline=deadline)
    try:
        _erase(eraser, company)
    except OutOfTime:
        eraser.heartbeat()
        log.info("erasure paused", extra={"company": company_id, "stage": eraser.stage})
        return "paused"
    except Exception as problem:
        log.exception("erasure failed", extra={"company": company_id, "stage": eraser.stage})
        _record_failure(company_id, eraser, problem)
        raise
    log.info("erasure done", extra={"company": company_id})
    return "done"


def _record_failure(company_id: str, eraser: Eraser, problem: Exception) -> None:
    try:
        ErasureJob(*ErasureJob.key(company_id)).update(
            actions=[
                ErasureJob.stage.set(eraser.stage),
                ErasureJob.deleted.add(eraser.deleted),
                ErasureJob.last_error.set(f"{type(problem).__name__}: {problem}"[:500]),
            ],
            condition=ErasureJob.pk.exists(),
        )
    except Exception:  # the failure itself is what matters; the sweep retries anyway
        log.exception("could not record the erasure failure", extra={"company": company_id})


def _erase(eraser: Eraser, company: Company | None) -> None:
    steps = (
        ("partnerships", lambda: _erase_partnerships(eraser, company)),
        ("users", lambda: _erase_users(eraser)),
        ("invitations", lambda: _erase_invitations(eraser)),
        ("orders", lambda: _erase_orders(eraser, company)),
        ("intake", lambda: _erase_intake(eraser)),
        ("counters", lambda: _erase_rate_counters(eraser)),
        ("company items", lambda: _erase_company_partition(eraser)),
        ("files", lambda: _erase_files(eraser)),
    )
    for stage, step in steps:
        eraser.stage = stage
        step()
    eraser.stage = "company"
    eraser._before_write(2)
    with transaction() as tx:
        # The Company and the job go together and last: until then a re-run finds both.
        tx.delete(Company(*Company.key(eraser.company_id)), add_version_condition=False)
        tx.delete(ErasureJob(*ErasureJob.key(eraser.company_id)))
    eraser.deleted += 2


# -- partnerships ------------------------------------------------------------------------


def _erase_partnerships(eraser: Eraser, company: Company | None) -> None:
    """Our side deleted, the partner's side disabled (one transaction each)."""
    for items in eraser.pages(eraser.prefix, "PARTNER"):
        for item in items:
            if isinstance(item, Partnership):
                _disable_partnership(eraser, item, company)
            elif isinstance(item, PartnerInvite):
                eraser.delete_if(
                    PartnerInvite(*PartnerInvite.link_key(item.invite_id)),
                    (PartnerInvite.inviter_id == eraser.company_id)
                    | PartnerInvite.pk.does_not_exist(),
                )
                eraser.delete_keys([(item.pk, item.sk)])
            else:
                eraser.delete_keys([(item.pk, item.sk)])


def _disable_partnership(eraser: Eraser, mine: Partnership, company: Company | None) -> None:
    partner_id = mine.partner_id
    for _attempt in range(ORDER_ATTEMPTS):
        try:
            theirs = Partnership.get(
                *Partnership.key(partner_id, eraser.company_id), consistent_read=True
            )
        except DoesNotExist:
            theirs = None
        eraser._before_write(2)
        tx = transaction()
        try:
            with tx:
                tx.delete(mine)
                if theirs is not None and theirs.state != partners.DISABLED and company:
                    # The partner's item, told from its side: disabled by the deleted company.
                    ours_next = partners.next_state(
                        mine, company, "", kind="deleted", state=partners.DISABLED, awaiting=None
                    )
                    updated = partners.mirror(ours_next, company)
                    tx.save(
                        updated,
                        condition=(Partnership.rev == int(theirs.rev))
                        & (Partnership.state == theirs.state),
                    )
        except TransactWriteError as error:
            if failed_keys(error, tx) or conflicted(error):
                continue  # the partner changed it meanwhile: read again
            raise
        eraser._after_write(1)
        if theirs is not None and theirs.state != partners.DISABLED and company:
            notifications.notify_company(
                partner_id, "partnership", params={"partner": company.name}
            )
        return
    raise RuntimeError(f"partnership with {partner_id} kept changing")


# -- users and invitations ---------------------------------------------------------------


def _erase_users(eraser: Eraser) -> None:
    """Per user: notifications, login throttle, Login (if still theirs), then the User."""
    for items in eraser.pages(eraser.prefix, User.SK_PREFIX):
        for user in items:
            if not isinstance(user, User):
                eraser.delete_keys([(user.pk, user.sk)])
                continue
            partition = Notification.partition(eraser.company_id, user.user_id)
            for notes in eraser.pages(partition):
                eraser.delete_keys((n.pk, n.sk) for n in notes)
            eraser.delete_keys([Throttle.key("email", user.email.strip().lower())])
            # The e-mail may already belong to someone else (a re-run after we freed it).
            eraser.delete_if(
                Login(*Login.key(user.email)),
                (Login.user_id == user.user_id) | Login.pk.does_not_exist(),
            )
            eraser.delete_keys([(user.pk, user.sk)])


def _erase_invitations(eraser: Eraser) -> None:
    for items in eraser.pages(eraser.prefix, Invitation.SK_PREFIX):
        for item in items:
            invite_id = item.sk.removeprefix(Invitation.SK_PREFIX)
            eraser.delete_if(
                LinkToken(*LinkToken.key("INVITE", invite_id)),
                (LinkToken.company_id == eraser.company_id) | LinkToken.pk.does_not_exist(),
            )
            eraser.delete_keys([(item.pk, item.sk)])


# -- orders --------------------------------------------------------------------------------


def _erase_orders(eraser: Eraser, company: Company | None) -> None:
    """Every order in our ``ALL`` list; its ALL entry goes last, so a re-run finds the rest."""
    partition = keys.order_entries(eraser.company_id, "ALL")
    for entries in eraser.pages(partition):
        for entry in entries:
            if not isinstance(entry, OrderEntry):
                eraser.delete_keys([(entry.pk, entry.sk)])
            elif entry.owner_id == eraser.company_id:
                _erase_own_order(eraser, entry, company)
            else:
                _hand_back(eraser, entry, company)


def _order_pages(order_id: str) -> Iterator[list[Item]]:
    """The order's items, a page (one consistent Query) at a time, following the cursor.

    The cursor still works after its item is deleted, so a page may be deleted
    before the next one is read; memory holds one page, whatever the chat's length.
    """
    cursor: str | None = None
    while True:
        items, cursor = query_page(
            keys.order(order_id), page_size=PAGE, start_sk=cursor, consistent=True
        )
        if items:
            yield items
        if cursor is None:
            return


def _erase_own_order(eraser: Eraser, entry: OrderEntry, company: Company | None) -> None:
    try:
        order: Order | None = Order.get(*Order.key(entry.order_id), consistent_read=True)
    except DoesNotExist:
        order = None
    if order is not None and order.executor_id and order.executor_id != eraser.company_id:
        _keep_for_executor(eraser, order, entry)
        return
    if order is not None and order.access_hash:
        eraser.delete_keys([CustomerAccess.key(order.access_hash)])
    if order is not None:
        # Every list entry of the order except ALL (the re-run's way back here).
        eraser.delete_keys(k for k in orders.entries_for(order) if k != (entry.pk, entry.sk))
    for items in _order_pages(entry.order_id):
        eraser.delete_keys((i.pk, i.sk) for i in items if i.sk != Order.SK)
    if order is not None:
        eraser.delete_keys([(order.pk, order.sk)])
    eraser.delete_keys([(entry.pk, entry.sk)])


def _is_customer_data(item: Item) -> bool:
    if isinstance(item, OrderMessage):
        return item.author_kind == "customer"
    if isinstance(item, OrderEvent):
        # Customer actions name the customer; mail events quote their address.
        return item.actor_kind == "customer" or item.kind in ("mail", "mail_failed")
    return item.sk == "RATING"  # the customer's stars and comment


def _keep_for_executor(eraser: Eraser, order: Order, entry: OrderEntry) -> None:
    """A partner executes this order: it keeps the order, without our customer's data."""
    if order.access_hash:
        eraser.delete_keys([CustomerAccess.key(order.access_hash)])
    for items in _order_pages(order.order_id):
        eraser.delete_keys((i.pk, i.sk) for i in items if _is_customer_data(i))
    for _attempt in range(ORDER_ATTEMPTS):
        before = orders.snapshot(order)
        order.customer_name = ERASED_NAME
        for name in CUSTOMER_FIELDS:
            setattr(order, name, "")
        order.custom = {}
        order.access_hash = None
        order.rating = None
        if order.source == "intake":
            order.created_by_name = ERASED_NAME  # the customer created it through the form
        event = orders.new_event(
            order, Actor(name=order.owner_name or "", kind="system"), "owner_erased", now()
        )
        # The last change may have been the customer's (a rating): it names them.
        order.updated_at, order.updated_by_name = event.at, event.actor_name
        order.owner_erased_at = event.at  # the executor keeps it (domain/visibility.py)
        old, new = orders.entries_for(before), orders.entries_for(order)
        partner_prefix = keys.order_entries(str(order.executor_id), "")
        kept = {k: e for k, e in new.items() if k[0].startswith(partner_prefix)}
        expected = int(order.version or 0)
        eraser._before_write(len(old) + 2)
        tx = transaction()
        try:
            with tx:
                tx.save(order)  # version condition: a concurrent partner change retries
                tx.save(event)
                for key in old.keys() - kept.keys():
                    tx.delete(OrderEntry(*key))
                for kept_entry in kept.values():
                    tx.save(kept_entry)
                if (entry.pk, entry.sk) not in old:
                    tx.delete(entry)
        except TransactWriteError as error:
            if (order.pk, order.sk) in failed_keys(error, tx) or conflicted(error):
                order = Order.get(*Order.key(order.order_id), consistent_read=True)
                continue
            raise
        order.version = expected + 1
        eraser._after_write(len(old.keys() - kept.keys()))
        return
    raise RuntimeError(f"order {order.order_id} kept changing")


def _hand_back(eraser: Eraser, entry: OrderEntry, company: Company | None) -> None:
    """An order we execute for a partner goes back to the partner (as "take back" does)."""
    for _attempt in range(ORDER_ATTEMPTS):
        try:
            order = Order.get(*Order.key(entry.order_id), consistent_read=True)
        except DoesNotExist:
            order = None
        if order is None or order.executor_id != eraser.company_id:
            eraser.delete_keys([(entry.pk, entry.sk)])
            return
        before = orders.snapshot(order)
        name = order.executor_name or (company.name if company else "")
        order.executor_id = order.executor_name = None
        order.quote_required = False
        partners.clear_quote(order)
        event = orders.new_event(
            order, Actor(name=name, kind="system"), "unshared", now(), note=name
        )
        eraser._before_write(len(orders.entries_for(before)))
        try:
            orders.save_change(before, order, event, expected_version=int(order.version or 0))
        except orders.EditConflict:
            continue
        eraser._after_write(
            len(orders.entries_for(before).keys() - orders.entries_for(order).keys())
        )
        # An entry the order no longer explains (stale copy): gone too, or the walk never ends.
        eraser.delete_keys([(entry.pk, entry.sk)])
        notifications.notify_company(
            before.company_id,
            "partnership",
            order_id=order.order_id,
            order_number=order.number,
            params={"partner": name},
        )
        return
    raise RuntimeError(f"order {entry.order_id} kept changing")


# -- intake, counters, the rest of the partition, files ----------------------------------


def _erase_intake(eraser: Eraser) -> None:
    """Pending requests and their locks, listed by the company's intake index (gsi1)."""
    partition = intake_partition(eraser.company_id)
    while True:
        found = list(
            Item.gsi1.query(partition, limit=PAGE)  # a page of the index, deleted, read again
        )
        if not found:
            return
        eraser.delete_keys((i.pk, i.sk) for i in found)


def intake_partition(company_id: str) -> str:
    """gsi1 partition of the company's intake requests and locks (keys from db/intake.py)."""
    return IntakeRequest.company_index(company_id, "", "")["gsi1pk"]


def _erase_rate_counters(eraser: Eraser) -> None:
    """Rate counters keyed by the company: computed keys of the windows still alive."""
    eraser.delete_keys(limiter.company_counter_keys(eraser.company_id, now()))


def _erase_company_partition(eraser: Eraser) -> None:
    """Whatever is left under ``CO#<id>`` (counters, usage, stats, exports, archives…)."""
    profile = Company.key(eraser.company_id)
    while True:
        items, _next = query_page(eraser.prefix, page_size=PAGE, consistent=True)
        doomed = [(i.pk, i.sk) for i in items if (i.pk, i.sk) != profile]
        if not doomed:
            return
        eraser.delete_keys(doomed)


FILE_PREFIXES: tuple[str, ...] = ("logos/", "exports/")


def file_prefixes(company_id: str) -> list[str]:
    return [f"{prefix}{company_id}/" for prefix in FILE_PREFIXES]


def stored_files(company_id: str) -> list[str]:
    """Keys of every S3 object of the company (logos, exports, archives)."""
    s3 = client("s3")
    found: list[str] = []
    for prefix in file_prefixes(company_id):
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            answer = s3.list_objects_v2(Bucket=get_settings().bucket_name, Prefix=prefix, **extra)
            found.extend(obj["Key"] for obj in answer.get("Contents", []))
            if not answer.get("IsTruncated"):
                break
            token = answer.get("NextContinuationToken")
    return found


def _erase_files(eraser: Eraser) -> None:
    doomed = stored_files(eraser.company_id)
    s3 = client("s3")
    for start in range(0, len(doomed), 1000):  # DeleteObjects' limit
        chunk = doomed[start : start + 1000]
        s3.delete_objects(
            Bucket=get_settings().bucket_name,
            Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True},
        )


# -- background runs and the sweep -------------------------------------------------------


def unfinished(limit: int = 50) -> list[ErasureJob]:
    """Deletions still in progress: one Query of the sparse ``ERASING`` index."""
    return [job for job in Item.gsi1.query(ERASING, limit=limit) if isinstance(job, ErasureJob)]


def sweep(*, as_of: datetime | None = None) -> dict[str, int]:
    """Resume every deletion whose last heartbeat is older than a run can last."""
    moment = as_of or now()
    resumed = 0
    for job in unfinished():
        if job.updated_at > moment - STALE_AFTER:
            continue  # a run is (probably) still going
        _start_background(job.company_id)
        resumed += 1
    return {"resumed": resumed}


def handle_event(event: dict[str, Any], context: object = None) -> dict[str, str]:
    """Entry point of the ``data_rights`` Lambda for an erasure."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    deadline = None
    if callable(remaining):
        deadline = time.monotonic() + remaining() / 1000 - RESERVE_SECONDS
    return {"status": run_erasure(str(event["company_id"]), deadline=deadline)}


def _start_background(company_id: str) -> None:
    if get_settings().is_local:
        # No Lambda in the local run and the tests: the same function in a thread.
        thread = threading.Thread(target=_run_quietly, args=(company_id,), daemon=True)
        _threads[:] = [*(t for t in _threads if t.is_alive()), thread]
        thread.start()
        return
    import json

    client("lambda").invoke(
        FunctionName=function_name(),
        InvocationType="Event",
        Payload=json.dumps({"job": "erase", "company_id": company_id}).encode(),
    )


def _run_quietly(company_id: str) -> None:
    try:
        run_erasure(company_id)
    except Exception:  # logged by run_erasure; the sweep resumes it
        return


def function_name() -> str:
    # A packaged stack passes the name; `chalice deploy` names it <app>-<stage>-data_rights.
    stage = get_settings().stage
    return os.environ.get(FUNCTION_NAME_VARIABLE) or f"checkos-{stage}-data_rights"


def join_background(timeout: float = 60.0) -> None:
    """Wait for background runs started by this process (tests, local shutdown)."""
    while _threads:
        _threads.pop().join(timeout)

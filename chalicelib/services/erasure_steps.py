"""A company erasure's resumable steps: the Eraser's deletes, and partnerships to files.

The Eraser counts and time-boxes its deletes (batched, conditional); each
step deletes what it finds and finds only what is left, so a run cut short
is finished by the next one. Orders are ``erasure_orders``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, TransactWriteError

from chalicelib.aws.clients import client
from chalicelib.config import get_settings
from chalicelib.db import keys
from chalicelib.db.accounts import Company, Invitation, LinkToken, Login, Throttle, User
from chalicelib.db.base import Item, conflicted, failed_keys, query_page, transaction
from chalicelib.db.data_rights import ErasureJob
from chalicelib.db.intake import IntakeRequest
from chalicelib.db.orders import Notification
from chalicelib.db.partners import PartnerInvite, Partnership
from chalicelib.services import limiter, notifications, partners
from chalicelib.services.sessions import now

log = logging.getLogger("checkos.erasure")

BATCH = 25  # BatchWriteItem's limit
PAGE = 100  # items read per Query while erasing
HEARTBEAT_SECONDS = 10.0
ORDER_ATTEMPTS = 4  # a partnership or order that keeps changing under the run


class SimulatedCrash(RuntimeError):
    """Raised by a run asked to stop after N deletions (tests of resumption)."""


class OutOfTime(Exception):
    """The Lambda is about to time out: stop cleanly, the sweep resumes."""


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
    def before_write(self, count: int = 1) -> None:
        if self.crash_after is not None and self.deleted + count > self.crash_after:
            raise SimulatedCrash(f"stopped after {self.deleted} deletions")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise OutOfTime()

    def after_write(self, count: int) -> None:
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
            self.before_write(len(chunk))
            with Item.batch_write() as batch:
                for pk, sk in chunk:
                    batch.delete(Item(pk, sk))
            self.after_write(len(chunk))

    def delete_if(self, item: Item, condition: Any) -> None:
        """One conditional DeleteItem; a failed condition means it is not ours (kept)."""
        self.before_write()
        try:
            item.delete(condition=condition)
        except DeleteError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            return
        self.after_write(1)

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


# -- partnerships ------------------------------------------------------------------------


def erase_partnerships(eraser: Eraser, company: Company | None) -> None:
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
        eraser.before_write(2)
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
        eraser.after_write(1)
        if theirs is not None and theirs.state != partners.DISABLED and company:
            notifications.notify_company(
                partner_id, "partnership", params={"partner": company.name}
            )
        return
    raise RuntimeError(f"partnership with {partner_id} kept changing")


# -- users and invitations ---------------------------------------------------------------


def erase_users(eraser: Eraser) -> None:
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


def erase_invitations(eraser: Eraser) -> None:
    for items in eraser.pages(eraser.prefix, Invitation.SK_PREFIX):
        for item in items:
            invite_id = item.sk.removeprefix(Invitation.SK_PREFIX)
            eraser.delete_if(
                LinkToken(*LinkToken.key("INVITE", invite_id)),
                (LinkToken.company_id == eraser.company_id) | LinkToken.pk.does_not_exist(),
            )
            eraser.delete_keys([(item.pk, item.sk)])


# -- intake, counters, the rest of the partition, files ----------------------------------


def erase_intake(eraser: Eraser) -> None:
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


def erase_rate_counters(eraser: Eraser) -> None:
    """Rate counters keyed by the company: computed keys of the windows still alive."""
    eraser.delete_keys(limiter.company_counter_keys(eraser.company_id, now()))


def erase_company_partition(eraser: Eraser) -> None:
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


def erase_files(eraser: Eraser) -> None:
    doomed = stored_files(eraser.company_id)
    s3 = client("s3")
    for start in range(0, len(doomed), 1000):  # DeleteObjects' limit
        chunk = doomed[start : start + 1000]
        s3.delete_objects(
            Bucket=get_settings().bucket_name,
            Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True},
        )

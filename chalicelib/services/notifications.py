"""In-app "needs attention" notifications: create, list, mark read.

The unread count lives on the User item, which every signed-in page already
reads with the session, so the bell in the header costs no extra request.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib.db import keys
from chalicelib.db.accounts import User
from chalicelib.db.base import (
    CONFLICT_ATTEMPTS,
    Item,
    conflict_pause,
    failed_keys,
    only_conflicted,
    query_page,
    retried,
    retry_single_write,
    transaction,
)
from chalicelib.db.orders import Notification
from chalicelib.domain.errors import NotFound
from chalicelib.services.sessions import now

log = logging.getLogger("checkos.notifications")
KINDS: tuple[str, ...] = (
    "intake_order",
    "chat_message",
    "past_service_date",
    "open_20_days",
    "open_30_days",
    "bad_rating",
    "partnership",
    "order_returned",
)
PAGE_SIZE = 30
# A user's unread count is one item every note to that user updates: notes to a busy
# technician collide often, and a note is worth a longer wait than a page (≈ 5 s).
NOTE_ATTEMPTS = 2 * CONFLICT_ATTEMPTS


def company_users(company_id: str) -> list[str]:
    return [
        u.user_id
        for u in Item.query(keys.company(company_id), Item.sk.startswith("USER#"))
        if isinstance(u, User)
    ]


def notify(
    company_id: str,
    user_ids: Iterable[str],
    kind: str,
    *,
    order_id: str | None = None,
    order_number: int | None = None,
    params: Mapping[str, str] | None = None,
    dedupe_key: str | None = None,
) -> int:
    """Create one notification per user and raise their unread count.

    With ``dedupe_key`` the notification is created at most once per user
    (scheduled jobs re-run safely); returns how many were created.
    """
    created = 0
    for user_id in dict.fromkeys(user_ids):
        if _notify_one(company_id, user_id, kind, order_id, order_number, params, dedupe_key):
            created += 1
    return created


def _notify_one(
    company_id: str,
    user_id: str,
    kind: str,
    order_id: str | None,
    order_number: int | None,
    params: Mapping[str, str] | None,
    dedupe_key: str | None,
) -> bool:
    """One notification and the user's unread count, in one transaction.

    Stamped newer than the user's "mark all read" (a condition of the count's
    update): a note stamped before a mark that commits first would be counted
    unread yet shown as read. When the mark won, the note is stamped again after
    it. A transaction cancelled only because another one held the user's item
    (two notes at once) is run again; a note is never dropped for that.
    """
    at = now()
    user = User(*User.key(company_id, user_id))
    for attempt in range(NOTE_ATTEMPTS):
        partition = Notification.partition(company_id, user_id)
        stamp = dedupe_key or f"{at.isoformat()}#{random.randbytes(3).hex()}"
        note = Notification(
            partition,
            f"NOTE#{stamp}",
            kind=kind,
            at=at,
            order_id=order_id,
            order_number=order_number,
            params=dict(params or {}),
        )
        tx = transaction()
        try:
            # One transaction: the unread count never disagrees with the notes (a crash
            # or a throttle between two writes used to leave the bell miscounting).
            with tx:
                tx.save(note, condition=Notification.pk.does_not_exist())
                tx.update(
                    user,
                    actions=[User.unread.add(1)],
                    condition=User.pk.exists()
                    & (User.notes_read_at.does_not_exist() | (User.notes_read_at < at)),
                )
        except TransactWriteError as error:
            failed = failed_keys(error, tx)
            if (note.pk, note.sk) in failed:
                return False  # already notified under this dedupe key
            if (user.pk, user.sk) in failed:
                present, read_at = _read_at(user)
                if not present:
                    log.info("notification for a removed user", extra={"user": user_id})
                    return False
                # "Mark all read" landed after our stamp: stamp the note after it.
                at = max(now(), read_at + timedelta(microseconds=1)) if read_at else now()
                continue
            if only_conflicted(error) and attempt + 1 < NOTE_ATTEMPTS:
                conflict_pause(attempt)
                continue
            retried("notification", attempt)
            if dedupe_key:
                raise  # re-run safe (scheduled jobs): the caller's retry creates it once
            log.warning("notification not saved", extra={"user": user_id, "kind": kind})
            return False
        retried("notification", attempt)
        return True
    log.warning("notification not saved", extra={"user": user_id, "kind": kind})
    return False


def _read_at(user: User) -> tuple[bool, datetime | None]:
    """Whether the user still exists, and its "all read" mark (None: never)."""
    try:
        user.refresh(consistent_read=True)
    except DoesNotExist:
        return False, None
    return True, user.notes_read_at


def notify_company(company_id: str, kind: str, **kwargs: Any) -> int:
    """``notify`` every user of the company (``kwargs`` as ``notify`` takes them)."""
    return notify(company_id, company_users(company_id), kind, **kwargs)


def latest(
    company_id: str, user_id: str, cursor: str | None = None
) -> tuple[list[Notification], str | None]:
    if cursor is not None and not cursor.startswith("NOTE#"):
        cursor = None  # not one of ours (a mangled link): the first page
    items, next_sk = query_page(
        Notification.partition(company_id, user_id),
        page_size=PAGE_SIZE,
        forward=False,
        start_sk=cursor,
    )
    return [n for n in items if isinstance(n, Notification)], next_sk


def mark_read(company_id: str, user_id: str, note_sk: str) -> None:
    note = Notification(Notification.partition(company_id, user_id), note_sk)
    try:
        note.update(
            actions=[Notification.read.set(True)],
            condition=Notification.pk.exists() & (Notification.read == False),  # noqa: E712
        )
    except UpdateError:
        # Unknown (another user's or company's) or already read: nothing to do.
        if not _exists(note):
            raise NotFound() from None
        return
    with contextlib.suppress(UpdateError):
        retry_single_write(
            "mark read",
            lambda: User(*User.key(company_id, user_id)).update(
                actions=[User.unread.add(-1)], condition=User.unread > 0
            ),
        )


def _exists(note: Notification) -> bool:
    try:
        note.refresh()
    except Exception:
        return False
    return True


def mark_all_read(company_id: str, user_id: str) -> None:
    """Everything older than now counts as read; the count drops to zero."""
    # A note committed after this mark is stamped after it (its transaction's condition).
    retry_single_write(
        "mark all read",
        lambda: User(*User.key(company_id, user_id)).update(
            actions=[User.unread.set(0), User.notes_read_at.set(now())],
            condition=User.pk.exists(),
        ),
    )

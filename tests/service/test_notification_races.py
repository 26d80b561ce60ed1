"""The bell never counts a note that is not unread, whatever order the writes land in.

"Mark all read" racing a new notification, with the interleaving injected
deterministically: the note is stamped, then the mark commits, then the
note's transaction runs (on Lambda the window is real; locally it is never
hit by chance).
"""

from __future__ import annotations

from chalicelib.db.accounts import User
from chalicelib.services import integrity, notifications
from tests.service.factories import new_company


def _unread(company_id: str, user_id: str) -> tuple[int, int]:
    """(the bell's count, the notes the list shows as unread)."""
    user = User.get(*User.key(company_id, user_id), consistent_read=True)
    notes, _ = notifications.latest(company_id, user_id)
    read_at = user.notes_read_at
    unread = [n for n in notes if not n.read and (read_at is None or n.at > read_at)]
    return int(user.unread), len(unread)


def test_mark_all_read_landing_between_a_notes_stamp_and_its_write_keeps_the_bell_true(
    aws, monkeypatch
):
    account = new_company("Bell Repairs")
    company_id, user_id = account.company.company_id, account.user.user_id
    notifications.notify(company_id, [user_id], "chat_message", order_number=1)
    real_transaction = notifications.transaction
    marked: list[bool] = []

    def mark_first_then_write():
        if not marked:  # the note is stamped already: the mark commits before its write
            marked.append(True)
            notifications.mark_all_read(company_id, user_id)
        return real_transaction()

    monkeypatch.setattr(notifications, "transaction", mark_first_then_write)
    created = notifications.notify(company_id, [user_id], "chat_message", order_number=2)
    assert marked == [True], "the interleaving was injected"
    bell, listed = _unread(company_id, user_id)
    assert created == 1
    assert (bell, listed) == (1, 1), "the note written after the mark is unread and counted"
    assert integrity.check_company(company_id) == []


def test_mark_all_read_after_the_note_reads_everything(aws):
    account = new_company("Bell Repairs Two")
    company_id, user_id = account.company.company_id, account.user.user_id
    notifications.notify(company_id, [user_id], "chat_message", order_number=1)
    notifications.mark_all_read(company_id, user_id)
    assert _unread(company_id, user_id) == (0, 0)
    notifications.notify(company_id, [user_id], "chat_message", order_number=2)
    assert _unread(company_id, user_id) == (1, 1)

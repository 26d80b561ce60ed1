"""Sign-in throttle, unlock and reset links at their edges: a window left full, a lost race, expiry.

The clock is stopped at the start of an hour (a fresh mail window), so each
edge is seen exactly: the second before it and the second at it.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from chalicelib.db.accounts import Throttle
from chalicelib.domain import limits
from chalicelib.domain.tokens import new_token
from chalicelib.i18n import translate
from chalicelib.services import password_reset, signin
from chalicelib.services.sessions import now
from tests.awscalls import CALLS
from tests.security.actors import cheap_passwords, own_ip
from tests.web.counter_writes import item_reads
from tests.web.factories import PASSWORD, last_mail_to, link_in, mails_to, sign_up
from tests.web.session import WebSession

WRONG = "not the password"


@pytest.fixture(autouse=True)
def address(monkeypatch) -> Iterator[str]:
    cheap_passwords(monkeypatch)
    with own_ip() as ip:
        yield ip


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """Stopped at the start of an hour (a fresh mail window), days ahead of other tests."""
    size = int(limits.HOUR.total_seconds())
    ahead = int((datetime.now(UTC) + timedelta(days=9)).timestamp()) // size * size
    with time_machine.travel(datetime.fromtimestamp(ahead, UTC), tick=False) as traveller:
        yield traveller


def _says(tab: WebSession, key: str, locale: str = "en", **params: object) -> bool:
    return html.escape(translate(locale, key, **params), quote=True) in tab.text()


def _log_in(tab: WebSession, email: str, password: str) -> int:
    tab.get("/login")
    return tab.post("/login", {"email": email, "password": password}).status_code


def _unlock_mails(email: str) -> list:
    subject = translate("en", "email.account_unlock.subject")
    return [m for m in mails_to(email) if m.subject == subject]


def _owner(client) -> str:
    tab = sign_up(client)
    tab.post("/logout", {})
    return tab.email


def test_a_window_left_full_by_a_request_that_died_refuses_then_frees_itself(
    client, clock, address, monkeypatch
):
    email = _owner(client)
    visitor = WebSession(client)
    for _ in range(signin.ACCOUNT_FAILURES):
        assert _log_in(visitor, email, WRONG) == 401
    clock.shift(signin.FIRST_LOCK_SECONDS + 60)  # the first lock (a minute) is over
    for _ in range(signin.ACCOUNT_FAILURES - 1):
        assert _log_in(visitor, email, WRONG) == 401
    # The attempt that fills the window dies while it is checked: reserved, never locked.
    died_at = now()
    real = signin.verify_password

    def dies(stored: str, password: str) -> bool:
        raise RuntimeError("the request died")

    monkeypatch.setattr(signin, "verify_password", dies)
    with pytest.raises(RuntimeError):
        signin.log_in(email, WRONG, address)
    monkeypatch.setattr(signin, "verify_password", real)

    # The window is full: even the right password is refused, with the wait of the
    # lock being set (the second: two minutes), read strongly consistent.
    mark = CALLS.mark()
    assert _log_in(visitor, email, PASSWORD) == 429
    assert _says(visitor, "login.locked", minutes=2), visitor.text()
    reads = [r for r in item_reads(mark, Throttle.SK) if r[0] == f"THROTTLE#email#{email}"]
    assert reads and all(consistent for _pk, _sk, consistent in reads), reads
    # Exactly STALE_WINDOW after its latest attempt it still holds; a second later it frees itself.
    clock.move_to(died_at + signin.STALE_WINDOW)
    assert _log_in(visitor, email, PASSWORD) == 429
    clock.move_to(died_at + signin.STALE_WINDOW + timedelta(seconds=1))
    assert _log_in(visitor, email, PASSWORD) == 303


def test_a_failure_that_loses_the_lock_race_neither_extends_the_lock_nor_mails(
    client, clock, address, monkeypatch
):
    email = _owner(client)
    hour = now()
    visitor = WebSession(client)
    clock.move_to(hour + timedelta(minutes=10))
    for _ in range(signin.ACCOUNT_FAILURES):
        assert _log_in(visitor, email, WRONG) == 401
    assert len(_unlock_mails(email)) == 1  # this hour's one link
    clock.move_to(hour + timedelta(minutes=20))  # the first lock is over
    for _ in range(signin.ACCOUNT_FAILURES - 1):
        assert _log_in(visitor, email, WRONG) == 401
    clock.move_to(hour + timedelta(minutes=50))
    real = signin.verify_password
    other: dict[str, int] = {}

    def stalls(stored: str, password: str) -> bool:
        # The attempt that filled the window hangs in its check; meanwhile the window
        # goes stale and another wrong attempt is reserved on it and sets the lock.
        monkeypatch.setattr(signin, "verify_password", real)
        clock.move_to(hour + timedelta(minutes=55, seconds=1))
        other["status"] = _log_in(WebSession(client), email, WRONG)
        # The stalled check ends after that lock (two minutes) is over, in the next mail hour.
        clock.move_to(hour + timedelta(minutes=60, seconds=30))
        return False

    monkeypatch.setattr(signin, "verify_password", stalls)
    with pytest.raises(signin.InvalidCredentials):
        signin.log_in(email, WRONG, address)
    assert other == {"status": 401}
    # The loser neither set a lock of its own nor sent a link: the owner gets in at once.
    assert len(_unlock_mails(email)) == 1
    assert _log_in(visitor, email, PASSWORD) == 303


def test_unlock_links_refuse_unknown_and_expired_with_their_message(client, clock):
    email = _owner(client)
    for _ in range(signin.ACCOUNT_FAILURES):
        assert _log_in(WebSession(client), email, WRONG) == 401
    link = link_in(_unlock_mails(email)[-1], "/login/unlock/")
    reader = WebSession(client, accept_language="es")
    assert reader.get(f"/login/unlock/{new_token()}").status_code == 404
    assert _says(reader, "unlock.invalid", "es"), reader.text()
    # The link was written a moment ago: read strongly consistent.
    mark = CALLS.mark()
    assert reader.get(link).status_code == 200
    reads = [r for r in item_reads(mark, "TOKEN") if r[0].startswith(f"{signin.UNLOCK}#")]
    assert reads and all(consistent for _pk, _sk, consistent in reads), reads
    sent = now()
    clock.move_to(sent + signin.UNLOCK_LIFETIME - timedelta(seconds=1))
    assert reader.get(link).status_code == 200
    clock.move_to(sent + signin.UNLOCK_LIFETIME)
    assert reader.get(link).status_code == 404
    assert _says(reader, "unlock.invalid", "es"), reader.text()


def test_reset_links_refuse_unknown_and_expired_with_their_message(client, clock):
    email = _owner(client)
    reader = WebSession(client, accept_language="pt-BR")
    reader.get("/password/forgot")
    reader.post("/password/forgot", {"email": email})
    link = link_in(last_mail_to(email), "/password/reset/")
    sent = now()
    assert reader.get(f"/password/reset/{new_token()}").status_code == 404
    assert _says(reader, "reset.invalid", "pt-BR"), reader.text()
    # The link was written a moment ago: read strongly consistent.
    mark = CALLS.mark()
    assert reader.get(link).status_code == 200
    reads = [r for r in item_reads(mark, "TOKEN") if r[0].startswith("RESET#")]
    assert reads and all(consistent for _pk, _sk, consistent in reads), reads
    clock.move_to(sent + password_reset.RESET_LIFETIME - timedelta(seconds=1))
    assert reader.get(link).status_code == 200
    clock.move_to(sent + password_reset.RESET_LIFETIME)
    assert reader.get(link).status_code == 404
    assert _says(reader, "reset.invalid", "pt-BR"), reader.text()

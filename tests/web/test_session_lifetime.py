"""How long a session lives: the absolute lifetime holds even for a session in constant use.

The idle timeout (60 minutes) ends a forgotten session long before the
absolute lifetime (12 hours); these tests keep the session busy with a
request every few minutes so that only the absolute limit can end it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from chalicelib.config import get_settings
from chalicelib.db.accounts import Company, User
from chalicelib.services import erasure, sessions
from tests.security.actors import cheap_passwords, own_ip
from tests.web.company_factories import staff_member
from tests.web.factories import PASSWORD, ids_of, last_mail_to, link_in, sign_up
from tests.web.session import WebSession

# Well inside the 60-minute idle timeout: only the absolute lifetime can end the session.
BUSY_EVERY = timedelta(minutes=15)


@pytest.fixture(autouse=True)
def _fast(monkeypatch) -> Iterator[None]:
    cheap_passwords(monkeypatch)
    with own_ip():
        yield


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    """A stopped clock at a whole second: every request sees exactly the time we set."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    with time_machine.travel(start, tick=False) as traveller:
        yield traveller


def _signed_in(tab: WebSession) -> bool:
    return tab.get("/orders").status_code == 200


def _stay_busy(tab: WebSession, clock, until: datetime) -> int:
    """A request every few minutes until ``until``; returns how many were answered signed in."""
    answered = 0
    while datetime.now(UTC) + BUSY_EVERY < until:
        clock.shift(BUSY_EVERY)
        assert _signed_in(tab), f"signed out at {datetime.now(UTC)} while in use"
        answered += 1
    clock.move_to(until)
    return answered


def test_a_session_in_constant_use_ends_at_its_absolute_lifetime(client, clock):
    started = datetime.now(UTC)
    owner = sign_up(client)
    lifetime = timedelta(hours=get_settings().session_ttl_hours)
    busy = _stay_busy(owner, clock, started + lifetime - timedelta(seconds=1))
    assert busy >= 40  # 12 hours of requests, never idle for an hour
    assert _signed_in(owner), "still valid one second before the lifetime"
    clock.shift(timedelta(seconds=1))
    answer = owner.get("/orders")
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/login?next=")
    assert "sid" not in owner.cookies  # the dead cookie is cleared too


def test_an_expired_session_stays_refused_when_its_cookie_is_replayed(client, clock):
    started = datetime.now(UTC)
    owner = sign_up(client)
    _stay_busy(owner, clock, started + timedelta(hours=get_settings().session_ttl_hours))
    copy = owner.cookies["sid"]
    assert not _signed_in(owner)
    replayed = WebSession(client)
    replayed.cookies["sid"] = copy
    assert not _signed_in(replayed)


def test_signing_in_again_starts_a_new_full_lifetime(client, clock):
    started = datetime.now(UTC)
    owner = sign_up(client)
    _stay_busy(owner, clock, started + timedelta(hours=11))
    fresh = WebSession(client)
    fresh.get("/login")
    assert fresh.post("/login", {"email": owner.email, "password": PASSWORD}).status_code == 303
    _stay_busy(fresh, clock, started + timedelta(hours=13))
    assert _signed_in(fresh) and not _signed_in(owner)


def test_a_session_begun_the_same_second_as_a_password_reset_is_valid(client, clock):
    owner = sign_up(client)
    anonymous = WebSession(client)
    anonymous.get("/password/forgot")
    anonymous.post("/password/forgot", {"email": owner.email})
    link = link_in(last_mail_to(owner.email), "/password/reset/")
    anonymous.get(link)
    clock.shift(timedelta(minutes=1))
    assert anonymous.post(link, {"password": "an entirely new secret"}).status_code == 303
    # Same instant (the clock is stopped): the new session is after the reset, the old one not.
    again = WebSession(client)
    again.get("/login")
    answer = again.post("/login", {"email": owner.email, "password": "an entirely new secret"})
    assert answer.status_code == 303
    assert _signed_in(again)
    assert not _signed_in(owner)


def test_a_company_being_deleted_refuses_every_session_at_once(client):
    admin = sign_up(client)
    staff = staff_member(client, admin)
    assert _signed_in(admin) and _signed_in(staff)
    company_id, admin_id = ids_of(admin)
    staff_ids = ids_of(staff)
    # Marked only (the background erasure that follows would remove the users too).
    erasure.mark(Company.get(*Company.key(company_id)), admin_id)
    assert not _signed_in(staff)
    assert not _signed_in(admin)
    assert User.get(*User.key(*staff_ids)).email  # the user itself still exists


def test_a_session_token_is_never_reused_for_a_second_session(aws, monkeypatch):
    import secrets

    admin_ids = ("c" * 16, "u" * 16)
    monkeypatch.setattr(secrets, "token_urlsafe", lambda nbytes=None: "the-same-token")
    first = sessions.start_session(admin_ids[1], admin_ids[0])
    assert first == "the-same-token"
    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        sessions.start_session("another-user", "another-company")
    # The first session still belongs to its own user.
    stored = sessions.Session.get(*sessions.Session.key(sessions.token_hash(first)))
    assert (stored.user_id, stored.company_id) == (admin_ids[1], admin_ids[0])

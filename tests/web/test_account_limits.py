"""Account limits at their exact edges: sign-in locks, reset links, e-mail codes, mail windows.

The clock is stopped, so each limit is seen holding one second before its
edge and giving way at it.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from chalicelib.domain import limits
from chalicelib.i18n import translate
from chalicelib.services import email_codes, password_reset, signin
from tests.awscalls import CALLS
from tests.security.actors import cheap_passwords, own_ip
from tests.web.counter_writes import counter_expiries
from tests.web.factories import PASSWORD, code_in, last_mail_to, link_in, mails_to, sign_up
from tests.web.session import WebSession

WRONG = "not the password"


@pytest.fixture(autouse=True)
def _fast(monkeypatch) -> Iterator[None]:
    cheap_passwords(monkeypatch)
    with own_ip():
        yield


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    """Stopped at the start of a fresh mail window (an hour), days ahead of other tests."""
    size = int(limits.HOUR.total_seconds())
    ahead = int((datetime.now(UTC) + timedelta(days=5)).timestamp()) // size * size
    with time_machine.travel(datetime.fromtimestamp(ahead, UTC), tick=False) as traveller:
        yield traveller


def _says(tab: WebSession, key: str, **params: object) -> bool:
    return html.escape(translate("en", key, **params), quote=True) in tab.text()


def _log_in(tab: WebSession, email: str, password: str) -> int:
    tab.get("/login")
    return tab.post("/login", {"email": email, "password": password}).status_code


def _account(client) -> str:
    owner = sign_up(client)
    owner.post("/logout", {})
    return owner.email  # type: ignore[attr-defined]


def test_five_wrong_passwords_lock_the_account_for_exactly_a_minute(client, clock):
    email = _account(client)
    door = WebSession(client)
    for _ in range(signin.ACCOUNT_FAILURES):
        assert _log_in(door, email, WRONG) == 401
    assert _log_in(door, email, PASSWORD) == 429
    assert "Too many failed sign-ins" in door.text()
    assert _says(door, "login.locked", minutes=1)  # a lock of 60 seconds reads "1 minute"
    clock.shift(timedelta(seconds=signin.FIRST_LOCK_SECONDS - 1))
    assert _log_in(door, email, PASSWORD) == 429
    assert _says(door, "login.locked", minutes=1)  # the last second still rounds up to a minute
    clock.shift(timedelta(seconds=1))
    assert _log_in(door, email, PASSWORD) == 303


def test_a_right_password_clears_the_count_of_wrong_ones(client, clock):
    email = _account(client)
    door = WebSession(client)
    for _ in range(signin.ACCOUNT_FAILURES - 1):
        assert _log_in(door, email, WRONG) == 401
    assert _log_in(door, email, PASSWORD) == 303
    for _ in range(signin.ACCOUNT_FAILURES - 1):
        assert _log_in(WebSession(client), email, WRONG) == 401
    assert _log_in(WebSession(client), email, PASSWORD) == 303


def test_a_second_lock_without_a_right_password_between_lasts_twice_as_long(client, clock):
    email = _account(client)
    door = WebSession(client)
    for _ in range(signin.ACCOUNT_FAILURES):
        _log_in(door, email, WRONG)
    clock.shift(timedelta(seconds=signin.FIRST_LOCK_SECONDS))
    for _ in range(signin.ACCOUNT_FAILURES):
        assert _log_in(door, email, WRONG) == 401
    assert _log_in(door, email, PASSWORD) == 429
    clock.shift(timedelta(seconds=signin.FIRST_LOCK_SECONDS))
    assert _log_in(door, email, PASSWORD) == 429  # a first lock would be over by now
    clock.shift(timedelta(seconds=signin.FIRST_LOCK_SECONDS - 1))
    assert _log_in(door, email, PASSWORD) == 429
    assert _says(door, "login.locked", minutes=1)
    clock.shift(timedelta(seconds=1))
    assert _log_in(door, email, PASSWORD) == 303


def test_a_reset_link_works_for_exactly_its_hour(client, clock):
    email = _account(client)
    anonymous = WebSession(client)
    anonymous.get("/password/forgot")
    anonymous.post("/password/forgot", {"email": email})
    link = link_in(last_mail_to(email), "/password/reset/")
    clock.shift(password_reset.RESET_LIFETIME - timedelta(seconds=1))
    assert anonymous.get(link).status_code == 200
    clock.shift(timedelta(seconds=1))
    assert anonymous.get(link).status_code == 404
    assert anonymous.post(link, {"password": "a brand new secret"}).status_code == 404
    assert _log_in(WebSession(client), email, PASSWORD) == 303  # the password did not change


def test_an_email_code_is_accepted_until_its_thirty_minutes_are_over(client, clock):
    tab = sign_up(client, validate=False)
    first = code_in(last_mail_to(tab.email))
    clock.shift(email_codes.CODE_LIFETIME)
    tab.get("/verify-email")
    tab.post("/verify-email", {"code": first})
    assert _says(tab, "verify.expired")
    tab.get("/verify-email")
    tab.post("/verify-email/resend", {})
    second = code_in(last_mail_to(tab.email))
    assert second != first or len(mails_to(tab.email)) == 2
    clock.shift(email_codes.CODE_LIFETIME - timedelta(seconds=1))
    tab.get("/verify-email")
    assert tab.post("/verify-email", {"code": second}).status_code == 303


def test_a_new_code_can_be_asked_for_once_a_minute_with_the_seconds_left(client, clock):
    tab = sign_up(client, validate=False)
    sent = len(mails_to(tab.email))
    clock.shift(timedelta(seconds=30))
    tab.get("/verify-email")
    tab.post("/verify-email/resend", {})
    tab.get("/verify-email")
    assert _says(tab, "verify.resend_wait", seconds=31)
    assert len(mails_to(tab.email)) == sent
    clock.shift(timedelta(seconds=30))
    tab.post("/verify-email/resend", {})
    assert len(mails_to(tab.email)) == sent + 1


def test_reset_mails_to_one_address_stop_at_three_until_the_window_ends(client, clock):
    email = _account(client)
    clock.shift(timedelta(minutes=20))
    anonymous = WebSession(client)
    anonymous.get("/password/forgot")
    before = len(mails_to(email))
    for _ in range(password_reset.RESET_LIMIT_EMAIL):
        assert anonymous.post("/password/forgot", {"email": email}).status_code == 200
    assert len(mails_to(email)) == before + password_reset.RESET_LIMIT_EMAIL
    assert anonymous.post("/password/forgot", {"email": email}).status_code == 429
    assert _says(anonymous, "limits.mail_too_many", minutes=40)
    clock.shift(timedelta(minutes=40) - timedelta(seconds=1))
    assert anonymous.post("/password/forgot", {"email": email}).status_code == 429
    clock.shift(timedelta(seconds=1))
    assert anonymous.post("/password/forgot", {"email": email}).status_code == 200
    assert len(mails_to(email)) == before + password_reset.RESET_LIMIT_EMAIL + 1


def test_mail_counters_expire_an_hour_after_their_window_and_failures_after_a_day(client, clock):
    email = _account(client)
    window_begins = int(datetime.now(UTC).timestamp())  # the clock stands at a window's start
    clock.shift(timedelta(minutes=20))
    anonymous = WebSession(client)
    anonymous.get("/password/forgot")
    mark = CALLS.mark()
    anonymous.post("/password/forgot", {"email": email})
    kept = (
        window_begins
        + int(limits.rate_limit("password-reset", "recipient").window.total_seconds())
        + 3600
    )
    expiries = counter_expiries(mark)
    assert len(expiries) == 2, expiries  # the address of origin and the e-mail address
    assert all(stamps == [kept] for stamps in expiries.values()), expiries
    mark = CALLS.mark()
    assert _log_in(WebSession(client), email, WRONG) == 401
    remembered = int(datetime.now(UTC).timestamp() + signin.THROTTLE_MEMORY.total_seconds())
    expiries = counter_expiries(mark)
    assert len(expiries) == 2, expiries  # the account and the address of origin
    assert all(stamps == [remembered] for stamps in expiries.values()), expiries

"""The intake form's limits with their real numbers: per address per hour and per day, per form.

Driven through ``count_submission``, the one place every submission (HTML
form, JSON API, resend) passes; the clock is stopped so windows are exact.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from chalicelib.services import intake, intake_codes
from tests.awscalls import CALLS
from tests.service.factories import new_company
from tests.web.counter_writes import counter_expiries

_addresses = itertools.count(1)


def _limit(scope: str, window: str) -> int:
    (found,) = [r.limit for r in intake.RATE_LIMITS if (r.scope, r.window) == (scope, window)]
    return found


def _new_ip() -> str:
    return f"192.0.{next(_addresses) % 250}.{secrets.randbelow(250) + 1}"


def _company_id() -> str:
    return new_company(f"Intake Limits {secrets.token_hex(3)}").company.company_id


@pytest.fixture
def day_start() -> Iterator[time_machine.Coordinates]:
    """Stopped at midnight UTC of a day far from the other tests' windows."""
    midnight = (datetime.now(UTC) + timedelta(days=40)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    with time_machine.travel(midnight, tick=False) as clock:
        yield clock


def _refused(company_id: str, ip: str) -> bool:
    try:
        intake.count_submission(company_id, ip)
    except intake.RateLimited:
        return True
    return False


def test_one_address_sends_twenty_an_hour_and_240_a_day(aws, day_start):
    per_hour, per_day = _limit("ip", "hour"), _limit("ip", "day")
    ip = _new_ip()
    hours = per_day // per_hour
    for _hour in range(hours):
        # A company of its own each hour: only the address's limits are in play.
        company_id = _company_id()
        assert [_refused(company_id, ip) for _ in range(per_hour)] == [False] * per_hour
        assert _refused(company_id, ip)  # the 21st in the hour
        day_start.shift(timedelta(hours=1))
    # A fresh hour, but the day is full.
    assert _refused(_company_id(), ip)
    day_start.shift(timedelta(hours=23 - hours, minutes=59, seconds=59))
    assert _refused(_company_id(), ip)  # last second of the day
    day_start.shift(timedelta(seconds=1))
    assert not _refused(_company_id(), ip)  # a new day


def test_one_form_takes_a_hundred_an_hour_from_any_addresses(aws, day_start):
    per_form = _limit("form", "hour")
    company_id, other_id = _company_id(), _company_id()
    answers = [_refused(company_id, _new_ip()) for _ in range(per_form)]
    assert answers == [False] * per_form
    assert _refused(company_id, _new_ip())
    assert not _refused(other_id, _new_ip())  # the limit is the form's own
    day_start.shift(timedelta(minutes=59, seconds=59))
    assert _refused(company_id, _new_ip())
    day_start.shift(timedelta(seconds=1))
    assert not _refused(company_id, _new_ip())


def test_one_requester_address_gets_five_confirmation_mails_a_day_from_any_network(aws, day_start):
    per_day = _limit("recipient", "day")
    company_id = _company_id()
    # Each from a fresh network, with the address written differently: one requester.
    spellings = ["ana@example.com", " Ana@Example.com", "ANA@EXAMPLE.COM "]
    for n in range(per_day):
        intake.count_submission(company_id, _new_ip(), spellings[n % len(spellings)])
    with pytest.raises(intake.RateLimited):
        intake.count_submission(company_id, _new_ip(), "ana@example.com")
    intake.count_submission(company_id, _new_ip(), "bo@example.com")  # another requester
    # Counting the network and the form never touches the requester's allowance.
    intake.count_submission(company_id, _new_ip())
    day_start.shift(timedelta(hours=23, minutes=59, seconds=59))
    with pytest.raises(intake.RateLimited):
        intake.count_submission(company_id, _new_ip(), "ana@example.com")
    day_start.shift(timedelta(seconds=1))
    intake.count_submission(company_id, _new_ip(), "ana@example.com")  # a new day


def test_a_form_code_longer_than_any_issued_is_closed_without_a_read(aws):
    company = new_company("Form Codes").company
    code = intake_codes.generate_code(company, company.version)
    assert intake.form_company(code).company_id == company.company_id
    assert len(code) <= 128
    for code, reads in [("", 0), ("x" * 129, 0), ("x" * 4000, 0), ("x" * 128, 1)]:
        mark = CALLS.mark()
        with pytest.raises(intake.FormClosed):
            intake.form_company(code)
        assert len(CALLS.since(mark)) == reads, len(code)


def test_a_refused_submission_is_not_counted_against_the_form(aws, day_start):
    per_hour = _limit("ip", "hour")
    company_id = _company_id()
    ip = _new_ip()
    for _ in range(per_hour):
        intake.count_submission(company_id, ip)
    for _ in range(5):
        assert _refused(company_id, ip)
    # The form counted only the accepted ones: room for exactly the rest of its hundred.
    rest = _limit("form", "hour") - per_hour
    assert [_refused(company_id, _new_ip()) for _ in range(rest)] == [False] * rest
    assert _refused(company_id, _new_ip())


def test_the_browser_form_may_be_sent_from_three_seconds_to_two_hours_after_it_was_issued(
    day_start,
):
    form = {"customer_name": "Joana"}
    issued = time.time()
    with pytest.raises(intake.TooFast) as too_fast:
        intake.screen_browser_form(form, issued - intake.MIN_SECONDS_TO_SUBMIT + 0.5)
    assert too_fast.value.params == {"seconds": intake.MIN_SECONDS_TO_SUBMIT}  # said in the page
    intake.screen_browser_form(form, issued - intake.MIN_SECONDS_TO_SUBMIT)
    intake.screen_browser_form(form, issued - intake.FORM_TOKEN_MAX_AGE.total_seconds())
    with pytest.raises(intake.FormExpired):
        intake.screen_browser_form(form, issued - intake.FORM_TOKEN_MAX_AGE.total_seconds() - 1)
    with pytest.raises(intake.AutomatedSubmission):
        intake.screen_browser_form({**form, intake.HONEYPOT: " x "}, issued - 60)
    intake.screen_browser_form({**form, intake.HONEYPOT: "   "}, issued - 60)


def test_intake_counters_expire_an_hour_after_their_window(aws, day_start):
    company_id, ip = _company_id(), _new_ip()
    day_start.shift(timedelta(minutes=10))
    at = int(time.time())
    mark = CALLS.mark()
    intake.count_submission(company_id, ip)
    expiries = counter_expiries(mark, key_prefix="THROTTLE#intake:")
    begins = at - 600  # the clock stands ten minutes into a fresh day
    assert sorted(s for stamps in expiries.values() for s in stamps) == [
        begins + 2 * 3600,  # address, this hour: its end and an hour more
        begins + 2 * 3600,  # form, this hour
        begins + 25 * 3600,  # address, this day
    ]

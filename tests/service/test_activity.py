"""Last activity: at most one write per user per day, and the sparse index of the inactivity job."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import time_machine

from chalicelib.db.accounts import Company, User
from chalicelib.db.base import Item
from chalicelib.services import activity, companies
from chalicelib.services.sessions import Principal
from tests.service.factories import new_company

DAY = date(2033, 5, 10)


def _at(day: date, hour: int = 12) -> time_machine.travel:
    return time_machine.travel(datetime(day.year, day.month, day.day, hour, tzinfo=UTC), tick=False)


def _principal(company_id: str, user_id: str) -> Principal:
    """What the session check reads for a request (fresh items, as each request does)."""
    return Principal(
        user=User.get(*User.key(company_id, user_id)),
        company=Company.get(*Company.key(company_id)),
    )


def _partition(day: date) -> set[str]:
    return {c.company_id for c in Item.gsi3.query(Company.activity_partition(day.isoformat()))}


def _second_user(company_id: str) -> User:
    user = User(
        *User.key(company_id, "second"),
        user_id="second",
        company_id=company_id,
        email="second@example.com",
        name="Second",
        created_at=datetime.now(UTC),
    )
    user.save()
    return user


def test_sign_up_puts_the_company_in_the_index_of_its_first_day(aws):
    with _at(DAY):
        account = new_company("Index Day One")
    company = Company.get(*Company.key(account.company.company_id))
    assert company.last_active_day == DAY.isoformat()
    assert company.gsi3pk == f"ACTIVE#{DAY.isoformat()}"
    assert company.company_id in _partition(DAY)
    assert account.user.last_active_day == DAY.isoformat()


def test_the_first_request_of_a_day_writes_once_in_one_request(aws, budget):
    with _at(DAY):
        account = new_company("First Of The Day")
    company_id, user_id = account.company.company_id, account.user.user_id
    next_day = DAY + timedelta(days=1)
    with _at(next_day):
        principal = _principal(company_id, user_id)
        with budget:
            assert activity.record_activity(principal) is True
        assert [c.operation for c in budget.dynamodb] == ["TransactWriteItems"]
        # The same request's principal, and every later request today: no write at all.
        with budget:
            assert activity.record_activity(principal) is False
            assert activity.record_activity(_principal(company_id, user_id)) is False
        # Only the two reads that build the second principal.
        assert [c.operation for c in budget.dynamodb] == ["GetItem", "GetItem"]
    assert company_id in _partition(next_day)
    assert company_id not in _partition(DAY)  # moved, not copied: one partition per company
    assert User.get(*User.key(company_id, user_id)).last_active_day == next_day.isoformat()


def test_a_second_user_the_same_day_only_stamps_their_own_user(aws, budget):
    with _at(DAY):
        account = new_company("Two Users")
    company_id = account.company.company_id
    _second_user(company_id)
    next_day = DAY + timedelta(days=1)
    with _at(next_day):
        activity.record_activity(_principal(company_id, account.user.user_id))
        second = _principal(company_id, "second")
        with budget:
            assert activity.record_activity(second) is True
    assert [c.operation for c in budget.dynamodb] == ["UpdateItem"]
    assert User.get(*User.key(company_id, "second")).last_active_day == next_day.isoformat()


def test_activity_stamps_leave_the_settings_form_version_alone(aws):
    """Another user's first request of the day must not make an admin's open form stale."""
    with _at(DAY):
        account = new_company("Version Kept")
    company_id = account.company.company_id
    version = Company.get(*Company.key(company_id)).version
    with _at(DAY + timedelta(days=1)):
        assert activity.record_activity(_principal(company_id, account.user.user_id))
    assert Company.get(*Company.key(company_id)).version == version


def test_an_inactive_company_records_the_day_but_stays_out_of_the_index(aws):
    with _at(DAY):
        account = new_company("Sleeping")
        form = companies.profile_values(account.company)
        form["status"] = "inactive"
        companies.update_profile(account.company, form, "en")
    company_id = account.company.company_id
    assert Company.get(*Company.key(company_id)).gsi3pk is None  # deactivation cleared it
    assert company_id not in _partition(DAY)
    next_day = DAY + timedelta(days=1)
    with _at(next_day):
        assert activity.record_activity(_principal(company_id, account.user.user_id))
    company = Company.get(*Company.key(company_id))
    assert company.last_active_day == next_day.isoformat()
    assert (company.gsi3pk, company.gsi3sk) == (None, None)


def test_a_company_inactivated_after_the_session_check_is_not_put_back_in_the_index(aws):
    with _at(DAY):
        account = new_company("Raced")
    company_id, user_id = account.company.company_id, account.user.user_id
    next_day = DAY + timedelta(days=1)
    with _at(next_day):
        principal = _principal(company_id, user_id)  # read while still active...
        activity.update_unversioned(  # ...then the nightly job inactivates it
            company_id, [Company.status.set("inactive"), *activity.disarm_actions()]
        )
        assert activity.record_activity(principal) is False
        # Nothing was written, so the user's next request records the day.
        assert User.get(*User.key(company_id, user_id)).last_active_day == DAY.isoformat()
        assert activity.record_activity(_principal(company_id, user_id)) is True
    company = Company.get(*Company.key(company_id))
    assert company.status == "inactive" and company.gsi3pk is None
    assert company.last_active_day == next_day.isoformat()


def test_a_day_already_recorded_is_never_moved_backwards(aws, budget):
    with _at(DAY):
        account = new_company("Clock Skew")
    company_id, user_id = account.company.company_id, account.user.user_id
    with _at(DAY - timedelta(days=1)), budget:
        assert activity.record_activity(_principal(company_id, user_id)) is False
    assert [c.operation for c in budget.dynamodb] == ["GetItem", "GetItem"]
    assert company_id in _partition(DAY)


def test_reactivation_starts_the_idle_clock_over(aws):
    with _at(DAY):
        account = new_company("Back Again")
        form = companies.profile_values(account.company)
        form["status"] = "inactive"
        companies.update_profile(account.company, form, "en")
    company_id = account.company.company_id
    later = DAY + timedelta(days=200)
    with _at(later):
        companies.reactivate(Company.get(*Company.key(company_id)))
    company = Company.get(*Company.key(company_id))
    assert company.status == "active"
    assert company.last_active_day == later.isoformat()
    assert company_id in _partition(later)


def test_setting_the_status_active_in_the_form_re_arms_the_index(aws):
    with _at(DAY):
        account = new_company("Form Toggle")
        form = companies.profile_values(account.company)
        form["status"] = "inactive"
        saved = companies.update_profile(account.company, form, "en").company
    company_id = account.company.company_id
    later = DAY + timedelta(days=3)
    with _at(later):
        company = Company.get(*Company.key(company_id))
        form = companies.profile_values(company)
        form["status"] = "active"
        companies.update_profile(company, form, "en")
    assert saved.status == "inactive"
    assert company_id in _partition(later)

"""Scheduled jobs through the Lambda entry points: inactivity warnings and inactivation,
order-aging notifications, idempotent re-runs, crash and resume, and the local /dev/jobs page.

Each test lives in its own stretch of the calendar (frozen clocks, years
apart) and sets the job's cursor itself, so the jobs only meet its companies.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from chalicelib.db.accounts import Company, User
from chalicelib.db.base import Item
from chalicelib.db.orders import Notification
from chalicelib.i18n.formatting import format_date
from chalicelib.services import jobs, mailer, notifications, orders
from chalicelib.services.jobs import JobCursor
from chalicelib.services.orders import Actor
from tests.web.company_factories import company_of
from tests.web.factories import (
    PASSWORD,
    ids_of,
    invite_member,
    mails_to,
    sign_up,
)
from tests.web.session import WebSession

IDLE, NOTICE = 180, 14  # settings.inactivity_days, settings.inactivity_warning_days
_ERAS = itertools.count()


@pytest.fixture
def base() -> date:
    """A first day of activity no other test uses (every test gets its own years)."""
    return date(2040, 1, 1) + timedelta(days=700 * next(_ERAS))


def at(day: date, hour: int = 12, minute: int = 0) -> time_machine.travel:
    return time_machine.travel(
        datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC), tick=False
    )


def days(start: date, n: int) -> date:
    return start + timedelta(days=n)


def cursor_at(job: str, day: date) -> None:
    JobCursor(*JobCursor.key(job), done_through=day.isoformat()).save()


def scheduled_event(client, rule: str) -> dict:
    return client.events.generate_cw_event(
        source="aws.events",
        detail_type="Scheduled Event",
        detail={},
        resources=[f"arn:aws:events:us-east-1:123456789012:rule/{rule}"],
        region="us-east-1",
    )


def nightly(client, day: date) -> dict:
    with at(day, 3):
        return client.lambda_.invoke(
            "nightly_inactivity", scheduled_event(client, "nightly_inactivity")
        ).payload


def daily(client, day: date) -> dict:
    with at(day, 6):
        return client.lambda_.invoke("daily_aging", scheduled_event(client, "daily_aging")).payload


def company(company_id: str) -> Company:
    return Company.get(*Company.key(company_id), consistent_read=True)


def subjects_to(address: str, fragment: str) -> list[str]:
    return [m.subject for m in mails_to(address) if fragment in m.subject]


def log_in(tab: WebSession) -> None:
    tab.get("/login")
    response = tab.post("/login", {"email": tab.email, "password": PASSWORD})  # type: ignore[attr-defined]
    assert response.status_code == 303, tab.text()


def in_activity_index(day: date) -> set[str]:
    return {c.company_id for c in Item.gsi3.query(Company.activity_partition(day.isoformat()))}


# -- nightly inactivity -----------------------------------------------------------


def test_an_idle_company_is_warned_then_set_inactive(client, base):
    with at(base):
        admin = sign_up(client, company_name="Idle Repairs")
    company_id = ids_of(admin)[0]
    cursor_at(jobs.INACTIVITY, days(base, IDLE - NOTICE - 1))

    summary = nightly(client, days(base, IDLE - NOTICE))
    assert summary["warned"] == 1 and summary["days"] == 1
    deadline = format_date(days(base, IDLE), "en")  # "Nov 28, 2053": as English writes it
    assert subjects_to(admin.email, "will be set inactive") == [
        f"Idle Repairs will be set inactive on {deadline}"
    ]
    warning = next(m for m in mails_to(admin.email) if "inactive on" in m.subject)
    assert f"since {format_date(base, 'en')}" in warning.text
    assert f"sign in before {deadline}" in warning.text
    assert "http://testserver/login" in warning.text
    assert company(company_id).inactivity_warned_for == base.isoformat()
    assert company(company_id).status == "active"

    summary = nightly(client, days(base, IDLE - 1))  # 13 more nights: nothing due yet
    assert summary["days"] == NOTICE - 1 and "inactivated" not in summary
    version = company(company_id).version

    summary = nightly(client, days(base, IDLE))
    assert summary["inactivated"] == 1
    stored = company(company_id)
    assert stored.status == "inactive"
    assert (stored.gsi3pk, stored.gsi3sk) == (None, None)  # out of the sparse index
    assert stored.version == version + 1  # a settings form opened before is now stale
    assert company_id not in in_activity_index(base)
    assert subjects_to(admin.email, "is now inactive") == [
        "Idle Repairs is now inactive on CheckOS"
    ]
    assert client.http.get(f"/c/{stored.slug}").status_code == 404


def test_an_admin_signs_in_and_reactivates_and_the_idle_clock_starts_over(client, base):
    with at(base):
        admin = sign_up(client)
    company_id = ids_of(admin)[0]
    cursor_at(jobs.INACTIVITY, days(base, IDLE - NOTICE - 1))
    nightly(client, days(base, IDLE - NOTICE))
    nightly(client, days(base, IDLE))
    assert company(company_id).status == "inactive"

    back = days(base, IDLE + 5)
    with at(back):
        log_in(admin)
        admin.get("/")
        assert 'id="inactive-banner"' in admin.text()
        assert company(company_id).status == "inactive"  # signing in alone does not reactivate
        response = admin.post("/settings/company/reactivate", {"next": "/"})
        assert response.status_code == 303
    stored = company(company_id)
    assert stored.status == "active"
    assert stored.gsi3pk == f"ACTIVE#{back.isoformat()}"
    assert company_id in in_activity_index(back)

    # The index is armed again: the same company is warned after another idle period.
    cursor_at(jobs.INACTIVITY, days(back, IDLE - NOTICE - 1))
    assert nightly(client, days(back, IDLE - NOTICE))["warned"] == 1
    assert len(subjects_to(admin.email, "will be set inactive")) == 2


def test_one_recently_active_user_keeps_the_company_active(client, base):
    with at(base):
        admin = sign_up(client)
        staff = invite_member(client, admin)
    company_id = ids_of(admin)[0]
    with at(days(base, 100)):
        log_in(staff)
        assert staff.get("/").status_code == 200
    stored = company(company_id)
    assert stored.last_active_day == days(base, 100).isoformat()
    assert company_id in in_activity_index(days(base, 100))
    assert company_id not in in_activity_index(base)

    cursor_at(jobs.INACTIVITY, days(base, IDLE - NOTICE - 1))
    nightly(client, days(base, IDLE))
    assert company(company_id).status == "active"
    assert subjects_to(admin.email, "inactive") == []
    # Its clock runs from the staff member's day instead.
    assert nightly(client, days(base, 100 + IDLE - NOTICE))["warned"] == 1


def test_without_a_validated_email_every_admin_is_warned_at_their_login(client, base):
    with at(base):
        admin = sign_up(client, validate=False)
        second = invite_member(client, admin, role="admin", name="Second Admin")
        staff = invite_member(client, admin, role="staff")
    cursor_at(jobs.INACTIVITY, days(base, IDLE - NOTICE - 1))
    assert nightly(client, days(base, IDLE - NOTICE))["warned"] == 1
    assert len(subjects_to(admin.email, "will be set inactive")) == 1
    assert len(subjects_to(second.email, "will be set inactive")) == 1
    assert subjects_to(staff.email, "will be set inactive") == []


def test_re_running_the_nightly_job_warns_and_inactivates_only_once(client, base):
    with at(base):
        admin = sign_up(client)
    company_id = ids_of(admin)[0]
    cursor_at(jobs.INACTIVITY, days(base, IDLE - NOTICE - 1))
    warn_day = days(base, IDLE - NOTICE)
    nightly(client, warn_day)
    assert nightly(client, warn_day)["days"] == 0  # the cursor says: done
    # Even if the cursor had not moved (a crash right before it), nothing is sent twice.
    cursor_at(jobs.INACTIVITY, days(warn_day, -1))
    again = nightly(client, warn_day)
    assert again["days"] == 1 and "warned" not in again and again["skipped"] == 1
    assert len(subjects_to(admin.email, "will be set inactive")) == 1

    nightly(client, days(base, IDLE))
    version = company(company_id).version
    cursor_at(jobs.INACTIVITY, days(base, IDLE - 1))
    assert "inactivated" not in nightly(client, days(base, IDLE))
    assert len(subjects_to(admin.email, "is now inactive")) == 1
    assert company(company_id).version == version


def test_a_crash_part_way_then_a_re_run_warns_everyone_exactly_once(client, base, monkeypatch):
    with at(base):
        tabs = [sign_up(client, company_name=f"Crash {n}") for n in range(3)]
    cursor_at(jobs.INACTIVITY, days(base, IDLE - NOTICE - 1))
    real_send, calls = mailer.send_templated, []

    def dies_on_the_second_mail(to: str, template: str, *args: object, **kwargs: object) -> str:
        calls.append(to)
        if len(calls) == 2:
            raise RuntimeError("Lambda timed out mid-run")
        return real_send(to, template, *args, **kwargs)

    monkeypatch.setattr(mailer, "send_templated", dies_on_the_second_mail)
    warn_day = days(base, IDLE - NOTICE)
    with pytest.raises(RuntimeError):
        nightly(client, warn_day)
    assert jobs.done_through(jobs.INACTIVITY) == days(warn_day, -1)  # the day is not done
    warned = [company(ids_of(t)[0]).inactivity_warned_for for t in tabs]
    assert warned.count(base.isoformat()) == 1  # the crashed one handed its claim back

    summary = nightly(client, warn_day)
    assert summary["warned"] == 2 and summary["skipped"] == 1
    assert jobs.done_through(jobs.INACTIVITY) == warn_day
    for tab in tabs:
        assert len(subjects_to(tab.email, "will be set inactive")) == 1
        assert company(ids_of(tab)[0]).inactivity_warned_for == base.isoformat()


def test_missed_nights_are_caught_up_with_a_full_notice_period(client, base):
    with at(base):
        admin = sign_up(client)
    company_id = ids_of(admin)[0]
    # The scheduler stopped before the warning night and came back four nights late.
    cursor_at(jobs.INACTIVITY, days(base, IDLE - NOTICE - 2))
    late = days(base, IDLE - NOTICE + 4)
    summary = nightly(client, late)
    assert summary["days"] == 6 and summary["warned"] == 1 and summary["notice_restarted"] == 1
    deadline = days(late, NOTICE)
    assert subjects_to(admin.email, "will be set inactive") == [
        f"{company(company_id).name} will be set inactive on {format_date(deadline, 'en')}"
    ]
    assert "inactivated" not in nightly(client, days(base, IDLE))  # the old date no longer counts
    assert company(company_id).status == "active"
    assert nightly(client, deadline)["inactivated"] == 1
    assert company(company_id).status == "inactive"


def test_the_inactivity_job_logs_one_json_summary_line(client, base, caplog):
    import json
    import logging

    cursor_at(jobs.INACTIVITY, days(base, -1))
    with caplog.at_level(logging.INFO, logger="checkos.jobs"):
        nightly(client, base)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "checkos.jobs"]
    assert len(lines) == 1
    assert lines[0]["event"] == "job_summary" and lines[0]["job"] == "inactivity"
    assert lines[0]["status"] == "ok" and lines[0]["days"] == 1


# -- signed-in requests record activity ----------------------------------------------


def test_signing_in_stamps_the_day_and_pages_never_write(client, base, budget):
    with at(base, 23, 50):
        admin = sign_up(client)
    company_id, user_id = ids_of(admin)
    with at(days(base, 1), 0, 10):
        with budget:
            assert admin.get("/settings/company").status_code == 200
        page = [c.operation for c in budget.dynamodb]
        log_in(admin)
        with budget:
            log_in(admin)  # a second sign-in the same day writes nothing more
        # Except its sign-in throttle: every attempt is reserved before the password check.
        again = [c.operation for c in budget.dynamodb if "THROTTLE#" not in str(c.params)]
    assert page == ["BatchGetItem"]
    assert "TransactWriteItems" not in again and "UpdateItem" not in again
    assert User.get(*User.key(company_id, user_id)).last_active_day == days(base, 1).isoformat()
    assert company_id in in_activity_index(days(base, 1))


# -- daily order aging ------------------------------------------------------------------


def register(tab: WebSession, **fields: str) -> str:
    account = company_of(tab)
    _company_id, user_id = ids_of(tab)
    form = {"customer_name": "Lúcia Prado", "problem": "Fridge not cooling", **fields}
    order = orders.register_order(account, Actor(name="Ana", user_id=user_id), form, {})
    return order.order_id


def notes(tab: WebSession, kind: str) -> list[Notification]:
    company_id, user_id = ids_of(tab)
    found = Item.query(Notification.partition(company_id, user_id))
    return [n for n in found if isinstance(n, Notification) and n.kind == kind]


def unread(tab: WebSession) -> int:
    company_id, user_id = ids_of(tab)
    return int(User.get(*User.key(company_id, user_id)).unread)


def test_open_orders_notify_once_per_threshold_and_closed_ones_never(client, base):
    with at(base):
        admin = sign_up(client)
        staff = invite_member(client, admin)
        late = register(admin, service_date=days(base, 3).isoformat())
        closed = register(admin, service_date=days(base, 3).isoformat())
        company_id = ids_of(admin)[0]
        actor = Actor(name="Ana")
        orders.change_status(company_id, closed, actor, "start")
        orders.change_status(company_id, closed, actor, "complete")
    cursor_at(jobs.AGING, days(base, 3))

    summary = daily(client, days(base, 4))
    assert summary["past_service_date"] == 1 and summary["notified"] == 2  # admin and staff
    for tab in (admin, staff):
        [note] = notes(tab, "past_service_date")
        assert note.order_id == late and note.order_number == 1
    assert unread(admin) == 1
    admin.get("/notifications")
    assert "Order #1 passed its service date." in admin.text()
    assert "Order #2" not in admin.text()

    assert "open_20_days" not in daily(client, days(base, 19))
    assert daily(client, days(base, 20))["open_20_days"] == 1
    assert daily(client, days(base, 30))["open_30_days"] == 1
    for kind in ("past_service_date", "open_20_days", "open_30_days"):
        assert [n.order_id for n in notes(admin, kind)] == [late]
    assert unread(admin) == 3


def test_re_running_the_aging_job_notifies_nothing_twice(client, base):
    with at(base):
        admin = sign_up(client)
        register(admin, service_date=base.isoformat())
    cursor_at(jobs.AGING, base)
    assert daily(client, days(base, 1))["notified"] == 1
    assert daily(client, days(base, 1))["days"] == 0
    cursor_at(jobs.AGING, base)  # as if it had crashed before moving its cursor
    again = daily(client, days(base, 1))
    assert again["past_service_date"] == 1 and again["notified"] == 0
    assert len(notes(admin, "past_service_date")) == 1 and unread(admin) == 1


def test_an_aging_run_that_crashes_part_way_resumes_without_repeats(client, base, monkeypatch):
    with at(base):
        admin = sign_up(client)
        for _ in range(3):
            register(admin, service_date=base.isoformat())
    cursor_at(jobs.AGING, base)
    real_notify, calls = notifications.notify, []

    def dies_on_the_second_order(*args: object, **kwargs: object) -> int:
        calls.append(kwargs.get("order_id"))
        if len(calls) == 2:
            raise RuntimeError("Lambda timed out mid-run")
        return real_notify(*args, **kwargs)

    monkeypatch.setattr(notifications, "notify", dies_on_the_second_order)
    with pytest.raises(RuntimeError):
        daily(client, days(base, 1))
    assert len(notes(admin, "past_service_date")) == 1
    summary = daily(client, days(base, 1))
    assert summary["notified"] == 2 and summary["past_service_date"] == 3
    assert len({n.order_id for n in notes(admin, "past_service_date")}) == 3
    assert len(notes(admin, "past_service_date")) == 3 and unread(admin) == 3


def test_an_edited_service_date_is_followed_and_a_reopened_order_is_not_lost(client, base):
    with at(base):
        admin = sign_up(client)
        order_id = register(admin, service_date=days(base, 2).isoformat())
        company_id = ids_of(admin)[0]
        order = orders.order_view(company_id, order_id).order
        form = {
            name: (getattr(order, name) or "")
            for name in orders.EDITABLE_FIELDS
            if name not in ("technician_id", "technician_name")
        }
        form.update(service_date=days(base, 5).isoformat(), version=str(order.version))
        orders.edit_order(company_of(admin), order_id, Actor(name="Ana"), form, {})
    cursor_at(jobs.AGING, days(base, 2))
    assert "past_service_date" not in daily(client, days(base, 3))  # the old date: gone
    assert daily(client, days(base, 6))["past_service_date"] == 1  # the new one


# -- the local page ------------------------------------------------------------------------


def test_dev_jobs_page_runs_a_job_and_shows_its_summary(client, base):
    with at(base):
        admin = sign_up(client, company_name="Dev Page Co")
    cursor_at(jobs.INACTIVITY, days(base, IDLE - NOTICE - 1))
    tab = WebSession(client)
    page = tab.get("/dev/jobs")
    assert page.status_code == 200
    assert tab.text().count('action="/dev/jobs"') == 2
    done = format_date(days(base, IDLE - NOTICE - 1), "en")  # "Mar 29, 2026", as people write it
    assert f"Finished through {done}" in tab.text()
    response = tab.post(
        "/dev/jobs", {"job": "inactivity", "as_of": days(base, IDLE - NOTICE).isoformat()}
    )
    assert response.status_code == 200
    body = tab.text()
    assert 'id="job-summary"' in body
    assert 'data-count="warned">1<' in body
    assert len(subjects_to(admin.email, "will be set inactive")) == 1
    # The same day again: the cursor says there is nothing left to do.
    tab.post("/dev/jobs", {"job": "inactivity", "as_of": days(base, IDLE - NOTICE).isoformat()})
    assert "Nothing to do" in tab.text()


def test_dev_jobs_page_keeps_a_bad_date_beside_its_field(client):
    tab = WebSession(client)
    tab.get("/dev/jobs")
    response = tab.post("/dev/jobs", {"job": "aging", "as_of": "31/02/2040"})
    assert response.status_code == 422
    body = tab.text()
    assert 'id="e-as_of_aging"' in body and "YYYY-MM-DD" in body
    assert 'value="31/02/2040"' in body
    assert 'id="e-as_of_inactivity"' not in body


def test_dev_jobs_page_needs_the_csrf_token(client):
    tab = WebSession(client)
    tab.get("/dev/jobs")
    assert tab.post("/dev/jobs", {"job": "aging"}, csrf=None).status_code == 403


def test_dev_jobs_page_is_absent_outside_the_local_run(client, monkeypatch):
    from dataclasses import replace

    from chalicelib.config import get_settings
    from chalicelib.web import devjobs

    settings = replace(get_settings(), outbox_enabled=False)
    monkeypatch.setattr(devjobs, "get_settings", lambda: settings)
    tab = WebSession(client)
    assert tab.get("/dev/jobs").status_code == 404


@pytest.fixture(autouse=True)
def _cursors_left_alone() -> Iterator[None]:
    """Leave no cursor in the far future for other modules' jobs (the table is shared)."""
    yield
    for job in (jobs.INACTIVITY, jobs.AGING):
        JobCursor(*JobCursor.key(job)).delete()


def test_the_jobs_page_writes_days_in_the_readers_language(client):
    """Not "2026-03-29": "29 mar 2026" in Spanish, and the same in the run's summary."""
    day = date(2026, 3, 29)
    cursor_at(jobs.AGING, day)
    tab = WebSession(client, accept_language="es")
    tab.get("/dev/jobs")
    assert "2026-03-29" not in tab.text()
    assert format_date(day, "es") in tab.text()
    tab.post("/dev/jobs", {"job": "aging", "as_of": "2026-03-29"})
    assert "2026-03-29" not in tab.text()
    assert format_date(day, "es") in tab.text()

"""Scheduled jobs: nightly company inactivity and daily order aging, resumable, by index only.

Both jobs walk days, not items: a cursor item remembers the last day a job
finished, and a run processes every day after it through ``today`` in order,
advancing the cursor after each day. A missed night is caught up by the next
run; a run that fails part-way leaves the cursor before the failed day, and
every change of a day is conditional, so re-running it does nothing twice.

For each day a job reads one partition of a sparse index per rule, so the
items read grow with what is due that day, never with the number of
companies or orders:

- inactivity: ``gsi3`` ``ACTIVE#<last activity day>`` on active companies
  (``services.activity`` keeps it);
- aging: ``gsi1`` ``DUE#<service date>`` and ``gsi2`` ``REG#<registration
  day>`` on the owner's OPEN list entry of each open order
  (``services.orders.entries_for``).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pynamodb.attributes import UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.aws.mail import MailNotSent
from chalicelib.config import get_settings
from chalicelib.db import keys
from chalicelib.db.accounts import Company, User
from chalicelib.db.base import Item, conflicted, failed_keys, transaction
from chalicelib.db.orders import OrderEntry
from chalicelib.domain import workflow
from chalicelib.domain.aging import ORANGE_DAYS, RED_DAYS
from chalicelib.domain.errors import ValidationFailed
from chalicelib.i18n import formatting
from chalicelib.services import activity, directory, mailer, notifications
from chalicelib.services.activity import today
from chalicelib.services.orders import due_partition, registered_partition
from chalicelib.services.sessions import now

log = logging.getLogger("checkos.jobs")

INACTIVITY, AGING = "inactivity", "aging"
# A cursor older than this is not caught up day by day: nothing a job does
# for a day more than a year old is still useful, and a run must stay short.
MAX_CATCH_UP_DAYS = 366
INACTIVATE_ATTEMPTS = 3


class JobCursor(Item, discriminator="JobCursor"):
    """``JOB#<name>`` / ``CURSOR``: the last day a scheduled job fully processed.

    Kept beside the jobs it serves: nothing else reads or writes it.
    """

    SK = "CURSOR"
    done_through = UnicodeAttribute()  # yyyy-mm-dd
    updated_at = UTCDateTimeAttribute(null=True)

    @classmethod
    def key(cls, job: str) -> tuple[str, str]:
        return f"JOB#{job}", cls.SK


@dataclass
class JobSummary:
    """What one run did: the days it processed and a count per outcome."""

    job: str
    today: str
    first_day: str | None = None
    done_through: str | None = None
    days: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + amount

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "today": self.today,
            "first_day": self.first_day,
            "done_through": self.done_through,
            "days": self.days,
            **self.counts,
        }


# -- days and cursors --------------------------------------------------------


def done_through(job: str) -> date | None:
    """The last day ``job`` finished, or None if it never ran."""
    try:
        cursor = JobCursor.get(*JobCursor.key(job), consistent_read=True)
    except DoesNotExist:
        return None
    return date.fromisoformat(cursor.done_through)


def days_to_run(job: str, today: date) -> list[date]:
    """Every day after the cursor through ``today``; only today on the first run."""
    last = done_through(job)
    if last is None:
        return [today]
    first = max(last + timedelta(days=1), today - timedelta(days=MAX_CATCH_UP_DAYS - 1))
    return [first + timedelta(days=n) for n in range((today - first).days + 1)]


def _advance(job: str, day: date) -> None:
    stamp = day.isoformat()
    # A concurrent run that already got further keeps its cursor.
    with contextlib.suppress(UpdateError):
        JobCursor(*JobCursor.key(job)).upsert(
            actions=[JobCursor.done_through.set(stamp), JobCursor.updated_at.set(now())],
            condition=JobCursor.done_through.does_not_exist() | (JobCursor.done_through < stamp),
        )


def _run(job: str, today: date, process_day: Callable[[date, JobSummary], None]) -> JobSummary:
    summary = JobSummary(job=job, today=today.isoformat())
    days = days_to_run(job, today)
    summary.first_day = days[0].isoformat() if days else None
    try:
        for day in days:
            process_day(day, summary)
            _advance(job, day)
            summary.days += 1
            summary.done_through = day.isoformat()
    except Exception as problem:
        _log_summary(summary, "failed", error=f"{type(problem).__name__}: {problem}")
        raise  # the scheduler retries; the cursor points before the failed day
    if not days:
        summary.done_through = (done_through(job) or today).isoformat()
    _log_summary(summary, "ok")
    return summary


def _log_summary(summary: JobSummary, status: str, **extra: str) -> None:
    """One JSON line per run, easy to filter and chart in CloudWatch Logs Insights."""
    line = {"event": "job_summary", "status": status, **summary.as_dict(), **extra}
    if status == "ok":
        log.info(json.dumps(line, sort_keys=True))
    else:
        log.error(json.dumps(line, sort_keys=True))


# -- nightly inactivity -------------------------------------------------------


def run_inactivity(today: date) -> JobSummary:
    """Warn companies idle for N-14 days, inactivate those idle for N days.

    On day D the companies of ``ACTIVE#<D-N+14>`` are warned and those of
    ``ACTIVE#<D-N>`` inactivated. A company is never inactivated without a
    warning attempt at least ``inactivity_warning_days`` before: a warning sent
    late (a missed night) restarts the notice period from the day it is sent.
    """
    settings = get_settings()
    idle, notice = settings.inactivity_days, settings.inactivity_warning_days

    def process(day: date, summary: JobSummary) -> None:
        warn_day = (day - timedelta(days=idle - notice)).isoformat()
        due_day = (day - timedelta(days=idle)).isoformat()
        for company in _companies_last_active_on(warn_day, summary):
            _warn(company, warn_day, today, summary)
        for company in _companies_last_active_on(due_day, summary):
            _inactivate(company, due_day, today, summary)

    return _run(INACTIVITY, today, process)


def _companies_last_active_on(day: str, summary: JobSummary) -> list[Company]:
    # Read the whole partition first: the loop then moves companies out of it.
    found = list(Item.gsi3.query(Company.activity_partition(day)))
    summary.add("read", len(found))
    return [c for c in found if isinstance(c, Company)]


def _indexed_on(company: Company, day: str) -> bool:
    # The index is eventually consistent: trust the item, not the partition it came from.
    return company.active and company.gsi3pk == Company.activity_partition(day)


def _warn(company: Company, day: str, today: date, summary: JobSummary) -> str:
    """Warn once for activity ``day``; returns "warned", "skipped" or "mail_failed".

    The mark ``inactivity_warned_for`` is claimed with a conditional write
    *before* the e-mail goes out, so two runs never both send it; a send that
    fails hands the claim back, so a later run tries again.
    """
    settings = get_settings()
    idle, notice = settings.inactivity_days, settings.inactivity_warning_days
    if not _indexed_on(company, day) or company.inactivity_warned_for == day:
        summary.add("skipped")
        return "skipped"
    # On time, the notice period starts today and ``day`` is today's warn day.
    # Late (a missed night, or no warning before the due day), the company's
    # idle clock moves so that it ends a full notice period from today.
    clock = max(day, (today - timedelta(days=idle - notice)).isoformat())
    actions: list[Action] = [Company.inactivity_warned_for.set(clock)]
    if clock != day:
        actions.append(Company.gsi3pk.set(Company.activity_partition(clock)))
    claimed = (
        (Company.gsi3pk == Company.activity_partition(day))
        & (Company.status == "active")
        & (
            Company.inactivity_warned_for.does_not_exist()
            | (Company.inactivity_warned_for != clock)
        )
    )
    try:
        activity.update_unversioned(company.company_id, actions, claimed)
    except UpdateError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise  # throttled, not refused: the run fails before its cursor and is re-run
        summary.add("skipped")  # a user signed in meanwhile, or another run claimed it
        return "skipped"
    deadline = date.fromisoformat(clock) + timedelta(days=idle)
    try:
        sent = _mail_company(
            company,
            "inactivity_warning",
            last_day=date.fromisoformat(company.last_active_day or day),
            deadline=deadline,
            days=idle,
        )
    except BaseException:
        _hand_back_warning(company, day, clock)
        raise
    if not sent:
        _hand_back_warning(company, day, clock)
        summary.add("mail_failed")
        return "mail_failed"
    summary.add("warned")
    if clock != day:
        summary.add("notice_restarted")
    company.inactivity_warned_for = clock
    company.gsi3pk = Company.activity_partition(clock)
    return "warned"


def _hand_back_warning(company: Company, day: str, clock: str) -> None:
    """Undo a claimed warning whose e-mail did not go out (only if still ours)."""
    actions: list[Action] = [Company.inactivity_warned_for.remove()]
    if clock != day:
        actions.append(Company.gsi3pk.set(Company.activity_partition(day)))
    # If a user signed in meanwhile, the company left this day anyway: nothing to undo.
    with contextlib.suppress(UpdateError):
        activity.update_unversioned(
            company.company_id,
            actions,
            (Company.inactivity_warned_for == clock)
            & (Company.gsi3pk == Company.activity_partition(clock)),
        )


def _inactivate(company: Company, day: str, today: date, summary: JobSummary) -> None:
    if not _indexed_on(company, day):
        summary.add("skipped")
        return
    warned = company.inactivity_warned_for == day
    if not warned and _warn(company, day, today, summary) != "mail_failed":
        # Warned just now (the notice period starts over) or signed in meanwhile.
        return
    for _attempt in range(INACTIVATE_ATTEMPTS):
        # Read consistently: the directory cards deleted with the status change
        # are built from this read, and the write is checked against its version
        # (which it bumps, so a settings form opened before cannot undo it).
        try:
            company = Company.get(*Company.key(company.company_id), consistent_read=True)
        except DoesNotExist:
            break
        if not _indexed_on(company, day) or (warned and company.inactivity_warned_for != day):
            break  # a user signed in at the last moment
        after = directory.snapshot(company)
        after.status = "inactive"
        tx = transaction()
        try:
            with tx:
                tx.update(
                    company,
                    actions=[Company.status.set("inactive"), *activity.disarm_actions()],
                    condition=(Company.gsi3pk == Company.activity_partition(day))
                    & (Company.status == "active"),
                )
                directory.write_changes(tx, company, after)
        except TransactWriteError as error:
            if conflicted(error) or Company.key(company.company_id) in failed_keys(error, tx):
                continue  # changed meanwhile: read again and decide again
            raise
        summary.add("inactivated")
        if not _mail_company(company, "inactivity_notice", days=get_settings().inactivity_days):
            summary.add("mail_failed")
        return
    summary.add("skipped")


def _recipients(company: Company) -> list[tuple[str, str]]:
    """(address, locale): the validated company e-mail, else every admin's login e-mail."""
    if company.email_validated and company.email:
        return [(company.email, company.locale or "en")]
    users = Item.query(keys.company(company.company_id), Item.sk.startswith(User.SK_PREFIX))
    return [
        (user.email, user.locale or company.locale or "en")
        for user in users
        if isinstance(user, User) and user.is_admin
    ]


def _mail_company(company: Company, template: str, **context: Any) -> bool:
    """Send ``template`` to the company's recipients; True if at least one got it.

    Dates in ``context`` are written the way each recipient's language writes them.
    """
    sent = False
    for address, locale in _recipients(company):
        params = {
            name: format_day(value, locale) if isinstance(value, date) else value
            for name, value in context.items()
        }
        try:
            mailer.send_templated(
                address,
                template,
                locale,
                company=company,
                link=f"{get_settings().base_url}/login",
                subject_params={"company": company.name, **params},
                **params,
            )
        except MailNotSent:
            log.warning(
                "job mail not sent", extra={"template": template, "company": company.company_id}
            )
            continue
        sent = True
    return sent


def format_day(day: date, locale: str) -> str:
    return formatting.format_date(day, locale)


# -- daily order aging ----------------------------------------------------------


def _aging_rules() -> list[tuple[str, Any, Callable[[date], str]]]:
    """(notification kind, index, the index partition due on day D)."""
    return [
        (
            "past_service_date",
            Item.gsi1,
            lambda day: due_partition((day - timedelta(days=1)).isoformat()),
        ),
        (
            "open_20_days",
            Item.gsi2,
            lambda day: registered_partition((day - timedelta(days=ORANGE_DAYS)).isoformat()),
        ),
        (
            "open_30_days",
            Item.gsi2,
            lambda day: registered_partition((day - timedelta(days=RED_DAYS)).isoformat()),
        ),
    ]


def run_aging(today: date) -> JobSummary:
    """Notify the owner's users of open orders that passed a threshold on each day.

    Day D: service date D-1 (passed), registered D-20 and D-30. Each
    notification's id is derived from (D, kind, order), so a re-run creates
    nothing twice.
    """
    team: dict[str, list[str]] = {}

    def users_of(company_id: str) -> list[str]:
        if company_id not in team:
            team[company_id] = notifications.company_users(company_id)
        return team[company_id]

    def process(day: date, summary: JobSummary) -> None:
        for kind, index, partition in _aging_rules():
            entries = list(index.query(partition(day)))
            summary.add("read", len(entries))
            _notify_entries(day, kind, entries, users_of, summary)

    return _run(AGING, today, process)


def _notify_entries(
    day: date,
    kind: str,
    entries: Iterable[Item],
    users_of: Callable[[str], list[str]],
    summary: JobSummary,
) -> None:
    for entry in entries:
        if not isinstance(entry, OrderEntry) or not workflow.is_open(entry.status):
            continue  # closed a moment ago: the index lags the delete
        summary.add(kind)
        created = notifications.notify(
            entry.owner_id,
            users_of(entry.owner_id),
            kind,
            order_id=entry.order_id,
            order_number=int(entry.number),
            # Starts with the day so the notification lists stay in date order.
            dedupe_key=f"{day.isoformat()}#{kind}#{entry.order_id}",
        )
        summary.add("notified", created)


# -- the local dev page ------------------------------------------------------------


JOBS: dict[str, Callable[[date], JobSummary]] = {INACTIVITY: run_inactivity, AGING: run_aging}


def run_named(job: str, as_of: str = "") -> JobSummary:
    """Run a job by name, as if today were ``as_of`` (yyyy-mm-dd) or today (dev page)."""
    if job not in JOBS:
        raise ValidationFailed({"job": ("devjobs.unknown_job", {})})
    day = today()
    if as_of.strip():
        try:
            day = date.fromisoformat(as_of.strip())
        except ValueError:
            raise ValidationFailed({f"as_of_{job}": ("devjobs.bad_date", {})}) from None
    return JOBS[job](day)


def cursors() -> dict[str, str | None]:
    """The last day each job finished (two GetItems)."""
    found: dict[str, str | None] = {}
    for job in JOBS:
        last = done_through(job)
        found[job] = last.isoformat() if last else None
    return found

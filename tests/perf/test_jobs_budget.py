"""With 10,000 companies and 5,000 open orders, the jobs read only what is due: no Scan, ever."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from chalicelib.config import get_settings
from chalicelib.db.accounts import Company, User
from chalicelib.db.base import Item
from chalicelib.db.orders import Order
from chalicelib.services import jobs
from chalicelib.services.jobs import JobCursor
from chalicelib.services.orders import entries_for

COMPANIES = 10_000
WARN_DUE, INACTIVE_DUE = 5, 5
ORDERS = 5_000
RUN_DAY = date(2045, 6, 15)


def _at(day: date) -> time_machine.travel:
    return time_machine.travel(datetime(day.year, day.month, day.day, 3, tzinfo=UTC), tick=False)


def _company(number: int, day: date, **extra: object) -> Company:
    company_id = f"seedco{number:05d}"
    return Company(
        *Company.key(company_id),
        company_id=company_id,
        name=f"Seed {number:05d}",
        slug=f"seed-{number:05d}",
        email=f"seed{number:05d}@example.com",
        email_validated=True,
        created_at=datetime(2044, 1, 1, tzinfo=UTC),
        last_active_day=day.isoformat(),
        gsi3pk=Company.activity_partition(day.isoformat()),
        gsi3sk=company_id,
        **extra,
    )


@pytest.fixture(scope="module")
def many_companies(aws) -> tuple[list[str], list[str]]:
    return seed_many_companies()


def seed_many_companies() -> tuple[list[str], list[str]]:
    """10,000 active companies in the activity index; 5 due a warning, 5 due inactivation."""
    settings = get_settings()
    warn_day = RUN_DAY - timedelta(days=settings.inactivity_days - settings.inactivity_warning_days)
    due_day = RUN_DAY - timedelta(days=settings.inactivity_days)
    rng = random.Random(11)
    # Everyone else was last active on some other day of the past year.
    other_days = [
        d
        for d in (RUN_DAY - timedelta(days=n) for n in range(1, 366))
        if d not in (warn_day, due_day)
    ]
    to_warn, to_inactivate = [], []
    with Item.batch_write() as batch:
        for number in range(COMPANIES):
            if number < WARN_DUE:
                company = _company(number, warn_day)
                to_warn.append(company.company_id)
            elif number < WARN_DUE + INACTIVE_DUE:
                company = _company(number, due_day, inactivity_warned_for=due_day.isoformat())
                to_inactivate.append(company.company_id)
            else:
                company = _company(number, rng.choice(other_days))
            batch.save(company)
    JobCursor(
        *JobCursor.key(jobs.INACTIVITY), done_through=(RUN_DAY - timedelta(days=1)).isoformat()
    ).save()
    return to_warn, to_inactivate


def test_the_inactivity_job_reads_only_the_due_companies(many_companies, budget):
    to_warn, to_inactivate = many_companies
    due = len(to_warn) + len(to_inactivate)
    with _at(RUN_DAY), budget:
        summary = jobs.run_inactivity(RUN_DAY)
    assert summary.counts["warned"] == len(to_warn)
    assert summary.counts["inactivated"] == len(to_inactivate)
    operations = [c.operation for c in budget.dynamodb]
    assert "Scan" not in operations
    assert operations.count("Query") == 2  # one partition per rule, for the one day
    assert budget.items_read_by_queries == due  # of 10,000 companies
    # Cursor read and write; a claim per warning; a read and a transaction per inactivation;
    # and before each e-mail the mailer's one BatchGetItem (bounced or complained?).
    mails = [c for c in budget.calls if c.service == "sesv2" and c.operation == "SendEmail"]
    checks = [c for c in budget.dynamodb if c.operation == "BatchGetItem"]
    assert len(checks) == len(mails)
    assert budget.dynamodb_requests == 2 + 2 + len(to_warn) + 2 * len(to_inactivate) + len(mails)
    for company_id in to_inactivate:
        assert Company.get(*Company.key(company_id)).status == "inactive"


def _open_order(number: int, owner: str, created: date, service: date | None) -> Order:
    moment = datetime(created.year, created.month, created.day, 9, tzinfo=UTC)
    return Order(
        *Order.key(f"seedorder{number:05d}"),
        order_id=f"seedorder{number:05d}",
        company_id=owner,
        number=number,
        status=random.Random(number).choice(["registered", "scheduled", "in_progress"]),
        customer_name=f"Customer {number}",
        service_date=service.isoformat() if service else None,
        created_at=moment,
        created_by_name="seed",
        updated_at=moment,
        updated_by_name="seed",
    )


@pytest.fixture(scope="module")
def many_open_orders(aws) -> dict[str, int]:
    return seed_many_open_orders()


def seed_many_open_orders() -> dict[str, int]:
    """5,000 open orders of 50 companies; 3 passed their date, 2 are 20 days old, 2 are 30."""
    yesterday = RUN_DAY - timedelta(days=1)
    day20, day30 = RUN_DAY - timedelta(days=20), RUN_DAY - timedelta(days=30)
    quiet_created = [RUN_DAY - timedelta(days=n) for n in range(1, 90) if n not in (20, 30)]
    quiet_service = [RUN_DAY + timedelta(days=n) for n in range(0, 60)]
    rng = random.Random(5)
    due: dict[str, int] = {"past_service_date": 3, "open_20_days": 2, "open_30_days": 2}
    special = [(yesterday, "service")] * 3 + [(day20, "created")] * 2 + [(day30, "created")] * 2
    with Item.batch_write() as batch:
        for company in range(50):
            owner = f"agingco{company:02d}"
            batch.save(
                User(
                    *User.key(owner, "u1"),
                    user_id="u1",
                    company_id=owner,
                    email=f"{owner}@example.com",
                    name="Owner",
                    role="admin",
                    created_at=datetime(2044, 1, 1, tzinfo=UTC),
                )
            )
        for number in range(ORDERS):
            owner = f"agingco{number % 50:02d}"
            created, service = rng.choice(quiet_created), rng.choice([*quiet_service, None])
            if number < len(special):
                day, which = special[number]
                if which == "service":
                    service = day
                else:
                    created, service = day, None
            order = _open_order(number, owner, created, service)
            # Only the OPEN list entries: those carry the aging job's index keys.
            for (pk, _sk), entry in entries_for(order).items():
                if pk.endswith("#IX#OPEN"):
                    batch.save(entry)
    JobCursor(*JobCursor.key(jobs.AGING), done_through=yesterday.isoformat()).save()
    return due


def test_the_aging_job_reads_only_the_due_open_orders(many_open_orders, budget):
    due = many_open_orders
    due_orders = sum(due.values())
    with _at(RUN_DAY), budget:
        summary = jobs.run_aging(RUN_DAY)
    for kind, count in due.items():
        assert summary.counts[kind] == count
    assert summary.counts["notified"] == due_orders  # one user per company
    operations = [c.operation for c in budget.dynamodb]
    assert "Scan" not in operations
    # Three index partitions, plus one users Query per company notified (7 companies, 1 user each).
    assert operations.count("Query") == 3 + due_orders
    assert budget.items_read_by_queries == due_orders + due_orders  # of 5,000 open orders

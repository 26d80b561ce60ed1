"""Invariant checker: recompute what the table's redundant items claim, report every mismatch.

A maintenance tool (``make check-data``, the fault and load suites): it reads
a company's partitions and indexes with paginated Queries, GetItems and
BatchGetItems — many items, but never a table-wide read. Each violation is one
human-readable line; an empty list means the company is consistent.

What it cannot reach through keys is said where it matters: list entries in
a PHONE/TYPE/BRAND partition that no current order or counter names, items of
orders no key points to, and intake items written before the intake index.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from chalicelib.db import keys
from chalicelib.db.accounts import Company, Invitation, User
from chalicelib.db.base import Item
from chalicelib.services.integrity.company import CompanyChecks
from chalicelib.services.integrity.intake import IntakeChecks
from chalicelib.services.integrity.orders import OrderChecks
from chalicelib.services.integrity.partnerships import PartnershipChecks
from chalicelib.services.integrity.state import Reader
from chalicelib.services.sessions import now


@dataclass
class Audit:
    """What one run of the checker read and found."""

    companies: int = 0
    items: int = 0
    violations: list[str] = field(default_factory=list)


class CompanyCheck(CompanyChecks, PartnershipChecks, OrderChecks, IntakeChecks):
    """Every invariant of one company; violations go to the shared list."""

    def run(self) -> None:
        company = self.r.get(Company.key(self.cid))
        if not isinstance(company, Company):
            self.fail(f"company {self.cid}: no PROFILE item")
            return
        items = self.r.query(keys.company(self.cid))
        users = [i for i in items if isinstance(i, User)]
        self.check_profile(company, users)
        self.check_directory(company)
        self.check_invitations([i for i in items if isinstance(i, Invitation)])
        self.check_partnerships(items)
        self.check_orders(company, items, users)
        self.check_notifications(users)
        self.check_intake(company)


def audit(company_ids: Iterable[str]) -> Audit:
    """Check every company given; violations deduplicated (a shared order's entry is
    reported once even when both companies are checked)."""
    reader = Reader()
    result = Audit()
    found: list[str] = []
    for company_id in dict.fromkeys(company_ids):
        result.companies += 1
        CompanyCheck(reader, company_id, found).run()
    result.items = reader.items
    result.violations = list(dict.fromkeys(found))
    return result


def check(company_ids: Iterable[str]) -> list[str]:
    return audit(company_ids).violations


def check_company(company_id: str) -> list[str]:
    """Human-readable violations of one company's invariants; empty when consistent."""
    return check([company_id])


def registered_companies() -> list[str]:
    """Every company id in the registry index (gsi2 ``COMPANIES#<shard>``): 16 Queries."""
    ids: list[str] = []
    for shard in range(Company.REGISTRY_SHARDS):
        partition = f"COMPANIES#{shard:02d}"
        ids += [i.company_id for i in Item.gsi2.query(partition) if isinstance(i, Company)]
    return ids


def active_companies(days: int) -> list[str]:
    """Companies in the activity index (gsi3 ``ACTIVE#<day>``) for the last ``days`` days,
    to reach companies created before the registry existed."""
    today = now().date()
    ids: list[str] = []
    for back in range(-1, days + 1):
        partition = Company.activity_partition((today - timedelta(days=back)).isoformat())
        ids += [i.company_id for i in Item.gsi3.query(partition) if isinstance(i, Company)]
    return ids

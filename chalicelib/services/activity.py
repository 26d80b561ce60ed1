"""Last activity of users and companies, and the sparse index the inactivity job reads.

An active company carries ``gsi3pk = ACTIVE#<day>`` / ``gsi3sk = <company id>``
on its profile item, ``<day>`` being the last day any of its users made a
signed-in request. Inactive companies carry no such keys (the index stays
sparse), so the nightly job reads only the companies whose day is due.
Recording costs at most one write per user per day: the day is compared
with the User item the session check has already read.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from chalicelib.db.accounts import Company, User
from chalicelib.db.base import Item, transaction
from chalicelib.services import sessions
from chalicelib.services.sessions import Principal, now

log = logging.getLogger("checkos.activity")


def today() -> date:
    """The current UTC day: every activity day and job day is a UTC date."""
    return now().date()


def index_fields(company_id: str, day: date) -> dict[str, Any]:
    """Attributes of a Company item that is active as of ``day`` (sign-up, reactivation)."""
    stamp = day.isoformat()
    return {
        "last_active_day": stamp,
        "gsi3pk": Company.activity_partition(stamp),
        "gsi3sk": company_id,
    }


def arm_actions(company_id: str, day: date) -> list[Action]:
    """Update actions putting the company in the activity index as of ``day``."""
    return [
        getattr(Company, name).set(value) for name, value in index_fields(company_id, day).items()
    ]


def disarm_actions() -> list[Action]:
    """Update actions taking the company out of the activity index (it became inactive)."""
    return [Company.gsi3pk.remove(), Company.gsi3sk.remove()]


def status_change_actions(company: Company, new_status: str, day: date) -> list[Action]:
    """What a status change must do to the index: clear it when leaving active, arm it back."""
    if new_status == company.status:
        return []
    if new_status == "active":
        return arm_actions(company.company_id, day)
    return disarm_actions()


def unversioned(company_id: str) -> Item:
    """The Company item without its model: a transaction update that leaves ``version`` alone.

    Activity stamps and the job's warning mark are not part of the settings
    form: bumping the optimistic-lock version for them would make an admin's
    open form fail with "changed by someone else" for nothing. (A Company
    shell would even reset the version to 1, as it holds none.)
    """
    return Item(*Company.key(company_id))


def update_unversioned(
    company_id: str, actions: list[Action], condition: Condition | None = None
) -> None:
    """One UpdateItem of the Company that leaves ``version`` alone (see ``unversioned``).

    Raises pynamodb's UpdateError when ``condition`` fails.
    """
    pk, sk = Company.key(company_id)
    Company._get_connection().update_item(pk, range_key=sk, actions=actions, condition=condition)


def record_sign_in(token: str, user_id: str, company_id: str) -> bool:
    """Stamp the day a user signs in (at most one write per user per day)."""
    principal = sessions.authenticate(token, user_id, company_id)
    return record_activity(principal) if principal is not None else False


def record_activity(principal: Principal, day: date | None = None) -> bool:
    """Stamp the user's (and, once a day, the company's) last active day.

    Returns True when something was written. Never raises: a lost stamp is
    retried by the user's next request, and must not break the page.
    """
    stamp = (day or today()).isoformat()
    user, company = principal.user, principal.company
    if user.last_active_day and user.last_active_day >= stamp:
        return False  # the common case: already recorded today, no request at all
    user_actions: list[Action] = [User.last_active_day.set(stamp)]
    user_condition = User.pk.exists() & (
        User.last_active_day.does_not_exist() | (User.last_active_day < stamp)
    )
    try:
        if company.last_active_day and company.last_active_day >= stamp:
            # Another user of the company already moved it today: one UpdateItem.
            User(*User.key(company.company_id, user.user_id)).update(
                actions=user_actions, condition=user_condition
            )
        else:
            _stamp_both(principal, stamp, user_actions, user_condition)
    except PynamoDBException as problem:
        # A condition lost to a concurrent request, the company's status changed
        # meanwhile, or the table is briefly unavailable: the next request retries.
        log.info(
            "activity not recorded", extra={"company": company.company_id, "why": str(problem)}
        )
        return False
    user.last_active_day = stamp
    if not company.last_active_day or company.last_active_day < stamp:
        company.last_active_day = stamp
        if company.active:
            company.gsi3pk, company.gsi3sk = Company.activity_partition(stamp), company.company_id
    return True


def _stamp_both(
    principal: Principal, stamp: str, user_actions: list[Action], user_condition: Any
) -> None:
    """User and Company in one TransactWriteItems (one request)."""
    company = principal.company
    company_id = company.company_id
    # Never move the company's day backwards (a slow request from yesterday).
    not_later = Company.last_active_day.does_not_exist() | (Company.last_active_day <= stamp)
    if company.active:
        # Only an active company joins the index: the condition makes sure it
        # was not inactivated since the session check read it.
        company_actions = arm_actions(company_id, date.fromisoformat(stamp))
        company_condition = Company.pk.exists() & (Company.status == "active") & not_later
    else:
        # Reactivation arms the index itself; the day alone is enough here.
        company_actions = [Company.last_active_day.set(stamp)]
        company_condition = Company.pk.exists() & not_later
    with transaction() as tx:
        tx.update(
            User(*User.key(company_id, principal.user.user_id)),
            actions=user_actions,
            condition=user_condition,
        )
        tx.update(unversioned(company_id), actions=company_actions, condition=company_condition)

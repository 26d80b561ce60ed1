"""Company deletion against a settings save, raced on the serialised moto server.

The admin's settings form was read before the deletion was asked for; both
requests then arrive together. Whichever DynamoDB applies first, the
deletion must proceed: the company ends erased, never active again.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from pynamodb.exceptions import DoesNotExist

from chalicelib.db.accounts import DELETING, Company
from chalicelib.domain.errors import AppError
from chalicelib.services import companies, erasure
from tests.figures import report
from tests.service.factories import new_company

ROUNDS = 20


def _settings_form(company: Company) -> dict[str, str]:
    form = companies.profile_values(company)
    form.update(description="Saved while the company was being deleted", status="active")
    return form


def _race_once() -> bool:
    """One round: True when the deletion proceeded (status deleting, then erased)."""
    account = new_company("Racing Repairs")
    company_id = account.company.company_id
    form_copy = Company.get(*Company.key(company_id), consistent_read=True)
    deleter_copy = Company.get(*Company.key(company_id), consistent_read=True)
    form = _settings_form(form_copy)
    start = threading.Barrier(2)

    def save() -> str:
        start.wait()
        try:
            companies.update_profile(form_copy, form, "en")
            return "saved"
        except AppError as problem:
            return problem.key

    def delete() -> str:
        start.wait()
        erasure.mark(deleter_copy, account.user.user_id)
        return "marked"

    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(save), pool.submit(delete)]:
            future.result()
    stored = Company.get(*Company.key(company_id), consistent_read=True)
    if stored.status != DELETING:
        return False
    erasure.run_erasure(company_id)
    try:
        Company.get(*Company.key(company_id), consistent_read=True)
    except DoesNotExist:
        return True
    return False


def test_deletion_wins_every_race_against_a_settings_save(aws):
    outcomes = [_race_once() for _ in range(ROUNDS)]
    deletion_won = outcomes.count(True)
    print(report("deletion-race", rounds=len(outcomes), deletion_won=deletion_won))
    assert len(outcomes) == ROUNDS
    assert deletion_won == ROUNDS

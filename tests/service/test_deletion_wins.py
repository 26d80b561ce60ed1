"""Company deletion wins over a settings form that was read before it."""

from __future__ import annotations

import pytest
from pynamodb.exceptions import DoesNotExist

from chalicelib.db.accounts import DELETING, Company
from chalicelib.services import companies, erasure
from chalicelib.services.companies import ProfileChanged
from tests.service.factories import new_company


def test_a_settings_form_read_before_the_deletion_cannot_bring_the_company_back(aws):
    account = new_company("Stale Form Repairs")
    company_id = account.company.company_id
    open_form = Company.get(*Company.key(company_id), consistent_read=True)
    form = companies.profile_values(open_form)
    form.update(description="Typed before the deletion", status="active")
    erasure.mark(account.company, account.user.user_id)
    with pytest.raises(ProfileChanged):
        companies.update_profile(open_form, form, "en")
    stored = Company.get(*Company.key(company_id), consistent_read=True)
    assert stored.status == DELETING
    assert stored.version == 2  # bumped, never reset
    erasure.run_erasure(company_id)
    with pytest.raises(DoesNotExist):
        Company.get(*Company.key(company_id), consistent_read=True)


def test_marking_after_a_concurrent_save_reads_again_and_still_deletes(aws):
    account = new_company("Saved Meanwhile Repairs")
    company_id = account.company.company_id
    stale = Company.get(*Company.key(company_id), consistent_read=True)
    fresh = Company.get(*Company.key(company_id), consistent_read=True)
    form = companies.profile_values(fresh)
    form.update(name="Renamed Meanwhile Repairs")
    companies.update_profile(fresh, form, "en")
    erasure.mark(stale, account.user.user_id)
    stored = Company.get(*Company.key(company_id), consistent_read=True)
    assert stored.status == DELETING
    assert stored.version == 3

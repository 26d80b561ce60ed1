"""The "Your data" settings page: download everything, delete the company, through HTTP."""

from __future__ import annotations

import re

import pytest

from chalicelib.db.accounts import Company
from chalicelib.db.data_rights import DataArchive
from chalicelib.services import erasure, erasure_steps, takeout
from tests.web.company_factories import staff_member
from tests.web.factories import PASSWORD, ids_of, sign_up
from tests.web.session import WebSession


def test_the_page_explains_both_rights_within_the_staff_page_budget(client, budget):
    tab = sign_up(client, company_name="Budget Data Co")
    with budget:
        answer = tab.get("/settings/data")
    assert answer.status_code == 200
    assert budget.dynamodb_requests <= 3, [c.operation for c in budget.dynamodb]
    page = tab.text()
    assert 'action="/settings/data/archive"' in page and 'action="/settings/data/delete"' in page
    assert "cannot be undone" in page and "Budget Data Co" in page
    assert 'type="password"' in page and 'autocomplete="current-password"' in page
    tab.get("/settings")
    assert 'href="/settings/data"' in tab.text()


def test_staff_members_cannot_reach_the_page(client):
    admin = sign_up(client)
    staff = staff_member(client, admin)
    assert staff.get("/settings/data").status_code == 403
    admin.get("/settings/data")
    answer = staff.post("/settings/data/delete", {"password": PASSWORD, "confirmation": "x"})
    assert answer.status_code == 403


def test_the_archive_is_prepared_in_the_background_and_downloaded_from_its_page(client, budget):
    tab = sign_up(client, company_name="Archive Web Co")
    tab.get("/settings/data")
    answer = tab.post("/settings/data/archive")
    assert answer.status_code == 303
    location = answer.headers["Location"]
    assert re.fullmatch(r"/settings/data/archive/[0-9a-f]{16}", location)
    takeout.join_background()
    with budget:
        page = tab.get(location)
    assert page.status_code == 200 and budget.dynamodb_requests <= 3
    link = re.search(r'id="download" href="([^"]+)"', tab.text())
    assert link and "X-Amz-Expires=600" in link.group(1).replace("&amp;", "&")
    assert "exports%2F" in link.group(1) or "/exports/" in link.group(1)
    tab.get("/settings/data")
    assert location in tab.text()  # the list of recent downloads links it
    company_id = ids_of(tab)[0]
    job = DataArchive.get(*DataArchive.key(company_id, location.rsplit("/", 1)[1]))
    assert job.status == "done" and job.expires_at is not None


def test_a_wrong_password_or_name_keeps_the_company_and_what_was_typed(client):
    tab = sign_up(client, company_name="Keep Me Co")
    tab.get("/settings/data")
    answer = tab.post("/settings/data/delete", {"password": "not mine", "confirmation": "Keep Me"})
    assert answer.status_code == 422
    page = tab.text()
    assert "The password is not correct." in page and "That is not the company" in page
    assert 'value="Keep Me"' in page and "not mine" not in page
    company_id = ids_of(tab)[0]
    assert Company.get(*Company.key(company_id), consistent_read=True).status == "active"
    assert tab.get("/orders").status_code == 200


def test_guessing_the_password_on_the_delete_form_is_throttled_like_sign_in(client):
    from chalicelib.services.signin import ACCOUNT_FAILURES

    tab = sign_up(client, company_name="Guarded Co")
    tab.get("/settings/data")
    for _ in range(ACCOUNT_FAILURES):
        wrong = {"password": "guess", "confirmation": "Guarded Co"}
        assert tab.post("/settings/data/delete", wrong).status_code == 422
    # Locked now, even with the right password: the page says so and nothing is deleted.
    right = {"password": PASSWORD, "confirmation": "Guarded Co"}
    answer = tab.post("/settings/data/delete", right)
    assert answer.status_code == 429
    company_id = ids_of(tab)[0]
    assert Company.get(*Company.key(company_id), consistent_read=True).status == "active"


def test_deleting_signs_everyone_out_says_goodbye_and_frees_the_address(client):
    tab = sign_up(client, company_name="Leaving Soon Co")
    staff = staff_member(client, tab)
    company_id = ids_of(tab)[0]
    email = tab.email  # type: ignore[attr-defined]
    tab.get("/settings/data")
    answer = tab.post(
        "/settings/data/delete", {"password": PASSWORD, "confirmation": "leaving soon co"}
    )
    assert answer.status_code == 303 and answer.headers["Location"] == "/goodbye"
    assert "sid" not in tab.cookies
    assert tab.get("/goodbye").status_code == 200
    assert "Your company is being deleted" in tab.text()
    assert staff.get("/orders").status_code == 303  # to the sign-in page, at once
    erasure.join_background()
    with pytest.raises(Company.DoesNotExist):
        Company.get(*Company.key(company_id), consistent_read=True)
    assert erasure_steps.stored_files(company_id) == []
    visitor = WebSession(client)
    visitor.get("/login")
    visitor.post("/login", {"email": email, "password": PASSWORD})
    assert "sid" not in visitor.cookies  # the login went with the company
    again = sign_up(client, company_name="Leaving Soon Co", email=email)
    assert again.get("/").status_code == 200  # the e-mail and the name are free again

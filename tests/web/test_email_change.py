"""An e-mail change waits for its code; cancelling or replacing the change kills that code."""

from __future__ import annotations

from tests.web.company_factories import company_of, save_settings
from tests.web.factories import code_in, last_mail_to, sign_up, unique_email


def _validate(tab, code: str):
    tab.get("/verify-email")
    return tab.post("/verify-email", {"code": code})


def test_cancelling_an_email_change_invalidates_its_pending_code(client):
    tab = sign_up(client)
    original = company_of(tab).email
    wanted = unique_email("new-address")
    assert save_settings(tab, email=wanted).status_code == 303
    code = code_in(last_mail_to(wanted))
    # Changed their mind: the settings show the current address again.
    assert save_settings(tab, email=original).status_code == 303
    assert company_of(tab).pending_email is None
    answer = _validate(tab, code)
    assert answer.status_code == 400
    company = company_of(tab)
    assert company.email == original and company.email_validated


def test_a_replaced_email_change_leaves_only_the_newest_code_alive(client):
    tab = sign_up(client)
    first, second = unique_email("first"), unique_email("second")
    assert save_settings(tab, email=first).status_code == 303
    old_code = code_in(last_mail_to(first))
    assert save_settings(tab, email=second).status_code == 303
    new_code = code_in(last_mail_to(second))
    if old_code != new_code:  # one in a million they match
        assert _validate(tab, old_code).status_code == 400
        assert company_of(tab).email != first
    assert _validate(tab, new_code).status_code == 303
    assert company_of(tab).email == second

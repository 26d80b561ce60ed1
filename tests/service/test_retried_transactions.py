"""Team, partnership and profile writes retry a transaction DynamoDB cancelled for a neighbour.

DynamoDB cancels a TransactWriteItems with ``TransactionConflict`` when another
transaction holds one of its items at that moment, without any condition failing: the
write is still right and runs again (``db.base.write_transaction``). Only a failed
condition is the user's answer ("changed meanwhile", "the last admin", "gone"); a
conflict that never clears is the "busy, try again" page, never "someone changed it".
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pynamodb.exceptions import TransactWriteError

from chalicelib.db.accounts import Company, User
from chalicelib.db.base import CONFLICT_ATTEMPTS
from chalicelib.db.partners import Partnership
from chalicelib.domain.errors import Conflict
from chalicelib.services import companies, intake, intake_codes, partners, users
from chalicelib.services.sessions import Principal
from tests.security.faults import fault, install, uninstall
from tests.service.factories import new_company, staff_logins
from tests.web.factories import PASSWORD, last_mail_to, link_in, unique_email

# The cancellation reasons of a two-item transaction, in the order PynamoDB sends them.
CONFLICT = ("None", "TransactionConflict")


def cancelled(reasons: tuple[str, ...], times: int = 1):
    """The next ``times`` TransactWriteItems are cancelled with ``reasons``."""
    return fault(
        "dynamodb",
        "TransactWriteItems",
        code="TransactionCanceledException",
        reasons=reasons,
        times=times,
    )


@pytest.fixture
def faults() -> Iterator[None]:
    install()
    try:
        yield
    finally:
        uninstall()


def _admin(account) -> Principal:
    return Principal(user=account.user, company=account.company)


def _colleague(account) -> str:
    ((user_id, _email),) = staff_logins(account.company, 1)
    return user_id


def test_a_role_change_cancelled_for_a_neighbour_runs_again(aws, faults):
    account = new_company()
    user_id = _colleague(account)
    with cancelled(CONFLICT) as armed:
        users.set_role(_admin(account), user_id, "admin")
    assert armed.hits == 1
    assert User.get(*User.key(account.company.company_id, user_id)).role == "admin"
    assert Company.get(*Company.key(account.company.company_id)).admin_count == 2


def test_a_role_change_whose_user_changed_meanwhile_says_so(aws, faults):
    account = new_company()
    user_id = _colleague(account)
    with (
        cancelled(
            ("ConditionalCheckFailed", "None"),
        ) as armed,
        pytest.raises(Conflict) as refused,
    ):
        users.set_role(_admin(account), user_id, "admin")
    assert armed.hits == 1 and refused.value.key == "users.changed_meanwhile"
    assert User.get(*User.key(account.company.company_id, user_id)).role == "staff"


def test_a_conflict_that_never_clears_is_the_busy_page_not_changed_meanwhile(aws, faults):
    account = new_company()
    user_id = _colleague(account)
    with (
        cancelled(
            CONFLICT,
            times=CONFLICT_ATTEMPTS,
        ) as armed,
        pytest.raises(TransactWriteError),
    ):
        users.remove_user(_admin(account), user_id)
    assert armed.hits == CONFLICT_ATTEMPTS
    assert User.get(*User.key(account.company.company_id, user_id)).role == "staff"


def test_removing_a_colleague_cancelled_for_a_neighbour_runs_again(aws, faults):
    account = new_company()
    user_id = _colleague(account)
    with cancelled(CONFLICT) as armed:
        users.remove_user(_admin(account), user_id)
    assert armed.hits == 1
    with pytest.raises(User.DoesNotExist):
        User.get(*User.key(account.company.company_id, user_id))


def test_a_partnership_proposal_cancelled_for_a_neighbour_runs_again(aws, faults):
    a, b = new_company("Conflict Approver"), new_company("Conflict Executor")
    with cancelled(CONFLICT) as armed:
        partners.propose(_admin(a), b.company.company_id, {"relationship": "approve"})
    assert armed.hits == 1
    mine = Partnership.get(*Partnership.key(a.company.company_id, b.company.company_id))
    theirs = Partnership.get(*Partnership.key(b.company.company_id, a.company.company_id))
    assert (mine.rev, theirs.rev) == (1, 1)


def test_a_profile_save_cancelled_for_a_neighbour_runs_again(aws, faults):
    account = new_company()
    company = account.company
    form = {**companies.profile_values(company), "city": "Recife"}
    with cancelled(
        CONFLICT + ("None",) * 4,
    ) as armed:
        companies.update_profile(company, form, "en")
    assert armed.hits == 1
    assert Company.get(*Company.key(company.company_id)).city == "Recife"


def test_a_throttled_role_change_is_the_busy_page_not_changed_meanwhile(aws, faults):
    account = new_company()
    user_id = _colleague(account)
    with (
        fault("dynamodb", "TransactWriteItems", code="ThrottlingException") as armed,
        pytest.raises(TransactWriteError),
    ):
        users.set_role(_admin(account), user_id, "admin")
    assert armed.hits == 1
    assert User.get(*User.key(account.company.company_id, user_id)).role == "staff"


def _invitation(account, email: str) -> str:
    users.invite(_admin(account), {"email": email, "name": "Rita", "role": "staff"}, "en")
    return link_in(last_mail_to(email), "/invite/").removeprefix("/invite/")


def test_a_double_submitted_invitation_says_used_not_address_taken(aws, monkeypatch):
    account = new_company()
    token = _invitation(account, unique_email("twin"))
    form = {"name": "Rita", "password": PASSWORD}
    read_before_the_twin = users.invitation_for(token)
    users.accept_invitation(token, form, "en")
    # The second submit read the invitation before the first committed.
    monkeypatch.setattr(users, "invitation_for", lambda _token: read_before_the_twin)
    with pytest.raises(users.InvitationGone):
        users.accept_invitation(token, form, "en")


def test_an_invited_address_that_got_an_account_meanwhile_is_named_taken(aws, monkeypatch):
    account, elsewhere = new_company(), new_company("Elsewhere")
    email = unique_email("taken")
    token = _invitation(account, email)
    users.accept_invitation(
        _invitation(elsewhere, email), {"name": "Rita", "password": PASSWORD}, "en"
    )
    with pytest.raises(Conflict) as refused:
        users.accept_invitation(token, {"name": "Rita", "password": PASSWORD}, "en")
    assert refused.value.key == "invite.email_taken"


def test_a_form_code_rotation_cancelled_for_a_neighbour_runs_again(aws, faults):
    company = new_company().company
    with cancelled(CONFLICT) as armed:
        code = intake_codes.generate_code(company, company.version)
    assert armed.hits == 1
    assert intake.form_company(code).company_id == company.company_id

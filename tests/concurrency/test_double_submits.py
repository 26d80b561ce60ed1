"""Double submits (several tabs at once) answer as done, never as a busy or missing thing.

Against the serialised loopback server with the DynamoDB realism on (the
losing transactions are cancelled as DynamoDB cancels them). A barrier puts
every tab at the same step before any of them writes, so the race is the
same on every run.
"""

from __future__ import annotations

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

from chalicelib.db.accounts import Company
from chalicelib.domain.errors import AppError
from chalicelib.services import (
    email_codes,
    intake,
    intake_codes,
    intake_confirmation,
    orders,
    signin,
)
from chalicelib.services.orders import OrderFilters
from tests.figures import report
from tests.service.factories import new_company

TABS = 4  # below the code's 5 tries: every tab's try is a right one


def test_the_right_code_from_several_tabs_at_once_validates_and_every_tab_says_done(
    aws, monkeypatch
):
    account = new_company(f"Tabs Repairs {secrets.token_hex(3)}")
    company = account.company
    sent: list[str] = []
    monkeypatch.setattr(
        email_codes.mailer, "send_templated", lambda *a, **k: sent.append(str(k["code"]))
    )
    new_address = f"validated-{secrets.token_hex(3)}@example.com"
    company.update(actions=[Company.pending_email.set(new_address)])  # an address change
    email_codes.send_email_code(company, new_address, "en")
    (code,) = sent
    # Each tab read the company with its session, before any tab submitted.
    tabs = [Company.get(*Company.key(company.company_id)) for _ in range(TABS)]
    real_digest = email_codes._code_digest
    compared = threading.Barrier(TABS, timeout=30)

    waited: set[int] = set()

    def digest_then_wait(company_id: str, given: str, key: str | None = None) -> str:
        value = real_digest(company_id, given, key)
        if threading.get_ident() not in waited:  # each tab's first comparison
            waited.add(threading.get_ident())
            compared.wait()  # every tab has reserved its try and is about to validate
        return value

    monkeypatch.setattr(email_codes, "_code_digest", digest_then_wait)

    def submit(index: int) -> str:
        try:
            done = email_codes.verify_email_code(tabs[index], code)
        except AppError as problem:
            return problem.key
        except Exception as problem:  # what the page shows as "the service is busy" (503)
            return f"busy: {type(problem).__name__}"
        return "done" if done.email == new_address and done.email_validated else "wrong"

    with ThreadPoolExecutor(max_workers=TABS) as pool:
        outcomes = list(pool.map(submit, range(TABS)))
    stored = Company.get(*Company.key(company.company_id), consistent_read=True)
    report(
        "double-submit-code",
        require=("tabs",),
        tabs=TABS,
        done=outcomes.count("done"),
        other=TABS - outcomes.count("done"),
    )
    assert outcomes == ["done"] * TABS, outcomes
    assert stored.email == new_address and stored.email_validated and not stored.pending_email
    # A tab that sends the same code after all that (its page read the validated company)
    # is told it is done too; another code is not.
    monkeypatch.setattr(email_codes, "_code_digest", real_digest)
    late = Company.get(*Company.key(company.company_id), consistent_read=True)
    assert email_codes.verify_email_code(late, code).email == new_address
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert submit_late(late, wrong) == "verify.no_code"


def submit_late(company: Company, code: str) -> str:
    try:
        email_codes.verify_email_code(company, code)
    except AppError as problem:
        return problem.key
    return "done"


def test_the_same_intake_link_confirmed_from_several_tabs_answers_with_one_order(aws, monkeypatch):
    tokens: list[str] = []
    monkeypatch.setattr(intake, "_send_link", lambda *args: tokens.append(args[3]))
    account = new_company(f"Tabs Intake {secrets.token_hex(3)}")
    company = Company.get(*Company.key(account.company.company_id))
    intake_codes.generate_code(company, company.version)
    company = Company.get(*Company.key(company.company_id))
    form = {
        "customer_name": "Rosa Lima",
        "customer_email": f"rosa-{secrets.token_hex(4)}@example.com",
        "problem": "Leaking tap",
    }
    intake.submit_request(company, form, locale="en", ip="10.0.9.1", browser=False)
    (token,) = tokens
    real_claim = intake_confirmation._claim
    clicked = threading.Barrier(TABS, timeout=30)

    def claim_together(*args, **kwargs):
        clicked.wait()  # every tab has read the pending request: none has claimed it
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(intake_confirmation, "_claim", claim_together)

    def click(_: int) -> str:
        try:
            return intake_confirmation.confirm_request(token).order_id
        except AppError as problem:
            return problem.key
        except Exception as problem:
            return f"busy: {type(problem).__name__}"

    with ThreadPoolExecutor(max_workers=TABS) as pool:
        outcomes = list(pool.map(click, range(TABS)))
    page = orders.list_orders(company.company_id, OrderFilters(view="all"), page_size=50)
    report(
        "double-submit-intake",
        require=("tabs",),
        tabs=TABS,
        same_order=outcomes.count(outcomes[0]) if outcomes else 0,
        orders=len(page.entries),
    )
    assert len(set(outcomes)) == 1 and len(outcomes[0]) == 16, outcomes  # one order id for all
    assert [e.order_id for e in page.entries] == [outcomes[0]]


def test_an_unlock_link_opened_in_several_tabs_unlocks_and_every_tab_says_done(aws, monkeypatch):
    from datetime import timedelta

    from chalicelib.db.accounts import LinkToken, Throttle
    from chalicelib.domain.tokens import new_token, token_hash
    from chalicelib.services.sessions import now

    email = f"locked-{secrets.token_hex(4)}@example.com"
    Throttle(*Throttle.key("email", email), failures=5).save()  # the locked address
    token = new_token()
    LinkToken(
        *LinkToken.key(signin.UNLOCK, token_hash(token)),
        kind=signin.UNLOCK,
        company_id="c",
        email=email,
        expires_at=now() + timedelta(hours=1),
    ).save()
    real_token = signin.unlock_token
    opened = threading.Barrier(TABS, timeout=30)

    def token_then_wait(value: str):
        found = real_token(value)
        opened.wait()  # every tab has read the valid link: none has used it
        return found

    monkeypatch.setattr(signin, "unlock_token", token_then_wait)

    def press(_: int) -> str:
        try:
            signin.unlock_account(token)
        except AppError as problem:
            return problem.key
        return "done"

    with ThreadPoolExecutor(max_workers=TABS) as pool:
        outcomes = list(pool.map(press, range(TABS)))
    report("double-submit-unlock", require=("tabs",), tabs=TABS, done=outcomes.count("done"))
    assert outcomes == ["done"] * TABS, outcomes
    assert not list(Throttle.query(Throttle.key("email", email)[0], consistent_read=True))

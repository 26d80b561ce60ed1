"""Intake races against the serialised moto server: one pending request, one order."""

from __future__ import annotations

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

from chalicelib.db.accounts import Company
from chalicelib.db.intake import CONFIRMED, IntakeRequest, PendingLock
from chalicelib.domain.tokens import token_hash
from chalicelib.services import intake, intake_codes, intake_confirmation, orders
from chalicelib.services.orders import OrderFilters
from tests.service.factories import new_company


def _company() -> Company:
    account = new_company(f"Race Intake {secrets.token_hex(3)}")
    company = Company.get(*Company.key(account.company.company_id))
    intake_codes.generate_code(company, company.version)
    return company


def _form(email: str, problem: str) -> dict[str, str]:
    return {"customer_name": "Rosa Lima", "customer_email": email, "problem": problem}


class _Links:
    """Captures the e-mailed tokens (the outbox is not readable from the server's process)."""

    def __init__(self, monkeypatch) -> None:
        self.tokens: list[str] = []
        self.lock = threading.Lock()

        def capture(company, email, name, token, locale, expires) -> None:
            with self.lock:
                self.tokens.append(token)

        monkeypatch.setattr(intake, "_send_link", capture)


def test_parallel_submissions_for_one_address_leave_exactly_one_pending_request(aws, monkeypatch):
    links = _Links(monkeypatch)
    company = _company()
    email = f"rosa-{secrets.token_hex(4)}@example.com"

    def submit(i: int) -> str:
        try:
            intake.submit_request(
                company, _form(email, f"Problem {i}"), locale="en", ip=f"10.0.0.{i}", browser=False
            )
            return "pending"
        except intake.PendingExists:
            return "refused"
        except intake.RateLimited:  # past the address's daily confirmations: refused too
            return "refused"

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(submit, range(10)))
    assert outcomes.count("pending") == 1 and outcomes.count("refused") == 9
    assert len(links.tokens) == 1  # one link e-mailed
    lock = PendingLock.get(*PendingLock.key(company.company_id, email))
    assert lock.intake_id == token_hash(links.tokens[0])


def test_parallel_confirmations_create_one_order(aws, monkeypatch):
    links = _Links(monkeypatch)
    company = _company()
    email = f"rosa-{secrets.token_hex(4)}@example.com"
    intake.submit_request(
        company, _form(email, "Leaking tap"), locale="en", ip="10.0.1.1", browser=False
    )
    token = links.tokens[0]

    def confirm(_: int) -> str:
        try:
            return intake_confirmation.confirm_request(token).order_id
        except intake_confirmation.ConfirmBusy:
            return "busy"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(confirm, range(8)))
    made = {o for o in outcomes if o != "busy"}
    assert len(made) == 1, outcomes
    # The losers saw "being confirmed" or the same order; a click afterwards gets it too.
    (order_id,) = made
    assert intake_confirmation.confirm_request(token).order_id == order_id
    page = orders.list_orders(company.company_id, OrderFilters(view="all"), page_size=50)
    assert [e.order_id for e in page.entries] == [order_id]
    assert orders.usage_this_month(company.company_id) == 1
    assert IntakeRequest.get(*IntakeRequest.key(token_hash(token))).status == CONFIRMED

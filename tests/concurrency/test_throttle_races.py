"""Parallel guessing against the serialised moto server: throttles are reserved first.

Every attempt reserves its place with a conditional write before the
password (or e-mailed code) is checked, so however many requests arrive at
once, at most the limit of them are evaluated in a window.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from chalicelib.db.accounts import EmailCode
from chalicelib.domain import passwords
from chalicelib.domain.errors import AppError
from chalicelib.services import email_codes, signin
from tests.figures import report
from tests.service.factories import new_company

PARALLEL = 50


class CountedChecks:
    """Wraps the real check: counts every evaluation; a semaphore bounds argon2's memory
    (64 MiB each) without narrowing the race, which is decided before the check."""

    def __init__(self, check: Callable[..., bool]) -> None:
        self.check = check
        self.count = 0
        self.lock = threading.Lock()
        self.gate = threading.BoundedSemaphore(4)

    def __call__(self, *args: object) -> bool:
        with self.lock:
            self.count += 1
        with self.gate:
            return self.check(*args)


def _all_at_once(attempt: Callable[[int], str], parallel: int = PARALLEL) -> list[str]:
    start = threading.Barrier(parallel)

    def run(index: int) -> str:
        start.wait()
        return attempt(index)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(run, range(parallel)))


def test_fifty_parallel_wrong_passwords_evaluate_at_most_the_account_limit(aws, monkeypatch):
    account = new_company("Guessed Repairs")
    checks = CountedChecks(passwords.verify_password)
    monkeypatch.setattr(signin, "verify_password", checks)

    def guess(index: int) -> str:
        try:
            signin.log_in(account.user.email, f"wrong guess {index}", f"198.51.100.{index + 1}")
        except AppError as problem:
            return problem.key
        return "signed in"

    outcomes = _all_at_once(guess)
    print(
        report(
            "throttle-race",
            parallel=len(outcomes),
            evaluated=checks.count,
            limit=signin.ACCOUNT_FAILURES,
        )
    )
    assert len(outcomes) == PARALLEL
    assert 1 <= checks.count <= signin.ACCOUNT_FAILURES
    assert outcomes.count("login.invalid") == checks.count
    assert outcomes.count("login.locked") == PARALLEL - checks.count


def test_fifty_parallel_wrong_passwords_from_one_ip_evaluate_at_most_the_ip_limit(aws, monkeypatch):
    checks = CountedChecks(passwords.verify_password)
    monkeypatch.setattr(signin, "verify_password", checks)

    def guess(index: int) -> str:
        try:
            signin.log_in(f"nobody-{index}@ip-race.example", "wrong", "198.51.100.200")
        except AppError as problem:
            return problem.key
        return "signed in"

    outcomes = _all_at_once(guess)
    print(
        report(
            "throttle-race-ip",
            parallel=len(outcomes),
            evaluated=checks.count,
            limit=signin.IP_FAILURES,
        )
    )
    assert len(outcomes) == PARALLEL
    assert 1 <= checks.count <= signin.IP_FAILURES
    assert outcomes.count("login.locked") == PARALLEL - checks.count


def test_twenty_parallel_code_guesses_get_at_most_the_code_tries(aws, monkeypatch):
    parallel = 20
    account = new_company("Code Guess Repairs")
    company = account.company
    email_codes.send_email_code(company, company.email, "en")
    stored = EmailCode.get(*EmailCode.key(company.company_id), consistent_read=True)
    real = email_codes._code_digest
    # Wrong codes only: never the one that was sent.
    candidates = (f"{n:06d}" for n in range(1_000_000))
    wrong = (c for c in candidates if real(company.company_id, c) != stored.code_hash)
    guesses = list(itertools.islice(wrong, parallel))
    compared: list[str] = []
    lock = threading.Lock()

    def counting_digest(company_id: str, code: str, key: str | None = None) -> str:
        with lock:
            compared.append(code)
        return real(company_id, code, key)

    monkeypatch.setattr(email_codes, "_code_digest", counting_digest)

    def guess(index: int) -> str:
        try:
            email_codes.verify_email_code(company, guesses[index])
        except AppError as problem:
            return problem.key
        return "validated"

    outcomes = _all_at_once(guess, parallel)
    tries = EmailCode.get(*EmailCode.key(company.company_id), consistent_read=True).tries
    print(
        report(
            "code-race",
            parallel=len(outcomes),
            evaluated=len(compared),
            tries_stored=int(tries),
            limit=email_codes.CODE_MAX_TRIES,
        )
    )
    assert len(outcomes) == parallel
    assert 1 <= len(compared) <= email_codes.CODE_MAX_TRIES
    assert int(tries) == email_codes.CODE_MAX_TRIES
    assert "validated" not in outcomes

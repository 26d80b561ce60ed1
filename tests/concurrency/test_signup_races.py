"""Parallel sign-ups against a ThreadedMotoServer: slugs and e-mails stay unique."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from chalicelib.db.accounts import Company
from chalicelib.domain.errors import ValidationFailed
from chalicelib.services import signup
from tests.web.factories import PASSWORD, unique_email


def _form(email: str) -> dict[str, str]:
    return {
        "company_name": "Same Name Repairs",
        "business_type": "Repairs",
        "area": "Lisbon",
        "contact_name": "Rui",
        "phone": "1",
        "email": email,
        "password": PASSWORD,
    }


def test_parallel_signups_with_one_name_get_distinct_slugs(aws):
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda _: signup.sign_up(_form(unique_email()), "en"), range(8)))
    slugs = [m.company.slug for m in made]
    assert len(set(slugs)) == 8
    for account in made:
        stored = Company.get(*Company.key(account.company.company_id))
        assert stored.slug == account.company.slug


def test_parallel_signups_with_one_email_create_exactly_one_account(aws):
    email = unique_email()

    def attempt(_: int) -> str:
        try:
            return signup.sign_up(_form(email), "en").company.company_id
        except ValidationFailed:
            return "refused"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(attempt, range(6)))
    assert outcomes.count("refused") == 5


def test_this_suite_talks_to_the_threaded_moto_server():
    from chalicelib.db.base import Item

    assert Item.Meta.host and Item.Meta.host.startswith("http://127.0.0.1:")

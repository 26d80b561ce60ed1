"""With 5,000 companies in the directory, a search page reads about one page of items."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

import pytest

from chalicelib.db.accounts import Company
from chalicelib.db.base import Item
from chalicelib.services import directory, sessions
from chalicelib.services.directory import PAGE_SIZE, DirectoryQuery
from tests.service.factories import new_company
from tests.web.session import WebSession

COMPANIES = 5_000
FIRST = ["Oficina", "Clínica", "Assistência", "Refrigeração", "Elétrica", "Studio"]
SECOND = ["Azul", "Central", "Norte", "Sul", "Técnica", "São Jorge", "Express"]
TYPES = ["Refrigeração comercial", "Eletrônica", "Ar-condicionado", "Informática", "Elétrica"]
AREAS = ["São Paulo", "Campinas", "Grande São Paulo", "Rio de Janeiro", "Belo Horizonte"]
CONTACTS = ["Ana Souza", "Bruno Lima", "Carla Dias", "João Silva", "Maria Silva"]


@pytest.fixture(scope="module")
def big_directory(aws):
    """5,000 active companies' directory items (what searches read), and a signed-in tab."""
    rng = random.Random(11)
    created = datetime(2025, 1, 1, tzinfo=UTC)
    with Item.batch_write() as batch:
        for n in range(COMPANIES):
            company_id = f"{n:016x}"
            company = Company(
                *Company.key(company_id),
                company_id=company_id,
                name=f"{rng.choice(FIRST)} {rng.choice(SECOND)} {n}",
                slug=f"company-{n}",
                business_type=rng.choice(TYPES),
                area=rng.choice(AREAS),
                contact_name=rng.choice(CONTACTS),
                city=rng.choice(AREAS),
                email=f"c{n}@example.com",
                created_at=created,
            )
            for entry in directory.entries_for(company).values():
                batch.save(entry)
    account = new_company("Searcher")
    token = sessions.start_session(account.user.user_id, account.company.company_id)
    return account, token


QUERIES = [
    "name=oficina",
    "name=ofi",
    "business_type=refrig",
    "area=sao+paulo",
    "name=clinica&area=campinas",
    "contact=silva&business_type=eletronica",
    "name=assistencia+tecnica&area=rio",
    "name=studio&contact=ana&area=belo",
    "name=oficina+norte+4321",
    "area=são&business_type=ar",
]


def _tab(client, big_directory) -> WebSession:
    from chalicelib.web.context import _session_cookie

    account, token = big_directory
    tab = WebSession(client)
    tab.cookies["sid"] = _session_cookie(token, account.user.user_id, account.company.company_id)
    return tab


@pytest.mark.parametrize("query", QUERIES)
def test_a_directory_page_reads_about_a_page_whatever_the_number_of_companies(
    client, big_directory, budget, query
):
    tab = _tab(client, big_directory)
    with budget:
        response = tab.get(f"/partners/directory?{query}")
    assert response.status_code == 200
    assert budget.dynamodb_requests <= 3, [c.operation for c in budget.dynamodb]
    assert budget.items_read_by_queries <= PAGE_SIZE + 1, budget.items_read_by_queries
    assert "Scan" not in [c.operation for c in budget.dynamodb]


def test_following_pages_costs_the_same(client, big_directory, budget):
    tab = _tab(client, big_directory)
    url = "/partners/directory?area=sao+paulo"
    seen: set[str] = set()
    for _page in range(4):
        with budget:
            tab.get(url)
        assert budget.items_read_by_queries <= PAGE_SIZE + 1
        seen |= set(re.findall(r'data-company="([0-9a-f]+)"', tab.text()))
        found = re.search(r'href="(/partners/directory\?[^"]+cursor=[^"]+)" rel="next"', tab.text())
        assert found, "a popular word has more pages"
        url = found.group(1).replace("&amp;", "&")
    assert len(seen) > 3 * PAGE_SIZE // 2


def test_a_selective_word_finds_its_company_in_one_small_query(big_directory, budget):
    with budget:
        page = directory.search(DirectoryQuery(name="4321"))
    assert [c.company_id for c in page.cards] == [f"{4321:016x}"]
    assert budget.dynamodb_requests == 1 and budget.items_read_by_queries <= 2

"""The partner directory: an index of active companies, in step with every profile change."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from chalicelib.db.accounts import Company
from chalicelib.db.base import Item
from chalicelib.db.partners import DirectoryEntry
from chalicelib.services import companies, directory, signup
from chalicelib.services.directory import DirectoryQuery
from tests.web.factories import PASSWORD, unique_email


def _word() -> str:
    """A word no other test's company uses, so results are exactly ours."""
    return "Zq" + secrets.token_hex(3)


def _sign_up(
    name: str,
    *,
    business_type: str = "Refrigeração",
    area: str = "São Paulo",
    contact: str = "Ana Souza",
) -> Company:
    form = {
        "company_name": name,
        "business_type": business_type,
        "area": area,
        "contact_name": contact,
        "phone": "+55 11 91234-5678",
        "email": unique_email(),
        "password": PASSWORD,
    }
    return signup.sign_up(form, "pt-BR").company


def _ids(page: directory.DirectoryPage) -> set[str]:
    return {card.company_id for card in page.cards}


def _profile_form(company: Company, **changes: str) -> dict[str, str]:
    form = companies.profile_values(company)
    form.update(
        business_type=form["business_type"] or "Repairs",
        area=form["area"] or "Lisbon",
        contact_name=form["contact_name"] or "Rui",
        phone=form["phone"] or "+351 912 345 678",
    )
    form.update(changes)
    return form


def _entries_of(company_id: str, field: str, token: str) -> list[Item]:
    """The company's index items for exactly this word (partitions hold every word
    sharing its first letters, so the sort key must start with the whole word)."""
    return [
        e
        for e in Item.query(DirectoryEntry.partition(field, token), Item.sk.startswith(f"{token}#"))
        if isinstance(e, DirectoryEntry) and e.company_id == company_id
    ]


def test_a_new_company_is_found_by_the_start_of_any_word_of_each_field(aws):
    word = _word()
    company = _sign_up(
        f"Oficina {word} Técnica",
        business_type=f"Ar-condicionado {word}",
        area=f"Grande {word} Sul",
        contact=f"Júlia {word}",
    )
    prefix = word[:4].upper()  # case does not matter, a 4-letter word start is enough
    for query in (
        DirectoryQuery(name=prefix),
        DirectoryQuery(business_type=prefix),
        DirectoryQuery(area=prefix),
        DirectoryQuery(contact=prefix),
        DirectoryQuery(name="TÉCNICA " + word),  # accents fold: "tecnica" matches "Técnica"
    ):
        assert company.company_id in _ids(directory.search(query)), query
    card = next(c for c in directory.search(DirectoryQuery(name=word)).cards)
    assert (card.name, card.slug, card.area) == (company.name, company.slug, company.area)


def test_fields_combine_and_every_word_must_match(aws):
    word = _word()
    north = _sign_up(f"{word} Norte", area="Porto Alegre")
    south = _sign_up(f"{word} Sul", area="Recife")
    assert _ids(directory.search(DirectoryQuery(name=word))) == {north.company_id, south.company_id}
    assert _ids(directory.search(DirectoryQuery(name=word, area="porto"))) == {north.company_id}
    assert _ids(directory.search(DirectoryQuery(name=f"{word} sul"))) == {south.company_id}
    assert _ids(directory.search(DirectoryQuery(name=word, area="manaus"))) == set()
    # A word prefix, not any substring: "orte" is inside "Norte" but starts no word.
    assert _ids(directory.search(DirectoryQuery(name=f"{word} orte"))) == set()


def test_a_profile_change_moves_the_company_in_the_index_in_the_same_transaction(aws):
    old, new = _word(), _word()
    company = _sign_up(f"{old} Reparos")
    saved = companies.update_profile(
        company, _profile_form(company, name=f"{new} Reparos", city="Campinas"), "en"
    ).company
    assert _ids(directory.search(DirectoryQuery(name=old))) == set()
    found = directory.search(DirectoryQuery(name=new)).cards
    assert [c.company_id for c in found] == [company.company_id]
    assert found[0].city == "Campinas"
    # The shared word's card was rewritten too (it carries the new name).
    reparos = _entries_of(company.company_id, "name", "reparos")
    assert [e.name for e in reparos] == [saved.name]
    assert _entries_of(company.company_id, "name", old.lower()) == []


def test_an_inactive_company_never_appears_and_reactivation_brings_it_back(aws):
    word = _word()
    company = _sign_up(f"{word} Eletrônica", area=f"{word} Centro")
    companies.update_profile(company, _profile_form(company, status="inactive"), "en")
    for query in (DirectoryQuery(name=word), DirectoryQuery(area=word)):
        assert _ids(directory.search(query)) == set()
    assert _entries_of(company.company_id, "name", word.lower()) == []
    stored = Company.get(*Company.key(company.company_id), consistent_read=True)
    companies.reactivate(stored)
    assert _ids(directory.search(DirectoryQuery(name=word))) == {company.company_id}


def test_short_words_match_whole_words_only_and_ask_for_more_letters(aws):
    word = _word()
    company = _sign_up(f"HP {word} Assistência", area=f"Vila {word}")
    page = directory.search(DirectoryQuery(name="hp"))
    assert company.company_id in _ids(page)
    assert page.whole_words_only
    # With a longer word to query on, the short one is only a filter.
    page = directory.search(DirectoryQuery(name="hp", area=word))
    assert company.company_id in _ids(page) and not page.whole_words_only
    # "as" starts "Assistência" but is shorter than the index prefix: whole words only.
    assert company.company_id not in _ids(directory.search(DirectoryQuery(name="as")))
    # As a filter beside a longer word, a short word still matches a word start.
    assert _ids(directory.search(DirectoryQuery(name=f"{word} as"))) == {company.company_id}


def test_results_page_through_a_cursor(aws):
    word = _word()
    made = {_sign_up(f"{word} Filial {n}").company_id for n in range(5)}
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        page = directory.search(DirectoryQuery(name=word), cursor, page_size=2)
        assert len(page.cards) <= 2
        seen += [c.company_id for c in page.cards]
        cursor = page.next_cursor
        if not cursor:
            break
    assert sorted(seen) == sorted(made)


def test_a_search_is_one_query_whatever_the_words(aws, budget):
    word = _word()
    _sign_up(f"{word} Climatização", business_type="Refrigeração comercial")
    with budget:
        page = directory.search(
            DirectoryQuery(name=word, business_type="refrig com", area="sao paulo")
        )
    assert len(page.cards) == 1
    assert [c.operation for c in budget.dynamodb] == ["Query"]


def test_directory_changes_are_the_difference_between_two_profiles():
    company = Company(
        *Company.key("ab12cd34ef56ab78"),
        company_id="ab12cd34ef56ab78",
        name="Oficina Azul",
        slug="oficina-azul",
        business_type="Eletrônica",
        area="Campinas",
        contact_name="Ana",
        email="a@example.com",
        status="active",
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    deletes, puts = directory.directory_changes(None, company)
    assert deletes == [] and {p.sk.split("#")[0] for p in puts} == {
        "oficina",
        "azul",
        "eletronica",
        "campinas",
        "ana",
    }
    assert directory.directory_changes(company, directory.snapshot(company)) == ([], [])
    moved = directory.snapshot(company)
    moved.city = "Jundiaí"
    deletes, puts = directory.directory_changes(company, moved)
    assert deletes == [] and len(puts) == 5  # every card carries the city
    renamed = directory.snapshot(company)
    renamed.name = "Oficina Verde"
    deletes, puts = directory.directory_changes(company, renamed)
    assert [d.sk.split("#")[0] for d in deletes] == ["azul"]
    assert "verde" in {p.sk.split("#")[0] for p in puts}
    inactive = directory.snapshot(company)
    inactive.status = "inactive"
    deletes, puts = directory.directory_changes(company, inactive)
    assert len(deletes) == 5 and puts == []
    deletes, puts = directory.directory_changes(inactive, company)
    assert deletes == [] and len(puts) == 5

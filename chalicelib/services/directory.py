"""Partner directory: the token index of active companies and its search.

Every word of a company's name, contact name, business type and area has an
item ``DIR#<field>#<first 3 letters>`` / ``<word>#<company_id>`` carrying the
company's card. The items are written in the same transaction as the Company
change that implies them (sign-up, profile save, status change), so the
index never shows an inactive company and never lags a rename. A search is
one Query on its most selective word, the other words filtered on folded
copies: its cost grows with the results, never with the number of companies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.db.accounts import Company
from chalicelib.db.base import Item, query_page
from chalicelib.db.partners import DIRECTORY_PREFIX, DirectoryEntry
from chalicelib.domain.validation import fold

PAGE_SIZE = 20
# Bounds the items one company owns (and a profile transaction's size: at most
# 4 fields x 8 words deleted and as many written, far below DynamoDB's 100).
MAX_TOKENS_PER_FIELD = 8
MAX_TOKEN_LENGTH = 40
MAX_TERM_LENGTH = 120

# search field -> (Company attribute, folded attribute on the entry)
FIELDS: dict[str, tuple[str, str]] = {
    "name": ("name", "f_name"),
    "contact": ("contact_name", "f_contact"),
    "business_type": ("business_type", "f_type"),
    "area": ("area", "f_area"),
}
CARD_FIELDS: tuple[str, ...] = ("name", "slug", "area", "business_type", "city", "logo_key")
_WORD = re.compile(r"\w+")
_CURSOR = re.compile(r"^\w{1,40}#[0-9a-f]{1,32}$")


def words(text: str) -> list[str]:
    """Folded words of ``text`` (case and accents removed), in order, without repeats."""
    found = [w[:MAX_TOKEN_LENGTH] for w in _WORD.findall(fold(text or ""))]
    return list(dict.fromkeys(found))


def _folded(text: str) -> str:
    # Leading space: ``contains(" " + term)`` then matches the start of any word.
    return " " + " ".join(words(text)) + " "


def entries_for(company: Company | None) -> dict[tuple[str, str], DirectoryEntry]:
    """The directory items an (active) company should have; none when inactive or absent."""
    if company is None or not company.active:
        return {}
    # The card and its folded copies in one mapping (one ``**`` for the model's keywords).
    card: dict[str, Any] = {name: getattr(company, name) for name in CARD_FIELDS}
    card.update({flat: _folded(getattr(company, attr)) for attr, flat in FIELDS.values()})
    found: dict[tuple[str, str], DirectoryEntry] = {}
    for name, (attribute, _flat) in FIELDS.items():
        for token in words(getattr(company, attribute))[:MAX_TOKENS_PER_FIELD]:
            key = DirectoryEntry.key(name, token, company.company_id)
            found[key] = DirectoryEntry(*key, company_id=company.company_id, **card)
    return found


def _card(entry: DirectoryEntry) -> tuple[object, ...]:
    names = (*CARD_FIELDS, "f_name", "f_contact", "f_type", "f_area")
    return tuple(getattr(entry, name) for name in names)


def directory_changes(
    before: Company | None, after: Company | None
) -> tuple[list[DirectoryEntry], list[DirectoryEntry]]:
    """(deletes, puts) that take the index from ``before`` to ``after``.

    ``None`` or an inactive company has no entries: activation writes them
    all, inactivation deletes them all. When only the card changed (city,
    logo...), every remaining entry is rewritten since each carries a copy.
    """
    old, new = entries_for(before), entries_for(after)
    deletes = [old[key] for key in old.keys() - new.keys()]
    puts = [
        entry for key, entry in new.items() if key not in old or _card(old[key]) != _card(entry)
    ]
    return deletes, puts


def write_changes(tx: Any, before: Company | None, after: Company | None) -> None:
    """Add the index changes to a TransactWrite that also writes the Company change."""
    deletes, puts = directory_changes(before, after)
    for entry in deletes:
        tx.delete(entry)
    for entry in puts:
        tx.save(entry)


def snapshot(company: Company) -> Company:
    """A detached copy, to diff the index before and after a change."""
    copy = Company.from_raw_data(company.serialize())
    return copy


# -- search ------------------------------------------------------------------


@dataclass(frozen=True)
class DirectoryQuery:
    name: str = ""
    contact: str = ""
    business_type: str = ""
    area: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> DirectoryQuery:
        return cls(**{k: " ".join((query.get(k) or "").split())[:MAX_TERM_LENGTH] for k in FIELDS})

    def terms(self) -> list[tuple[str, str]]:
        """(field, folded word) of every word typed, field by field."""
        return [(name, token) for name in FIELDS for token in words(getattr(self, name))]

    def active(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in FIELDS if getattr(self, k)}


@dataclass
class DirectoryPage:
    cards: list[DirectoryEntry] = field(default_factory=list)
    next_cursor: str | None = None
    searched: bool = False
    # The most selective word was shorter than the index prefix: only whole
    # words matched it (the page asks for more letters).
    whole_words_only: bool = False


def search(
    query: DirectoryQuery, cursor: str | None = None, page_size: int = PAGE_SIZE
) -> DirectoryPage:
    """One page of active companies matching every word typed: exactly one Query.

    The longest word (the most selective) picks the partition and the sort-key
    prefix; every other word is a word-prefix filter on the folded copies.
    """
    terms = query.terms()
    if not terms:
        return DirectoryPage()
    chosen_field, chosen = max(terms, key=lambda term: len(term[1]))
    short = len(chosen) < DIRECTORY_PREFIX
    # A short word is its own partition: match it as a whole word ("hp", "ti").
    prefix = chosen + "#" if short else chosen
    condition = None
    for name, token in terms:
        if (name, token) == (chosen_field, chosen):
            continue
        part = getattr(DirectoryEntry, FIELDS[name][1]).contains(" " + token)
        condition = part if condition is None else condition & part
    start = cursor if cursor and _CURSOR.match(cursor) else None
    items, next_sk = query_page(
        DirectoryEntry.partition(chosen_field, chosen),
        range_key_condition=Item.sk.startswith(prefix),
        filter_condition=condition,
        page_size=page_size,
        start_sk=start,
    )
    cards = {e.company_id: e for e in items if isinstance(e, DirectoryEntry)}
    return DirectoryPage(
        cards=list(cards.values()), next_cursor=next_sk, searched=True, whole_words_only=short
    )


def logo_path(entry: DirectoryEntry) -> str | None:
    if not entry.logo_key:
        return None
    return f"/logo/{entry.company_id}/{entry.logo_key.rsplit('/', 1)[-1]}"

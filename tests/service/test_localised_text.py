"""Dates, amounts and counts as each language writes them; no raw ISO date reaches a reader.

Rule for "a sentence that takes a count": a placeholder named ``n``, ``count``,
``left`` or after a unit or a counted thing (COUNT_NAMES). Such a sentence has,
in each language, a text for every CLDR plural category Babel gives that
language, unless the number never agrees with a word (INVARIANT, each with
its reason). Settings-named numbers in the help articles (``{user_invite_days}``,
``{red_days}``…) are outside the rule: their value is a constant of the code.
"""

from __future__ import annotations

import re
import string
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from chalicelib.i18n import LOCALES, catalog, translate
from chalicelib.i18n.formatting import (
    AmountUnclear,
    format_amount,
    parse_amount,
    plural_category,
    plural_tags,
)
from chalicelib.services import jobs, mailer, orders
from tests import i18n_glossary as glossary
from tests.figures import report
from tests.service.factories import order_form, staff_actor

ROOT = Path(__file__).resolve().parents[2]
COUNT_NAMES = frozenset(
    {"n", "count", "left", "seconds", "minutes", "hours", "days", "weeks", "rows", "orders"}
    | {"stars", "limit", "quota", "mb"}
)
INVARIANT = {
    "customer.rating_stars": "'{stars} of 5 stars': the noun agrees with the 5",
    "customer.rating.star_option": "'{n} of 5': no noun",
    "customer.rating.yours": "'Your rating: {n} of 5': no noun",
    "help.free-plan.summary": "'…per month: {quota}.': the number stands alone",
    "intake.settings.small_warning": "'{n} × {n} pixels': the noun agrees with the product",
    "intake.api.too_large": "'{n} KB': a unit symbol",
    "profile.logo.lead": "'{mb} MB': a unit symbol",
    "profile.logo.too_large": "'{mb} MB': a unit symbol",
    "partners.list_title": "a heading with the number in brackets",
    "partners.invitations_title": "a heading with the number in brackets",
    "users.members": "a heading with the number in brackets",
    "users.pending": "a heading with the number in brackets",
}
DISPLAY_CODE = re.compile(r"\.isoformat\(\)|strftime\(|\[:10\]|\[:16\]")
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
DATETIME_ATTR = re.compile(r'datetime="[^"]*"')


def _names(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _general(value: str | dict[str, str]) -> str:
    return value["other"] if isinstance(value, dict) else value


def counted_keys() -> list[str]:
    return sorted(
        key
        for key, entry in catalog().items()
        if _names(_general(entry["en"])) & COUNT_NAMES and key not in INVARIANT
    )


@pytest.mark.parametrize(
    ("locale", "typed", "amount"),
    [
        ("pt-BR", "1.500,00", "1500.00"),
        ("pt-BR", "1500,00", "1500.00"),
        ("pt-BR", "1.500", "1500.00"),  # grouping, never 1.50
        ("pt-BR", "1 500,5", "1500.50"),
        ("es", "1.500,00", "1500.00"),
        ("es", "1500,00", "1500.00"),
        ("es", "1.500", "1500.00"),
        ("en", "1,500.00", "1500.00"),
        ("en", "1500", "1500.00"),
        ("en", "150.5", "150.50"),
    ],
)
def test_amounts_are_read_the_way_the_locale_writes_them(locale, typed, amount):
    assert parse_amount(typed, locale) == Decimal(amount)


@pytest.mark.parametrize(
    ("locale", "typed"),
    [
        ("pt-BR", "1.50"),  # a point is grouping in pt-BR: "1.50" is no number there
        ("pt-BR", "1,500.00"),
        ("es", "1,500.00"),
        ("en", "1.500"),  # three decimals: a Brazilian's thousand, refused rather than 1.5
        ("en", "1.500,00"),
        ("en", "1,5"),
        ("pt-BR", "12abc"),
        ("pt-BR", "-5"),
        ("pt-BR", "1.0000.000"),
    ],
)
def test_ambiguous_or_foreign_amounts_are_refused(locale, typed):
    with pytest.raises(AmountUnclear):
        parse_amount(typed, locale)


def test_amounts_are_shown_with_the_locales_marks():
    assert format_amount("1500.5", "pt-BR") == "1.500,50"
    assert format_amount("1500.5", "es") == "1.500,50"
    assert format_amount("1500.5", "en") == "1,500.50"


def test_every_counted_sentence_has_the_plural_forms_of_each_language_and_picks_them():
    keys = counted_keys()
    missing: list[tuple[str, str, object]] = []
    wrong: list[tuple[str, str, int, str]] = []
    for key in keys:
        entry = catalog()[key]
        names = _names(_general(entry["en"]))
        for locale in LOCALES:
            forms = entry[locale]
            if not isinstance(forms, dict) or not plural_tags(locale) <= forms.keys():
                missing.append((key, locale, sorted(forms) if isinstance(forms, dict) else "text"))
                continue
            for number in (0, 1, 2, 5):
                params = {name: number for name in names}
                params.update({n: "x" for n in names - COUNT_NAMES})
                shown = translate(locale, key, **params)
                expected = forms[plural_category(locale, number)].format(**params)
                if shown != expected:
                    wrong.append((key, locale, number, shown))
    assert missing == []
    assert wrong == []
    # The review's sentence, in the three languages.
    assert translate("es", "verify.wrong_code", left=1).endswith("Queda 1 intento.")
    assert translate("pt-BR", "verify.wrong_code", left=1).endswith("Resta 1 tentativa.")
    assert translate("en", "verify.wrong_code", left=1).endswith("1 try left.")
    assert translate("es", "verify.wrong_code", left=2).endswith("Quedan 2 intentos.")
    # Help articles pass every setting: the count is the number the sentence shows.
    quota = translate("en", "help.free-plan.quota.p1", code_minutes=15, quota=1)
    assert "up to 1 new order per" in quota


def test_invariant_counted_sentences_are_still_single_texts():
    # An exemption is for a sentence whose number agrees with nothing; it stays a plain text.
    assert all(isinstance(catalog()[key]["en"], str) for key in INVARIANT)


def _display_code_in_templates() -> list[str]:
    hits = []
    for path in sorted((ROOT / "templates").rglob("*.*")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if DISPLAY_CODE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}")
    return hits


def _iso_dates_in_emails(monkeypatch) -> tuple[int, list[str]]:
    """Every kind of e-mail rendered in the three languages; ISO dates outside <time datetime>."""
    from tests.mail import test_every_message as every

    rendered: list[tuple[str, str, str]] = []

    def capture(to: str, template: str, locale: str, **context: object) -> str:
        for name in ("reply_to", "from_name", "to_name", "opt_out_company", "order_id"):
            context.pop(name, None)
        subject, text, html = mailer.compose(template, locale, **context)
        rendered.append((f"{template}/{locale}", subject + "\n" + text, html))
        return "id"

    monkeypatch.setattr(mailer, "send_templated", capture)
    company, account = every._company()
    order = orders.register_order(
        company,
        staff_actor(account),
        order_form(customer_email=every.CUSTOMER_EMAIL, service_date="2030-05-06"),
        {},
    )
    for locale in LOCALES:
        for kind in every.KINDS:
            if kind.startswith("inactivity"):
                # The way the nightly job sends them: real dates, written per language.
                monkeypatch.setattr(jobs, "_recipients", lambda c, loc=locale: [("a@b.c", loc)])
                jobs._mail_company(
                    company, kind, days=180, last_day=date(2026, 6, 1), deadline=date(2026, 12, 20)
                )
            else:
                every._send(kind, locale, False, company, order)
    hits = []
    for name, text, html in rendered:
        for body in (text, DATETIME_ATTR.sub("", html)):
            hits += [f"{name}: {found}" for found in ISO_DAY.findall(body)]
    return len(rendered), hits


def test_no_raw_iso_date_reaches_a_reader_and_the_figures(aws, monkeypatch):
    code = _display_code_in_templates()
    mails, in_mails = _iso_dates_in_emails(monkeypatch)
    keys = catalog()
    plural = [key for key, entry in keys.items() if isinstance(entry["en"], dict)]
    terms = glossary.load()
    wrong_words, _checked = glossary.violations_in_catalogue(terms, keys)
    report(
        "i18n",
        require=("keys", "plural_keys", "glossary_terms", "mails_rendered"),
        keys=len(keys),
        languages=len(LOCALES),
        plural_keys=len(plural),
        glossary_terms=len(terms),
        glossary_violations=len(wrong_words),
        raw_iso_dates_in_templates=len(code) + len(in_mails),
        mails_rendered=mails,
    )
    assert code == []
    assert in_mails == []
    assert [str(v) for v in wrong_words] == []
    assert len(LOCALES) == 3

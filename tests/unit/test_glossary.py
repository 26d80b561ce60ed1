"""One vocabulary per language: no catalogue value, help article, e-mail or template uses a
word the glossary rejects."""

from __future__ import annotations

import copy

from chalicelib.i18n import catalog
from tests.figures import report
from tests.i18n_glossary import (
    GLOSSARY_MD,
    ROOT,
    fold,
    load,
    render_markdown,
    violations_in_catalogue,
    violations_in_templates,
)

# Keys whose sentences take a count or a date/time/amount are rewritten for plural forms on
# the `tzfmt` branch; their wrong words are fixed at the merge (listed in the `words` report).
# The lead empties this set then; test_pending_merge_fixes_are_still_needed keeps it honest.
PENDING_MERGE: set[tuple[str, str, str]] = set()


def _templates():
    return sorted(p for p in (ROOT / "templates").rglob("*") if p.suffix in {".html", ".txt"})


def test_no_catalogue_value_or_template_uses_a_rejected_word():
    terms = load()
    in_catalogue, values_checked = violations_in_catalogue(terms, catalog())
    in_templates, templates_checked = violations_in_templates(terms, _templates())
    found = [
        v for v in in_catalogue + in_templates if (v.where, v.lang, v.word) not in PENDING_MERGE
    ]
    pending = len(in_catalogue + in_templates) - len(found)
    report(
        "glossary",
        require=("terms", "values_checked", "templates_checked"),
        terms=len(terms),
        values_checked=values_checked,
        templates_checked=templates_checked,
        violations=len(found),
        pending_merge=pending,
    )
    assert [str(v) for v in found] == []


def test_pending_merge_fixes_are_still_needed():
    """An entry of PENDING_MERGE that no longer violates must leave the list."""
    in_catalogue, _ = violations_in_catalogue(load(), catalog())
    still = {(v.where, v.lang, v.word) for v in in_catalogue}
    assert sorted(PENDING_MERGE - still) == []


def test_a_planted_wrong_term_is_found():
    planted = copy.deepcopy(catalog())
    key = next(k for k in planted if k.startswith("partners."))
    planted[key]["es"] = "Su Socio aceptó."  # es calls a partner company «empresa asociada»
    planted["nav.notifications"]["pt-BR"] = "AVISOS"  # pt-BR: «Notificações»
    planted["users.role.staff"]["es"] = "Personal"  # the role is a person
    planted["status.completed"]["es"] = "Completada"
    found, _ = violations_in_catalogue(load(), planted)
    hits = {(v.where, v.lang, v.word) for v in found}
    assert (key, "es", "socio") in hits
    assert ("nav.notifications", "pt-BR", "avisos") in hits
    assert ("users.role.staff", "es", "personal") in hits
    assert ("status.completed", "es", "completada") in hits


def test_matching_is_whole_word_case_and_accent_insensitive():
    terms = [{"term": "t", "rejected": {"es": ["valoración", "socio"]}}]

    def words(text: str) -> list[str]:
        return [v.word for v in violations_in_catalogue(terms, {"k": {"es": text}})[0]]

    assert words("La VALORACION media") == ["valoración"]
    assert words("Su sócio aceptó") == ["socio"]
    assert words("La asociación y las asociaciones") == []
    assert words("socios-") == []  # a hyphenated compound is another word
    assert fold("Situação") == "situacao"


def test_a_scoped_term_applies_only_to_its_keys():
    terms = [{"term": "unread", "scope": "^nav\\.notif", "rejected": {"es": ["cuenta"]}}]
    catalogue = {
        "nav.notifications_count": {"es": "la cuenta"},
        "signup.title": {"es": "Cree la cuenta"},
    }
    found, _ = violations_in_catalogue(terms, catalogue)
    assert [v.where for v in found] == ["nav.notifications_count"]


def test_a_template_literal_text_is_checked_but_not_its_jinja(tmp_path):
    terms = [{"term": "t", "rejected": {"es": ["añadir"]}}]
    page = tmp_path / "templates" / "p.html"
    page.parent.mkdir()
    page.write_text("{{ _('fields.add') }} {# añadir #}<p>Añadir</p>", encoding="utf-8")
    import tests.i18n_glossary as glossary

    original = glossary.ROOT
    glossary.ROOT = tmp_path
    try:
        found, checked = violations_in_templates(terms, [page])
    finally:
        glossary.ROOT = original
    assert checked == 1 and [v.word for v in found] == ["añadir"]


def test_the_markdown_glossary_is_rendered_from_the_json():
    assert GLOSSARY_MD.read_text(encoding="utf-8") == render_markdown(load())

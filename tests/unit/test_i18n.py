"""Every message exists in English, Spanish and Brazilian Portuguese, and every key used exists."""

from __future__ import annotations

import re
from pathlib import Path

from chalicelib.i18n import LOCALES, catalog, negotiate, variants

ROOT = Path(__file__).resolve().parents[2]
# Literal keys in templates: _('a.b') and in Python: ctx._("a.b"), flash("a.b", ...), Key = "a.b".
TEMPLATE_KEY = re.compile(r"""_\(\s*['"]([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)['"]""")
PYTHON_KEY = re.compile(
    r"""(?:_\(|flash\(|key\s*=\s*|raise\s+\w+\()\s*['"]([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)['"]"""
)


def test_every_message_has_all_three_languages():
    # A plural message has one text per plural form: every form must be written.
    missing = [
        (key, locale)
        for key, entry in catalog().items()
        for locale in LOCALES
        if not entry.get(locale) or not all(text.strip() for text in variants(entry[locale]))
    ]
    assert missing == []


def test_placeholders_agree_across_languages():
    """The "other" forms agree; a "one" form may write its single item out ("One try left")."""
    mismatched = []
    for key, entry in catalog().items():
        other = {
            locale: entry[locale]["other"] if isinstance(entry[locale], dict) else entry[locale]
            for locale in LOCALES
        }
        names = {locale: set(re.findall(r"{(\w+)}", text)) for locale, text in other.items()}
        if len({frozenset(v) for v in names.values()}) != 1:
            mismatched.append((key, names))
        for locale in LOCALES:
            for text in variants(entry[locale]):
                if not set(re.findall(r"{(\w+)}", text)) <= names[locale]:
                    mismatched.append((key, locale, text))
    assert mismatched == []


def test_every_literal_key_used_in_templates_and_code_exists():
    keys = catalog().keys()
    unknown = set()
    for path in (ROOT / "templates").rglob("*.*"):
        unknown |= {k for k in TEMPLATE_KEY.findall(path.read_text()) if k not in keys}
    for path in (ROOT / "chalicelib").rglob("*.py"):
        unknown |= {k for k in PYTHON_KEY.findall(path.read_text()) if k not in keys}
    assert sorted(unknown) == []


def test_language_negotiation():
    assert negotiate("pt-BR,pt;q=0.9,en;q=0.8") == "pt-BR"
    assert negotiate("fr-FR,es;q=0.5,en;q=0.4") == "es"
    assert negotiate("de") == "en"
    assert negotiate("en", chosen="es") == "es"
    assert negotiate(None) == "en"

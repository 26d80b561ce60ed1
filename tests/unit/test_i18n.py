"""Every message exists in English, Spanish and Brazilian Portuguese, and every key used exists."""

from __future__ import annotations

import re
from pathlib import Path

from chalicelib.i18n import LOCALES, catalog, negotiate

ROOT = Path(__file__).resolve().parents[2]
# Literal keys in templates: _('a.b') and in Python: ctx._("a.b"), flash("a.b", ...), Key = "a.b".
TEMPLATE_KEY = re.compile(r"""_\(\s*['"]([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)['"]""")
PYTHON_KEY = re.compile(
    r"""(?:_\(|flash\(|key\s*=\s*|raise\s+\w+\()\s*['"]([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)['"]"""
)


def test_every_message_has_all_three_languages():
    missing = [
        (key, locale)
        for key, entry in catalog().items()
        for locale in LOCALES
        if not (entry.get(locale) or "").strip()
    ]
    assert missing == []


def test_placeholders_agree_across_languages():
    mismatched = []
    for key, entry in catalog().items():
        names = {locale: set(re.findall(r"{(\w+)}", entry[locale])) for locale in LOCALES}
        if len({frozenset(v) for v in names.values()}) != 1:
            mismatched.append((key, names))
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

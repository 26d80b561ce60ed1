"""The glossary (docs/glossary.json): one word per thing per language; finds rejected words.

``python -m tests.i18n_glossary --write`` renders docs/glossary.md from the JSON (one source).
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from chalicelib.i18n import variants

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY_JSON = ROOT / "docs/glossary.json"
GLOSSARY_MD = ROOT / "docs/glossary.md"
LANGS = ("en", "es", "pt-BR")
# Jinja statements, expressions and comments: what is left is a template's literal text.
JINJA = re.compile(r"{%.*?%}|{{.*?}}|{#.*?#}", re.S)


@dataclass(frozen=True)
class Violation:
    where: str  # catalogue key or template path
    lang: str
    word: str  # the rejected word as the glossary spells it
    term: str
    found: str  # the text around it

    def __str__(self) -> str:
        return f"{self.where} [{self.lang}] «{self.word}» ({self.term}): …{self.found}…"


def load(path: Path = GLOSSARY_JSON) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["terms"]


def fold(text: str) -> str:
    """Case- and accent-insensitive form: 'Valoración' and 'valoracion' compare equal."""
    decomposed = unicodedata.normalize("NFD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _pattern(word: str) -> re.Pattern[str]:
    # Whole words only: (?<!\w)/(?!\w) treat accented letters as letters, so 'socio' does
    # not match 'asociación' and 'avisos' does not match 'avisosa'.
    return re.compile(r"(?<![\w-])" + re.escape(fold(word)) + r"(?![\w-])")


def _rules(terms: Iterable[dict]) -> Iterator[tuple[dict, str, str, re.Pattern[str]]]:
    for term in terms:
        for lang in LANGS:
            for word in term["rejected"].get(lang, []):
                yield term, lang, word, _pattern(word)


def violations_in_catalogue(
    terms: list[dict], catalogue: Mapping[str, Mapping[str, str]]
) -> tuple[list[Violation], int]:
    """Every rejected word found in a catalogue value, and how many values were read."""
    rules = list(_rules(terms))
    found: list[Violation] = []
    checked = 0
    for key, entry in catalogue.items():
        for lang in LANGS:
            text = " | ".join(variants(entry.get(lang) or ""))  # every plural form
            checked += 1
            folded = fold(text)
            for term, rule_lang, word, pattern in rules:
                if rule_lang != lang:
                    continue
                scope = term.get("scope")
                if scope and not re.search(scope, key):
                    continue
                match = pattern.search(folded)
                if match:
                    around = folded[max(0, match.start() - 30) : match.end() + 30]
                    found.append(Violation(key, lang, word, term["term"], around))
    return found, checked


def violations_in_templates(
    terms: list[dict], paths: Iterable[Path]
) -> tuple[list[Violation], int]:
    """Rejected words (any language, unscoped terms) in templates' literal text."""
    rules = [r for r in _rules(terms) if not r[0].get("scope")]
    found: list[Violation] = []
    checked = 0
    for path in paths:
        literal = fold(JINJA.sub(" ", path.read_text(encoding="utf-8")))
        checked += 1
        for term, lang, word, pattern in rules:
            match = pattern.search(literal)
            if match:
                around = literal[max(0, match.start() - 30) : match.end() + 30]
                found.append(
                    Violation(str(path.relative_to(ROOT)), lang, word, term["term"], around)
                )
    return found, checked


def render_markdown(terms: list[dict]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "# Glossary: one word per thing per language",
        "",
        "Rendered from `docs/glossary.json` by `python -m tests.i18n_glossary --write`;",
        "do not edit by hand. `tests/unit/test_glossary.py` fails when a catalogue value,",
        "a help article, an e-mail or a template's literal text uses a rejected word",
        "(whole word, case- and accent-insensitive; a scope limits a term to the catalogue",
        "keys it matches).",
        "",
        "| term | English | Español | Português (Brasil) | where the customer sees it"
        " | rejected en | rejected es | rejected pt-BR | scope |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in terms:
        rejected = [", ".join(t["rejected"].get(lang, [])) or "–" for lang in LANGS]
        row = [t["term"], t["en"], t["es"], t["pt-BR"], t["where"], *rejected, t.get("scope", "")]
        scope = row[-1]
        row[-1] = f"`{scope}`" if scope else "all"
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    text = render_markdown(load())
    if "--write" in sys.argv:
        GLOSSARY_MD.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)

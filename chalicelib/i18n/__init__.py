"""Message catalogues (English, Spanish, Brazilian Portuguese) and locale choice.

Each area keeps its messages in ``catalog/<area>.json`` as
``{"key": {"en": "...", "es": "...", "pt-BR": "..."}}`` so every language of a
message sits side by side and a test can prove none is missing. A sentence
that takes a count gives, per language, one text per CLDR plural category of
that language: ``{"en": {"one": "1 try left", "other": "{left} tries left"}}``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from string import Formatter

LOCALES: tuple[str, ...] = ("en", "es", "pt-BR")
DEFAULT_LOCALE = "en"
LOCALE_NAMES = {"en": "English", "es": "Español", "pt-BR": "Português (Brasil)"}
_CATALOG_DIR = Path(__file__).with_name("catalog")

# One language's text: a sentence, or one sentence per plural category ("one", "other"…).
Text = str | dict[str, str]


@lru_cache(maxsize=1)
def catalog() -> dict[str, dict[str, Text]]:
    """Every message by key, each with its text per locale."""
    merged: dict[str, dict[str, Text]] = {}
    for path in sorted(_CATALOG_DIR.glob("*.json")):
        entries: dict[str, dict[str, Text]] = json.loads(path.read_text(encoding="utf-8"))
        duplicated = merged.keys() & entries.keys()
        if duplicated:
            raise ValueError(f"{path.name} redefines {sorted(duplicated)}")
        merged.update(entries)
    return merged


def translate(locale: str, key: str, count: object = None, **params: object) -> str:
    """The message in ``locale``; a plural message picks its form by ``count``.

    Without ``count`` a plural message counts with the first whole number its
    sentence shows (``_('export.done', n=3)``), so call sites name the number once.
    """
    entry = catalog().get(key)
    if entry is None:
        return key
    text = entry.get(locale) or entry[DEFAULT_LOCALE]
    if count is not None:
        params.setdefault("count", count)
    if isinstance(text, dict):
        if count is None:
            # The first whole number the sentence itself shows (help articles pass many).
            shown = [name for _, name, _, _ in Formatter().parse(text["other"]) if name]
            count = next((params[n] for n in shown if _is_count(params.get(n))), None)
        from chalicelib.i18n.formatting import plural_category

        form = plural_category(locale, count) if count is not None else "other"
        text = text.get(form) or text["other"]
    return text.format(**params) if params else text


def variants(text: str | dict[str, str]) -> tuple[str, ...]:
    """Every text of one language of a message: the plural forms, or the one text."""
    return tuple(text.values()) if isinstance(text, dict) else (text,)


def _is_count(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.isdigit()


def normalise(tag: str | None) -> str | None:
    """Map a language tag (pt_br, es-AR, PT) to one of LOCALES, or None."""
    if not tag:
        return None
    tag = tag.strip().replace("_", "-").lower()
    if tag.startswith("pt"):
        return "pt-BR"
    if tag.startswith("es"):
        return "es"
    if tag.startswith("en"):
        return "en"
    return None


def negotiate(accept_language: str | None, chosen: str | None = None) -> str:
    """The user's choice first, then the browser's preference order."""
    picked = normalise(chosen)
    if picked:
        return picked
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        lang, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        locale = normalise(lang)
        if locale and quality > 0:
            ranked.append((-quality, position, locale))
    return sorted(ranked)[0][2] if ranked else DEFAULT_LOCALE

"""Message catalogues (English, Spanish, Brazilian Portuguese) and locale choice.

Each area keeps its messages in ``catalog/<area>.json`` as
``{"key": {"en": "...", "es": "...", "pt-BR": "..."}}`` so every language of a
message sits side by side and a test can prove none is missing.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

LOCALES: tuple[str, ...] = ("en", "es", "pt-BR")
DEFAULT_LOCALE = "en"
LOCALE_NAMES = {"en": "English", "es": "Español", "pt-BR": "Português (Brasil)"}
_CATALOG_DIR = Path(__file__).with_name("catalog")


@lru_cache(maxsize=1)
def catalog() -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for path in sorted(_CATALOG_DIR.glob("*.json")):
        entries = json.loads(path.read_text(encoding="utf-8"))
        duplicated = merged.keys() & entries.keys()
        if duplicated:
            raise ValueError(f"{path.name} redefines {sorted(duplicated)}")
        merged.update(entries)
    return merged


def translate(locale: str, key: str, **params: object) -> str:
    entry = catalog().get(key)
    if entry is None:
        return key
    text = entry.get(locale) or entry[DEFAULT_LOCALE]
    return text.format(**params) if params else text


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

"""The profile catalogue: every message in en, es and pt-BR, with the same placeholders."""

from __future__ import annotations

import json
import re
from pathlib import Path

from chalicelib.i18n import LOCALES

CATALOG = Path(__file__).resolve().parents[2] / "chalicelib/i18n/catalog/profile.json"


def test_every_profile_message_has_all_languages_and_the_same_placeholders():
    entries = json.loads(CATALOG.read_text(encoding="utf-8"))
    assert entries
    for key, texts in entries.items():
        assert set(texts) == set(LOCALES), key
        # A plural message is compared by its general ("other") form.
        general = {lang: t["other"] if isinstance(t, dict) else t for lang, t in texts.items()}
        placeholders = {lang: set(re.findall(r"{(\w+)}", text)) for lang, text in general.items()}
        assert len({frozenset(p) for p in placeholders.values()}) == 1, (key, placeholders)
        assert texts["es"] != texts["en"] or texts["pt-BR"] != texts["en"], key

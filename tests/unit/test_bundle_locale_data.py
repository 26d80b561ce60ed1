"""The Lambda bundle keeps Babel's CLDR data for the app's languages only (infra/package.py)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from infra.package import BABEL_DATA, trim_locale_data

ROOT = Path(__file__).resolve().parents[2]
FORMATS_FROM_TRIMMED = """
import sys
sys.path.insert(0, sys.argv[1])
from datetime import UTC, datetime
from chalicelib.i18n import formatting as f
moment = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
for locale in ("en", "es", "pt-BR"):
    typed = "1.500" if locale != "en" else "1,500"
    print(f.format_datetime(moment, locale, "Europe/Madrid"), f.format_amount("1500.5", locale),
          f.parse_amount(typed, locale), f.plural_category(locale, 1))
"""


def test_only_the_shown_locales_data_is_shipped_and_it_still_formats(tmp_path: Path):
    import babel

    source = Path(babel.__file__).parent
    bundle = tmp_path / "deployment.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        for path in source.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, "babel/" + str(path.relative_to(source)))
        for path in (ROOT / "chalicelib" / "i18n").rglob("*.py"):
            archive.write(path, str(path.relative_to(ROOT)))
        archive.writestr("chalicelib/__init__.py", "")
    before = bundle.stat().st_size
    trim_locale_data(bundle)
    with zipfile.ZipFile(bundle) as archive:
        data = sorted(n[len(BABEL_DATA) :] for n in archive.namelist() if n.startswith(BABEL_DATA))
        archive.extractall(tmp_path / "lambda")
    assert data == ["en.dat", "es.dat", "pt.dat", "pt_BR.dat", "root.dat"]
    assert bundle.stat().st_size < before / 5
    result = subprocess.run(
        [sys.executable, "-S", "-c", FORMATS_FROM_TRIMMED, str(tmp_path / "lambda")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Mar 29, 2026, 3:30\u202fAM (GMT+2) 1,500.50 1500.00 one"
    assert lines[2] == "29 de mar. de 2026 03:30 (GMT+2) 1.500,50 1500.00 one"

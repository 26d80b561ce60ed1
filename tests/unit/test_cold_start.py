"""Cold start: importing the app must not pull in heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_app_loads_neither_openpyxl_nor_pillow():
    # Nor Babel: its CLDR data loads with the first date or amount a page shows.
    code = (
        "import json, sys; import app; "
        "print(json.dumps([m for m in ('openpyxl', 'PIL', 'babel') if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"STAGE": "test", "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip()) == []

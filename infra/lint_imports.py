"""`make lint`'s architecture step: import-linter's contracts, with one figure line.

Runs `lint-imports` (contracts in pyproject.toml), shows its whole report when a
contract is broken, and prints ``lint-imports: contracts kept N/M`` from what it
reported. Exits non-zero on a broken contract or on a report it cannot read.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"Contracts: (\d+) kept, (\d+) broken\.")


def main() -> int:
    tool = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run(
        [str(tool), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    found = SUMMARY.search(run.stdout)
    if not found:
        print(run.stdout + run.stderr)
        print("lint-imports: no summary in its report")
        return 1
    kept, broken = int(found[1]), int(found[2])
    if broken or run.returncode:
        print(run.stdout)
    print(f"lint-imports: contracts kept {kept}/{kept + broken}")
    return 1 if broken or run.returncode or not kept else 0


if __name__ == "__main__":
    sys.exit(main())

"""Build the deployable bundle: Lambda zip with templates/ inside + merged SAM template.

Chalice ships only app.py, chalicelib/ and vendor/, so templates/ is copied
into chalicelib/templates in a scratch copy of the project, never in the
source tree. Usage: python -m infra.package OUT_DIR [--stage dev|prod]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("app.py", "chalicelib", "requirements.txt", ".chalice")


def build(out_dir: Path, stage: str = "dev") -> Path:
    out_dir = out_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="checkos-build-") as scratch:
        project = Path(scratch) / "checkos"
        project.mkdir()
        for name in SHIPPED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(
                    source,
                    project / name,
                    ignore=shutil.ignore_patterns("__pycache__", "deployments", "deployed"),
                )
            else:
                shutil.copy2(source, project / name)
        shutil.copytree(ROOT / "templates", project / "chalicelib" / "templates")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        env = {
            **os.environ,
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        }
        chalice = Path(sys.executable).with_name("chalice")
        subprocess.run(
            [
                str(chalice),
                "package",
                "--stage",
                stage,
                "--merge-template",
                str(ROOT / "infra" / "resources.yaml"),
                "--template-format",
                "yaml",
                str(out_dir),
            ],
            cwd=project,
            env=env,
            check=True,
        )
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args()
    print(build(args.out_dir, args.stage))


if __name__ == "__main__":
    main()

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


def build(
    out_dir: Path,
    stage: str = "dev",
    *,
    wheelhouse: Path | None = None,
    offline_python_path: Path | None = None,
) -> Path:
    """Package the app into ``out_dir``.

    ``wheelhouse``: take every dependency from this folder (infra/wheelhouse.py fills
    it) and never ask an index (PIP_NO_INDEX), so packaging needs no network.
    ``offline_python_path``: a folder put first on the PYTHONPATH of chalice and of
    the pip runs it starts (the tests' loopback-only ``sitecustomize``).
    """
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
        if wheelhouse is not None:
            env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse.resolve()))
            env.pop("PIP_EXTRA_INDEX_URL", None)
            env.pop("PIP_INDEX_URL", None)
        if offline_python_path is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(offline_python_path), env.get("PYTHONPATH", "")) if p
            )
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

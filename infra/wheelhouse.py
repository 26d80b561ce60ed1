"""Fill the wheelhouse the packaging test builds the Lambda bundle from, without a network.

`chalice package` resolves requirements.txt with `pip download`: the first pass takes
what suits this host, and any wheel Lambda cannot load (a manylinux tag newer than the
runtime's glibc) is replaced by a Lambda-compatible wheel, else built from its sdist
on this host. Doing that at test time downloads from PyPI and compiles (Pillow 13
took minutes, and its host build could not run on Lambda: requirements.txt pins a
release with manylinux2014 wheels, and tests/infra/test_bundle.py fails on a host
build). `make`'s install step runs this module once per requirements.txt: the same
resolution, into build/wheelhouse, with the host builds already made; the packaging
test then runs chalice with PIP_NO_INDEX=1 and PIP_FIND_LINKS pointing here.

Usage: python -m infra.wheelhouse [DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELHOUSE = ROOT / "build" / "wheelhouse"
# The Lambda runtime's ABI (python3.11, as .chalice/config.json and the template say).
ABI = "cp311"
COMPLETE = ".complete"


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    return subprocess.run(command, capture_output=True, text=True)


def _builder():
    from chalice.deploy.packager import DependencyBuilder
    from chalice.utils import OSUtils

    return DependencyBuilder(OSUtils())


def _lambda_loads(builder, filename: str) -> bool:
    return filename.endswith(".whl") and builder._is_compatible_wheel_filename(ABI, filename)


def _name_and_version(filename: str) -> tuple[str, str]:
    name, version = filename.split("-")[:2]
    return name, version


def fill(directory: Path = WHEELHOUSE, requirements: Path = ROOT / "requirements.txt") -> Path:
    """Download (and where needed build) every wheel the bundle needs into ``directory``."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    first = _pip("download", "-q", "-r", str(requirements), "--dest", str(directory))
    if first.returncode:
        raise SystemExit(f"pip download failed:\n{first.stderr}")
    builder = _builder()
    platforms = builder._get_pip_platforms(ABI)
    for path in sorted(directory.iterdir()):
        if _lambda_loads(builder, path.name):
            continue
        name, version = _name_and_version(path.name)
        path.unlink()  # pip must not pick the wheel Lambda cannot load
        on_lambda = ["--only-binary=:all:", "--no-deps", "--implementation", "cp", "--abi", ABI]
        for platform in platforms:
            on_lambda += ["--platform", platform]
        _pip("download", "-q", *on_lambda, "--dest", str(directory), f"{name}=={version}")
        if any(_lambda_loads(builder, p.name) for p in directory.glob(f"{name}-{version}-*")):
            continue
        # What chalice does next: build the sdist on this host (a linux_x86_64 wheel).
        built = _pip(
            "wheel", "-q", "--no-deps", f"--no-binary={name}", "-w", str(directory),
            f"{name}=={version}",
        )  # fmt: skip
        if built.returncode:
            raise SystemExit(f"building {name} {version} failed:\n{built.stderr}")
    (directory / COMPLETE).write_text(requirements.read_text())
    return directory


def ready(directory: Path = WHEELHOUSE, requirements: Path = ROOT / "requirements.txt") -> bool:
    """True when ``directory`` was filled for exactly this requirements.txt."""
    stamp = directory / COMPLETE
    return stamp.exists() and stamp.read_text() == requirements.read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path, nargs="?", default=WHEELHOUSE)
    args = parser.parse_args()
    print(fill(args.directory))


if __name__ == "__main__":
    main()

"""What the Lambda bundle needs from the runtime: wheel tags, GLIBC versions, shared libraries.

`chalice package` silently builds a dependency from source on the build host when
no wheel suits the runtime (Pillow 13: a ``linux_x86_64`` build linking the host's
libjpeg and GLIBC 2.34). ``inspect(zip)`` reads the bundle as Lambda would load it:
every ``*.dist-info/WHEEL`` tag, and for every ELF shared object the symbol versions
it requires (``.gnu.version_r``) and the libraries it names (``DT_NEEDED``), which
must be in the bundle itself (manylinux wheels carry theirs in ``<name>.libs/``) or
in the runtime's base image.

Usage: python -m infra.bundle_check build/package/deployment.zip
"""

from __future__ import annotations

import argparse
import io
import json
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

# The python3.11 Lambda runtime runs on Amazon Linux 2: glibc 2.26, GCC 7 (libstdc++
# GLIBCXX_3.4.24, CXXABI_1.3.11). Chalice's own ceiling for python3.11 is the same.
RUNTIME = "python3.11"
RUNTIME_ABI = "cp311"
RUNTIME_VERSIONS: dict[str, tuple[int, ...]] = {
    "GLIBC": (2, 26),
    "GLIBCXX": (3, 4, 24),
    "CXXABI": (1, 3, 11),
    "GCC": (7, 0, 0),
}
# Libraries an extension may take from the base image without shipping them. Kept
# conservative: glibc's own libraries, the GCC runtime, and zlib (CPython itself
# links it). Anything else (libjpeg, libxcb, libffi, libssl...) must be in the bundle.
BASE_IMAGE_LIBRARIES = frozenset(
    {
        "ld-linux-x86-64.so.2",
        "libc.so.6",
        "libm.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libutil.so.1",
        "libresolv.so.2",
        "libgcc_s.so.1",
        "libstdc++.so.6",
        "libz.so.1",
    }
)
_PURE_TAGS = re.compile(r"^(py3|py2\.py3|py3\d*)-none-any$")
_MANYLINUX = re.compile(r"^manylinux(1|2010|2014|_(\d+)_(\d+))_x86_64$")
_LEGACY_MANYLINUX = {"1": (2, 5), "2010": (2, 12), "2014": (2, 17)}
_ELF_MAGIC = b"\x7fELF"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def platform_glibc(platform: str) -> tuple[int, ...] | None:
    """The glibc a manylinux platform tag promises to need at most; None for any other tag."""
    match = _MANYLINUX.match(platform)
    if not match:
        return None
    if match.group(2):
        return int(match.group(2)), int(match.group(3))
    return _LEGACY_MANYLINUX[match.group(1)]


def tag_runs_on_lambda(tag: str) -> bool:
    """A wheel tag (``python-abi-platform``) the python3.11 x86_64 runtime can load."""
    if _PURE_TAGS.match(tag):
        return True
    python, _, rest = tag.partition("-")
    abi, _, platform = rest.partition("-")
    glibc = platform_glibc(platform)
    if glibc is None or glibc > RUNTIME_VERSIONS["GLIBC"]:
        return False
    if abi == "abi3":  # the stable ABI: built for CPython 3.x, loads on any later 3.y
        minor = python.removeprefix("cp3")
        return python.startswith("cp3") and minor.isdigit() and int(minor) <= 11
    return python == RUNTIME_ABI and abi in (RUNTIME_ABI, "none")


def wheel_tags(wheel_metadata: str) -> list[str]:
    """The ``Tag:`` lines of a ``*.dist-info/WHEEL`` file."""
    return [
        line.split(":", 1)[1].strip()
        for line in wheel_metadata.splitlines()
        if line.lower().startswith("tag:")
    ]


def elf_requirements(data: bytes) -> tuple[list[str], dict[str, set[str]]]:
    """(DT_NEEDED libraries, {library: symbol versions it must provide}) of one ELF file."""
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerNeedSection

    elf = ELFFile(io.BytesIO(data))
    needed: list[str] = []
    versions: dict[str, set[str]] = {}
    for section in elf.iter_sections():
        if isinstance(section, DynamicSection):
            needed += [tag.needed for tag in section.iter_tags() if tag.entry.d_tag == "DT_NEEDED"]
        elif isinstance(section, GNUVerNeedSection):
            for verneed, auxiliaries in section.iter_versions():
                names = versions.setdefault(verneed.name, set())
                names.update(aux.name for aux in auxiliaries)
    return needed, versions


def _too_new(version_names: Iterable[str]) -> tuple[dict[str, tuple[int, ...]], list[str]]:
    highest: dict[str, tuple[int, ...]] = {}
    over: list[str] = []
    for name in version_names:
        family, _, number = name.partition("_")
        if family not in RUNTIME_VERSIONS or not number:
            continue
        version = _version(number)
        highest[family] = max(highest.get(family, ()), version)
        if version > RUNTIME_VERSIONS[family]:
            over.append(name)
    return highest, over


def inspect(zip_path: Path) -> dict[str, Any]:
    """Figures and findings for one Lambda bundle (``deployment.zip``).

    ``foreign_wheels``: installed distributions none of whose tags the runtime loads;
    ``glibc_max``: the highest GLIBC symbol version any shared object requires;
    ``needed_missing``: DT_NEEDED libraries found neither in the bundle nor in the
    base image; ``too_new``: symbol versions newer than the runtime provides.
    """
    zip_path = Path(zip_path)
    wheels: dict[str, list[str]] = {}
    objects: dict[str, tuple[list[str], dict[str, set[str]]]] = {}
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            path = PurePosixPath(info.filename)
            if info.is_dir():
                continue
            if path.name == "WHEEL" and path.parent.name.endswith(".dist-info"):
                wheels[path.parent.name] = wheel_tags(archive.read(info).decode())
            elif ".so" in path.suffixes or path.suffix == ".so":
                data = archive.read(info)
                if data[:4] == _ELF_MAGIC:
                    objects[info.filename] = elf_requirements(data)
    shipped = {PurePosixPath(name).name for name in objects}
    foreign = sorted(
        name for name, tags in wheels.items() if not any(tag_runs_on_lambda(t) for t in tags)
    )
    missing: dict[str, list[str]] = {}
    too_new: dict[str, list[str]] = {}
    highest: dict[str, tuple[int, ...]] = {}
    for name, (needed, versions) in objects.items():
        absent = [lib for lib in needed if lib not in shipped and lib not in BASE_IMAGE_LIBRARIES]
        if absent:
            missing[name] = absent
        every_version = [v for names in versions.values() for v in names]
        found, over = _too_new(every_version)
        for family, version in found.items():
            highest[family] = max(highest.get(family, ()), version)
        if over:
            too_new[name] = sorted(over)
    return {
        "bundle_mb": round(zip_path.stat().st_size / 1_000_000, 1),
        "wheels": len(wheels),
        "foreign_wheels": len(foreign),
        "foreign": foreign,
        "shared_objects": len(objects),
        "glibc_max": _dotted(highest["GLIBC"]) if "GLIBC" in highest else None,
        "symbol_versions_max": {family: _dotted(v) for family, v in sorted(highest.items())},
        "too_new": too_new,
        "needed_missing": sum(len(libs) for libs in missing.values()),
        "missing": missing,
    }


def problems(found: dict[str, Any]) -> list[str]:
    """What would break on the runtime, one line each (empty: the bundle fits)."""
    lines = [f"not built for {RUNTIME}: {name}" for name in found["foreign"]]
    lines += [f"{name} needs {', '.join(v)}" for name, v in sorted(found["too_new"].items())]
    lines += [f"{name} needs {', '.join(v)}" for name, v in sorted(found["missing"].items())]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("zip_path", type=Path)
    args = parser.parse_args()
    found = inspect(args.zip_path)
    print(json.dumps(found, indent=2))
    wrong = problems(found)
    if wrong:
        raise SystemExit("the bundle would not load on Lambda:\n" + "\n".join(wrong))


if __name__ == "__main__":
    main()

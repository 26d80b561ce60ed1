"""The Lambda bundle runs on the Lambda runtime, not only on the build host.

The real ``deployment.zip`` is built offline (build/wheelhouse, PIP_NO_INDEX, the
loopback-only sitecustomize), then read as the python3.11 runtime (Amazon Linux 2,
glibc 2.26) would load it: with only the bundle on the path it re-encodes a logo to
WebP, renders a page and writes an XLSX; every wheel's tag suits the runtime; every
shared object needs at most the runtime's GLIBC and finds each library it names in
the bundle or in the base image (infra/bundle_check.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra import bundle_check, wheelhouse
from infra.package import build
from tests.figures import report

pytestmark = pytest.mark.slow

OFFLINE = Path(__file__).resolve().parents[1] / "offline"

# Run with -I -S: no PYTHONPATH, no user or system site-packages; the bundle goes first.
WITH_ONLY_THE_BUNDLE = r"""
import io, json, os, sys
bundle, offline_guard = sys.argv[1:3]
import runpy, socket
runpy.run_path(offline_guard)  # loopback only here too (-I skips PYTHONPATH)
try:
    socket.create_connection(("192.0.2.1", 443), timeout=2)
    offline = False
except ConnectionRefusedError as refused:
    offline = "offline test run" in str(refused)
os.environ.update(STAGE="test", AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x",
                  AWS_SECRET_ACCESS_KEY="x", TABLE_NAME="checkos-test", BUCKET_NAME="b")
sys.path[:0] = [bundle]
from PIL import Image
from chalicelib.domain.logos import reencode_logo

logos = {}
for kind in ("PNG", "JPEG"):
    source = io.BytesIO()
    Image.new("RGB", (800, 300), (200, 40, 40)).save(source, kind)
    logo = reencode_logo(source.getvalue())
    again = Image.open(io.BytesIO(logo.data))
    logos[kind] = [logo.content_type, again.format, list(again.size)]

from app import app
event = {
    "resource": "/", "path": "/", "httpMethod": "GET",
    "headers": {"Accept-Language": "pt-BR"}, "multiValueHeaders": {},
    "queryStringParameters": None, "multiValueQueryStringParameters": None,
    "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
    "requestContext": {"resourcePath": "/", "httpMethod": "GET", "path": "/api/", "stage": "api",
                       "identity": {"sourceIp": "203.0.113.9"}},
}
page = app(event, None)

from datetime import datetime
from chalicelib.services.spreadsheet import Column, SheetWriter
writer = SheetWriter([Column("Number", 10, "int", lambda row: row[0]),
                      Column("Received", 18, "datetime", lambda row: row[1])], "Orders")
writer.append((1042, datetime(2026, 3, 1, 9, 30)))
sheet = io.BytesIO()
writer.save(sheet)
import openpyxl
cells = [c.value for c in next(openpyxl.load_workbook(io.BytesIO(sheet.getvalue())).active.rows)]

import jinja2, PIL
outside = sorted({name for name, module in sys.modules.items()
                  if getattr(module, "__file__", None) and "-packages" in module.__file__})
print(json.dumps({
    "logos": logos, "status": page["statusCode"], "page": page["body"],
    "xlsx_bytes": len(sheet.getvalue()), "header": cells,
    "from_bundle": [m.__file__.startswith(bundle) for m in (PIL, jinja2, openpyxl)],
    "outside": outside, "offline": offline,
}))
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    if not wheelhouse.ready():
        pytest.fail(
            "build/wheelhouse is missing or older than requirements.txt: make fills it "
            "(`make build/wheelhouse/.complete`, or python -m infra.wheelhouse)"
        )
    out = build(
        tmp_path_factory.mktemp("bundle") / "out",
        wheelhouse=wheelhouse.WHEELHOUSE,
        offline_python_path=OFFLINE,
    )
    return out / "deployment.zip"


@pytest.fixture(scope="module")
def inspected(bundle: Path) -> dict:
    found = bundle_check.inspect(bundle)
    report(
        "bundle",
        require=("bundle_mb", "shared_objects"),
        bundle_mb=found["bundle_mb"],
        foreign_wheels=found["foreign_wheels"],
        glibc_max=found["glibc_max"],
        shared_objects=found["shared_objects"],
        needed_missing=found["needed_missing"],
    )
    return found


def test_with_only_the_bundle_a_logo_becomes_webp_a_page_renders_and_a_sheet_is_written(
    bundle: Path, tmp_path: Path
):
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(tmp_path / "lambda")
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            WITH_ONLY_THE_BUNDLE,
            str(tmp_path / "lambda"),
            str(OFFLINE / "sitecustomize.py"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["logos"] == {
        "PNG": ["image/webp", "WEBP", [512, 192]],
        "JPEG": ["image/webp", "WEBP", [512, 192]],
    }
    assert answer["status"] == 200 and "Gerencie" in answer["page"], answer["page"][:500]
    assert answer["header"] == ["Number", "Received"] and answer["xlsx_bytes"] > 1000
    assert answer["from_bundle"] == [True, True, True]
    assert answer["outside"] == [], "imported from outside the bundle"
    assert answer["offline"] is True, "the bundle's process could leave loopback"


def test_every_wheel_in_the_bundle_is_built_for_the_lambda_runtime(inspected: dict):
    assert inspected["wheels"] >= 15, "the bundle's *.dist-info/WHEEL files were not read"
    assert inspected["foreign_wheels"] == 0, bundle_check.problems(inspected)


def test_no_shared_object_needs_a_newer_glibc_than_amazon_linux_2(inspected: dict):
    assert inspected["shared_objects"] > 0
    assert bundle_check._version(inspected["glibc_max"]) <= (2, 26), inspected["too_new"]
    assert inspected["too_new"] == {}, bundle_check.problems(inspected)


def test_every_library_a_shared_object_needs_is_in_the_bundle_or_the_base_image(
    inspected: dict,
):
    assert inspected["needed_missing"] == 0, bundle_check.problems(inspected)


@pytest.mark.parametrize(
    ("tag", "loads"),
    [
        ("py3-none-any", True),
        ("cp311-cp311-manylinux2014_x86_64", True),
        ("cp310-abi3-manylinux_2_26_x86_64", True),
        ("cp311-cp311-manylinux_2_28_x86_64", False),  # Pillow 13: glibc 2.28
        ("cp311-cp311-linux_x86_64", False),  # a build on this host
        ("cp312-cp312-manylinux2014_x86_64", False),
        ("cp311-cp311-manylinux2014_aarch64", False),
    ],
)
def test_wheel_tags_the_runtime_loads(tag: str, loads: bool):
    assert bundle_check.tag_runs_on_lambda(tag) is loads

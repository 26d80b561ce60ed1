"""The deployable bundle: merged template passes cfn-lint; the zip renders a page.

Packaging runs offline: chalice and every pip run it starts take their wheels from
build/wheelhouse (filled by make, infra/wheelhouse.py) with PIP_NO_INDEX=1, and load
tests/offline/sitecustomize.py, which refuses any connection beyond loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra import wheelhouse
from infra.package import build

pytestmark = pytest.mark.slow

RENDER_FROM_ZIP = r"""
import json, os, sys
os.environ.update(STAGE="test", AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x",
                  AWS_SECRET_ACCESS_KEY="x")
sys.path[:0] = [sys.argv[1]]
from app import app
event = {
    "resource": "/", "path": "/", "httpMethod": "GET",
    "headers": {"Accept-Language": "es"}, "multiValueHeaders": {},
    "queryStringParameters": None, "multiValueQueryStringParameters": None,
    "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
    "requestContext": {"resourcePath": "/", "httpMethod": "GET", "path": "/api/",
                       "identity": {"sourceIp": "203.0.113.9"}},
}
answer = app(event, None)
import chalicelib.templating as t
print(json.dumps({"status": answer["statusCode"], "body": answer["body"],
                  "template_dirs": [str(p) for p in t._SEARCH],
                  "openpyxl": "openpyxl" in sys.modules}))
"""


OFFLINE = Path(__file__).resolve().parents[1] / "offline"
REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    if not wheelhouse.ready():
        pytest.fail(
            "build/wheelhouse is missing or older than requirements.txt: make fills it "
            "(`make build/wheelhouse/.complete`, or python -m infra.wheelhouse)"
        )
    return build(
        tmp_path_factory.mktemp("package") / "out",
        wheelhouse=wheelhouse.WHEELHOUSE,
        offline_python_path=OFFLINE,
    )


def _offline_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(OFFLINE),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheelhouse.WHEELHOUSE),
    }


def test_a_process_started_by_the_packaging_cannot_leave_loopback(tmp_path: Path):
    reach = "import socket; socket.create_connection(('192.0.2.1', 443), timeout=5)"
    result = subprocess.run(
        [sys.executable, "-c", reach], capture_output=True, text=True, env=_offline_env()
    )
    assert result.returncode != 0 and "offline test run" in result.stderr, result.stderr
    # And pip, as chalice calls it, finds only what the wheelhouse has.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp_path), "six==1.16.0"],
        capture_output=True,
        text=True,
        env=_offline_env(),
    )
    assert result.returncode != 0 and "No matching distribution" in result.stderr, result.stderr


def test_every_requirement_is_in_the_bundle(bundle: Path):
    """Built from the wheelhouse alone, nothing is silently left out (chalice only warns)."""
    wanted = {
        line.split("==")[0].strip().lower().replace("-", "_")
        for line in REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    with zipfile.ZipFile(bundle / "deployment.zip") as archive:
        shipped = {
            name.split("/")[0].split("-")[0].lower()
            for name in archive.namelist()
            if name.split("/")[0].endswith(".dist-info")
        }
        names = set(archive.namelist())
    assert wanted <= shipped, f"left out of the bundle: {sorted(wanted - shipped)}"
    assert "PIL/__init__.py" in names


def test_packaged_template_passes_cfn_lint(bundle: Path):
    template = bundle / "sam.yaml"
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(template)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = template.read_text()
    for resource in ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SES::EmailIdentity"):
        assert resource in text


def test_packaged_zip_renders_a_page_from_its_own_templates(bundle: Path, tmp_path: Path):
    with zipfile.ZipFile(bundle / "deployment.zip") as archive:
        names = archive.namelist()
        assert "chalicelib/templates/base.html" in names
        archive.extractall(tmp_path / "lambda")
    # -S: no site-packages, so everything must come from the zip itself.
    result = subprocess.run(
        [sys.executable, "-S", "-c", RENDER_FROM_ZIP, str(tmp_path / "lambda")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 200
    assert "Gestione sus órdenes de servicio" in answer["body"]
    assert all("lambda/chalicelib/templates" in d for d in answer["template_dirs"])
    assert answer["openpyxl"] is False

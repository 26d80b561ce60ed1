"""The deployable bundle: merged template passes cfn-lint; the zip renders a page."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("package") / "out")


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

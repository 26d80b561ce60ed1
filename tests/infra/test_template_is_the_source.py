"""infra/resources.yaml is the only definition of the AWS resources."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra.provision import TEMPLATE, load_template, provision, table_definition


def test_provisioned_table_matches_the_template(aws):
    table = boto3.client("dynamodb").describe_table(TableName=os.environ["TABLE_NAME"])["Table"]
    wanted = table_definition(load_template())
    assert table["KeySchema"] == wanted["KeySchema"]
    assert sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"]) == sorted(
        i["IndexName"] for i in wanted["GlobalSecondaryIndexes"]
    )
    ttl = boto3.client("dynamodb").describe_time_to_live(TableName=os.environ["TABLE_NAME"])
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"


def test_bucket_lifecycle_and_public_block_come_from_the_template(aws):
    s3 = boto3.client("s3")
    rules = s3.get_bucket_lifecycle_configuration(Bucket=os.environ["BUCKET_NAME"])["Rules"]
    assert any(r["Filter"]["Prefix"] == "exports/" and r["Expiration"]["Days"] for r in rules)
    block = s3.get_public_access_block(Bucket=os.environ["BUCKET_NAME"])
    assert all(block["PublicAccessBlockConfiguration"].values())


def test_models_use_exactly_the_indexes_the_template_defines():
    from chalicelib.db.base import Item

    template_indexes = {
        i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]]
        for i in table_definition(load_template())["GlobalSecondaryIndexes"]
    }
    model_indexes = {
        index.Meta.index_name: [
            schema["AttributeName"] for schema in index._get_schema()["key_schema"]
        ]
        for index in Item._indexes.values()
    }
    assert model_indexes == template_indexes


def test_removing_the_table_from_the_template_breaks_provisioning(tmp_path: Path):
    text = TEMPLATE.read_text()
    start = text.index("  Table:\n")
    end = text.index("  FilesBucket:\n")
    broken = tmp_path / "resources.yaml"
    broken.write_text(text[:start] + text[end:])
    with mock_aws(), pytest.raises(LookupError, match="AWS::DynamoDB::Table"):
        provision(
            boto3.session.Session(),
            table_name="x",
            bucket_name="y",
            sender="a@example.com",
            template_path=broken,
        )


def test_a_scan_anywhere_fails_the_suite(pytester, monkeypatch):
    """A route that scans must turn the suite red, even if the page itself works."""
    root = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("PYTHONPATH", str(root))
    pytester.makeconftest("pytest_plugins = ['tests.conftest']\n")
    pytester.makepyfile(
        textwrap.dedent(
            """
            from chalice import Blueprint
            from chalice.test import Client

            def test_route_that_scans(aws, app):
                from chalicelib.db.base import Item
                bp = Blueprint("scanner")

                @bp.route("/scan-everything")
                def scan_everything():
                    return {"n": len(list(Item.scan(limit=1)))}

                app.register_blueprint(bp)
                with Client(app) as client:
                    assert client.http.get("/scan-everything").status_code == 200
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    assert "DynamoDB Scan is forbidden" in result.stdout.str()

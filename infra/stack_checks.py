"""Checks of the packaged stack that need no AWS: the SAM translator's expansion, checkov
with the committed skip list (infra/checkov_skips.yaml), and the counts of the figure
line (resources, alarms, function roles, IAM statements on ``*``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

SKIPS = Path(__file__).with_name("checkov_skips.yaml")
# Where `make checkov` installs it: a virtualenv of its own, because checkov pins an
# older boto3 than the app's (requirements-checkov.txt).
CHECKOV = Path(sys.prefix) / "checkov" / "bin" / "checkov"
# IAM actions that take no resource: the only allowed `Resource: "*"`.
STAR_EXCEPTIONS = frozenset(
    {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "cloudwatch:PutMetricData"}
)
ARTIFACT = "s3://checkos-artifacts/deployment.zip"


def expand(template: dict[str, Any], region: str = "us-east-1") -> dict[str, Any]:
    """The CloudFormation template the SAM transform makes of ``template`` (offline:
    managed policies are not looked up; CodeUri as `aws cloudformation package` sets it)."""
    from samtranslator.translator.transform import transform

    sam = json.loads(json.dumps(template))
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = ARTIFACT

    class _NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region
    try:
        return transform(sam, {"AWS::Region": region}, _NoManagedPolicies())
    finally:
        if previous is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous


def _statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    props = resource.get("Properties", {})
    documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
    if "PolicyDocument" in props and resource["Type"] != "AWS::S3::BucketPolicy":
        documents.append(props["PolicyDocument"])
    found = []
    for document in documents:
        statements = document.get("Statement", [])
        found.extend(statements if isinstance(statements, list) else [statements])
    return found


def star_resources(expanded: dict[str, Any]) -> list[str]:
    """Allow statements of IAM roles and policies on ``*`` beyond STAR_EXCEPTIONS."""
    found = []
    for name, resource in expanded["Resources"].items():
        if not resource["Type"].startswith("AWS::IAM::"):
            continue
        for statement in _statements(resource):
            resources = statement.get("Resource", [])
            resources = resources if isinstance(resources, list) else [resources]
            actions = statement.get("Action", [])
            actions = set(actions if isinstance(actions, list) else [actions])
            if (
                statement.get("Effect") == "Allow"
                and any(
                    r == "*" or (isinstance(r, str) and r.endswith(":*:*:*")) for r in resources
                )
                and not actions <= STAR_EXCEPTIONS
            ):
                found.append(f"{name}: {sorted(actions)}")
    return found


def function_roles(expanded: dict[str, Any]) -> dict[str, str]:
    """Each Lambda function's role (logical id)."""
    roles = {}
    for name, resource in expanded["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            role = resource["Properties"]["Role"]
            roles[name] = role["Fn::GetAtt"][0] if isinstance(role, dict) else str(role)
    return roles


def count(expanded: dict[str, Any], cfn_type: str) -> int:
    return sum(1 for r in expanded["Resources"].values() if r["Type"] == cfn_type)


def load_skips(path: Path = SKIPS) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def run_checkov(template: Path) -> list[tuple[str, str]]:
    """(check id, resource logical id) of every failed check, offline."""
    if not CHECKOV.exists():
        raise FileNotFoundError(f"{CHECKOV} is missing: `make checkov` installs it")
    result = subprocess.run(
        [
            str(CHECKOV),
            "-f",
            str(template),
            "--framework",
            "cloudformation",
            "--skip-download",
            "--quiet",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    if result.returncode not in (0, 1):
        raise RuntimeError(f"checkov failed to run: {result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = []
    for each in reports:
        for check in each["results"]["failed_checks"]:
            failed.append((check["check_id"], check["resource"].rpartition(".")[2]))
    return failed


def apply_skips(
    failed: list[tuple[str, str]], skips: list[dict[str, Any]]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """(findings no skip covers, findings skipped, skips that covered nothing)."""

    def covers(skip: dict[str, Any], finding: tuple[str, str]) -> bool:
        wanted = skip["resources"]
        return skip["check"] == finding[0] and (wanted == "*" or finding[1] in wanted)

    unskipped = [f for f in failed if not any(covers(s, f) for s in skips)]
    skipped = [f for f in failed if any(covers(s, f) for s in skips)]
    stale = [s["check"] for s in skips if not any(covers(s, f) for f in failed)]
    return unskipped, skipped, stale


# What the rehearsal leaves out: moto 5.2 has no AWS::Lambda::Alias (references to an
# alias go to its function instead), and its REST API does not import a DefinitionBody's
# methods, so a Deployment (and the Stage and the account's logging role) cannot be made.
MOTO_DROPPED = frozenset(
    {
        "AWS::Lambda::Alias",
        "AWS::ApiGateway::Deployment",
        "AWS::ApiGateway::Stage",
        "AWS::ApiGateway::Account",
    }
)


def for_moto(expanded: dict[str, Any]) -> dict[str, Any]:
    """``expanded`` without MOTO_DROPPED resources, alias references pointing at functions."""
    aliases = {
        name: resource["Properties"]["FunctionName"]["Ref"]
        for name, resource in expanded["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Alias"
    }
    text = json.dumps(expanded)
    for alias, function in aliases.items():
        text = text.replace(
            json.dumps({"Ref": alias}), json.dumps({"Fn::GetAtt": [function, "Arn"]})
        )
        text = text.replace("${" + alias + "}", "${" + function + ".Arn}")
    template = json.loads(text)
    dropped = {k for k, v in template["Resources"].items() if v["Type"] in MOTO_DROPPED}
    for name in dropped:
        del template["Resources"][name]
    for resource in template["Resources"].values():
        depends = resource.get("DependsOn")
        if isinstance(depends, str) and depends in dropped:
            del resource["DependsOn"]
        elif isinstance(depends, list):
            resource["DependsOn"] = [d for d in depends if d not in dropped]
    return template


def rehearse_in_moto(expanded: dict[str, Any], stack_name: str = "checkos-prod") -> dict[str, Any]:
    """Create the expanded stack in moto's CloudFormation (inside ``mock_aws``): what it
    made, and the resource types moto only records as placeholders."""
    import io
    import warnings
    import zipfile

    import boto3

    bucket, _, key = ARTIFACT.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("app.py", "app = None\n")
    s3.put_object(Bucket=bucket, Key=key, Body=archive.getvalue())
    cloudformation = boto3.client("cloudformation")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cloudformation.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(for_moto(expanded)),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    summaries = cloudformation.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
    unsupported = sorted(
        {
            str(w.message).split(" ")[3]
            for w in caught
            if "not supported by moto's CloudFormation" in str(w.message)
        }
    )
    return {
        "status": stack["StackStatus"],
        "created": [s for s in summaries if s["ResourceType"]],
        "placeholders": [s["LogicalResourceId"] for s in summaries if not s["ResourceType"]],
        "unsupported": unsupported,
        "dropped": sorted(MOTO_DROPPED),
    }

"""The restore rehearsal (against moto) and the deploy path (dry run: no AWS here)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from infra import deploy
from infra.provision import load_template
from infra.restore import restore_table, switch_command

ROOT = Path(__file__).resolve().parents[2]


def test_the_provisioned_table_is_protected_as_the_template_says(aws):
    dynamodb = boto3.client("dynamodb")
    table = os.environ["TABLE_NAME"]
    assert dynamodb.describe_table(TableName=table)["Table"]["DeletionProtectionEnabled"]
    backups = dynamodb.describe_continuous_backups(TableName=table)
    pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"
    with pytest.raises(dynamodb.exceptions.ClientError, match="DeletionProtectionEnabled"):
        dynamodb.delete_table(TableName=table)


def test_a_restore_rehearsal_brings_the_data_back_in_a_new_table_and_switches_the_stack(
    aws, capsys
):
    dynamodb = boto3.client("dynamodb")
    source = os.environ["TABLE_NAME"]
    item = {"pk": {"S": "COMPANY#restore"}, "sk": {"S": "PROFILE"}, "name": {"S": "Oficina"}}
    dynamodb.put_item(TableName=source, Item=item)

    restored = restore_table(dynamodb, source, "checkos-test-restored", poll_seconds=0)

    assert restored["TableStatus"] == "ACTIVE"
    assert restored["DeletionProtectionEnabled"] is True
    key = {"pk": item["pk"], "sk": item["sk"]}
    assert dynamodb.get_item(TableName="checkos-test-restored", Key=key)["Item"] == item
    ttl = dynamodb.describe_time_to_live(TableName="checkos-test-restored")
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    # The switch is one deploy with the parameter every function's TABLE_NAME follows.
    command = switch_command("prod", "checkos-test-restored")
    assert command[-2:] == ["--parameter", "RestoredTableName=checkos-test-restored"]
    deploy.main([*command[3:], "--dry-run"])
    printed = capsys.readouterr().out
    assert "RestoredTableName=checkos-test-restored" in printed
    env = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert env["TABLE_NAME"] == {
        "Fn::If": ["UseRestoredTable", {"Ref": "RestoredTableName"}, {"Ref": "Table"}]
    }


def test_deploy_builds_the_aws_cli_commands_from_the_committed_configuration(tmp_path):
    package, stack = deploy.commands("prod", tmp_path, {"EnableWaf": "true"})
    config = deploy.load_config("prod")
    assert package[:3] == ["aws", "cloudformation", "package"]
    assert package[package.index("--s3-bucket") + 1] == config["artifact_bucket"]
    assert package[package.index("--template-file") + 1] == str(tmp_path / "sam.yaml")
    assert stack[:3] == ["aws", "cloudformation", "deploy"]
    assert stack[stack.index("--stack-name") + 1] == "checkos-prod"
    assert stack[stack.index("--template-file") + 1] == str(tmp_path / "packaged.yaml")
    assert "CAPABILITY_AUTO_EXPAND" in stack and "CAPABILITY_IAM" in stack
    overrides = stack[stack.index("--parameter-overrides") + 1 : stack.index("--tags")]
    assert "EnableWaf=true" in overrides and "AlarmEmail=ops@checkos.example" in overrides
    # Every parameter the configuration sets exists in the template.
    declared = set(load_template()["Parameters"])
    assert {o.partition("=")[0] for o in overrides} <= declared


def test_make_deploy_packages_and_deploys_the_stage_it_is_given():
    result = subprocess.run(
        ["make", "-n", "deploy", "STAGE=dev", "DRY_RUN=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("infra.package" in line and "--stage dev" in line for line in lines), lines
    deploy_line = next(line for line in lines if "infra.deploy" in line)
    assert shlex.split(deploy_line)[-2:] == ["dev", "--dry-run"]
    # And the dry run itself prints the two AWS CLI commands, touching nothing.
    dry = subprocess.run(
        [sys.executable, "-m", "infra.deploy", "dev", "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert dry.returncode == 0, dry.stderr
    assert [line.split()[:3] for line in dry.stdout.splitlines()] == [
        ["aws", "cloudformation", "package"],
        ["aws", "cloudformation", "deploy"],
    ]


def test_an_unknown_stage_is_refused_with_the_known_ones():
    with pytest.raises(SystemExit, match="known: dev, prod"):
        deploy.load_config("staging")

"""Restore the table to a point in time, into a new table, and switch the stack to it.

DynamoDB restores only into a new table. This script restores, waits until the new
table is ACTIVE, gives it what a restore does not carry over (TTL, point-in-time
recovery, deletion protection: read from infra/resources.yaml), then prints the deploy
that points every function at it (parameter RestoredTableName), or runs it (--apply).
The old table stays (Retain, deletion protection) until an operator removes it.
Usage:
python -m infra.restore STAGE SOURCE_TABLE TARGET_TABLE [--at 2026-12-06T03:00:00Z] [--apply]
"""

from __future__ import annotations

import argparse
import shlex
import time
from datetime import datetime
from typing import Any

from infra.provision import load_template, protect_table, resource_of_type


def restore_table(
    dynamodb: Any,
    source: str,
    target: str,
    at: datetime | None = None,
    *,
    timeout_seconds: float = 3600,
    poll_seconds: float = 20,
) -> dict[str, Any]:
    """Restore ``source`` as of ``at`` (latest restorable time if None) into ``target``."""
    when: dict[str, Any] = (
        {"RestoreDateTime": at} if at is not None else {"UseLatestRestorableTime": True}
    )
    dynamodb.restore_table_to_point_in_time(SourceTableName=source, TargetTableName=target, **when)
    deadline = time.monotonic() + timeout_seconds
    while True:
        table = dynamodb.describe_table(TableName=target)["Table"]
        if table["TableStatus"] == "ACTIVE":
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{target} is still {table['TableStatus']}")
        time.sleep(poll_seconds)
    # What a restore leaves behind: set it as the template sets it on the original.
    props = resource_of_type(load_template(), "AWS::DynamoDB::Table")
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=target, TimeToLiveSpecification=ttl)
    protect_table(dynamodb, target, props)
    return dynamodb.describe_table(TableName=target)["Table"]


def switch_command(stage: str, target: str) -> list[str]:
    """The deploy that points the stack's functions at ``target``."""
    return [
        "python",
        "-m",
        "infra.deploy",
        stage,
        "--parameter",
        f"RestoredTableName={target}",
    ]


def main(argv: list[str] | None = None) -> None:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stage")
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--at", help="ISO 8601 time (UTC); default: latest restorable")
    parser.add_argument("--apply", action="store_true", help="run the deploy that switches")
    args = parser.parse_args(argv)
    at = datetime.fromisoformat(args.at.replace("Z", "+00:00")) if args.at else None
    table = restore_table(boto3.client("dynamodb"), args.source, args.target, at)
    print(f"restored {args.source} -> {table['TableName']} ({table['ItemCount']} items)")
    command = switch_command(args.stage, args.target)
    print("switch the stack to it:", shlex.join(command))
    if args.apply:
        from infra import deploy

        deploy.main(command[3:])


if __name__ == "__main__":
    main()

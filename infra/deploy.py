"""`make deploy STAGE=…`: upload the bundle and deploy the stack with the AWS CLI.

The stage's committed configuration (infra/deploy/<stage>.json: stack name, region,
artifact bucket, parameters, tags) gives every argument, so two operators deploy the
same way. ``--parameter Name=Value`` overrides one parameter for this deploy (e.g.
``RestoredTableName`` after infra/restore.py). ``--dry-run`` prints the commands
without running them. Usage:
python -m infra.deploy STAGE [--package-dir build/package] [--parameter K=V ...] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = Path(__file__).with_name("deploy")


def load_config(stage: str) -> dict[str, Any]:
    path = CONFIGS / f"{stage}.json"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in CONFIGS.glob("*.json")))
        raise SystemExit(f"no deploy configuration for stage {stage!r} ({path}); known: {known}")
    return json.loads(path.read_text(encoding="utf-8"))


def commands(
    stage: str, package_dir: Path, overrides: dict[str, str] | None = None
) -> list[list[str]]:
    """`aws cloudformation package` (zip to S3) then `aws cloudformation deploy`."""
    config = load_config(stage)
    packaged = package_dir / "packaged.yaml"
    parameters = {**config["parameters"], **(overrides or {})}
    region = ["--region", config["region"]]
    package = [
        "aws", "cloudformation", "package",
        "--template-file", str(package_dir / "sam.yaml"),
        "--s3-bucket", config["artifact_bucket"],
        "--s3-prefix", config["artifact_prefix"],
        "--output-template-file", str(packaged),
        *region,
    ]  # fmt: skip
    deploy = [
        "aws", "cloudformation", "deploy",
        "--template-file", str(packaged),
        "--stack-name", config["stack_name"],
        "--capabilities", *config["capabilities"],
        "--no-fail-on-empty-changeset",
        *region,
        "--parameter-overrides", *(f"{k}={v}" for k, v in parameters.items()),
        "--tags", *(f"{k}={v}" for k, v in config.get("tags", {}).items()),
    ]  # fmt: skip
    return [package, deploy]


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--parameter takes Name=Value, not {pair!r}")
        overrides[name] = value
    return overrides


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stage")
    parser.add_argument("--package-dir", type=Path, default=ROOT / "build" / "package")
    parser.add_argument("--parameter", action="append", default=[])
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    config = load_config(args.stage)
    steps = commands(args.stage, args.package_dir, parse_overrides(args.parameter))
    for step in steps:
        print(shlex.join(step), flush=True)
    if args.dry_run:
        return
    if config["artifact_bucket"].startswith("REPLACE"):
        raise SystemExit(f"set artifact_bucket in infra/deploy/{args.stage}.json (README, Deploy)")
    for step in steps:
        subprocess.run(step, check=True)


if __name__ == "__main__":
    main()

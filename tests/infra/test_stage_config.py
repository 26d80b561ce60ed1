"""The production stage's packaged template gives every function what config.py requires.

The template is chalice's own `package --merge-template` output for the stage
(infra/package.py --template-only: the Lambda zip is not built, no pip).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from chalicelib.config import (
    DEPLOYED_REQUIRES,
    LOCAL_STAGES,
    MIN_SECRET_LENGTH,
    settings_from,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prod_template(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("template") / "prod"
    result = subprocess.run(
        [sys.executable, "-m", "infra.package", str(out), "--stage", "prod", "--template-only"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        # Only what a build machine has: none of the test run's local settings.
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
        },
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert not (out / "deployment.zip").exists()  # the template only
    return yaml.safe_load((out / "sam.yaml").read_text())


def _functions(template: dict) -> dict[str, dict]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def _environment(template: dict, function: dict) -> dict[str, object]:
    shared = template.get("Globals", {}).get("Function", {}).get("Environment", {})
    own = function["Properties"].get("Environment", {})
    return {**shared.get("Variables", {}), **own.get("Variables", {})}


def _plausible(value: object) -> str:
    """A deployed value for a template expression (Ref, Fn::Sub, Fn::If)."""
    return value if isinstance(value, str) else "resolved-at-deploy-" + "x" * 64


def test_every_production_function_gets_what_a_deployed_function_requires(prod_template):
    functions = _functions(prod_template)
    # The web handler, the two schedules, the erasure sweep, the export and data-rights jobs.
    assert len(functions) >= 6, sorted(functions)
    for name, function in functions.items():
        env = _environment(prod_template, function)
        missing = [key for key in DEPLOYED_REQUIRES if key not in env or env[key] in ("", None)]
        assert missing == [], f"{name} lacks {missing}"
        assert env["STAGE"] == "prod", name
        assert env["STAGE"] not in LOCAL_STAGES
        assert "OUTBOX_ENABLED" not in env, name
        # The settings a function would build from it pass the start-up check.
        deployed = {key: _plausible(value) for key, value in env.items()}
        settings = settings_from({**deployed, "AWS_LAMBDA_FUNCTION_NAME": name})
        assert settings.stage == "prod"
        assert settings.outbox_enabled is False
        assert settings.secure_cookies is True


def test_no_function_environment_holds_a_secret(prod_template):
    """Only the secret's ARN: neither a literal key nor a dynamic reference resolved at deploy."""
    for name, function in _functions(prod_template).items():
        env = _environment(prod_template, function)
        assert env["SIGNING_SECRET_ARN"] == {"Ref": "AppSecret"}, name
        for key, value in env.items():
            text = json.dumps(value)
            assert "{{resolve:" not in text, f"{name}: {key} resolves a secret at deploy"
            assert not any(word in key for word in ("SECRET_KEY", "PASSWORD", "TOKEN")), key
    secret = prod_template["Resources"]["AppSecret"]
    assert secret["DeletionPolicy"] == secret["UpdateReplacePolicy"] == "Retain"
    generated = secret["Properties"]["GenerateSecretString"]
    assert generated["GenerateStringKey"] == "current"
    assert generated["PasswordLength"] >= MIN_SECRET_LENGTH

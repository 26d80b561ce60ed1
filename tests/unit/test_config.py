"""Fail-closed configuration: a deployed function without what it needs does not start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.config import (
    DEPLOYED_REQUIRES,
    LOCAL_STAGES,
    ConfigurationError,
    settings_from,
)

ROOT = Path(__file__).resolve().parents[2]

# A deployed function's environment as infra/resources.yaml and .chalice/config.json set it.
DEPLOYED = {
    "AWS_LAMBDA_FUNCTION_NAME": "checkos-prod",
    "AWS_DEFAULT_REGION": "us-east-1",
    "STAGE": "prod",
    "SIGNING_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:checkos-keys",
    "TABLE_NAME": "checkos-prod-Table",
    "BUCKET_NAME": "checkos-prod-files",
    "MAIL_SENDER": "no-reply@checkos.example",
    "BASE_URL": "https://checkos.example",
}


def _start_function(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Import the app as Lambda's runtime does at a cold start, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-c", "import app"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def _without(name: str) -> dict[str, str]:
    return {k: v for k, v in DEPLOYED.items() if k != name}


def test_a_deployed_function_with_its_configuration_starts():
    result = _start_function(DEPLOYED)
    assert result.returncode == 0, result.stderr


def test_a_deployed_function_without_stage_refuses_to_start():
    result = _start_function(_without("STAGE"))
    assert result.returncode != 0
    assert "ConfigurationError" in result.stderr
    assert "STAGE not set" in result.stderr


def test_a_deployed_function_without_its_signing_secret_refuses_to_start():
    result = _start_function(_without("SIGNING_SECRET_ARN"))
    assert result.returncode != 0
    assert "ConfigurationError" in result.stderr
    assert "SIGNING_SECRET_ARN not set" in result.stderr


@pytest.mark.parametrize("name", DEPLOYED_REQUIRES)
def test_every_required_setting_is_checked_when_deployed(name):
    with pytest.raises(ConfigurationError, match=name):
        settings_from(_without(name))
    with pytest.raises(ConfigurationError, match=name):
        settings_from({**DEPLOYED, name: "  "})


@pytest.mark.parametrize("stage", LOCAL_STAGES)
def test_a_deployed_function_cannot_claim_a_local_stage(stage):
    with pytest.raises(ConfigurationError, match="local run and the tests only"):
        settings_from({**DEPLOYED, "STAGE": stage})


def test_a_deployed_function_with_a_key_in_its_environment_refuses_to_start():
    # Anyone allowed lambda:GetFunctionConfiguration reads the environment.
    with pytest.raises(ConfigurationError, match="SECRET_KEY is set"):
        settings_from({**DEPLOYED, "SECRET_KEY": "k" * 64})


@pytest.mark.parametrize("stage", ["dev", "prod", "staging", "Local", ""])
def test_the_outbox_exists_only_in_the_local_and_test_stages(stage):
    env = {"STAGE": stage, "OUTBOX_ENABLED": "1", "SECRET_KEY": "k" * 64}
    assert settings_from(env).outbox_enabled is False


@pytest.mark.parametrize("stage", LOCAL_STAGES)
def test_the_local_stages_keep_their_outbox_when_asked(stage):
    assert settings_from({"STAGE": stage, "OUTBOX_ENABLED": "1"}).outbox_enabled is True
    assert settings_from({"STAGE": stage}).outbox_enabled is False


def test_outside_lambda_the_stage_defaults_to_the_local_run():
    # `make run`, the tools and `chalice package` (which imports the app) run outside Lambda.
    assert settings_from({}).stage == "local"

"""Settings read once from the environment into one frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

# The stages that run on this machine (`make run`, the tests): only they have a
# default secret, the local outbox and the /dev/jobs page.
LOCAL_STAGES = ("local", "test")
# What a deployed function cannot run without (infra/resources.yaml and
# .chalice/config.json set them): it refuses to start when one is missing,
# instead of falling back to the local defaults. The signing keys themselves are
# never in the environment: only the ARN of the secret that holds them.
DEPLOYED_REQUIRES = (
    "STAGE",
    "SIGNING_SECRET_ARN",
    "TABLE_NAME",
    "BUCKET_NAME",
    "MAIL_SENDER",
    "BASE_URL",
)
# Environment variables a deployed function refuses to start with: a key there is
# readable by anyone allowed lambda:GetFunctionConfiguration.
DEPLOYED_FORBIDS = ("SECRET_KEY",)
MIN_SECRET_LENGTH = 32


class ConfigurationError(RuntimeError):
    """A deployed function's environment lacks what it needs: it must not start."""


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    table_name: str
    bucket_name: str
    mail_sender: str
    base_url: str
    secret: str
    default_locale: str
    # Local run only: where PynamoDB finds the moto server.
    dynamodb_host: str | None
    # Local run and tests only: the outbox page of sent e-mails.
    outbox_enabled: bool
    secure_cookies: bool
    session_ttl_hours: int = 12
    session_idle_minutes: int = 60
    free_plan_monthly_orders: int = 100
    inactivity_days: int = 180
    # The nightly job warns a company this many days before it goes inactive.
    inactivity_warning_days: int = 14
    # Footer link to the users' community (forum, group); hidden when empty.
    community_url: str = ""
    # SES configuration set named on every send (bounce/complaint events); empty: none.
    mail_configuration_set: str = ""
    # Secrets Manager secret holding the signing key ring: chalicelib/signing_keys.py
    # reads it (accepted(), current()).
    signing_secret_arn: str = ""

    @property
    def is_local(self) -> bool:
        return self.stage in LOCAL_STAGES


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def deployed(env: Mapping[str, str]) -> bool:
    """Running as a Lambda function: the runtime sets this in every function, and
    nothing else does (`chalice package` imports the app without it)."""
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME"))


def check_deployed(env: Mapping[str, str]) -> None:
    """Refuse to start a deployed function that lacks its stage or signing secret."""
    missing = [name for name in DEPLOYED_REQUIRES if not env.get(name, "").strip()]
    if missing:
        raise ConfigurationError(
            f"CheckOS will not start: {', '.join(missing)} not set in this function's "
            "environment (.chalice/config.json sets STAGE, infra/resources.yaml the rest)"
        )
    if env["STAGE"] in LOCAL_STAGES:
        raise ConfigurationError(
            f"CheckOS will not start: STAGE={env['STAGE']} is for the local run and the "
            "tests only, not for a deployed function"
        )
    present = [name for name in DEPLOYED_FORBIDS if env.get(name)]
    if present:
        raise ConfigurationError(
            f"CheckOS will not start: {', '.join(present)} is set in this function's "
            "environment; signing keys belong in the secret SIGNING_SECRET_ARN names"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return settings_from(os.environ)


def settings_from(env: Mapping[str, str]) -> Settings:
    """The settings of an environment; a deployed one is checked first (fail closed)."""
    if deployed(env):
        check_deployed(env)
    # Only outside Lambda may STAGE be left out: the local run's default.
    stage = env.get("STAGE", "local")
    return Settings(
        stage=stage,
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION", "us-east-1"),
        table_name=env.get("TABLE_NAME", "checkos-local"),
        bucket_name=env.get("BUCKET_NAME", "checkos-local-files"),
        mail_sender=env.get("MAIL_SENDER", "no-reply@checkos.example"),
        base_url=env.get("BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
        secret=env.get("SECRET_KEY", ""),
        default_locale=env.get("DEFAULT_LOCALE", "en"),
        dynamodb_host=env.get("DYNAMODB_HOST") or None,
        # Only in the local run and the tests, whatever the environment says.
        outbox_enabled=stage in LOCAL_STAGES and _flag(env, "OUTBOX_ENABLED", False),
        secure_cookies=_flag(env, "SECURE_COOKIES", stage not in LOCAL_STAGES),
        free_plan_monthly_orders=int(env.get("FREE_PLAN_MONTHLY_ORDERS", "100")),
        inactivity_days=int(env.get("INACTIVITY_DAYS", "180")),
        community_url=_web_address(env.get("COMMUNITY_URL", "")),
        mail_configuration_set=env.get("MAIL_CONFIGURATION_SET", ""),
        signing_secret_arn=env.get("SIGNING_SECRET_ARN", "").strip(),
    )


def _web_address(value: str) -> str:
    # Only an http(s) address becomes a link; anything else (a typo, javascript:) is ignored.
    value = value.strip()
    return value if value.startswith(("https://", "http://")) else ""

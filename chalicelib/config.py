"""Settings read once from the environment into one frozen object."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


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

    @property
    def secret_key(self) -> str:
        # Checked on use, not at import: `chalice package` imports the app
        # with the stage's variables and no secret.
        if self.secret:
            return self.secret
        if self.stage in ("local", "test"):
            return "local-development-secret-not-for-production"
        raise RuntimeError("SECRET_KEY must be set outside the local run and the tests")

    @property
    def is_local(self) -> bool:
        return self.stage in ("local", "test")


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    stage = os.environ.get("STAGE", "local")
    return Settings(
        stage=stage,
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        table_name=os.environ.get("TABLE_NAME", "checkos-local"),
        bucket_name=os.environ.get("BUCKET_NAME", "checkos-local-files"),
        mail_sender=os.environ.get("MAIL_SENDER", "no-reply@checkos.example"),
        base_url=os.environ.get("BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
        secret=os.environ.get("SECRET_KEY", ""),
        default_locale=os.environ.get("DEFAULT_LOCALE", "en"),
        dynamodb_host=os.environ.get("DYNAMODB_HOST") or None,
        # Never in prod, whatever the environment says.
        outbox_enabled=stage != "prod" and _flag("OUTBOX_ENABLED", False),
        secure_cookies=_flag("SECURE_COOKIES", stage not in ("local", "test")),
        free_plan_monthly_orders=int(os.environ.get("FREE_PLAN_MONTHLY_ORDERS", "100")),
        inactivity_days=int(os.environ.get("INACTIVITY_DAYS", "180")),
        community_url=_web_address(os.environ.get("COMMUNITY_URL", "")),
        mail_configuration_set=os.environ.get("MAIL_CONFIGURATION_SET", ""),
    )


def _web_address(value: str) -> str:
    # Only an http(s) address becomes a link; anything else (a typo, javascript:) is ignored.
    value = value.strip()
    return value if value.startswith(("https://", "http://")) else ""

"""The admin's intake settings: the form's code (rotated at will), the sites that may embed it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.db.accounts import Company
from chalicelib.db.base import failed_keys, write_transaction
from chalicelib.db.intake import FormKey
from chalicelib.domain.errors import Conflict, ValidationFailed
from chalicelib.domain.tokens import new_token
from chalicelib.services.intake import MAX_ORIGINS
from chalicelib.services.sessions import now


class IntakeSettingsChanged(Conflict):
    key = "intake.settings_changed"
    code = "settings_changed"


def generate_code(company: Company, seen_version: int | None) -> str:
    """Give the company a new form code; the old one stops working at once.

    One transaction: delete the old FORMKEY item, put the new one, update the
    Company (condition: the version the admin's page was read at).
    """
    if seen_version is None or seen_version != (company.version or 0):
        raise IntakeSettingsChanged()
    code = new_token()
    old = company.intake_code
    company_id = company.company_id

    def rotate(tx: TransactWrite) -> None:
        tx.update(company, actions=[Company.intake_code.set(code)], condition=Company.pk.exists())
        tx.save(
            FormKey(*FormKey.key(code), company_id=company_id, created_at=now()),
            condition=FormKey.pk.does_not_exist(),
        )
        if old:
            tx.delete(
                FormKey(*FormKey.key(old)),
                condition=FormKey.pk.does_not_exist() | (FormKey.company_id == company_id),
            )

    def refuse(error: TransactWriteError, tx: TransactWrite) -> None:
        if Company.key(company_id) in failed_keys(error, tx):
            raise IntakeSettingsChanged() from error

    write_transaction("intake code", rotate, refuse)
    company.intake_code = code
    return code


def parse_origins(text: str) -> list[str]:
    """One ``https://host[:port]`` origin per line (plain http only for this machine)."""
    origins: list[str] = []
    for line in (text or "").replace(",", "\n").splitlines():
        raw = line.strip().rstrip("/")
        if not raw:
            continue
        origin = _origin(raw)
        if origin is None:
            raise ValidationFailed({"origins": ("intake.origin_invalid", {"origin": raw[:80]})})
        if origin not in origins:
            origins.append(origin)
    if len(origins) > MAX_ORIGINS:
        raise ValidationFailed({"origins": ("intake.too_many_origins", {"n": MAX_ORIGINS})})
    return origins


def _origin(raw: str) -> str | None:
    if len(raw) > 200 or any(c.isspace() or c in "<>\"'\\;*" for c in raw):
        return None
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.username or parts.password or parts.query or parts.fragment or parts.path:
        return None
    loopback = host in ("localhost", "127.0.0.1")
    if parts.scheme.lower() != "https" and not (parts.scheme.lower() == "http" and loopback):
        return None
    if not loopback and "." not in host.strip("."):
        return None
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port else "")


def save_origins(company: Company, form: Mapping[str, str]) -> list[str]:
    """Store the allowed website origins (condition: the version the form was read at)."""
    origins = parse_origins(form.get("origins", ""))
    seen = (form.get("version") or "").strip()
    if not seen.isdigit() or int(seen) != (company.version or 0):
        raise IntakeSettingsChanged()
    # pynamodb types a ListAttribute(of=UnicodeAttribute) as a list of attributes; it stores str.
    stored: Any = origins
    try:
        company.update(actions=[Company.intake_origins.set(stored)], condition=Company.pk.exists())
    except UpdateError as error:
        raise IntakeSettingsChanged() from error
    company.intake_origins = stored
    return origins

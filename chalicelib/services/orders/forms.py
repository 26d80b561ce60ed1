"""The order form: its fields and how typed values are checked (amounts, dates, custom fields)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from chalicelib.db.accounts import Company
from chalicelib.domain.validation import Checker
from chalicelib.i18n import formatting

PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")


# name -> (max length, multi-line)
TEXT_FIELDS: dict[str, tuple[int, bool]] = {
    "customer_name": (120, False),
    "customer_phone": (40, False),
    "customer_address": (300, True),
    "service_type": (80, False),
    "brand": (80, False),
    "model": (80, False),
    "serial": (80, False),
    "problem": (4000, True),
    "condition": (2000, True),
    "internal_notes": (4000, True),
}


REQUIRED_FIELDS = frozenset({"customer_name", "problem"})


EDITABLE_FIELDS: tuple[str, ...] = (
    *TEXT_FIELDS,
    "customer_email",
    "service_date",
    "service_time",
    "priority",
    "technician_id",
    "technician_name",
    "estimated_value",
)


def _check_date(check: Checker, name: str) -> str | None:
    raw = (check.data.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        check.fail(name, "order.bad_date")
        return None


def _check_time(check: Checker, name: str) -> str | None:
    raw = (check.data.get(name) or "").strip()
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%H:%M").strftime("%H:%M")
    except ValueError:
        check.fail(name, "order.bad_time")
        return None


def check_decimal(
    check: Checker, name: str, *, required: bool = False, locale: str = "en"
) -> str | None:
    """An amount typed the way ``locale`` writes numbers; ambiguous text is refused."""
    raw = (check.data.get(name) or "").strip()
    if not raw:
        if required:
            check.fail(name, "form.required")
        return None
    try:
        value = formatting.parse_amount(raw, locale)
    except formatting.AmountUnclear:
        check.fail(name, "order.bad_amount", example=formatting.amount_example(locale))
        return None
    return str(value)


def check_order_form(
    form: Mapping[str, str], company: Company, team: Mapping[str, str], locale: str = "en"
) -> tuple[dict[str, str | None], dict[str, str]]:
    """Clean standard and custom fields; every problem at once (ValidationFailed)."""
    check = Checker(form)
    values: dict[str, str | None] = {}
    for name, (max_len, multiline) in TEXT_FIELDS.items():
        values[name] = check.text(
            name, required=name in REQUIRED_FIELDS, max_len=max_len, multiline=multiline
        )
    values["customer_email"] = check.email("customer_email", required=False)
    values["service_date"] = _check_date(check, "service_date")
    values["service_time"] = _check_time(check, "service_time")
    values["priority"] = check.choice("priority", PRIORITIES, required=False) or "normal"
    technician = (form.get("technician_id") or "").strip()
    if technician and technician not in team:
        check.fail("technician_id", "form.bad_choice")
        technician = ""
    values["technician_id"] = technician or None
    values["technician_name"] = team.get(technician) if technician else None
    values["estimated_value"] = check_decimal(check, "estimated_value", locale=locale)
    custom = check_custom_fields(check, company, locale)
    check.done()
    return values, custom


def check_custom_fields(check: Checker, company: Company, locale: str = "en") -> dict[str, str]:
    custom: dict[str, str] = {}
    for spec in company.custom_fields or []:
        name = f"cf_{spec.field_id}"
        raw = (check.data.get(name) or "").strip()
        if not raw:
            if spec.required:
                check.fail(name, "form.required")
            continue
        if spec.kind == "number":
            value = check_decimal(check, name, locale=locale)
        elif spec.kind == "date":
            value = _check_date(check, name)
        elif spec.kind == "choice":
            value = raw if raw in (spec.options or []) else None
            if value is None:
                check.fail(name, "form.bad_choice")
        else:
            value = check.text(name, max_len=500, multiline=True)
        if value:
            custom[spec.field_id] = value
    return custom

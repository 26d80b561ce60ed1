"""Company-defined order fields: text, number, date or choice, optionally required."""

from __future__ import annotations

from collections.abc import Mapping

from pynamodb.exceptions import UpdateError

from chalicelib.db.accounts import Company, CustomField
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.tokens import new_id
from chalicelib.domain.validation import Checker

KINDS: tuple[str, ...] = ("text", "number", "date", "choice")
MAX_FIELDS = 20


def _save(company: Company, fields: list[CustomField]) -> None:
    try:
        # Company carries a VersionAttribute: a concurrent settings change fails here.
        company.update(actions=[Company.custom_fields.set(fields)])
    except UpdateError as error:
        raise Conflict("profile.changed_elsewhere") from error


def add_field(company: Company, form: Mapping[str, str]) -> CustomField:
    check = Checker(form)
    label = check.text("label", required=True, max_len=60)
    kind = check.choice("kind", KINDS)
    options: list[str] = []
    if kind == "choice":
        raw = form.get("options") or ""
        options = list(dict.fromkeys(o.strip()[:60] for o in raw.replace("\n", ",").split(",")))
        options = [o for o in options if o][:30]
        if len(options) < 2:
            check.fail("options", "fields.need_options")
    if len(company.custom_fields or []) >= MAX_FIELDS:
        check.fail("label", "fields.too_many", n=MAX_FIELDS)
    check.done()
    field = CustomField(
        field_id=new_id()[:8],
        label=label,
        kind=kind,
        options=options,
        required=(form.get("required") == "yes"),
    )
    _save(company, [*(company.custom_fields or []), field])
    return field


def set_required(company: Company, field_id: str, required: bool) -> None:
    fields = list(company.custom_fields or [])
    found = [f for f in fields if f.field_id == field_id]
    if not found:
        raise NotFound()
    found[0].required = required
    _save(company, fields)


def remove_field(company: Company, field_id: str) -> None:
    fields = list(company.custom_fields or [])
    kept = [f for f in fields if f.field_id != field_id]
    if len(kept) == len(fields):
        raise NotFound()
    # Values already saved on orders stay there; they just stop being asked for.
    _save(company, kept)

"""Form validation: collect every field's problem at once, keep what was typed."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from chalicelib.domain.errors import ValidationFailed

FieldErrors = dict[str, tuple[str, dict[str, object]]]


class Checker:
    """Cleans values from a form and records one message per bad field."""

    def __init__(self, data: Mapping[str, str]) -> None:
        self.data = data
        self.errors: FieldErrors = {}
        self.clean: dict[str, str] = {}

    def fail(self, name: str, key: str, **params: object) -> None:
        self.errors.setdefault(name, (key, params))

    def text(
        self, name: str, *, required: bool = False, max_len: int = 200, multiline: bool = False
    ) -> str:
        raw = self.data.get(name) or ""
        value = raw.strip() if multiline else " ".join(raw.split())
        if required and not value:
            self.fail(name, "form.required")
        elif len(value) > max_len:
            self.fail(name, "form.too_long", n=max_len)
        self.clean[name] = value
        return value

    def email(self, name: str, *, required: bool = True) -> str:
        value = (self.data.get(name) or "").strip()
        if not value:
            if required:
                self.fail(name, "form.required")
            self.clean[name] = ""
            return ""
        normalised = normalise_email(value)
        if normalised is None:
            self.fail(name, email_problem(value))
            normalised = value
        self.clean[name] = normalised
        return normalised

    def password(self, name: str, *, min_len: int = 10) -> str:
        value = self.data.get(name) or ""
        if not value:
            self.fail(name, "form.required")
        elif len(value) < min_len:
            self.fail(name, "form.password_short", n=min_len)
        elif len(value) > 256:
            self.fail(name, "form.too_long", n=256)
        return value

    def choice(self, name: str, allowed: tuple[str, ...], *, required: bool = True) -> str:
        value = (self.data.get(name) or "").strip()
        if value not in allowed:
            if value or required:
                self.fail(name, "form.bad_choice")
            value = ""
        self.clean[name] = value
        return value

    def done(self) -> dict[str, str]:
        if self.errors:
            raise ValidationFailed(self.errors)
        return self.clean


def normalise_email(value: str) -> str | None:
    """Lower-cased, syntax-checked address (no DNS lookups) that mail can carry, or None.

    The one address rule of every e-mail field: the domain may be international
    (kept in Unicode here, sent as IDNA punycode: see ``wire_email``), the local
    part may not, since the sending path (SES, no SMTPUTF8) cannot carry it.
    """
    from email_validator import EmailNotValidError, validate_email

    if len(value) > 254 or any(c in value for c in "\r\n"):
        return None
    try:
        checked = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return checked.normalized.lower()


def email_problem(value: str) -> str:
    """The catalogue key telling the user why ``value`` is refused as an address."""
    local, at, domain = value.strip().rpartition("@")
    if at and local and not local.isascii() and normalise_email("x@" + domain):
        return "form.email_local_ascii"
    return "form.invalid_email"


def wire_email(address: str) -> str:
    """The address as it travels: ASCII local part, IDNA (punycode) domain.

    Raises ValueError for an address the sending path cannot carry.
    """
    from email_validator import EmailNotValidError, validate_email

    if any(c in address for c in "\r\n"):
        raise ValueError("line break in an address")
    try:
        checked = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as problem:
        raise ValueError(str(problem)) from problem
    return str(checked.ascii_email)


def shown_email(address: str) -> str:
    """The address as people read it: a punycode domain shown in Unicode."""
    local, at, domain = address.rpartition("@")
    if not at or "xn--" not in domain.lower():
        return address
    try:
        import idna

        return f"{local}@{idna.decode(domain)}"
    except Exception:  # not valid IDNA: show it as it is
        return address


def fold(text: str) -> str:
    """Case- and accent-insensitive form used for search and slugs."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def slugify(text: str, max_len: int = 60) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")
    return slug[:max_len].strip("-") or "company"


SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,58}[a-z0-9])$")


def phone_digits(value: str) -> str:
    return re.sub(r"\D", "", value)

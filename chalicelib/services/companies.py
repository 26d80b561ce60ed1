"""Company profile: what is missing, updates, slug, status, public page."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.db.accounts import Company, EmailCode, Slug
from chalicelib.db.base import conflicted, failed_keys, transaction, write_transaction
from chalicelib.domain.errors import AppError, Conflict, NotFound, ValidationFailed
from chalicelib.domain.sharing import CompanyInactive
from chalicelib.domain.validation import SLUG_RE, Checker, phone_digits
from chalicelib.i18n import LOCALES
from chalicelib.services import activity, directory
from chalicelib.services.email_codes import send_email_code
from chalicelib.services.logos import logo_url
from chalicelib.services.signup import check_time_zone

# Profile fields a company should fill, in the order the home page lists them.
PROFILE_FIELDS: tuple[str, ...] = (
    "business_type",
    "area",
    "contact_name",
    "phone",
    "website",
    "description",
    "city",
    "state",
    "country",
)
STATUSES: tuple[str, ...] = ("active", "inactive")
# Plain text attributes the settings form writes as they are (e-mail and slug have rules).
TEXT_FIELDS: tuple[str, ...] = (
    "name",
    "business_type",
    "area",
    "contact_name",
    "phone",
    "website",
    "description",
    "city",
    "state",
    "country",
    "locale",
    "time_zone",
    "status",
)
DESCRIPTION_MAX = 1000
META_DESCRIPTION_MAX = 155


class ProfileChanged(Conflict):
    """Someone saved the profile after this form was loaded (optimistic lock)."""

    key = "profile.changed_elsewhere"


def missing_profile_fields(company: Company) -> list[str]:
    missing = [name for name in PROFILE_FIELDS if not getattr(company, name)]
    if not company.logo_key:
        missing.append("logo")
    if not company.email_validated:
        missing.insert(0, "email_validated")
    return missing


def require_active(company: Company) -> None:
    """Guard for every action that changes a company's data (orders, partners...).

    Raises CompanyInactive (403, translated) while the company is inactive, so an
    inactive company stays readable but read-only until an admin reactivates it.
    """
    if not company.active:
        raise CompanyInactive()


# -- settings form ---------------------------------------------------------


def profile_values(company: Company) -> dict[str, str]:
    """What the settings form shows: the stored profile and the version it was read at."""
    values = {name: str(getattr(company, name) or "") for name in TEXT_FIELDS}
    # The address the admin wants: a pending one until it is validated.
    values["email"] = company.pending_email or company.email
    values["slug"] = company.slug
    values["version"] = str(company.version or 0)
    return values


def _web_url(check: Checker, name: str) -> str:
    value = (check.data.get(name) or "").strip()
    check.clean[name] = value
    if not value:
        return value
    if len(value) > 200:
        check.fail(name, "form.too_long", n=200)
        return value
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        host, parts = "", urlsplit("")
    if (
        parts.scheme.lower() not in ("http", "https")
        or "." not in host.strip(".")
        or parts.username is not None
        or any(ch.isspace() or ch in "<>\"'\\" for ch in value)
    ):
        check.fail(name, "profile.website_invalid")
    return value


def check_profile(form: Mapping[str, str], current_zone: str = "UTC") -> dict[str, str]:
    check = Checker(form)
    check_time_zone(check, current_zone)
    check.text("name", required=True, max_len=120)
    check.text("business_type", required=True, max_len=80)
    check.text("area", required=True, max_len=120)
    check.text("contact_name", required=True, max_len=120)
    phone = check.text("phone", required=True, max_len=40)
    if phone and len(phone_digits(phone)) < 6:
        check.fail("phone", "profile.phone_invalid")
    check.email("email")
    _web_url(check, "website")
    check.text("description", max_len=DESCRIPTION_MAX, multiline=True)
    for name in ("city", "state", "country"):
        check.text(name, max_len=80)
    check.choice("locale", LOCALES)
    check.choice("status", STATUSES)
    slug = (form.get("slug") or "").strip().lower()
    check.clean["slug"] = slug
    if not slug:
        check.fail("slug", "form.required")
    elif not SLUG_RE.match(slug):
        check.fail("slug", "profile.slug_invalid")
    return check.done()


@dataclass(frozen=True)
class ProfileSaved:
    company: Company
    # Set when the e-mail changed: the new address got a code (or mail_problem says why not).
    code_sent_to: str | None = None
    mail_problem: str | None = None
    mail_params: dict[str, object] = field(default_factory=dict)


def _seen_version(form: Mapping[str, str]) -> int | None:
    raw = (form.get("version") or "").strip()
    return int(raw) if raw.isdigit() else None


def update_profile(
    company: Company, form: Mapping[str, str], locale: str, ip: str | None = None
) -> ProfileSaved:
    """Save the settings form in one transaction, guarded by the company's version.

    A new public slug swaps the ``Slug`` items in the same transaction (the new
    one only if free). A new e-mail becomes ``pending_email`` and gets a code;
    the old address stays in use until the code is validated.
    """
    data = check_profile(form, company.time_zone)
    seen = _seen_version(form)
    if seen is None or seen != (company.version or 0):
        raise ProfileChanged()
    actions: list[Any] = [getattr(Company, name).set(data[name]) for name in TEXT_FIELDS]
    wanted_email = data["email"]
    pending: str | None = company.pending_email
    send_to: str | None = None
    # A cancelled or replaced e-mail change takes its pending code with it (same
    # transaction): the old code must not validate an address nobody wants now.
    drop_code = False
    if wanted_email == company.email:
        if pending:
            actions.append(Company.pending_email.remove())
            drop_code = True
        pending = None
    elif wanted_email != pending:
        actions.append(Company.pending_email.set(wanted_email))
        pending = send_to = wanted_email
        drop_code = True
    old_slug, new_slug = company.slug, data["slug"]
    if new_slug != old_slug:
        actions.append(Company.slug.set(new_slug))
    # Going inactive leaves the inactivity job's index (it stays sparse); coming back re-arms it.
    actions += activity.status_change_actions(company, data["status"], activity.today())
    company_id = company.company_id
    # The directory index follows the profile (and status) in the same transaction.
    after = directory.snapshot(company)
    for name in TEXT_FIELDS:
        setattr(after, name, data[name])
    after.slug = new_slug

    def save(tx: TransactWrite) -> None:
        # A copy: PynamoDB appends the version's own action to the list it is given.
        tx.update(company, actions=[*actions], condition=Company.pk.exists())
        directory.write_changes(tx, company, after)
        if drop_code:
            tx.delete(EmailCode(*EmailCode.key(company_id)))
        if new_slug != old_slug:
            tx.save(
                Slug(*Slug.key(new_slug), company_id=company_id),
                condition=Slug.pk.does_not_exist(),
            )
            tx.delete(
                Slug(*Slug.key(old_slug)),
                condition=Slug.pk.does_not_exist() | (Slug.company_id == company_id),
            )

    def refuse(error: TransactWriteError, tx: TransactWrite) -> None:
        failed = failed_keys(error, tx)
        if Company.key(company_id) in failed:
            raise ProfileChanged() from error  # saved by someone else since the form loaded
        if Slug.key(new_slug) in failed:
            raise ValidationFailed({"slug": ("profile.slug_taken", {})}) from error

    write_transaction("profile saved", save, refuse)
    for name in TEXT_FIELDS:
        setattr(company, name, data[name])
    company.slug, company.pending_email = new_slug, pending
    if send_to is None:
        return ProfileSaved(company=company)
    try:
        send_email_code(company, send_to, locale, ip=ip)
    except AppError as problem:
        return ProfileSaved(
            company=company,
            code_sent_to=send_to,
            mail_problem=problem.key,
            mail_params=dict(problem.params),
        )
    return ProfileSaved(company=company, code_sent_to=send_to)


def reactivate(company: Company) -> None:
    """Set the company active again (idempotent: a status has no lost update to fear).

    It re-enters the inactivity job's index as active today, so the idle
    clock starts over.
    """
    for _attempt in range(3):
        if company.active:
            return
        after = directory.snapshot(company)
        after.status = "active"
        actions = [
            Company.status.set("active"),
            *activity.arm_actions(company.company_id, activity.today()),
        ]
        tx = transaction()
        try:
            with tx:
                # Version-checked because the directory cards written with it are
                # built from this read; a concurrent edit means: read again, retry.
                tx.update(company, actions=actions, condition=Company.pk.exists())
                directory.write_changes(tx, company, after)
        except TransactWriteError as error:
            if Company.key(company.company_id) in failed_keys(error, tx) or conflicted(error):
                company.refresh(consistent_read=True)
                continue
            raise
        company.status = "active"
        return
    raise ProfileChanged()


# -- public page -------------------------------------------------------------


def public_company(slug: str) -> Company:
    """The active company behind ``/c/<slug>``: 2 GetItems (Slug, then Company), or NotFound."""
    slug = slug.strip().lower()
    if not SLUG_RE.match(slug):
        raise NotFound()
    try:
        owner = Slug.get(*Slug.key(slug))
        company = Company.get(*Company.key(owner.company_id))
    except DoesNotExist:
        raise NotFound() from None
    if not company.active or company.slug != slug:
        raise NotFound()
    return company


@dataclass(frozen=True)
class PublicProfile:
    canonical: str
    summary: str
    address: str
    logo_path: str | None
    email: str | None
    tel: str
    ld_json: str


def _summary(text: str, limit: int = META_DESCRIPTION_MAX) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rsplit(" ", 1)[0] + "…"


def script_json(data: object) -> str:
    """JSON that is safe inside a <script> element (no ``</script>``, no ``<!--``)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def public_profile(company: Company, base_url: str) -> PublicProfile:
    """What the public page shows, with its canonical URL and schema.org LocalBusiness."""
    canonical = f"{base_url}/c/{company.slug}"
    logo_path = logo_url(company)
    email = company.email if company.email_validated else None
    address = ", ".join(p for p in (company.city, company.state, company.country) if p)
    ld: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "LocalBusiness",
        "@id": canonical,
        "name": company.name,
        "url": canonical,
    }
    optional: dict[str, Any] = {
        "description": _summary(company.description, 500),
        "telephone": company.phone,
        "email": email,
        "areaServed": company.area,
        "knowsAbout": company.business_type,
        "sameAs": [company.website] if company.website else None,
        "logo": f"{base_url}{logo_path}" if logo_path else None,
        "image": f"{base_url}{logo_path}" if logo_path else None,
    }
    ld.update({key: value for key, value in optional.items() if value})
    if address:
        postal = {
            "@type": "PostalAddress",
            "addressLocality": company.city,
            "addressRegion": company.state,
            "addressCountry": company.country,
        }
        ld["address"] = {key: value for key, value in postal.items() if value}
    return PublicProfile(
        canonical=canonical,
        summary=_summary(company.description),
        address=address,
        logo_path=logo_path,
        email=email,
        tel=("+" if company.phone.strip().startswith("+") else "") + phone_digits(company.phone),
        ld_json=script_json(ld),
    )

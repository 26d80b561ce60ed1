"""Company profile: what is missing, updates, slug, status."""

from __future__ import annotations

from chalicelib.db.accounts import Company

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


def missing_profile_fields(company: Company) -> list[str]:
    missing = [name for name in PROFILE_FIELDS if not getattr(company, name)]
    if not company.logo_key:
        missing.append("logo")
    if not company.email_validated:
        missing.insert(0, "email_validated")
    return missing

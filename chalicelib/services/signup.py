"""Sign-up: a new company, its first administrator, login and public slug, in one transaction."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from pynamodb.exceptions import TransactWriteError

from chalicelib.db.accounts import Company, Login, Slug, User
from chalicelib.db.base import (
    CONFLICT_ATTEMPTS,
    conflict_pause,
    failed_keys,
    only_conflicted,
    transaction,
)
from chalicelib.domain import limits
from chalicelib.domain.errors import Conflict, ValidationFailed
from chalicelib.domain.passwords import hash_password
from chalicelib.domain.tokens import new_id
from chalicelib.domain.validation import Checker, slugify
from chalicelib.i18n import formatting
from chalicelib.services import activity, directory, limiter
from chalicelib.services.sessions import now

# Anonymous visitors make this page e-mail an address they typed: declared in
# domain/limits.py with every other limit (this name is a view of it).
SIGNUP_LIMIT_IP = limits.rate_limit("signup", "ip").maximum


SIGNUP_FIELDS = (
    "company_name",
    "business_type",
    "area",
    "contact_name",
    "phone",
    "email",
    "password",
)


@dataclass(frozen=True)
class NewAccount:
    company: Company
    user: User


def check_time_zone(check: Checker, fallback: str) -> str:
    """An IANA zone name from the form; a form without the field keeps ``fallback``."""
    raw = (check.data.get("time_zone") or "").strip()
    if not raw:
        check.clean["time_zone"] = fallback
    elif formatting.is_zone(raw):
        check.clean["time_zone"] = raw
    else:
        check.fail("time_zone", "profile.bad_time_zone")
    return check.clean.get("time_zone", fallback)


def check_signup(form: Mapping[str, str], locale: str = "en") -> dict[str, str]:
    check = Checker(form)
    # The browser's zone (sign-up page script), else the language's market zone.
    check_time_zone(check, formatting.clean_zone(None, locale))
    check.text("company_name", required=True, max_len=120)
    check.text("business_type", required=True, max_len=80)
    check.text("area", required=True, max_len=120)
    check.text("contact_name", required=True, max_len=120)
    check.text("phone", required=True, max_len=40)
    check.email("email")
    check.clean["password"] = check.password("password")
    return check.done()


def sign_up(form: Mapping[str, str], locale: str, ip: str | None = None) -> NewAccount:
    """Create company, first admin, login and unique slug in one transaction."""
    data = check_signup(form, locale)
    limiter.count("signup", ip=ip)
    email = data["email"]
    created = now()
    company_id, user_id = new_id(), new_id()
    password_hash = hash_password(data["password"])
    base_slug = slugify(data["company_name"])
    slug = base_slug
    for attempt in range(CONFLICT_ATTEMPTS + 4):  # taken slugs and conflicts share the tries
        company = Company(
            *Company.key(company_id),
            company_id=company_id,
            name=data["company_name"],
            slug=slug,
            business_type=data["business_type"],
            area=data["area"],
            contact_name=data["contact_name"],
            phone=data["phone"],
            email=email,
            locale=locale,
            time_zone=data["time_zone"],
            created_at=created,
            # Active from day one: the inactivity job's index starts here.
            **activity.index_fields(company_id, created.date()),
            # Listed in the company registry (gsi2) for maintenance tools.
            gsi2pk=Company.registry_partition(company_id),
            gsi2sk=company_id,
        )
        user = User(
            *User.key(company_id, user_id),
            user_id=user_id,
            company_id=company_id,
            email=email,
            name=data["contact_name"],
            role="admin",
            locale=locale,
            created_at=created,
            last_active_day=created.date().isoformat(),
        )
        tx = transaction()
        try:
            with tx:
                tx.save(company, condition=Company.pk.does_not_exist())
                tx.save(
                    Slug(*Slug.key(slug), company_id=company_id), condition=Slug.pk.does_not_exist()
                )
                tx.save(
                    Login(
                        *Login.key(email),
                        user_id=user_id,
                        company_id=company_id,
                        password_hash=password_hash,
                    ),
                    condition=Login.pk.does_not_exist(),
                )
                tx.save(user, condition=User.pk.does_not_exist())
                # The partner directory lists the new company from its first moment.
                directory.write_changes(tx, None, company)
        except TransactWriteError as error:
            failed = failed_keys(error, tx)
            if Login.key(email) in failed:
                raise ValidationFailed({"email": ("signup.email_taken", {})}) from error
            if Slug.key(slug) in failed:
                slug = f"{base_slug[:52]}-{secrets.token_hex(2)}"
                continue  # the slug was taken a moment ago: try another
            if only_conflicted(error):
                # Another sign-up held the same slug or address as we wrote: wait a
                # moment, then the conditions decide (taken address, taken slug).
                conflict_pause(attempt)
                continue
            raise
        company.version = 1
        return NewAccount(company=company, user=user)
    raise Conflict("signup.try_again")

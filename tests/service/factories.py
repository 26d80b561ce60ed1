"""Service-level builders: a company with an admin, without going through HTTP."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from chalicelib.db.accounts import Login, User
from chalicelib.db.partners import Partnership
from chalicelib.domain.passwords import hash_password
from chalicelib.domain.sharing import ACTIVE
from chalicelib.services import signup
from chalicelib.services.orders import Actor
from chalicelib.services.sessions import now
from tests.web.factories import PASSWORD, unique_email


def new_company(name: str = "Acme Repairs", **overrides: object):
    form = {
        "company_name": name,
        "business_type": "Repairs",
        "area": "Lisbon",
        "contact_name": "Rui Costa",
        "phone": "+351 912 345 678",
        "email": unique_email(),
        "password": PASSWORD,
    }
    account = signup.sign_up(form, "en")
    for key, value in overrides.items():
        setattr(account.company, key, value)
    return account


def staff_actor(account) -> Actor:
    return Actor(
        name=account.user.name,
        user_id=account.user.user_id,
        company_id=account.company.company_id,
    )


def order_form(**overrides: str) -> dict[str, str]:
    form = {
        "customer_name": "Maria José da Silva",
        "customer_phone": "(11) 91234-5678",
        "customer_email": "maria@example.com",
        "service_type": "Screen replacement",
        "brand": "Samsung",
        "model": "A54",
        "problem": "Cracked screen after a fall",
        "priority": "normal",
    }
    form.update(overrides)
    return form


def staff_logins(company, count: int) -> list[tuple[str, str]]:
    """(user id, e-mail) of ``count`` staff colleagues with logins (PASSWORD), written directly.

    For load tests that need many signed-in people fast: no invitation, no e-mail.
    """
    people: list[tuple[str, str]] = []
    password_hash = hash_password(PASSWORD)
    for index in range(count):
        email = f"staff{index}-{secrets.token_hex(3)}@example.com"
        user_id = secrets.token_hex(8)
        User(
            *User.key(company.company_id, user_id),
            user_id=user_id,
            company_id=company.company_id,
            email=email,
            name=f"Staff {index}",
            role="staff",
            created_at=now(),
        ).save()
        Login(
            *Login.key(email),
            user_id=user_id,
            company_id=company.company_id,
            password_hash=password_hash,
        ).save()
        people.append((user_id, email))
    return people


def executor_link(
    company_id: str,
    owner_id: str,
    *,
    state: str = ACTIVE,
    we_execute: bool = True,
    we_approve: bool = False,
    owner_name: str = "Acme Repairs",
) -> Partnership:
    """The executor's side of its partnership with an order's owner, not saved."""
    at = datetime.now(UTC)
    return Partnership(
        *Partnership.key(company_id, owner_id),
        company_id=company_id,
        partner_id=owner_id,
        partner_name=owner_name,
        we_execute=we_execute,
        we_approve=we_approve,
        state=state,
        proposed_by=owner_id,
        created_at=at,
        updated_at=at,
    )

"""Service-level builders: a company with an admin, without going through HTTP."""

from __future__ import annotations

from chalicelib.services import signup
from chalicelib.services.orders import Actor
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

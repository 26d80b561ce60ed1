"""The cast of the access-control suites: who asks (actors), what they hold, how answers classify.

Company A owns everything under test. Around it: an anonymous visitor, the
admin of an unrelated company B, the admin of a partner company P that
executes one of A's orders, a staff member and an admin of A, a customer
holding the private link of A's order, and an intake visitor holding A's
form code and the confirmation link of the request they sent.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from chalicelib.db import keys
from chalicelib.db.accounts import Company
from chalicelib.db.base import Item
from chalicelib.db.orders import Order
from chalicelib.domain.tokens import new_token
from chalicelib.web.intake import form_token
from tests.web.company_factories import staff_member
from tests.web.factories import ids_of, last_mail_to, link_in, mails_to, sign_up, unique_email
from tests.web.session import WebSession

# Answer classes of the matrix.
ALLOWED, LOGIN, FORBIDDEN, NOT_FOUND, BROKEN = "allowed", "login", "403", "404", "5xx"
# Refused by a rule of the feature (403, or back to the page with an error message).
REFUSED = "refused"
DENIED = frozenset({LOGIN, FORBIDDEN, NOT_FOUND, REFUSED})

ORDER = {
    "customer_name": "Matrix Customer",
    "customer_phone": "+55 11 97777-1234",
    "service_type": "Fridge repair",
    "brand": "Electrolux",
    "problem": "Not cooling",
    "internal_notes": "Owner-only note",
    "priority": "normal",
}
_VERSION = re.compile(r'name="version" value="(\d+)"')
_ips = itertools.count(1)


def classify(answer) -> str:
    """What an answer means for access: reached the feature, or refused (and how)."""
    status = answer.status_code
    location = answer.headers.get("Location") or answer.headers.get("location") or ""
    if status in (302, 303) and location.startswith("/login?next="):
        return LOGIN
    if status == 403:
        return FORBIDDEN
    if status == 404:
        return NOT_FOUND
    if status >= 500:
        return BROKEN
    return ALLOWED


def flashed_errors(answer) -> list[str]:
    """The error messages a redirect carries to the next page (the signed flash cookie)."""
    from http.cookies import SimpleCookie

    from chalicelib.web import http

    raw = answer.headers.get("Set-Cookie") or answer.headers.get("set-cookie") or []
    found: list[str] = []
    for line in [raw] if isinstance(raw, str) else list(raw):
        jar: SimpleCookie = SimpleCookie()
        jar.load(line)
        if "flash" in jar and jar["flash"].value:
            found += [
                text
                for level, text in http.unpack(jar["flash"].value, "flash") or []
                if level == "error"
            ]
    return found


def is_refusal(answer) -> bool:
    """403, or a redirect back with an error message (how order pages refuse an action)."""
    return answer.status_code == 403 or (answer.status_code == 303 and bool(flashed_errors(answer)))


def guessed_token() -> str:
    """A well-formed 256-bit token nobody was given."""
    return new_token()


@contextmanager
def own_ip() -> Iterator[str]:
    """Requests come from an address of their own (chalice's test gateway says 127.0.0.1).

    Per-IP limits are shared by every test of a worker; a suite that counts
    attempts (or makes many) uses its own address so it neither trips nor is
    tripped by the others.
    """
    from chalice.local import LambdaEventConverter

    address = f"198.51.{(next(_ips) + secrets.randbelow(200)) % 250}.{secrets.randbelow(250) + 1}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LambdaEventConverter, "LOCAL_SOURCE_IP", address)
        yield address


def lift_limits(patch: pytest.MonkeyPatch, path: str, *scopes: str, to: int = 10**6) -> None:
    """Raise the declared limits of ``path`` (named scopes, or all) for tests about other things."""
    from dataclasses import replace

    from chalicelib.domain import limits

    lifted = tuple(
        replace(rule, maximum=to)
        if rule.path == path and (not scopes or rule.scope in scopes)
        else rule
        for rule in limits.RATE_LIMITS
    )
    patch.setattr(limits, "RATE_LIMITS", lifted)


def cheap_passwords(patch: pytest.MonkeyPatch) -> None:
    """argon2id with tiny costs: these suites test who gets in, not the hash's strength.

    A stored hash carries its own parameters, so verification stays correct.
    """
    from argon2 import PasswordHasher

    from chalicelib.domain import passwords
    from chalicelib.services import signin

    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    patch.setattr(passwords, "_hasher", lambda: fast)
    # Unknown addresses are verified against this (same time as a real check).
    patch.setattr(signin, "DUMMY_HASH", fast.hash(new_token()))


def stored(item: Item) -> dict:
    return json.loads(json.dumps(item.serialize(), default=str, sort_keys=True))


def partition(pk: str) -> list[dict]:
    """Every item of one partition, as stored (one Query; never a Scan)."""
    items = [stored(item) for item in Item.query(pk, consistent_read=True)]
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))


def order_version(order_id: str) -> str:
    return str(Order.get(*Order.key(order_id), consistent_read=True).version)


def register_order(tab: WebSession, **changes: str) -> tuple[str, str]:
    """An order registered through the staff pages; (order id, customer e-mail)."""
    email = unique_email("matrix-customer")
    tab.get("/orders/new")
    answer = tab.post("/orders/new", {**ORDER, "customer_email": email, **changes})
    assert answer.status_code == 303, tab.text()
    return answer.headers["Location"].rsplit("/", 1)[1], email


def customer_token(email: str) -> str:
    sent = [m for m in mails_to(email) if "/o/" in m.text]
    assert sent, f"no private link was e-mailed to {email}"
    return link_in(sent[-1], "/o/").rsplit("/", 1)[1]


def make_partners(owner: WebSession, partner: WebSession, relationship: str = "approve") -> None:
    """``owner`` proposes, ``partner``'s admin accepts: an active partnership."""
    owner_id, partner_id = ids_of(owner)[0], ids_of(partner)[0]
    owner.get(f"/partners/propose?to={partner_id}")
    answer = owner.post("/partners/propose", {"to": partner_id, "relationship": relationship})
    assert answer.status_code == 303, owner.text()
    partner.get(f"/partners/{owner_id}")
    assert partner.post(f"/partners/{owner_id}/accept", {"rev": "1"}).status_code == 303


def share_order(owner: WebSession, order_id: str, executor_id: str) -> None:
    owner.get(f"/orders/{order_id}")
    form = {"action": "assign", "partner_id": executor_id, "version": order_version(order_id)}
    answer = owner.post(f"/orders/{order_id}/executor", form)
    assert answer.status_code == 303, owner.text()


def open_intake_form(admin: WebSession) -> str:
    """Generate (or rotate) the company's intake form code; returns the live code."""
    admin.get("/settings/intake")
    version = _VERSION.search(admin.text()).group(1)
    answer = admin.post("/settings/intake", {"action": "rotate", "version": version})
    assert answer.status_code == 303, admin.text()
    return Company.get(*Company.key(ids_of(admin)[0]), consistent_read=True).intake_code


def intake_fields(**overrides: str) -> dict[str, str]:
    fields = {
        "customer_name": "Intake Visitor",
        "customer_email": unique_email("intake"),
        "customer_phone": "+34 600 123 456",
        "service_type": "Boiler service",
        "brand": "Junkers",
        "model": "Cerapur",
        "problem": "No hot water",
        "website": "",
    }
    fields.update(overrides)
    return fields


def send_intake(visitor: WebSession, code: str, fields: dict[str, str]):
    """Post the embedded form as a person would: a form issued 10 s ago, no CSRF cookie."""
    data = {**fields, "form_token": form_token(code, time.time() - 10)}
    return visitor.post(f"/intake/{code}", data, csrf=None)


def intake_confirmation_token(visitor: WebSession, code: str) -> tuple[str, str]:
    """Send a request through A's form; (requester e-mail, confirmation token)."""
    fields = intake_fields()
    answer = send_intake(visitor, code, fields)
    assert answer.status_code == 200, visitor.text()
    email = fields["customer_email"]
    return email, link_in(last_mail_to(email), "/intake/confirm/").rsplit("/", 1)[1]


@dataclass
class Cast:
    """Company A, its people and resources, and everyone around it."""

    client: object
    admin: WebSession  # admin of A
    staff: WebSession  # staff (non-admin) of A
    other: WebSession  # admin of an unrelated company B
    partner: WebSession  # admin of P, executor of A's shared order
    anonymous: WebSession
    customer: WebSession  # holds the private link of A's shared order
    intake: WebSession  # holds A's form code and a confirmation link
    a_id: str = ""
    partner_id: str = ""
    third_id: str = ""  # a company in the directory anyone may propose to
    shared_order: str = ""
    private_order: str = ""
    customer_token: str = ""
    intake_code: str = ""
    intake_token: str = ""
    csrf: dict[str, str] = field(default_factory=dict)

    def actors(self) -> dict[str, WebSession]:
        return {
            "customer": self.customer,
            "intake": self.intake,
            "anonymous": self.anonymous,
            "other": self.other,
            "partner": self.partner,
            "staff": self.staff,
            "admin": self.admin,
        }

    def snapshot_of_a(self) -> dict[str, list[dict]]:
        """A's data as stored: its company partition and both orders' partitions."""
        return {
            "company": partition(keys.company(self.a_id)),
            "shared": partition(keys.order(self.shared_order)),
            "private": partition(keys.order(self.private_order)),
        }


def build_cast(client) -> Cast:
    admin = sign_up(client, company_name="Owner A Matrix")
    staff = staff_member(client, admin)
    other = sign_up(client, company_name="Outsider B")
    partner = sign_up(client, company_name="Partner P")
    third = sign_up(client, company_name="Directory T")
    make_partners(admin, partner)
    a_id, partner_id = ids_of(admin)[0], ids_of(partner)[0]
    shared, email = register_order(admin)
    share_order(admin, shared, partner_id)
    private, _ = register_order(admin, customer_name="Private Person")
    customer = WebSession(client)
    token = customer_token(email)
    assert customer.get(f"/o/{token}").status_code == 200, customer.text()
    code = open_intake_form(admin)
    intake = WebSession(client)
    assert intake.get(f"/intake/{code}").status_code == 200
    _email, confirm = intake_confirmation_token(intake, code)
    cast = Cast(
        client=client,
        admin=admin,
        staff=staff,
        other=other,
        partner=partner,
        anonymous=WebSession(client),
        customer=customer,
        intake=intake,
        a_id=a_id,
        partner_id=partner_id,
        third_id=ids_of(third)[0],
        shared_order=shared,
        private_order=private,
        customer_token=token,
        intake_code=code,
        intake_token=confirm,
    )
    for name, tab in cast.actors().items():
        tab.get("/")
        cast.csrf[name] = tab.csrf()
    return cast

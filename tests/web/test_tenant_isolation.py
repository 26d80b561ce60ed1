"""Tenant isolation, proven on every route: company B never reaches company A's resources.

The routes come from the app's own route table, so a route added tomorrow is
checked without anyone editing this file, as long as its path parameters
have a factory in ``RESOURCES``. A route whose parameter has none makes
``test_every_id_route_has_a_resource_factory`` fail: whoever adds the route
registers how to create such a resource in company A and how to tell it is
untouched. Every read must be keyed by the signed-in company (``CO#<B>`` +
A's id simply does not exist), so B's answer is the 404 page: never A's data,
never a 200 or a 403 that would tell B the id exists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from pynamodb.exceptions import DoesNotExist

from chalicelib.db import keys
from chalicelib.db.accounts import Company, Invitation, LinkToken, User
from chalicelib.db.base import Item
from chalicelib.domain.tokens import token_hash
from chalicelib.web.context import ADMIN, PUBLIC
from tests.web.factories import ids_of, invite_member, last_mail_to, link_in, unique_email
from tests.web.session import WebSession

_PARAM = re.compile(r"{(\w+)\+?}")

# Routes registered with a bare ``bp.route`` bypass the ``route`` decorator
# (no session, no CSRF, no role check); each must be listed here on purpose,
# and must serve only public content.
RAW_ROUTES: frozenset[str] = frozenset(
    {
        "/static/{name}",
        "/healthz",
        # Logos are public (the public company page shows them); names are
        # content hashes, and the route reads no table item.
        "/logo/{company_id}/{name}",
        # Site icons and the web app manifest: fixed public files.
        "/favicon.ico",
        "/apple-touch-icon.png",
        "/manifest.webmanifest",
    }
)

# Settings pages staff may open. Empty: every /settings route is admin-only.
STAFF_SETTINGS_ROUTES: frozenset[str] = frozenset()


@dataclass
class World:
    """Two companies, each with a signed-in admin, and A's resources by parameter name."""

    client: object
    a_admin: WebSession
    b_admin: WebSession
    made: dict[str, str] = field(default_factory=dict)

    @property
    def a_company_id(self) -> str:
        return ids_of(self.a_admin)[0]


@dataclass(frozen=True)
class Resource:
    """How to create one resource of company A, and what of it B must never change.

    ``state`` reads the stored items (never through a page, which could
    itself write); ``None`` means the resource does not exist.
    """

    create: Callable[[World], str]
    state: Callable[[World, str], object]


def _stored(item: Item) -> dict:
    return json.loads(json.dumps(item.serialize(), default=str, sort_keys=True))


def _user_in_a(world: World) -> str:
    staff = invite_member(world.client, world.a_admin, name="Isolated Staff")
    return ids_of(staff)[1]


def _user_state(world: World, user_id: str) -> object:
    try:
        return _stored(User.get(*User.key(world.a_company_id, user_id)))
    except DoesNotExist:
        return None


def _invitation_in_a(world: World) -> str:
    email = unique_email("isolated")
    world.a_admin.get("/settings/users")
    answer = world.a_admin.post(
        "/settings/users/invite", {"name": "Isolated Guest", "email": email, "role": "staff"}
    )
    assert answer.status_code == 303, world.a_admin.text()
    token = link_in(last_mail_to(email), "/invite/").rsplit("/", 1)[1]
    return token_hash(token)


def _invitation_state(world: World, invite_id: str) -> object:
    try:
        pending = Invitation.get(*Invitation.key(world.a_company_id, invite_id))
        link = LinkToken.get(*LinkToken.key("INVITE", invite_id))
    except DoesNotExist:
        return None
    return [_stored(pending), _stored(link)]


ORDER_FORM = {
    "customer_name": "Isolated Customer",
    "customer_phone": "+55 11 90000-0000",
    "customer_email": "isolated@example.com",
    "service_type": "Boiler repair",
    "brand": "Vaillant",
    "problem": "No hot water",
    "priority": "high",
}


def _order_in_a(world: World) -> str:
    world.a_admin.get("/orders/new")
    answer = world.a_admin.post("/orders/new", ORDER_FORM)
    assert answer.status_code == 303, world.a_admin.text()
    return answer.headers["Location"].rsplit("/", 1)[-1]


def _order_state(world: World, order_id: str) -> object:
    # The whole ORDER#<id> partition: the order, its history and its chat.
    items = [_stored(item) for item in Item.query(keys.order(order_id))]
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True)) or None


def _field_in_a(world: World) -> str:
    world.a_admin.get("/settings/fields")
    answer = world.a_admin.post("/settings/fields", {"label": "Isolated Serial", "kind": "text"})
    assert answer.status_code == 303, world.a_admin.text()
    company = Company.get(*Company.key(world.a_company_id))
    return next(f.field_id for f in company.custom_fields if f.label == "Isolated Serial")


def _field_state(world: World, field_id: str) -> object:
    company = Company.get(*Company.key(world.a_company_id))
    found = [f.as_dict() for f in company.custom_fields or [] if f.field_id == field_id]
    return json.loads(json.dumps(found, default=str)) or None


def _export_in_a(world: World) -> str:
    _order_in_a(world)
    world.a_admin.get("/orders?view=all")
    answer = world.a_admin.post("/exports", {"view": "all"})
    assert answer.status_code == 303, world.a_admin.text()
    return answer.headers["Location"].rsplit("/", 1)[-1]


def _export_state(world: World, export_id: str) -> object:
    from chalicelib.db.exports import ExportJob

    try:
        return _stored(ExportJob.get(*ExportJob.key(world.a_company_id, export_id)))
    except DoesNotExist:
        return None


def _partnership_in_a(world: World) -> str:
    """An active partnership of A with a third company C; the id in the URL is C's."""
    from tests.web.factories import sign_up

    third = sign_up(world.client, company_name="Company C")
    third_id = ids_of(third)[0]
    world.a_admin.get(f"/partners/propose?to={third_id}")
    answer = world.a_admin.post("/partners/propose", {"to": third_id, "relationship": "both"})
    assert answer.status_code == 303, world.a_admin.text()
    third.get(f"/partners/{world.a_company_id}")
    assert third.post(f"/partners/{world.a_company_id}/accept", {"rev": "1"}).status_code == 303
    return third_id


def _partnership_state(world: World, partner_id: str) -> object:
    from chalicelib.db.partners import Partnership

    try:
        mine = Partnership.get(*Partnership.key(world.a_company_id, partner_id))
        theirs = Partnership.get(*Partnership.key(partner_id, world.a_company_id))
    except DoesNotExist:
        return None
    return [_stored(mine), _stored(theirs)]


def _partner_invite_in_a(world: World) -> str:
    email = unique_email("isolated-partner")
    world.a_admin.get("/partners")
    answer = world.a_admin.post("/partners/invite", {"email": email, "relationship": "approve"})
    assert answer.status_code == 303, world.a_admin.text()
    token = link_in(last_mail_to(email), "/signup?invite=").split("invite=", 1)[1]
    return token_hash(token)


def _partner_invite_state(world: World, invite_id: str) -> object:
    from chalicelib.db.partners import PartnerInvite

    try:
        listing = PartnerInvite.get(*PartnerInvite.listing_key(world.a_company_id, invite_id))
        link = PartnerInvite.get(*PartnerInvite.link_key(invite_id))
    except DoesNotExist:
        return None
    return [_stored(listing), _stored(link)]


def _archive_in_a(world: World) -> str:
    from chalicelib.services import takeout

    world.a_admin.get("/settings/data")
    answer = world.a_admin.post("/settings/data/archive")
    assert answer.status_code == 303, world.a_admin.text()
    takeout.join_background()
    return answer.headers["Location"].rsplit("/", 1)[-1]


def _archive_state(world: World, archive_id: str) -> object:
    from chalicelib.db.data_rights import DataArchive

    try:
        return _stored(DataArchive.get(*DataArchive.key(world.a_company_id, archive_id)))
    except DoesNotExist:
        return None


# Path parameter name -> how to make such a resource in company A.
# Register every new parameter here (customers, partners, files...).
RESOURCES: dict[str, Resource] = {
    "user_id": Resource(create=_user_in_a, state=_user_state),
    "invite_id": Resource(create=_invitation_in_a, state=_invitation_state),
    "order_id": Resource(create=_order_in_a, state=_order_state),
    "field_id": Resource(create=_field_in_a, state=_field_state),
    "partner_id": Resource(create=_partnership_in_a, state=_partnership_state),
    "partner_invite_id": Resource(create=_partner_invite_in_a, state=_partner_invite_state),
    "export_id": Resource(create=_export_in_a, state=_export_state),
    "archive_id": Resource(create=_archive_in_a, state=_archive_state),
}

# Form fields that make a POST a real attempt to change A's resource (a
# handler may validate the form before it looks the id up).
POST_FORMS: dict[str, dict[str, str]] = {
    "/settings/users/{user_id}/role": {"role": "admin"},
    "/orders/{order_id}/edit": {**ORDER_FORM, "customer_name": "Changed by B", "version": "1"},
    "/orders/{order_id}/status": {"action": "cancel", "note": "company B", "version": "1"},
    "/orders/{order_id}/messages": {"text": "company B was here"},
    "/settings/fields/{field_id}": {"action": "require"},
    "/partners/{partner_id}/accept": {"rev": "2"},
    "/partners/{partner_id}/change": {"relationship": "approve", "rev": "2"},
    "/orders/{order_id}/executor": {"action": "withdraw", "version": "1"},
    "/orders/{order_id}/quote": {"quote_value": "10", "quote_text": "B", "version": "1"},
    "/orders/{order_id}/quote/decision": {"decision": "approve", "version": "1"},
}


@dataclass(frozen=True)
class RouteInfo:
    path: str
    method: str
    auth: str | None
    params: tuple[str, ...]


def _route_table(app) -> list[RouteInfo]:
    found = []
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            if method == "HEAD":  # the GET without a body: tests/web/test_head_requests.py
                continue
            auth = getattr(entry.view_function, "checkos_auth", None)
            found.append(RouteInfo(path, method, auth, tuple(_PARAM.findall(path))))
    return sorted(found, key=lambda r: (r.path, r.method))


def _id_routes(app) -> list[RouteInfo]:
    """Routes behind a sign-in whose path names a resource."""
    return [r for r in _route_table(app) if r.auth not in (None, PUBLIC) and r.params]


def test_the_route_table_is_what_the_app_serves(app):
    paths = {r.path for r in _route_table(app)}
    # Sanity: the table is read from the real app, with the users routes in it.
    assert "/settings/users/{user_id}/remove" in paths
    assert "/{proxy+}" in paths


def test_every_route_goes_through_the_route_decorator_or_is_listed(app):
    bare = {r.path for r in _route_table(app) if r.auth is None} - RAW_ROUTES
    assert not bare, f"routes without session/CSRF/role handling: {sorted(bare)}"


def test_every_id_route_has_a_resource_factory(app):
    missing = [
        f"{r.method} {r.path}: {{{name}}}"
        for r in _id_routes(app)
        for name in r.params
        if name not in RESOURCES
    ]
    assert not missing, (
        "register a factory in tests/web/test_tenant_isolation.py RESOURCES for: "
        + "; ".join(missing)
    )


def test_every_settings_route_is_admin_only(app):
    loose = [
        f"{r.method} {r.path} ({r.auth})"
        for r in _route_table(app)
        if r.path.startswith("/settings")
        and r.path not in STAFF_SETTINGS_ROUTES
        and r.auth != ADMIN
    ]
    assert not loose, f"settings routes staff could use: {loose}"


def _url(route: RouteInfo, ids: dict[str, str]) -> str:
    return _PARAM.sub(lambda match: ids[match.group(1)], route.path)


def test_company_b_gets_404_for_every_resource_of_company_a(app, client):
    from tests.web.factories import sign_up

    routes = [r for r in _id_routes(app) if all(name in RESOURCES for name in r.params)]
    if not routes:
        pytest.skip("no route takes an id yet")
    world = World(
        client=client,
        a_admin=sign_up(client, company_name="Company A Secrets"),
        b_admin=sign_up(client, company_name="Company B"),
    )
    before: dict[str, object] = {}
    for name in sorted({name for r in routes for name in r.params}):
        world.made[name] = RESOURCES[name].create(world)
        before[name] = RESOURCES[name].state(world, world.made[name])
        assert before[name] is not None, f"the factory for {{{name}}} made nothing"
    intruder = world.b_admin
    intruder.get("/")
    b_csrf = intruder.csrf()  # a valid token of B: only the tenant check may refuse
    leaks: list[str] = []
    for route in routes:
        url = _url(route, world.made)
        if route.method == "GET":
            answer = intruder.get(url)
        elif route.method == "POST":
            answer = intruder.post(url, POST_FORMS.get(route.path, {}), csrf=b_csrf)
        else:
            leaks.append(f"{route.method} {route.path}: teach this test the method")
            continue
        body = intruder.text()
        if answer.status_code != 404 or "Page not found" not in body:
            leaks.append(f"{route.method} {url} answered {answer.status_code}")
        if "Company A Secrets" in body or world.a_admin.email in body:
            leaks.append(f"{route.method} {url} showed company A's data")
        for name in route.params:
            if RESOURCES[name].state(world, world.made[name]) != before[name]:
                leaks.append(f"{route.method} {url} changed company A's {name}")
        assert "sid" in intruder.cookies, f"{route.method} {url} signed company B out"
    assert not leaks, "\n".join(leaks)
    # A's own admin still reaches the same resources (the ids were real).
    world.a_admin.get("/settings/users")
    assert "Isolated Staff" in world.a_admin.text()


def test_a_partner_reaches_exactly_the_orders_shared_with_it(app, client):
    """Partners extend isolation, not weaken it: B executes A's shared order and nothing else."""
    from tests.web.factories import sign_up

    owner = sign_up(client, company_name="Company A Secrets")
    partner = sign_up(client, company_name="Company B Partner")
    owner_id, partner_id = ids_of(owner)[0], ids_of(partner)[0]
    owner.get(f"/partners/propose?to={partner_id}")
    owner.post("/partners/propose", {"to": partner_id, "relationship": "approve"})
    partner.get(f"/partners/{owner_id}")
    assert partner.post(f"/partners/{owner_id}/accept", {"rev": "1"}).status_code == 303
    world = World(client=client, a_admin=owner, b_admin=partner)
    shared = _order_in_a(world)
    owner.get("/orders/new")
    unshared_answer = owner.post("/orders/new", {**ORDER_FORM, "customer_name": "Private Person"})
    unshared = unshared_answer.headers["Location"].rsplit("/", 1)[-1]
    owner.get(f"/orders/{shared}")
    from chalicelib.db.orders import Order

    version = str(Order.get(*Order.key(shared), consistent_read=True).version)
    shared_form = {"action": "assign", "partner_id": partner_id, "version": version}
    assert owner.post(f"/orders/{shared}/executor", shared_form).status_code == 303
    assert partner.get(f"/orders/{shared}").status_code == 200
    partner.get("/orders?view=all")
    assert "Isolated Customer" in partner.text() and "Private Person" not in partner.text()
    before = _order_state(world, unshared)
    b_csrf = partner.csrf()
    leaks: list[str] = []
    for route in [r for r in _id_routes(app) if r.params == ("order_id",)]:
        url = _url(route, {"order_id": unshared})
        if route.method == "GET":
            answer = partner.get(url)
        else:
            answer = partner.post(url, POST_FORMS.get(route.path, {}), csrf=b_csrf)
        if answer.status_code != 404 or "Private Person" in partner.text():
            leaks.append(f"{route.method} {url} answered {answer.status_code}")
    assert not leaks, "\n".join(leaks)
    assert _order_state(world, unshared) == before
    # Nor does the partnership open the partner's other pages to A's ids.
    assert partner.get(f"/partners/{partner_id}").status_code == 404

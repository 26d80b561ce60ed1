"""The access matrix: every route, method and actor, with the answer each must get.

The routes come from the app's own route table. What each actor may do
follows from the route's declared auth (``checkos_auth``, set by the
``route`` decorator) and from who owns what its path names:

- ``staff`` / ``admin`` routes: signed-out visitors are sent to the login
  page (GET) or refused (POST, 403); staff of the owner are refused admin
  routes (403); another company, and a partner outside what is shared with
  it, get the 404 page for the owner's ids, and their own data on routes
  that name none; the owner's staff and admins reach the feature.
- ``public`` routes are either open to everyone (listed in ``OPEN``) or
  keyed by a capability (listed in ``CAPABILITIES``): its holder reaches the
  page, everyone else can only guess a token and gets 404.

A route the matrix cannot classify (a new public route, a new order route
the partner table does not know) fails ``test_every_route_is_classified``.
Refused writes must change nothing: the owner's stored data is compared
before and after every refused POST.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from chalicelib.db.accounts import Company
from chalicelib.services import follow_form
from chalicelib.services import intake as intake_service
from chalicelib.services.intake import RateLimit
from chalicelib.web.context import ADMIN, PUBLIC, STAFF
from tests.background import join_background
from tests.figures import report
from tests.security.actors import (
    ALLOWED,
    BROKEN,
    DENIED,
    FORBIDDEN,
    LOGIN,
    NOT_FOUND,
    REFUSED,
    Cast,
    build_cast,
    cheap_passwords,
    classify,
    guessed_token,
    is_refusal,
    lift_limits,
    order_version,
    own_ip,
)
from tests.web.company_factories import image_bytes, upload_logo
from tests.web.test_tenant_isolation import POST_FORMS, RAW_ROUTES, RESOURCES, World

_PARAM = re.compile(r"{(\w+)\+?}")
# Open content whose answer must not depend on who asks.
SAME = "same for everyone"
SIGNED_IN = ("other", "partner", "staff", "admin")
OPEN_ACTORS = ("anonymous", "admin")
OWNERS = ("staff", "admin")

# Public routes anyone may use: they read nothing private of anyone
# (pages, forms, static files, the public company page, dev-only tools that
# answer 404 outside the local run). ``/{proxy+}`` is the 404 page itself.
OPEN: dict[str, str] = {
    "/": ALLOWED,
    "/login": ALLOWED,
    "/logout": ALLOWED,
    "/signup": ALLOWED,
    "/password/forgot": ALLOWED,
    "/language": ALLOWED,
    "/c/{slug}": ALLOWED,
    "/follow/{slug}": ALLOWED,
    "/static/{name}": ALLOWED,
    "/healthz": ALLOWED,
    "/favicon.ico": ALLOWED,
    "/apple-touch-icon.png": ALLOWED,
    "/manifest.webmanifest": ALLOWED,
    "/logo/{company_id}/{name}": ALLOWED,
    "/dev/jobs": ALLOWED,  # OUTBOX_ENABLED only (local run, tests); 404 in prod
    "/dev/outbox": ALLOWED,
    "/dev/outbox/{index}": ALLOWED,
    "/dev/outbox/{index}/html": ALLOWED,
    "/{proxy+}": NOT_FOUND,
    "/goodbye": ALLOWED,
    # The help center: content that depends on no one (whatever the
    # article or screenshot asked for exists or not, everyone gets the same).
    "/help": SAME,
    "/help/{slug}": SAME,
    "/help/img/{name}": SAME,
    "/help/language": SAME,
    "/about": SAME,
    "/policy": SAME,
}

# Public routes whose path parameter is a secret: route -> (holder, Cast attribute).
# No actor of the matrix holds an invitation or a reset link (their
# holders are tested in test_tokens.py): for everyone here they are guesses.
CAPABILITIES: dict[str, tuple[str | None, str]] = {
    "/o/{token}": ("customer", "customer_token"),
    "/o/{token}/messages": ("customer", "customer_token"),
    "/o/{token}/rating": ("customer", "customer_token"),
    "/o/{token}/mail": ("customer", "customer_token"),
    "/unsubscribe/{token}": (None, ""),
    "/intake/{code}": ("intake", "intake_code"),
    "/api/v1/intake/{code}": ("intake", "intake_code"),
    "/intake/confirm/{token}": ("intake", "intake_token"),
    "/invite/{token}": (None, ""),
    "/password/reset/{token}": (None, ""),
    "/login/unlock/{token}": (None, ""),  # holders: tests/web/test_lockout.py
}

# The partner executes the shared order: what it may do there. Owner-only
# actions are refused (403 or an error message on the order page), never
# 404: the partner legitimately knows the order exists.
PARTNER_ON_SHARED: dict[tuple[str, str], str] = {
    ("GET", "/orders/{order_id}"): ALLOWED,
    ("GET", "/orders/{order_id}/print"): ALLOWED,
    ("GET", "/orders/{order_id}/edit"): REFUSED,
    ("POST", "/orders/{order_id}/edit"): REFUSED,
    ("POST", "/orders/{order_id}/status"): ALLOWED,
    ("POST", "/orders/{order_id}/messages"): ALLOWED,
    ("POST", "/orders/{order_id}/quote"): ALLOWED,
    ("POST", "/orders/{order_id}/quote/decision"): REFUSED,
    ("POST", "/orders/{order_id}/executor"): REFUSED,
    # The customer's link is the owner's business: the partner gets 404.
    ("POST", "/orders/{order_id}/access/resend"): NOT_FOUND,
    ("POST", "/orders/{order_id}/access/revoke"): NOT_FOUND,
}

# The owner's people refused by a rule of the feature rather than by the route's auth.
ROLE_RULES: dict[tuple[str, str, str], str] = {
    ("staff", "POST", "/orders/{order_id}/quote"): REFUSED,  # only the executor quotes
    ("admin", "POST", "/orders/{order_id}/quote"): REFUSED,
    ("staff", "POST", "/partners/propose"): FORBIDDEN,  # staff see, admins decide
}

# Forms that make a POST a real attempt (the tenant-isolation forms, plus these).
FORMS: dict[str, dict[str, str]] = {
    **POST_FORMS,
    "/language": {"locale": "en", "next": "/"},
    "/notifications/read": {"note": "all", "next": "/"},
    "/settings/intake": {"origins": ""},  # never "rotate": the intake visitor holds the code
    "/follow/{slug}": {"number": "1", "email": "matrix@example.com"},
    "/o/{token}/messages": {"text": "matrix was here"},
    "/o/{token}/rating": {"stars": "5"},
    "/settings/follow-snippet": {"accent": "nope"},
    "/settings/users/invite": {"name": "", "email": "bad", "role": "staff"},
    "/orders/new": {"customer_name": ""},
    "/settings/data/delete": {"confirmation": "", "password": ""},  # refused: nothing erased
}
# Writes that end something: each actor does them last.
_LAST = ("/remove", "/revoke", "/delete")


@dataclass(frozen=True)
class Cell:
    actor: str
    method: str
    path: str
    variant: str  # which resource fills the path ("" = A's, "private" = A's unshared order)
    expected: str


def _routes(app) -> list[tuple[str, str, str | None]]:
    found = []
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            if method == "HEAD":  # the GET without a body: tests/web/test_head_requests.py
                continue
            found.append((path, method, getattr(entry.view_function, "checkos_auth", None)))
    return sorted(found)


class Unclassified(Exception):
    pass


def expected(path: str, method: str, auth: str | None, actor: str, variant: str = "") -> str:
    """The answer class ``actor`` must get; Unclassified when the matrix does not know."""
    params = _PARAM.findall(path)
    if auth is None:
        if path not in RAW_ROUTES or path not in OPEN:
            raise Unclassified(f"{method} {path}: bare route not listed as open")
        return OPEN[path]
    if auth == PUBLIC:
        if path in CAPABILITIES:
            holder, _ = CAPABILITIES[path]
            return ALLOWED if actor == holder else NOT_FOUND
        if path in OPEN:
            return OPEN[path]
        raise Unclassified(f"{method} {path}: public route neither OPEN nor a CAPABILITY")
    if auth not in (STAFF, ADMIN):
        raise Unclassified(f"{method} {path}: unknown auth {auth!r}")
    if actor not in SIGNED_IN:
        return LOGIN if method == "GET" else FORBIDDEN
    if auth == ADMIN and actor == "staff":
        return FORBIDDEN
    if (actor, method, path) in ROLE_RULES:
        return ROLE_RULES[(actor, method, path)]
    if not params:
        return ALLOWED  # every signed-in actor on its own company's page
    if any(name not in RESOURCES for name in params):
        raise Unclassified(f"{method} {path}: no resource factory for {params}")
    if actor == "other":
        return NOT_FOUND
    if actor == "partner":
        if params != ["order_id"] or variant == "private":
            return NOT_FOUND
        if (method, path) not in PARTNER_ON_SHARED:
            raise Unclassified(f"{method} {path}: say what the partner may do (PARTNER_ON_SHARED)")
        return PARTNER_ON_SHARED[(method, path)]
    return ALLOWED


def test_every_route_is_classified(app):
    problems = []
    for path, method, auth in _routes(app):
        for actor in ("customer", "intake", "anonymous", *SIGNED_IN):
            try:
                expected(path, method, auth, actor)
            except Unclassified as problem:
                problems.append(str(problem))
                break
    served = {path for path, _, _ in _routes(app)}
    stale = sorted((set(OPEN) | set(CAPABILITIES)) - served)
    stale += sorted({p for _, p in PARTNER_ON_SHARED} - served)
    stale += sorted({p for _, _, p in ROLE_RULES} - served)
    assert not problems, "classify these routes in tests/security/test_access_matrix.py:\n" + (
        "\n".join(problems)
    )
    assert not stale, f"the matrix lists routes the app no longer serves: {stale}"


# -- the matrix ----------------------------------------------------------------


@dataclass
class Stage:
    cast: Cast
    world: World
    values: dict[str, str]  # path parameter -> A's resource


@pytest.fixture(scope="module")
def stage(aws: None, app) -> Iterator[Stage]:
    """One cast for the module, from its own IP, with limits the matrix does not trip."""
    from chalice.test import Client

    with own_ip(), Client(app) as client, pytest.MonkeyPatch.context() as patch:
        cheap_passwords(patch)
        patch.setattr(follow_form, "FOLLOW_ANSWER_SECONDS", 0)
        lift_limits(patch, "follow", "ip")
        patch.setattr(intake_service, "RATE_LIMITS", (RateLimit("ip", "hour", 10_000),))
        cast = build_cast(client)
        assert upload_logo(cast.admin, image_bytes()).status_code == 303
        world = World(client=client, a_admin=cast.admin, b_admin=cast.other)
        for name, resource in RESOURCES.items():
            if name != "order_id":
                world.made[name] = resource.create(world)
        world.made["order_id"] = cast.shared_order
        company = Company.get(*Company.key(cast.a_id), consistent_read=True)
        values = {
            **world.made,
            "slug": company.slug,
            "company_id": cast.a_id,
            "name": company.logo_key.rsplit("/", 1)[1],
            "index": "0",
            "proxy": "no-such-page-here",
        }
        yield Stage(cast=cast, world=world, values=values)


def _url(stage: Stage, cell: Cell) -> str:
    cast = stage.cast

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name in ("token", "code"):
            holder, attribute = CAPABILITIES[cell.path]
            return getattr(cast, attribute) if cell.actor == holder else guessed_token()
        if name == "order_id" and cell.variant == "private":
            return cast.private_order
        if name == "name" and cell.path == "/static/{name}":
            return "app.css"
        return stage.values.get(name) or guessed_token()[:16]

    url = _PARAM.sub(fill, cell.path)
    if cell.path == "/partners/propose" and cell.method == "GET":
        url += f"?to={cast.third_id}"
    return url


def _form(stage: Stage, cell: Cell, url: str) -> dict[str, str]:
    if cell.path == "/partners/propose":
        return {"to": stage.cast.third_id, "relationship": "approve"}
    if cell.path == "/login":  # a real account: a wrong password, verified against its hash
        return {"email": stage.cast.other.email, "password": "not the password"}
    form = dict(FORMS.get(cell.path, {}))
    if "version" in form and cell.path.startswith("/orders/{order_id}"):
        # The current version: only the access rule may stop the write.
        form["version"] = order_version(url.split("/")[2])
    return form


def _ask(stage: Stage, cell: Cell):
    answer = _send(stage, cell)
    join_background()  # a job started by this request must not overlap the next one
    return answer


def _send(stage: Stage, cell: Cell):
    cast = stage.cast
    tab = cast.actors()[cell.actor]
    url = _url(stage, cell)
    if cell.method == "GET":
        return tab.get(url)
    if cell.method == "POST" and cell.path.startswith("/api/"):
        headers = tab._headers({"Content-Type": "application/json"})
        return tab._keep(cast.client.http.post(url, headers=headers, body=json.dumps({})))
    if cell.method == "POST":
        return tab.post(url, _form(stage, cell, url), csrf=cast.csrf[cell.actor])
    if cell.method == "OPTIONS":
        headers = tab._headers({"Origin": "https://shop.example"})
        return tab._keep(cast.client.http.options(url, headers=headers))
    raise AssertionError(f"teach the matrix the {cell.method} method")


def _cells(app) -> list[Cell]:
    cells = []
    for path, method, auth in _routes(app):
        # Open routes serve no one's private data: a signed-out and a signed-in
        # visitor are enough to show the answer does not depend on who asks.
        actors = OPEN_ACTORS if path in OPEN else ("customer", "intake", "anonymous", *SIGNED_IN)
        for actor in actors:
            variants = [""]
            if actor == "partner" and "{order_id}" in path:
                variants.append("private")
            for variant in variants:
                try:
                    want = expected(path, method, auth, actor, variant)
                except Unclassified:
                    continue  # test_every_route_is_classified names it
                cells.append(Cell(actor, method, path, variant, want))
    return cells


def _order_key(cell: Cell) -> tuple:
    """Allowed writes run actor by actor, each one's ending writes (and logout) last."""
    actors = list(("customer", "intake", "anonymous", *SIGNED_IN))
    ending = 2 if cell.path == "/logout" else int(cell.path.endswith(_LAST))
    return actors.index(cell.actor), ending, cell.path, cell.method


def _leak_markers(stage: Stage, actor: str) -> list[str]:
    if actor in OWNERS:
        return []
    markers = ["Private Person", "Owner-only note", "Isolated Staff", stage.cast.admin.email]
    if actor != "partner":
        markers.append("Owner A Matrix")
    return markers


def test_every_actor_gets_exactly_its_due_on_every_route(app, stage):
    cast = stage.cast
    cells = _cells(app)
    leaks: list[str] = []
    wrong: list[str] = []

    made = stage.world.made

    def resource_states() -> dict[str, object]:
        return {name: RESOURCES[name].state(stage.world, made[name]) for name in made}

    # 1. Every refusal first, while A's data is all there: nothing may change.
    before, states = cast.snapshot_of_a(), resource_states()
    asked = 0
    for cell in [c for c in cells if c.expected in DENIED]:
        answer = _ask(stage, cell)
        asked += 1
        got = classify(answer)
        if cell.expected == REFUSED and is_refusal(answer):
            got = REFUSED
        tab = cast.actors()[cell.actor]
        where = f"{cell.actor:9} {cell.method} {cell.path} {cell.variant}".rstrip()
        if got != cell.expected:
            (leaks if got == ALLOWED else wrong).append(f"{where}: {got}, want {cell.expected}")
        shown = [m for m in _leak_markers(stage, cell.actor) if m in tab.text()]
        if shown:
            leaks.append(f"{where}: showed {shown}")
        for name in _PARAM.findall(cell.path) if cell.method == "POST" else ():
            if name in states and RESOURCES[name].state(stage.world, made[name]) != states[name]:
                leaks.append(f"{where}: changed A's {name}")
                states[name] = RESOURCES[name].state(stage.world, made[name])
    if cast.snapshot_of_a() != before or resource_states() != states:
        leaks.append("refused requests changed company A's stored data")

    # 2. Then every allowed cell, actor by actor, ending writes last.
    same: dict[tuple[str, str], set[str]] = {}
    for cell in sorted([c for c in cells if c.expected not in DENIED], key=_order_key):
        got = classify(_ask(stage, cell))
        asked += 1
        if cell.expected == SAME:
            same.setdefault((cell.method, cell.path), set()).add(got)
        elif got != ALLOWED:
            where = f"{cell.actor:9} {cell.method} {cell.path} {cell.variant}".rstrip()
            wrong.append(f"{where}: {got}, want allowed")
    for (method, path), classes in same.items():
        if len(classes) != 1 or BROKEN in classes:
            wrong.append(f"{method} {path}: answers differ by actor: {sorted(classes)}")

    # cells: the cells actually asked (all of the matrix, or the test failed before here).
    report(
        "access",
        require=("routes", "cells"),
        routes=len(_routes(app)),
        cells=asked,
        leaks=len(leaks),
        wrong=len(wrong),
    )
    assert asked == len(cells), f"asked {asked} of {len(cells)} cells"
    assert not leaks, "access leaks:\n" + "\n".join(leaks)
    assert not wrong, "answers other than expected:\n" + "\n".join(wrong)

"""Fuzzing every POST route (forms and the JSON API) with hostile bodies: no 500, clear refusals.

The routes come from ``app.routes``, so a new endpoint is fuzzed without
touching this file. Path parameters get the ids of a real company's order,
partner, intake code and customer link (or a random id where the route only
needs one). Every route gets its own generated bodies (strategies.py,
``PER_ROUTE`` examples each, counted per route in the figure line); each
example posts one body: the answer must not be a server error (status >= 500
or the app's 500 page); a refusal must be a 4xx that names the problem: one
of the page's problem elements (a field error, an error flash or alert, the
error page's message) or the JSON ``message`` is a message of the catalogue
in the visitor's language, not merely the page layout; and a refused request
must not have written anything: the company's and the order's partitions
are compared before and after, and the invariant checker runs over the
company at the end.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import zlib
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from chalicelib.i18n import DEFAULT_LOCALE, catalog, variants
from chalicelib.services import follow_form
from chalicelib.services import intake as intake_service
from chalicelib.services.intake import RateLimit
from tests.background import join_background
from tests.figures import report
from tests.security.strategies import PER_ROUTE, PROFILE, THOROUGH, Body, bodies
from tests.web.factories import ids_of, link_in, mails_to, sign_up, unique_email
from tests.web.session import WebSession

SERVER_ERROR_TEXT = "Something went wrong"
# Items a refused request may legitimately write: rate-limit and attempt counters.
VOLATILE = re.compile(r"^(THROTTLE|RATE|HIT|EMAILCODE|CODE|SESSION)", re.I)


@pytest.fixture(autouse=True)
def _quick_public_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    """One IP for every request: lift public rate limits and the follow form's answer delay."""
    monkeypatch.setattr(intake_service, "RATE_LIMITS", (RateLimit("ip", "hour", 10**6),))
    monkeypatch.setattr(follow_form, "FOLLOW_ANSWER_SECONDS", 0.0)


@dataclass
class Target:
    """Who the fuzzed requests act as, and the ids their paths take."""

    admin: WebSession
    anonymous: WebSession
    company_id: str
    order_id: str
    params: dict[str, str]
    stats: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def _target(client) -> Target:
    admin = sign_up(client)
    partner = sign_up(client)
    company_id, user_id = ids_of(admin)
    partner_id, _ = ids_of(partner)
    admin.get("/orders/new")
    email = unique_email("fuzzed")
    answer = admin.post(
        "/orders/new", {"customer_name": "Fuzz", "problem": "Fuzz", "customer_email": email}
    )
    order_id = answer.headers["Location"].rsplit("/", 1)[1]
    token = link_in(mails_to(email)[-1], "/o/").rsplit("/", 1)[1]
    admin.get("/settings/intake")
    version = re.search(r'name="version" value="(\d+)"', admin.text()).group(1)
    admin.post("/settings/intake", {"action": "rotate", "version": version})
    admin.get("/settings/intake")
    code = re.search(r"/intake/([A-Za-z0-9_-]{20,})", admin.text()).group(1)
    slug = re.search(
        r'href="/c/([^"]+)"', admin.text() + admin.get("/settings/company").body.decode()
    )
    params = {
        "order_id": order_id,
        "token": token,
        "code": code,
        "slug": slug.group(1) if slug else "none",
        "partner_id": partner_id,
        "user_id": secrets.token_hex(8),  # never the admin: a lucky body could remove them
        "invite_id": secrets.token_hex(16),
        "partner_invite_id": secrets.token_hex(16),
        "field_id": secrets.token_hex(4),
        "export_id": secrets.token_hex(8),
        "proxy": "no-such-page",  # chalice.test matches one segment of a greedy path only
    }
    anonymous = WebSession(client, accept_language="es")  # refusals in the visitor's language
    anonymous.get("/login")
    admin.get("/")
    assert user_id
    return Target(admin, anonymous, company_id, order_id, params)


def post_routes(app) -> list[tuple[str, str]]:
    """(path template, auth) of every POST route the app registers."""
    found = []
    for path, methods in sorted(app.routes.items()):
        entry = methods.get("POST")
        if entry is not None:
            found.append((path, getattr(entry.view_function, "checkos_auth", "public")))
    return found


def _path(template: str, params: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\+?\}", lambda m: params.get(m.group(1), secrets.token_hex(8)), template)


def _partitions(company_id: str, order_id: str) -> dict[tuple[str, str], dict]:
    """Every item of the company's and the order's partitions (two Queries, never a Scan)."""
    table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
    items: dict[tuple[str, str], dict] = {}
    for pk in (f"CO#{company_id}", f"ORDER#{order_id}"):
        kwargs: dict = {"KeyConditionExpression": Key("pk").eq(pk)}
        while True:
            page = table.query(ConsistentRead=True, **kwargs)
            for item in page["Items"]:
                if not VOLATILE.match(str(item["sk"])):
                    items[(item["pk"], item["sk"])] = item
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return items


class _Problems(HTMLParser):
    """The texts of a page's problem elements: field errors, error flashes and alerts, and the
    error page's title and message (the paragraphs after its status code)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._tag: str | None = None
        self._depth = 0
        self._text: list[str] = []
        self._error_page = 0  # paragraphs still to take after <p class="status-code">
        self._link = 0  # inside a link of a problem element: an action ("Reload"), not the message

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._tag is not None:
            self._depth += tag == self._tag
            self._link += tag == "a"
            return
        named = dict(attrs)
        classes = (named.get("class") or "").split()
        if "status-code" in classes:
            self._error_page = 2  # the <h1> title and the message <p>
            return
        problem = "error" in classes or "flash-error" in classes or named.get("role") == "alert"
        if problem or (self._error_page and tag in ("h1", "p")):
            self._error_page = max(0, self._error_page - (not problem))
            self._tag, self._depth, self._text = tag, 1, []

    def handle_endtag(self, tag: str) -> None:
        if self._tag is not None and tag == "a" and self._link:
            self._link -= 1
        if self._tag == tag:
            self._depth -= 1
            if self._depth == 0:
                self.found.append(" ".join("".join(self._text).split()))
                self._tag = None

    def handle_data(self, data: str) -> None:
        if self._tag is not None and not self._link:
            self._text.append(data)


# Messages that name no problem of their own: the banner above a form's field errors.
GENERIC = frozenset({"form.errors"})


@cache
def _messages(locale: str | None) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Every catalogue message in ``locale`` (every locale if None) as a pattern: {name} -> .+"""
    found = []
    for key, entry in catalog().items():
        if key in GENERIC:
            continue
        chosen = entry.values() if locale is None else [entry.get(locale) or entry[DEFAULT_LOCALE]]
        texts = [text for value in chosen for text in variants(value)]  # plural forms
        for text in texts:
            parts = re.split(r"\{\w+\}", " ".join(text.split()))
            if any(part.strip() for part in parts):
                found.append((key, re.compile(".+?".join(map(re.escape, parts)), re.S)))
    return tuple(found)


def problem_messages(answer, locale: str | None = None) -> list[str]:
    """Catalogue keys of the messages a refusal shows where problems are shown."""
    body = answer.body.decode("utf-8", "replace") if isinstance(answer.body, bytes) else answer.body
    if "json" in answer.headers.get("Content-Type", ""):
        try:
            data = json.loads(body)
            texts = [str(data.get("message") or "")]
            texts += [str(v) for v in (data.get("errors") or {}).values()]
        except (ValueError, AttributeError):
            return []
    else:
        parser = _Problems()
        parser.feed(body)
        texts = parser.found
    keys = []
    for text in filter(None, (" ".join(t.split()) for t in texts)):
        keys += [key for key, pattern in _messages(locale) if pattern.fullmatch(text)]
    return keys


def _one(
    client, target: Target, route: tuple[str, str], body: Body, *, generated: bool = False
) -> None:
    template, auth = route
    tab = target.anonymous if auth == "public" else target.admin
    path = _path(template, target.params)
    headers = tab._headers({"Content-Type": body.content_type} if body.content_type else {})
    if body.content_type is None:
        headers.pop("Content-Type", None)
    join_background()  # an earlier request's job (an archive) must not write during this one
    before = _partitions(target.company_id, target.order_id)
    answer = client.http.post(path, headers=headers, body=body.data)
    text = answer.body.decode("utf-8", "replace") if isinstance(answer.body, bytes) else answer.body
    target.stats["examples"] += 1
    target.stats["kind:" + body.kind] += 1
    target.stats[template] += 1
    target.stats["generated:" + template] += generated
    where = f"POST {template} {body!r} -> {answer.status_code}"
    if answer.status_code >= 500 or SERVER_ERROR_TEXT in text:
        target.stats["server_errors"] += 1
        target.problems.append("server error: " + where)
        return
    if 400 <= answer.status_code < 500:
        target.stats["refusals"] += 1
        if answer.status_code == 415:  # API Gateway's own answer to an unlisted content type
            target.stats["refused_by_gateway"] += 1
        else:
            locale = tab.accept_language if tab is target.anonymous else None
            named = problem_messages(answer, locale)
            target.stats["refusals_named"] += bool(named)
            if not named:
                shown = _Problems()
                shown.feed(text)
                target.problems.append(f"refusal naming no problem {shown.found[:3]}: {where}")
        after = _partitions(target.company_id, target.order_id)
        if after != before:
            changed = sorted(set(after) ^ set(before)) or [
                k for k in after if after[k] != before.get(k)
            ]
            target.stats["partial_writes"] += 1
            target.problems.append(f"written by a refused request: {changed[:3]} {where}")
    # A success may end the tab's session (a lucky logout, a role change): start a new one.
    if tab is target.admin and "sid=;" in str(answer.headers.get("Set-Cookie", "")):
        target.problems.append("the admin's session ended: " + where)


def _fuzz_route(client, target: Target, route: tuple[str, str]) -> None:
    """PER_ROUTE generated bodies posted to one route."""
    tab = target.anonymous if route[1] == "public" else target.admin

    # Seeded by the route (one seed for all would give every route the same few bodies).
    @settings(settings.get_profile(PROFILE), max_examples=PER_ROUTE, derandomize=False)
    @seed(zlib.crc32(route[0].encode()))
    @given(body=st.data())
    def fuzz(body: st.DataObject) -> None:
        _one(client, target, route, body.draw(bodies(tab.csrf())), generated=True)

    fuzz()


def test_every_post_route_survives_hostile_bodies(client, app) -> None:
    from chalicelib.services.integrity import check_company

    target = _target(client)
    routes = post_routes(app)
    assert len(routes) >= 40, routes

    # hypothesis runs inside the test (not @given on it): the client fixture is built once and
    # shared on purpose, so the function-scoped-fixture health check does not apply. One run
    # per route, so every route gets its own generated bodies.
    for route in routes:
        _fuzz_route(client, target, route)
    # Every route once more with a malformed form (no csrf), and with 1 MB of invalid UTF-8.
    huge = b"csrf_token=" + target.admin.csrf().encode() + b"&text=" + b"%FF%C3(" * 200_000
    for index, route in enumerate(routes):
        _one(
            client, target, route, Body(b"%zz=%G0&&=", "application/x-www-form-urlencoded", "none")
        )
        if index % 4 == 0 or THOROUGH:
            _one(client, target, route, Body(huge, "application/x-www-form-urlencoded", "huge"))
    kinds = {k for k in target.stats if k.startswith("kind:")}
    violations = check_company(target.company_id)
    per_route = [target.stats["generated:" + template] for template, _auth in routes]
    report(
        "fuzz",
        routes=len(routes),
        generated_routes=sum(1 for n in per_route if n),
        examples=target.stats["examples"],
        generated=sum(per_route),
        min_per_route=min(per_route),
        max_per_route=max(per_route),
        refusals=target.stats["refusals"],
        refusals_named=target.stats["refusals_named"],
        refused_by_gateway=target.stats["refused_by_gateway"],
        body_kinds=len(kinds),
        server_errors=target.stats["server_errors"],
        partial_writes=target.stats["partial_writes"],
        invariant_violations=len(violations),
    )
    assert len(kinds) >= 6, f"the strategies produced too few kinds of body: {sorted(kinds)}"
    assert not target.problems, "\n".join(target.problems[:15])
    assert not violations, violations[:10]
    # Every route got generated bodies, as many as asked (hypothesis may stop early only when
    # a strategy cannot produce more distinct examples, which bodies() always can).
    unfuzzed = [t for (t, _a), n in zip(routes, per_route, strict=True) if n < PER_ROUTE]
    assert not unfuzzed, f"routes with fewer than {PER_ROUTE} generated bodies: {unfuzzed}"
    assert target.stats["refusals_named"] > 0


def test_a_refusal_must_name_its_problem_not_show_the_layout(client) -> None:
    """The check can fail: the layout alone, or a problem element with text outside the
    catalogue or in another language, names no problem; the translated message does."""
    from types import SimpleNamespace

    from chalicelib.i18n import translate

    tab = WebSession(client, accept_language="es")
    layout = tab.get("/login")
    assert layout.status_code == 200 and len(tab.text()) > 1000
    assert problem_messages(layout, "es") == []

    def page(problem: str) -> SimpleNamespace:
        body = tab.text().replace("<main", f'<main><p class="error">{problem}</p><div', 1)
        return SimpleNamespace(body=body.encode(), headers={"Content-Type": "text/html"})

    required = translate("es", "form.required")
    assert problem_messages(page(required), "es") == ["form.required"]
    assert problem_messages(page("Something is off"), "es") == []
    assert problem_messages(page(translate("en", "form.required")), "es") == []
    assert problem_messages(page(translate("es", "form.errors")), "es") == []  # a banner only
    json_answer = SimpleNamespace(
        body=json.dumps({"message": translate("es", "error.csrf")}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert problem_messages(json_answer, "es") == ["error.csrf"]

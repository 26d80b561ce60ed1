"""Fuzzing every POST route (forms and the JSON API) with hostile bodies: no 500, clear refusals.

The routes come from ``app.routes``, so a new endpoint is fuzzed without
touching this file. Path parameters get the ids of a real company's order,
partner, intake code and customer link (or a random id where the route only
needs one). Each example posts one body (strategies.py): the answer must not
be a server error (status >= 500 or the app's 500 page); a refusal must be a
4xx that says something (an error page, a form with messages, a JSON
message); and a refused request must not have written anything: the
company's and the order's partitions are compared before and after, and the
invariant checker runs over the company at the end.
"""

from __future__ import annotations

import os
import re
import secrets
from collections import Counter
from dataclasses import dataclass, field

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.services import customers
from chalicelib.services import intake as intake_service
from chalicelib.services.intake import RateLimit
from tests.figures import report
from tests.security.payloads import parse
from tests.security.strategies import PROFILE, THOROUGH, Body, bodies
from tests.web.factories import ids_of, link_in, mails_to, sign_up, unique_email
from tests.web.session import WebSession

SERVER_ERROR_TEXT = "Something went wrong"
# Items a refused request may legitimately write: rate-limit and attempt counters.
VOLATILE = re.compile(r"^(THROTTLE|RATE|HIT|EMAILCODE|CODE|SESSION)", re.I)


@pytest.fixture(autouse=True)
def _quick_public_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    """One IP for every request: lift public rate limits and the follow form's answer delay."""
    monkeypatch.setattr(intake_service, "RATE_LIMITS", (RateLimit("ip", "hour", 10**6),))
    monkeypatch.setattr(customers, "FOLLOW_ANSWER_SECONDS", 0.0)


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
        "proxy": "no/such/page",
    }
    anonymous = WebSession(client)
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


def _says_something(answer) -> bool:
    body = answer.body.decode("utf-8", "replace") if isinstance(answer.body, bytes) else answer.body
    kind = answer.headers.get("Content-Type", "")
    if "json" in kind:
        import json

        try:
            return bool(json.loads(body).get("message"))
        except (ValueError, AttributeError):
            return False
    page = parse(body)
    main = " ".join(" ".join(page.texts).split())
    return len(main) > 40 and bool(re.search(r"[A-Za-z]{4,}", main))


def _one(client, target: Target, route: tuple[str, str], body: Body) -> None:
    template, auth = route
    tab = target.anonymous if auth == "public" else target.admin
    path = _path(template, target.params)
    headers = tab._headers({"Content-Type": body.content_type} if body.content_type else {})
    if body.content_type is None:
        headers.pop("Content-Type", None)
    before = _partitions(target.company_id, target.order_id)
    answer = client.http.post(path, headers=headers, body=body.data)
    text = answer.body.decode("utf-8", "replace") if isinstance(answer.body, bytes) else answer.body
    target.stats["examples"] += 1
    target.stats["kind:" + body.kind] += 1
    target.stats[template] += 1
    where = f"POST {template} {body!r} -> {answer.status_code}"
    if answer.status_code >= 500 or SERVER_ERROR_TEXT in text:
        target.stats["server_errors"] += 1
        target.problems.append("server error: " + where)
        return
    if 400 <= answer.status_code < 500:
        target.stats["refusals"] += 1
        if answer.status_code != 415 and not _says_something(answer):
            target.problems.append("refusal without a message: " + where)
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


def test_every_post_route_survives_hostile_bodies(client, app) -> None:
    from chalicelib.services.integrity import check_company

    target = _target(client)
    routes = post_routes(app)
    assert len(routes) >= 40, routes

    # hypothesis runs inside the test (not @given on it): the client fixture is built once and
    # shared on purpose, so the function-scoped-fixture health check does not apply.
    @settings(settings.get_profile(PROFILE))
    @given(route=st.sampled_from(routes), body=st.data())
    def fuzz(route: tuple[str, str], body: st.DataObject) -> None:
        tab = target.anonymous if route[1] == "public" else target.admin
        _one(client, target, route, body.draw(bodies(tab.csrf())))

    fuzz()
    # Every route once more with a malformed form (no csrf), and with 1 MB of invalid UTF-8.
    huge = b"csrf_token=" + target.admin.csrf().encode() + b"&text=" + b"%FF%C3(" * 200_000
    for index, route in enumerate(routes):
        _one(
            client, target, route, Body(b"%zz=%G0&&=", "application/x-www-form-urlencoded", "none")
        )
        if index % 4 == 0 or THOROUGH:
            _one(client, target, route, Body(huge, "application/x-www-form-urlencoded", "huge"))
    kinds = {k for k in target.stats if k.startswith("kind:")}
    assert len(kinds) >= 6, f"the strategies produced too few kinds of body: {sorted(kinds)}"
    violations = check_company(target.company_id)
    report(
        "fuzz",
        endpoints=len(routes),
        examples=target.stats["examples"],
        refusals=target.stats["refusals"],
        server_errors=target.stats["server_errors"],
        partial_writes=target.stats["partial_writes"],
        invariant_violations=len(violations),
    )
    assert not target.problems, "\n".join(target.problems[:15])
    assert not violations, violations[:10]

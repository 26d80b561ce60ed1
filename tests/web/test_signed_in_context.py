"""A staff or admin view gets a ``SignedIn`` context: never one without a principal.

The route's admission check builds that context, and a ``SignedIn`` cannot be
made without a principal, so the guarantee holds under ``python -O``, where
asserts vanish.
"""

from __future__ import annotations

import re
import typing

import pytest
from chalice.app import Request

from chalicelib.i18n import translate
from chalicelib.web import context
from chalicelib.web.context import PUBLIC, Ctx, SignedIn
from tests.figures import report

_PARAM = re.compile(r"\{(\w+)\+?\}")


def _routes(app) -> list[tuple[str, str, str, typing.Any]]:
    """(path, method, auth, view) of every route the ``route`` decorator registered."""
    found = []
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            auth = getattr(entry.view_function, "checkos_auth", None)
            if auth is None or method == "HEAD":  # bare routes (static files), HEAD = GET
                continue
            view = entry.view_function.__wrapped__  # functools.wraps keeps the view
            found.append((path, method, auth, view))
    return sorted(found, key=lambda route: route[:2])


def _signed_in_routes(app) -> list[tuple[str, str]]:
    return [(path, method) for path, method, auth, _ in _routes(app) if auth != PUBLIC]


def test_a_signed_out_request_never_reaches_a_staff_view(client, app):
    """Every staff and admin route, asked by nobody: a read goes to sign-in, a write is refused."""
    refusal = translate("en", "error.signed_out")
    answers: dict[str, int] = {}
    wrong: list[str] = []
    for path, method in _signed_in_routes(app):
        url = _PARAM.sub("x", path)
        answer = client.http.request(
            method,
            url,
            headers={"Accept-Language": "en", "Content-Type": "application/x-www-form-urlencoded"},
            body=b"" if method == "GET" else b"field=value",
        )
        answers[method] = answers.get(method, 0) + 1
        body = answer.body.decode(errors="replace")
        if method == "GET":
            refused = answer.status_code == 303 and answer.headers.get("Location") == (
                "/login?next=" + url
            )
        else:
            refused = answer.status_code == 403 and refusal in body
        if not refused:
            wrong.append(f"{method} {url} -> {answer.status_code}")
    routes = sum(answers.values())
    report(
        "signed_in",
        require=["routes"],
        routes=routes,
        refused=routes - len(wrong),
        reached=len(wrong),
    )
    assert not wrong, wrong
    assert answers.get("GET") and answers.get("POST")  # both kinds of refusal were tried


def test_every_staff_view_is_typed_for_a_signed_in_context_and_no_public_one_is(app):
    mismatched = []
    for path, method, auth, view in _routes(app):
        hints = typing.get_type_hints(view)
        wanted = Ctx if auth == PUBLIC else SignedIn
        if hints.get("ctx") is not wanted:
            mismatched.append(f"{method} {path} ({auth}): ctx is {hints.get('ctx')}")
    assert not mismatched, mismatched


def _request() -> Request:
    return Request(
        {
            "multiValueQueryStringParameters": None,
            "headers": {},
            "pathParameters": None,
            "requestContext": {"httpMethod": "GET", "resourcePath": "/orders"},
            "body": None,
            "stageVariables": None,
            "path": "/orders",
        }
    )


def test_a_signed_in_context_cannot_be_built_without_a_principal():
    with pytest.raises(TypeError):
        SignedIn(request=_request(), cookies={}, locale="en", principal=None)
    anonymous = Ctx(request=_request(), cookies={}, locale="en")
    with pytest.raises(context.Redirect) as refused:
        context._signed_in(anonymous)
    assert refused.value.location == "/login?next=/orders"


_PROBE = """
from chalice import Blueprint, Response
from chalicelib.web.context import ADMIN, PUBLIC, Ctx, SignedIn, route
bp = Blueprint(__name__)
@route(bp, "/staff/{item}")
def staff_page(ctx: SignedIn, item: str) -> Response:
    return Response(ctx.principal.company_id + item)
@route(bp, "/admin", auth=ADMIN)
def admin_page(ctx: Ctx) -> Response:  # a staff view may ignore who is signed in
    return Response("")
@route(bp, "/public", auth=PUBLIC)
def forged(ctx: SignedIn) -> Response:  # a public page cannot promise a principal
    return Response(ctx.principal.company_id)
"""


def test_mypy_refuses_a_public_view_that_expects_a_signed_in_context(tmp_path):
    from mypy import api

    config = tmp_path / "mypy.ini"
    config.write_text(
        "[mypy]\npython_version = 3.11\nfollow_imports = silent\n"
        "[mypy-boto3.*,botocore.*,openpyxl.*]\nignore_missing_imports = true\n"
    )
    cache = str(tmp_path / "cache")
    out, err, status = api.run(["--config-file", str(config), "--cache-dir", cache, "-c", _PROBE])
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert status == 1, out + err
    # mypy reports the decorator's line: the public route handed the wrong view.
    public_route = _PROBE.splitlines().index('@route(bp, "/public", auth=PUBLIC)') + 1
    assert [line.split(":")[1] for line in errors] == [str(public_route)], errors
    assert "SignedIn" in errors[0]

"""HEAD answers like GET without a body, on every GET route (uptime monitors and link checkers)."""

from __future__ import annotations

import re

from tests.web.factories import sign_up
from tests.web.test_tenant_isolation import RESOURCES, World

_PARAM = re.compile(r"{(\w+)\+?}")
# Routes whose GET changes the visitor's state: asked last, so the others run signed in.
LAST = ("/logout",)
# What a browser or a link checker accepts (binary answers need it: API Gateway, Chalice).
BROWSER = {"Accept": "*/*"}


def _get_routes(app) -> list[str]:
    paths = [path for path, methods in app.routes.items() if "GET" in methods]
    return sorted(paths, key=lambda path: (path in LAST, path))


def test_every_get_route_answers_head_with_the_same_status_and_no_body(app, client):
    paths = _get_routes(app)
    missing = [path for path in paths if "HEAD" not in app.routes[path]]
    assert not missing, f"GET routes without HEAD: {missing}"

    world = World(
        client=client,
        a_admin=sign_up(client, company_name="Head Checks"),
        b_admin=sign_up(client, company_name="Head Other"),
    )
    needed = sorted({name for path in paths for name in _PARAM.findall(path)})
    ids = {name: (RESOURCES[name].create(world) if name in RESOURCES else "x") for name in needed}
    tab = world.a_admin
    mismatched: list[str] = []
    checked = 0
    for path in paths:
        url = _PARAM.sub(lambda match: ids[match.group(1)], path)
        head = client.http.head(url, headers=tab._headers(BROWSER))
        got = tab.get(url, headers=BROWSER)
        checked += 1
        if head.status_code != got.status_code or head.body:
            mismatched.append(
                f"{path}: HEAD {head.status_code} ({len(head.body)} bytes), GET {got.status_code}"
            )
        if got.status_code in (301, 302, 303, 307, 308):
            assert head.headers.get("Location") == got.headers.get("Location"), path
    assert checked == len(paths) and checked > 30
    assert not mismatched, "\n".join(mismatched)


def test_head_of_a_signed_out_page_redirects_like_get(client):
    head = client.http.head("/orders")
    assert head.status_code == 303 or head.status_code == 302
    assert head.headers["Location"].startswith("/login?next=")
    assert not head.body

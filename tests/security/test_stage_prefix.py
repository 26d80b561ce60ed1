"""The site works at the address the stack gives: every URL it makes stays under the stage.

Deployed without a custom domain, the app answers at
``https://{id}.execute-api.{region}.amazonaws.com/api/``: API Gateway strips the stage
from the path the routes see, so a root-relative ``/orders`` on a page, a redirect
or an asset leaves the site. Here every route of the access matrix is asked, by every
actor that can reach it, through an event shaped like API Gateway's at its own
address (stage ``api``), and every link, form action, asset, redirect, manifest
entry and script target must resolve under ``/api/``, to a route that exists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from chalicelib.assets import STATIC_DIR
from chalicelib.config import get_settings
from tests.figures import report
from tests.security.actors import ALLOWED
from tests.security.test_access_matrix import _cells, _send, _url, stage  # noqa: F401

HOST = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
STAGE = "api"
PREFIX = f"/{STAGE}"
SITE = f"https://{HOST}"
# Attributes whose value a browser fetches or follows.
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "data-href", "poster"})
_CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)")
# A string literal that is a site path: what a fetch(), location or XHR would use.
_JS_PATH = re.compile(r"""(["'`])/[A-Za-z0-9_{$]""")


@contextmanager
def at_the_stage_address(host: str = HOST) -> Iterator[None]:
    """Requests arrive as API Gateway delivers them at its own address: the routes see
    the stage-free path, ``requestContext`` names the stage, the domain and the full path."""
    from chalice.local import LambdaEventConverter

    original = LambdaEventConverter.create_lambda_event

    def under_stage(self, method, path, headers, body=None):
        event = original(self, method, path, headers, body)
        stage_free = event["requestContext"]["path"]
        event["path"] = stage_free
        event["requestContext"].update(stage=STAGE, path=PREFIX + stage_free, domainName=host)
        event["headers"]["host"] = host
        return event

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LambdaEventConverter, "create_lambda_event", under_stage)
        yield


@contextmanager
def public_base_url(value: str) -> Iterator[None]:
    """BASE_URL as the deploy sets it. The settings are read at once: chalice's test
    client swaps in .chalice/config.json's variables while it runs a request."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BASE_URL", value)
        get_settings.cache_clear()
        assert get_settings().base_url == value
        try:
            yield
        finally:
            patch.undo()
            get_settings.cache_clear()
            get_settings()


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in URL_ATTRIBUTES and value is not None:
                self.found.append((tag, name, value))
            elif name == "srcset" and value:
                self.found += [(tag, name, part.split()[0]) for part in value.split(",")]


def links_in(html: str) -> list[tuple[str, str, str]]:
    parser = _Links()
    parser.feed(html)
    return parser.found


def outside_the_stage(page_url: str, value: str) -> str | None:
    """The resolved URL when ``value`` leaves the stage on the site's own host, else None."""
    resolved = urlsplit(urljoin(page_url, value.strip()))
    if resolved.scheme not in ("http", "https") or resolved.netloc != HOST:
        return None  # data:, mailto:, tel: or another site: not the stage's business
    if resolved.path == PREFIX or resolved.path.startswith(PREFIX + "/"):
        return None
    return resolved.geturl()


def _route_of(app, stage_free: str) -> str | None:
    from chalice.local import RouteMatcher

    try:
        return RouteMatcher(list(app.routes)).match_route(stage_free).route
    except ValueError:
        return None


def _body(answer) -> str:
    body = answer.body
    return body.decode(errors="replace") if isinstance(body, bytes) else str(body)


def _set_cookie_paths(answer) -> list[str]:
    raw = answer.headers.get("Set-Cookie") or answer.headers.get("set-cookie") or []
    paths = []
    for line in [raw] if isinstance(raw, str) else list(raw):
        for part in line.split(";"):
            name, _, value = part.strip().partition("=")
            if name.lower() == "path":
                paths.append(value)
    return paths


# -- the prefix -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "stage_name", "base_url", "prefix"),
    [
        (HOST, "api", "https://orders.example.com", "/api"),  # the stack's own address
        (HOST.upper(), "prod", "http://127.0.0.1:8000", "/prod"),
        ("orders.example.com", "api", "https://orders.example.com", ""),  # custom domain
        ("example.com", "api", "https://example.com/app/", "/app"),  # mapped at a base path
        ("127.0.0.1:8000", None, "http://127.0.0.1:8000", ""),  # make run
        ("evil.example", "api", "http://127.0.0.1:8000", ""),
        (HOST, "../x", "http://127.0.0.1:8000", ""),  # not a stage name
    ],
)
def test_the_prefix_comes_from_the_address_asked(host, stage_name, base_url, prefix):
    from chalicelib import urls

    assert urls.prefix_for(host, stage_name, base_url) == prefix


def test_only_site_paths_take_the_prefix():
    from chalicelib import urls

    with urls.serving("/api"):
        assert urls.url("/orders?x=1") == "/api/orders?x=1"
        assert urls.url("/") == "/api/"
        for untouched in ("https://s3.example/x", "//cdn.example/a", "?page=2", "#top", ""):
            assert urls.url(untouched) == untouched
        assert str(urls.ROOT) == "/api"
    assert urls.url("/orders") == "/orders" and str(urls.ROOT) == ""


# -- every page, under the stage ------------------------------------------------


def test_every_page_redirect_and_asset_stays_under_the_stage(app, stage):  # noqa: F811
    cells = [c for c in _cells(app) if c.method == "GET" or c.expected != ALLOWED]
    outside: list[str] = []
    broken: list[str] = []
    cookie_paths: set[str] = set()
    links: set[str] = set()
    pages = 0
    with public_base_url(SITE + PREFIX), at_the_stage_address():
        for cell in cells:
            stage_free = _url(stage, cell)
            page_url = SITE + PREFIX + stage_free
            answer = _send(stage, cell)
            where = f"{cell.actor} {cell.method} {stage_free}"
            if answer.status_code >= 500:
                broken.append(f"{where}: {answer.status_code}")
                continue
            pages += 1
            cookie_paths.update(_set_cookie_paths(answer))
            location = answer.headers.get("Location") or answer.headers.get("location")
            if location:
                if outside_the_stage(page_url, location):
                    outside.append(f"{where}: Location {location}")
                else:
                    links.add(urljoin(page_url, location))
            content_type = answer.headers.get("Content-Type", "")
            if not content_type.startswith("text/html"):
                continue
            for tag, attribute, value in links_in(_body(answer)):
                if outside_the_stage(page_url, value):
                    outside.append(f"{where}: <{tag} {attribute}={value!r}>")
                elif not value.startswith("#"):  # same-page anchors are not followed
                    target = urljoin(page_url, value)
                    if urlsplit(target).netloc == HOST:
                        links.add(target)
    # Followed under the prefix, each link reaches a route of the app (not the 404 catch-all).
    unresolved = sorted(
        link
        for link in links
        if _route_of(app, urlsplit(link).path.removeprefix(PREFIX) or "/") in (None, "/{proxy+}")
    )
    cookies_outside = sorted(p for p in cookie_paths if p != "/" and not p.startswith(PREFIX))
    report(
        "stage_prefix",
        require=("pages", "links"),
        pages=pages,
        links=len(links),
        outside=len(outside),
        unresolved=len(unresolved),
        broken=len(broken),
    )
    assert not broken, broken[:20]
    assert not outside, f"{len(outside)} URLs leave the stage, e.g.:\n" + "\n".join(outside[:40])
    assert not unresolved, unresolved[:20]
    assert not cookies_outside, cookies_outside


def test_the_manifest_styles_and_scripts_stay_under_the_stage(client):
    with at_the_stage_address():
        answer = client.http.get("/manifest.webmanifest")
    assert answer.status_code == 200
    manifest = json.loads(_body(answer))
    manifest_url = f"{SITE}{PREFIX}/manifest.webmanifest"
    entries = [manifest["start_url"], manifest["scope"], *(i["src"] for i in manifest["icons"])]
    outside = [e for e in entries if outside_the_stage(manifest_url, e)]
    for sheet in sorted(STATIC_DIR.glob("*.css")):
        sheet_url = f"{SITE}{PREFIX}/static/{sheet.name}"
        for value in _CSS_URL.findall(sheet.read_text()):
            if outside_the_stage(sheet_url, value):
                outside.append(f"{sheet.name}: url({value})")
    scripts = sorted(STATIC_DIR.glob("*.js"))
    for script in scripts:
        for line in script.read_text().splitlines():
            if _JS_PATH.search(line):
                outside.append(f"{script.name}: {line.strip()}")
    assert scripts and len(entries) >= 4
    assert not outside, outside


def test_the_busy_page_sends_the_form_back_under_the_stage(client):
    """A throttled write answers the busy page: its resend form and links stay under /api."""
    from tests.security.actors import ORDER
    from tests.security.faults import ANY_WRITE, fault, install, resend_form, uninstall
    from tests.web.factories import sign_up, unique_email

    tab = sign_up(client)
    tab.get("/orders/new")
    install()
    try:
        with at_the_stage_address(), fault("dynamodb", ANY_WRITE, code="ThrottlingException"):
            answer = tab.post("/orders/new", {**ORDER, "customer_email": unique_email("busy")})
    finally:
        uninstall()
    page = _body(answer)
    assert answer.status_code == 503, page[:300]
    action, kept = resend_form(page)
    assert action == "/api/orders/new" and kept["customer_name"] == ORDER["customer_name"]
    page_url = f"{SITE}{PREFIX}/orders/new"
    outside = [v for _, _, v in links_in(page) if outside_the_stage(page_url, v)]
    assert not outside, outside


def test_at_a_custom_domain_the_same_pages_have_no_prefix(client):
    with public_base_url("https://orders.example.com"), at_the_stage_address("orders.example.com"):
        page = client.http.get("/")
        redirect = client.http.get("/orders")
    html = _body(page)
    assert 'href="/login"' in html and "/api/" not in html
    assert redirect.headers["Location"].startswith("/login?next=/orders")


def test_the_local_run_keeps_root_relative_urls(client):
    html = _body(client.http.get("/"))
    assert 'href="/login"' in html and 'href="/static/app.css?v=' in html
    assert client.http.get("/orders").headers["Location"].startswith("/login?next=")


def test_no_template_writes_a_root_relative_url():
    """A new template line with ``href="/…"`` would leave the stage: use ``{{ root }}``."""
    templates = Path(__file__).resolve().parents[2] / "templates"
    written = re.compile(r"""\b(?<!-)(href|src|action|formaction)=["'](/(?!/)|\{%)""")
    found = [
        f"{path.relative_to(templates)}:{number}"
        for path in sorted(templates.rglob("*.html"))
        if "emails" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if written.search(line)
    ]
    assert not found, found

"""Open redirects: every redirect-target parameter, with every known trick, stays on this site.

The targets are the ``next`` parameters that reach ``http.safe_next`` (found
by reading every ``redirect(`` in ``chalicelib/web``; the other redirects go
to fixed paths or to ids the handler looked up first).
``test_every_safe_next_caller_is_exercised`` fails when a new one appears.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from chalicelib.web import http
from tests.figures import reporting
from tests.security.actors import cheap_passwords, own_ip
from tests.web.factories import PASSWORD, sign_up
from tests.web.session import WebSession

PAYLOADS: tuple[str, ...] = (
    "https://evil.example",
    "http://evil.example/login",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\/evil.example",
    "\\/evil.example",
    "/\\/evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "%2F%2Fevil.example",
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "https:evil.example",
    " //evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\nSet-Cookie: owned=1",
    "/\x00/evil.example",
    "/ /evil.example",
    "//evil.example@checkos.example",
    "https://checkos.example.evil.example/",
    "/orders\r\nLocation: https://evil.example",
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def same_origin(location: str) -> bool:
    """A Location a browser resolves on this site: a rooted path, nothing read as a host."""
    if not location.startswith("/") or location[1:2] in ("/", "\\"):
        return False
    if "\\" in location or _CONTROL.search(location):
        return False  # browsers read \ as / and drop tabs and newlines
    parts = urlsplit(location)
    return not parts.scheme and not parts.netloc


def test_the_same_origin_check_itself_catches_offsite_targets():
    assert same_origin("/orders?view=all") and same_origin("/%2F%2Fevil.example")
    offsite = [p for p in PAYLOADS if not p.startswith("/") or p[1:2] in ("/", "\\")]
    offsite += ["/\\evil.example", "/\t/evil.example", "/\r\nSet-Cookie: owned=1"]
    assert offsite and not [p for p in offsite if same_origin(p)]


@pytest.fixture(scope="module")
def admin(aws: None, app) -> Iterator[WebSession]:
    from chalice.test import Client

    with own_ip(), Client(app) as client, pytest.MonkeyPatch.context() as patch:
        cheap_passwords(patch)
        tab = sign_up(client)
        tab.get("/notifications")
        tab.token = tab.csrf()  # type: ignore[attr-defined]  # one token serves every POST
        yield tab


def _location(answer) -> str:
    assert answer.status_code in (302, 303), answer.status_code
    return answer.headers.get("Location") or answer.headers.get("location") or ""


def _login_get(tab: WebSession, target: str) -> str:
    return _location(tab.get("/login?next=" + quote(target, safe="")))


def _login_post(tab: WebSession, target: str) -> str:
    fresh = WebSession(tab.client)
    fresh.get("/login")
    answer = fresh.post("/login", {"email": tab.email, "password": PASSWORD, "next": target})
    return _location(answer)


def _login_form(tab: WebSession, target: str) -> str:
    """The login page carries ``next`` in a hidden field: it must already be safe there."""
    fresh = WebSession(tab.client)
    fresh.get("/login?next=" + quote(target, safe=""))
    found = re.search(r'name="next" value="([^"]*)"', fresh.text())
    import html

    return html.unescape(found.group(1)) if found else "/"


def _language(tab: WebSession, target: str) -> str:
    return _location(tab.post("/language", {"locale": "en", "next": target}, csrf=tab.token))


def _reactivate(tab: WebSession, target: str) -> str:
    return _location(tab.post("/settings/company/reactivate", {"next": target}, csrf=tab.token))


def _notifications(tab: WebSession, target: str) -> str:
    answer = tab.post("/notifications/read", {"note": "all", "next": target}, csrf=tab.token)
    return _location(answer)


def _help_language(tab: WebSession, target: str) -> str:
    return _location(tab.get("/help/language?locale=en&next=" + quote(target, safe="")))


TARGETS: dict[str, Callable[[WebSession, str], str]] = {
    "GET /login?next= (signed in)": _login_get,
    "POST /login next=": _login_post,
    "GET /login?next= (hidden field)": _login_form,
    "POST /language next=": _language,
    "POST /settings/company/reactivate next=": _reactivate,
    "POST /notifications/read next=": _notifications,
    "GET /help/language?next=": _help_language,
}
# The handler files whose safe_next calls TARGETS exercise, and how many calls each has.
CALLERS = {"accounts.py": 1, "pages.py": 1, "company.py": 1, "orders.py": 1, "help.py": 1}


def test_every_safe_next_caller_is_exercised():
    web = Path(http.__file__).parent
    found = {
        path.name: len(re.findall(r"safe_next\(", path.read_text()))
        for path in web.glob("*.py")
        if path.name != "http.py" and "safe_next(" in path.read_text()
    }
    assert found == CALLERS, f"safe_next callers changed: {found}; add them to TARGETS"


def test_no_redirect_target_leaves_the_site(admin):
    offsite: list[str] = []
    with reporting("redirects", require=("targets", "tried")) as figures:
        figures.update(targets=len(TARGETS), payloads=len(PAYLOADS), tried=0, offsite=0)
        for name, follow in TARGETS.items():
            for payload in PAYLOADS:
                location = follow(admin, payload)
                figures["tried"] += 1  # type: ignore[operator]
                if not same_origin(location):
                    offsite.append(f"{name} {payload!r} -> {location!r}")
                    figures["offsite"] = len(offsite)
            # A legitimate target still works (the check is not "always go home").
            assert follow(admin, "/orders?view=all") == "/orders?view=all", name
        assert not offsite, "\n".join(offsite)

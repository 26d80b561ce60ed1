"""Every page of every role, crawled in Chromium at phone width, checked as a reviewer would.

A company with two dozen orders, a second (staff) user, a partner executing one of
its orders, a customer with a private link and an intake form: each role starts at
its home page and follows every same-site link it is shown (a few of each kind of
page). On every page: one ``h1``, no sideways scroll at 390 px (the layout viewport,
no mobile emulation to widen it), no console error, no axe-core violation, and the
page's HTML as served passes the Nu HTML checker. Every problem is listed, then the
figure line is printed, then the test asserts.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import subprocess
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.flows import PASSWORD, open_last_mail_to, sign_up_in_browser
from tests.figures import report

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHECKERS = ROOT / ".venv" / "checkers" / "node_modules"
AXE = CHECKERS / "axe-core" / "axe.min.js"
VNU = CHECKERS / "vnu-jar" / "build" / "dist" / "vnu.jar"
PHONE_LAYOUT = {"width": 390, "height": 844}
# Pages of one kind (same path with ids replaced) visited per role: enough to see each
# kind's states without walking every order.
PER_KIND = 2
MAX_PAGES_PER_ROLE = 60
# Links a crawler must not follow: they change state on GET or leave the app's pages.
SKIP = re.compile(r"^/(logout|dev/|static/|logo/|help/img/|exports/[^/]+/file|favicon|apple-touch)")
_ID = re.compile(r"/[0-9a-f]{16,}|/\d+(?=/|$)")


AXE_RUN = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
  .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', '))"""


@functools.cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


@dataclass
class Found:
    role: str
    pages: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    html: dict[str, str] = field(default_factory=dict)
    axe_violations: int = 0


def _kind(path: str) -> str:
    return _ID.sub("/{id}", path.split("?", 1)[0])


def _post_form(page, form_path: str, data: dict[str, str], action: str | None = None) -> str:
    """Submit a form the way its page would (same session, its CSRF token); the final URL."""
    html = page.request.get(form_path).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    fields = dict(data)
    if token:
        fields["csrf_token"] = token.group(1)
    answer = page.request.post(action or form_path, form=fields)
    assert answer.ok, f"{action or form_path}: {answer.status}"
    return answer.url


def _register_orders(page, count: int, customer_email: str) -> list[str]:
    urls = []
    for number in range(count):
        url = _post_form(
            page,
            "/orders/new",
            {
                "customer_name": f"Cliente Número {number} da Silva",
                "customer_phone": f"+55 11 9{number:04d}-0000",
                "customer_email": customer_email if number == 0 else "",
                "service_type": ["Screen replacement", "Boiler service", "Laptop repair"][
                    number % 3
                ],
                "brand": ["Samsung", "Vaillant", "Dell"][number % 3],
                "problem": "Does not turn on; customer.address@exemplo-muito-longo.com.br",
                "priority": "normal",
            },
        )
        urls.append(urlsplit(url).path)
    return urls


def _world(browser, live_server) -> dict[str, object]:
    """The contexts of every role, each signed in (or holding its link)."""

    def context():
        return browser.new_context(base_url=live_server, viewport=PHONE_LAYOUT, locale="en-US")

    admin_ctx, partner_ctx, staff_ctx = context(), context(), context()
    admin, partner, staff = admin_ctx.new_page(), partner_ctx.new_page(), staff_ctx.new_page()
    sign_up_in_browser(admin, f"Assistência Técnica Crawl {secrets.token_hex(2)}")
    word = "Parceira" + secrets.token_hex(3)
    sign_up_in_browser(partner, f"Refrigeração {word}")
    customer_email = f"cliente-{secrets.token_hex(4)}@example.com"
    orders = _register_orders(admin, 24, customer_email)
    link = re.search(r"https?://\S+(/o/\S+)", open_last_mail_to(admin, customer_email)).group(1)

    # A second user, staff, through the invitation e-mail.
    staff_email = f"staff-{secrets.token_hex(4)}@example.com"
    _post_form(
        admin,
        "/settings/users",
        {"name": "Bruno Lima", "email": staff_email, "role": "staff"},
        "/settings/users/invite",
    )
    invite = re.search(r"https?://\S+(/invite/\S+)", open_last_mail_to(admin, staff_email))
    staff.goto(invite.group(1))
    staff.fill("#f-password", PASSWORD)
    with staff.expect_navigation():
        staff.get_by_role("button", name="Join the company").click()

    # A partnership (the admin approves, the partner executes) and one shared order.
    admin.goto(f"/partners/directory?name={word}")
    partner_company = admin.locator(".dir-card", has_text=word).get_attribute("data-company")
    admin.goto(f"/partners/propose?to={partner_company}")
    with admin.expect_navigation():
        admin.get_by_role("button", name="Send the proposal").click()
    partner.goto("/partners")
    with partner.expect_navigation():
        partner.locator(".partnership.needs-answer").get_by_role("button", name="Accept").click()
    admin.goto(orders[1])
    admin.select_option("#f-partner_id", partner_company)
    with admin.expect_navigation():
        admin.get_by_role("button", name="Share", exact=True).click()

    # The intake form.
    admin.goto("/settings/intake")
    with admin.expect_navigation():
        admin.get_by_role("button", name="Create the form code").click()
    intake = re.search(r"/intake/[A-Za-z0-9_-]+", admin.input_value("#snippet")).group(0)

    visitor_ctx = context()
    return {
        "anonymous": (visitor_ctx.new_page(), ["/", "/help", "/login", "/signup", intake]),
        "admin": (admin, ["/", "/settings", "/notifications", "/orders?view=all"]),
        "staff": (staff, ["/", "/orders?view=all", "/notifications"]),
        "partner": (partner, ["/", "/partners", "/orders?view=all", orders[1]]),
        "customer": (context().new_page(), [link]),
        "_contexts": [admin_ctx, partner_ctx, staff_ctx, visitor_ctx],
    }


def _links(page) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    found = []
    for href in hrefs:
        if not href or not href.startswith("/") or href.startswith("//"):
            continue
        found.append(href.split("#", 1)[0])
    return found


def _check_page(
    page, role: str, path: str, came_from: str, found: Found, errors: list[str]
) -> None:
    errors.clear()
    answer = page.goto(path)
    status = answer.status if answer else 0
    label = f"{role} {path} (linked from {came_from})"
    if status != 200:
        found.problems.append(f"{label}: HTTP {status}")
        return
    found.pages.append(path)
    found.html[f"{role}{len(found.pages):03d}.html"] = answer.text()
    headings = page.locator("h1").count()
    if headings != 1:
        found.problems.append(f"{label}: {headings} h1")
    overflow = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    if overflow[0] > overflow[1]:
        found.problems.append(f"{label}: scrolls sideways ({overflow[0]} > {overflow[1]} px)")
    # Evaluated through the browser's debugging protocol: the page's CSP (script-src
    # 'self') stays on for everything the page itself runs.
    page.evaluate(_axe_source())
    result = page.evaluate(AXE_RUN)
    found.axe_violations += len(result)
    found.problems.extend(f"{label}: axe {violation}" for violation in result)
    if errors:
        found.problems.extend(f"{label}: console {message}" for message in errors)


def _crawl(role: str, page, starts: list[str]) -> Found:
    found = Found(role)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    queue, seen, kinds = deque((start, "start") for start in starts), set(), {}
    while queue and len(found.pages) < MAX_PAGES_PER_ROLE:
        path, came_from = queue.popleft()
        kind = _kind(path)
        if path in seen or SKIP.match(path) or kinds.get(kind, 0) >= PER_KIND:
            continue
        seen.add(path)
        kinds[kind] = kinds.get(kind, 0) + 1
        _check_page(page, role, path, came_from, found, errors)
        if found.pages and found.pages[-1] == path:
            queue.extend((link, path) for link in _links(page) if link not in seen)
    return found


def _html_errors(documents: dict[str, str], folder: Path) -> list[str]:
    """The Nu HTML checker over the pages as served (one JVM for all of them)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, html in documents.items():
        path = folder / name
        path.write_text(html, encoding="utf-8")
        paths.append(str(path))
    run = subprocess.run(
        ["java", "-jar", str(VNU), "--format", "json", "--exit-zero-always", *paths],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    messages = json.loads(run.stderr or run.stdout)["messages"]
    return [
        f"{Path(m.get('url', '')).name}:{m.get('lastLine', '?')}: {m.get('message')}"
        for m in messages
        if m.get("type") == "error"
    ]


def test_every_page_of_every_role_is_valid_accessible_and_fits_a_phone(
    browser, live_server, tmp_path
):
    assert AXE.is_file() and VNU.is_file(), "run `make checkers` (part of make test)"
    world = _world(browser, live_server)
    results = []
    for role in ("anonymous", "admin", "staff", "partner", "customer"):
        page, starts = world[role]  # type: ignore[misc]
        results.append(_crawl(role, page, starts))
    documents = {name: html for found in results for name, html in found.html.items()}
    html_errors = _html_errors(documents, tmp_path / "pages")
    problems = [p for found in results for p in found.problems] + html_errors
    signed_in = sum(len(f.pages) for f in results if f.role in ("admin", "staff", "partner"))
    report(
        "crawl",
        roles=len(results),
        pages=sum(len(f.pages) for f in results),
        signed_in_pages=signed_in,
        axe_violations=sum(f.axe_violations for f in results),
        html_errors=len(html_errors),
        problems=len(problems),
    )
    for context in world["_contexts"]:  # type: ignore[union-attr]
        context.close()
    assert signed_in >= 30, [f"{f.role}: {f.pages}" for f in results]
    assert not problems, "\n".join(problems)

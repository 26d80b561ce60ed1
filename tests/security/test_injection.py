"""XSS: every payload of the corpus through every text field anyone can fill, then every view.

For each payload a small world is built through the real pages: a company
signs up with the payload in its profile, invites a user, adds custom
fields, registers orders, chats, cancels with a reason, is rated by its
customer, shares an order with a partner (quote and chat), gets an intake
request and a partner invitation. The first submission of each form puts the
payload in *every* typed field the page shows (the form usually refuses it:
the refusal page, which re-shows what was typed, is checked too); the second
fits it to the field's rules so it is stored. Then every page and e-mail that
shows the values is parsed, and nothing in it may originate from a payload.
Forms are discovered from the rendered pages: a typed field the suite does
not know fails the test, so a new field cannot slip past it.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from urllib.parse import quote

import pytest

from chalicelib.db.accounts import Company
from chalicelib.services import follow_form
from chalicelib.services import intake as intake_service
from chalicelib.services.intake import RateLimit
from chalicelib.services.orders.forms import TEXT_FIELDS
from chalicelib.web.intake import form_token
from chalicelib.web.outbox import SentMail, sent_mails
from tests.figures import report
from tests.security.actors import lift_limits
from tests.security.payloads import (
    CANARY,
    XSS,
    Finding,
    as_stored,
    dangerous,
    evaluated,
    json_scripts,
    parse,
    xss_corpus,
)
from tests.web.factories import PASSWORD, code_in, ids_of, link_in, unique_email
from tests.web.session import WebSession

CORPUS = xss_corpus()
ORDER_TEXT = TEXT_FIELDS  # name -> (max length, multi-line): each field filled to its maximum
# Every form with typed fields, by its action (ids as placeholders): the typed fields the
# suite fills with a payload. A form or field missing here fails test_every_typed_field_is_covered.
COVERED: dict[str, set[str]] = {
    "/signup": {"company_name", "business_type", "area", "contact_name", "phone", "email"}
    | {"time_zone"},
    "/verify-email": {"code"},
    "/login": {"email"},
    "/password/forgot": {"email"},
    "/settings/company": {
        "name",
        "business_type",
        "area",
        "contact_name",
        "phone",
        "email",
        "website",
        "description",
        "city",
        "state",
        "country",
        "slug",
        "time_zone",
    },
    "/settings/users/invite": {"name", "email"},
    "/invite/{token}": {"name"},
    "/settings/fields": {"label", "options"},
    "/settings/follow-snippet": {"button", "intro", "width", "height"},
    "/settings/intake": {"origins", "width", "height"},
    "/orders/new": {*ORDER_TEXT, "customer_email", "service_date", "service_time"}
    | {"estimated_value", "cf_*"},
    "/orders/{order}/edit": {*ORDER_TEXT, "customer_email", "service_date", "service_time"}
    | {"estimated_value", "cf_*"},
    "/orders/{order}/messages": {"text"},
    "/orders/{order}/status": {"note"},
    "/orders/{order}/quote": {"quote_value", "quote_text"},
    "/orders": {
        "name",
        "number",
        "phone",
        "brand",
        "service_type",
        "technician",
        "date_from",
        "date_to",
        "rating",
    },
    "/partners/directory": {"name", "contact", "business_type", "area"},
    "/partners/invite": {"email", "company_name"},
    "/o/{token}/messages": {"text"},
    "/o/{token}/rating": {"comment"},
    "/follow/{slug}": {"number", "email"},
    "/intake/{code}": {
        "customer_name",
        "customer_email",
        "customer_phone",
        "service_type",
        "brand",
        "model",
        "problem",
        "website",
        "cf_*",
    },
}
FIGURES: dict[str, object] = {
    "runs": 0,
    "payloads": 0,
    "views": set(),
    "checks": 0,
    "fields": set(),
    "unescaped": 0,
}


@pytest.fixture(scope="module", autouse=True)
def _figure_line() -> Iterator[None]:
    yield
    if FIGURES["runs"]:  # a payload test ran: it must have checked views
        report(
            "injection",
            require=("payloads", "views", "checks"),
            payloads=FIGURES["payloads"],  # payloads taken through every view
            fields=len(FIGURES["fields"]),  # type: ignore[arg-type]
            views=len(FIGURES["views"]),  # type: ignore[arg-type]
            checks=FIGURES["checks"],
            unescaped=FIGURES["unescaped"],
        )


@pytest.fixture
def aws() -> Iterator[None]:
    """A fresh moto per payload (overrides the module-wide one in tests/conftest.py).

    moto answers an index Query by walking every item of the table and the
    outbox is parsed whole on every read: in one shared table each payload's
    world made the next one slower (9 s for the first, 40 s by the fifteenth,
    about 100 s a payload over the full corpus). A world of its own keeps
    every payload at the first one's cost.
    """
    from moto import mock_aws

    from tests.conftest import _provision

    with mock_aws():
        _provision()
        yield


@pytest.fixture(autouse=True)
def _quick_public_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test request comes from one IP: lift the public forms' limits and answer delay."""
    monkeypatch.setattr(intake_service, "RATE_LIMITS", (RateLimit("ip", "hour", 10**6),))
    monkeypatch.setattr(follow_form, "FOLLOW_ANSWER_SECONDS", 0.0)
    lift_limits(monkeypatch, "follow", "ip", "company")


def fit(value: str, max_len: int) -> str:
    return value[:max_len]


def phone(value: str) -> str:
    """The payload plus enough digits to be a phone number (40 characters at most)."""
    return value[:24] + " 11 91234 5678"


@dataclass
class World:
    """One payload's company, partner, customer and visitor, and what was checked."""

    client: object
    payload: str
    findings: list[Finding] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    forms: dict[str, set[str]] = field(default_factory=dict)
    placeholders: dict[str, str] = field(default_factory=dict)
    addresses: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)

    # -- checking ------------------------------------------------------------------------

    def check(self, view: str, html: str, *, shown: str | None = None) -> None:
        """No element, attribute or URL of the page came from the payload; ``shown`` is on it."""
        self.checked.add(view)
        self.findings.extend(dangerous(html, view))
        self.findings.extend(evaluated(html, self.payload, view))
        if shown is not None:
            flat = " ".join(parse(html).visible().split())
            wanted = " ".join(shown.split())[:100].strip()
            if wanted not in flat and CANARY not in flat:
                self.missing.append(view)
        self._learn_forms(html)

    def page(self, tab: WebSession, path: str, view: str, *, shown: str | None = None) -> str:
        answer = tab.get(path)
        assert answer.status_code == 200, (path, answer.status_code, tab.text()[:500])
        self.check(view, tab.text(), shown=shown)
        return tab.text()

    def _learn_forms(self, html: str) -> None:
        for form in parse(html).forms:
            action = self.pattern(form.action.split("?")[0].split("#")[0])
            typed = {"cf_*" if n.startswith("cf_") else n for n in form.typed()}
            if typed:
                self.forms.setdefault(action, set()).update(typed)

    def pattern(self, path: str) -> str:
        for value, name in self.placeholders.items():
            path = path.replace(value, name)
        return re.sub(r"cf_[0-9a-f]+", "cf_*", path)

    def name(self, value: str, placeholder: str) -> None:
        self.placeholders[value] = placeholder

    # -- submitting ----------------------------------------------------------------------

    def everywhere(
        self, tab: WebSession, path: str, view: str, *, keep: dict[str, str] | None = None, **kw
    ):
        """Post the payload in every typed field the last page's form for ``path`` shows."""
        action = path
        forms = [f for f in parse(tab.text()).forms if f.action.split("?")[0] == action]
        assert forms, f"no form posting to {path} on the page"
        data = {k: v for k, v in forms[0].values.items() if k != "csrf_token"}
        data.update({name: self.payload for name in forms[0].typed()})
        data.update(keep or {})
        answer = tab.post(path, data, **kw)
        assert answer.status_code < 500, (path, tab.text()[:500])
        if answer.status_code != 303:
            self.check(view + ".refused", tab.text(), shown=self.payload)
        pattern = self.pattern(path)
        self.fields.update(
            self.pattern(f"{pattern}:{name}") for name in data if name in forms[0].typed()
        )
        return answer

    def stored(self, tab: WebSession, path: str, data: dict[str, str], **kw) -> None:
        """Post the form for ``path`` as the last page shows it, with ``data`` typed over it."""
        shown = [f for f in parse(tab.text()).forms if f.action.split("?")[0] == path]
        data = {**(shown[0].values if shown else {}), **data}
        data.pop("csrf_token", None)
        answer = tab.post(path, data, **kw)
        assert answer.status_code == 303, (path, answer.status_code, tab.text()[:800])

    def mails(self, since: int) -> list[SentMail]:
        return [m for m in sent_mails()[since:]]


def _version(html: str) -> str:
    found = re.search(r'name="version" value="(\d+)"', html)
    assert found, "no version on the page"
    return found.group(1)


def _rev(html: str) -> str:
    found = re.search(r'name="rev" value="(\d+)"', html)
    assert found, "no rev on the page"
    return found.group(1)


def _sign_up(world: World, client, label: str) -> WebSession:
    """A company whose every profile field holds the payload (fitted to the field's rules)."""
    p = world.payload
    tab = WebSession(client)
    email = unique_email("co-" + label.lower())
    if label == "A":  # the second company's sign-up form is the same page
        world.page(tab, "/signup", "signup")
        world.everywhere(tab, "/signup", "signup", keep={"email": email, "password": PASSWORD})
    tab = WebSession(client)  # a refused sign-up may still have succeeded for a short payload
    tab.get("/signup")
    form = {
        "company_name": fit(p, 110) + f" {label}",
        "business_type": fit(p, 80),
        "area": fit(p, 120),
        "contact_name": fit(p, 120),
        "phone": phone(p),
        "email": unique_email("co-" + label.lower()),
        "password": PASSWORD,
    }
    world.stored(tab, "/signup", form)
    tab.email = form["email"]  # type: ignore[attr-defined]
    tab.get("/verify-email")
    mail = [m for m in sent_mails() if form["email"] in m.to][-1]
    world.stored(tab, "/verify-email", {"code": code_in(mail)})
    world.addresses.add(form["email"])
    company_id, _ = ids_of(tab)
    world.name(company_id, "{company}")
    return tab


def _profile(world: World, tab: WebSession) -> Company:
    p = world.payload
    world.page(tab, "/settings/company", "settings.company", shown=p)
    world.everywhere(
        tab, "/settings/company", "settings.company", keep={"version": _version(tab.text())}
    )
    tab.get("/settings/company")
    company = Company.get(*Company.key(ids_of(tab)[0]), consistent_read=True)
    form = {
        "name": fit(p, 110) + " A",
        "business_type": fit(p, 80),
        "area": fit(p, 120),
        "contact_name": fit(p, 120),
        "phone": phone(p),
        "email": company.email,
        "website": "https://example.com/" + secrets.token_hex(3),
        "description": fit(p, 1000),
        "city": fit(p, 80),
        "state": fit(p, 80),
        "country": fit(p, 80),
        "locale": "en",
        "status": "active",
        "slug": "acme-" + secrets.token_hex(4),
        "version": _version(tab.text()),
    }
    world.stored(tab, "/settings/company", form)
    company = Company.get(*Company.key(company.company_id), consistent_read=True)
    world.name(company.slug, "{slug}")
    return company


def _custom_fields(world: World, tab: WebSession) -> tuple[str, str]:
    """A text field and a choice field labelled with the payload: (text cf name, choice option)."""
    p = world.payload
    world.page(tab, "/settings/fields", "settings.fields")
    world.everywhere(tab, "/settings/fields", "settings.fields", keep={"kind": "choice"})
    tab.get("/settings/fields")
    world.stored(tab, "/settings/fields", {"label": fit(p, 55) + " T", "kind": "text"})
    tab.get("/settings/fields")
    option = fit(p.replace(",", " ").replace("\n", " ").strip(), 55) or "x"
    world.stored(
        tab,
        "/settings/fields",
        {"label": fit(p, 55) + " C", "kind": "choice", "options": f"{option}\nplain"},
    )
    world.page(tab, "/settings/fields", "settings.fields", shown=p)
    company = Company.get(*Company.key(ids_of(tab)[0]), consistent_read=True)
    text_field = next(f for f in company.custom_fields if f.kind == "text")
    choice = next(f for f in company.custom_fields if f.kind == "choice")
    return text_field.field_id, choice.field_id + "=" + choice.options[0]


def _users(world: World, client, tab: WebSession) -> None:
    p = world.payload
    world.page(tab, "/settings/users", "settings.users")
    world.everywhere(tab, "/settings/users/invite", "settings.users", keep={"role": "staff"})
    email = unique_email("member")
    world.addresses.add(email)
    tab.get("/settings/users")
    world.stored(
        tab, "/settings/users/invite", {"name": fit(p, 120), "email": email, "role": "staff"}
    )
    world.page(tab, "/settings/users", "settings.users", shown=p)
    link = link_in([m for m in sent_mails() if email in m.to][-1], "/invite/")
    token = link.rsplit("/", 1)[1]
    world.name(token, "{token}")
    member = WebSession(client)
    world.page(member, link, "invite.accept", shown=p)
    world.everywhere(member, link, "invite.accept", keep={"password": "short"})
    member.get(link)
    world.stored(member, link, {"name": fit(p, 120), "password": PASSWORD})
    world.page(tab, "/settings/users", "settings.users", shown=p)


def _order_form(p: str, fields: tuple[str, str], email: str) -> dict[str, str]:
    text_id, choice = fields
    choice_id, option = choice.split("=", 1)
    form = {name: fit(p, n) for name, (n, _multi) in ORDER_TEXT.items()}
    form["customer_phone"] = phone(p)
    form.update(
        {
            "customer_email": email,
            "priority": "normal",
            f"cf_{text_id}": fit(p, 500),
            f"cf_{choice_id}": option,
        }
    )
    return form


def _orders(world: World, tab: WebSession, fields: tuple[str, str]) -> tuple[str, str]:
    """An order full of the payload; (order id, customer e-mail)."""
    world.page(tab, "/orders/new", "staff.order_new")
    world.everywhere(tab, "/orders/new", "staff.order_new", keep={"priority": "normal"})
    email = unique_email("customer")
    world.addresses.add(email)
    tab.get("/orders/new")
    answer = tab.post("/orders/new", _order_form(world.payload, fields, email))
    assert answer.status_code == 303, tab.text()[:800]
    order_id = answer.headers["Location"].rsplit("/", 1)[1]
    world.name(order_id, "{order}")
    edit = f"/orders/{order_id}/edit"
    world.page(tab, edit, "staff.order_edit", shown=world.payload)
    world.everywhere(tab, edit, "staff.order_edit", keep={"version": _version(tab.text())})
    return order_id, email


def _chat_and_workflow(world: World, tab: WebSession, order_id: str) -> None:
    p = world.payload
    path = f"/orders/{order_id}"
    world.page(tab, path, "staff.order_detail")
    world.stored(tab, f"{path}/messages", {"text": fit(p, 4000)})
    world.fields.add(f"{path}/messages:text")
    tab.get(path)
    form = {"action": "cancel", "note": fit(p, 500), "version": _version(tab.text())}
    answer = tab.post(f"{path}/status", form)
    assert answer.status_code == 303
    world.fields.add("/orders/{order}/status:note")
    for action in ("reopen", "start", "complete"):
        tab.get(path)
        tab.post(f"{path}/status", {"action": action, "version": _version(tab.text())})


def _customer(world: World, client, email: str) -> str:
    p = world.payload
    sent = [m for m in sent_mails() if email in m.to and "/o/" in m.text]
    assert sent, "no private link e-mailed to the customer"
    link = link_in(sent[-1], "/o/")
    world.name(link.rsplit("/", 1)[1], "{token}")
    customer = WebSession(client)
    world.page(customer, link, "customer.order", shown=p)
    world.stored(customer, f"{link}/messages", {"text": fit(p, 2000)})
    customer.get(link)
    world.stored(customer, f"{link}/rating", {"stars": "5", "comment": fit(p, 1000)})
    world.fields.update({"/o/{token}/messages:text", "/o/{token}/rating:comment"})
    world.page(customer, link, "customer.order", shown=p)
    return link


def _follow(world: World, client, slug: str, email: str) -> None:
    visitor = WebSession(client)
    path = f"/follow/{slug}"
    world.page(visitor, f"{path}?number={quote(world.payload[:12])}", "follow.form")
    world.everywhere(visitor, path, "follow.form", csrf=None)
    visitor.get(path)
    answer = visitor.post(path, {"number": "1", "email": email}, csrf=None)
    assert answer.status_code == 200
    world.check("follow.sent", visitor.text())


def _settings_pages(world: World, tab: WebSession) -> None:
    p = world.payload
    world.page(tab, "/settings/follow-snippet", "settings.follow")
    world.everywhere(tab, "/settings/follow-snippet", "settings.follow", keep={"accent": "blue"})
    tab.get("/settings/follow-snippet")
    world.stored(tab, "/settings/follow-snippet", {"button": fit(p, 40), "intro": fit(p, 240)})
    world.page(tab, "/settings/follow-snippet", "settings.follow", shown=p)
    world.page(tab, "/settings/intake", "settings.intake")
    world.stored(tab, "/settings/intake", {"action": "rotate", "version": _version(tab.text())})
    tab.get("/settings/intake")
    world.everywhere(tab, "/settings/intake", "settings.intake", keep={"action": "origins"})
    world.page(tab, "/settings/intake", "settings.intake")


def _intake(world: World, client, tab: WebSession, code: str) -> None:
    p = world.payload
    world.name(code, "{code}")
    visitor = WebSession(client)
    path = f"/intake/{code}"
    world.page(visitor, path, "intake.form", shown=p)  # custom field labels
    token = form_token(code, time.time() - 30)
    world.everywhere(visitor, path, "intake.form", keep={"form_token": token}, csrf=None)
    email = unique_email("visitor")
    world.addresses.add(email)
    form = {
        name: fit(p, n) for name, (n, _m) in ORDER_TEXT.items() if name in intake_service.FIELDS
    }
    form.update({"customer_email": email, "customer_phone": phone(p), "website": ""})
    company = Company.get(*Company.key(ids_of(tab)[0]))
    for spec in company.custom_fields:
        form[f"cf_{spec.field_id}"] = spec.options[0] if spec.kind == "choice" else fit(p, 500)
    visitor.get(path)
    answer = visitor.post(path, {**form, "form_token": token}, csrf=None)
    assert answer.status_code == 200, visitor.text()[:800]
    world.check("intake.sent", visitor.text(), shown=email)
    mail = [m for m in sent_mails() if email in m.to][-1]
    confirm = link_in(mail, "/intake/confirm/")
    world.name(confirm.rsplit("/", 1)[1], "{token}")
    world.page(visitor, confirm, "intake.confirm", shown=p)
    visitor.post(confirm, {}, csrf=None)
    world.check("intake.confirmed", visitor.text(), shown=p)
    # The JSON variant: the schema carries the custom labels, a refusal echoes no markup.
    schema = client.http.get(f"/api/v1/intake/{code}")  # type: ignore[attr-defined]
    _check_json(world, "intake.api.schema", schema.body, p)
    body = json.dumps({name: p for name in intake_service.FIELDS})
    refused = client.http.post(  # type: ignore[attr-defined]
        f"/api/v1/intake/{code}", headers={"Content-Type": "application/json"}, body=body
    )
    assert 400 <= refused.status_code < 500
    _check_json(world, "intake.api.refused", refused.body, None)


def _check_json(world: World, view: str, body: bytes | str, shown: str | None) -> None:
    world.checked.add(view)
    text = body.decode() if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError as problem:
        world.findings.append(Finding(view, f"not JSON: {problem}"))
        return
    for value in _strings(data):
        world.findings.extend(evaluated(escape(value), world.payload, view))
    if shown is not None and not any(as_stored(shown)[:50] in v for v in _strings(data)):
        world.missing.append(view)


def _strings(data: object) -> list[str]:
    """Every string value of a decoded JSON document."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for v in data.values() for s in _strings(v)]
    if isinstance(data, list):
        return [s for v in data for s in _strings(v)]
    return []


def _partners(world: World, client, a: WebSession, order_id: str) -> WebSession:
    """B (also named with the payload) executes A's order: quote and chat."""
    p = world.payload
    b = _sign_up(world, client, "B")
    a_id, b_id = ids_of(a)[0], ids_of(b)[0]
    world.name(b_id, "{company}")
    world.page(a, "/partners/directory", "partners.directory")
    world.page(a, "/partners/directory?name=" + quote(p[:60]), "partners.directory.query")
    world.page(a, f"/partners/propose?to={b_id}", "partners.propose", shown=p)
    world.stored(
        a, "/partners/propose", {"to": b_id, "relationship": "approve", "quote_required": "1"}
    )
    world.page(b, f"/partners/{a_id}", "partners.detail", shown=p)
    world.stored(b, f"/partners/{a_id}/accept", {"rev": _rev(b.text())})
    world.page(a, "/partners", "partners.overview", shown=p)
    world.page(a, f"/partners/{b_id}", "partners.detail", shown=p)
    # A second order, shared with B: B quotes and chats.
    a.get("/orders/new")
    answer = a.post("/orders/new", {"customer_name": fit(p, 120), "problem": fit(p, 4000)})
    assert answer.status_code == 303, a.text()[:500]
    shared = answer.headers["Location"].rsplit("/", 1)[1]
    world.name(shared, "{order}")
    a.get(f"/orders/{shared}")
    world.stored(
        a,
        f"/orders/{shared}/executor",
        {"action": "assign", "partner_id": b_id, "version": _version(a.text())},
    )
    world.page(b, f"/orders/{shared}", "partner.order_detail", shown=p)
    world.everywhere(b, f"/orders/{shared}/quote", "partner.order_detail", keep={})
    b.get(f"/orders/{shared}")
    world.stored(
        b,
        f"/orders/{shared}/quote",
        {"quote_value": "350.00", "quote_text": fit(p, 1000), "version": _version(b.text())},
    )
    b.get(f"/orders/{shared}")
    world.stored(b, f"/orders/{shared}/messages", {"text": fit(p, 4000)})
    world.page(a, f"/orders/{shared}", "staff.order_detail.shared", shown=p)
    world.page(b, f"/orders/{shared}", "partner.order_detail", shown=p)
    world.page(b, "/orders", "partner.orders_list", shown=p)
    world.page(b, "/notifications", "partner.notifications")
    # A partner invitation to a company not on CheckOS: e-mail, overview and prefilled sign-up.
    world.page(a, "/partners", "partners.overview")
    world.everywhere(a, "/partners/invite", "partners.overview", keep={"relationship": "both"})
    email = unique_email("partner")
    world.addresses.add(email)
    a.get("/partners")
    world.stored(
        a,
        "/partners/invite",
        {"email": email, "company_name": fit(p, 120), "relationship": "both"},
    )
    world.page(a, "/partners", "partners.overview", shown=p)
    link = link_in([m for m in sent_mails() if email in m.to][-1], "/signup")
    world.page(WebSession(client), link, "signup.invited", shown=p)
    return b


def _staff_views(world: World, a: WebSession, order_id: str, company: Company) -> None:
    p = world.payload
    world.page(a, "/", "staff.dashboard")
    world.page(a, "/orders", "staff.orders_list", shown=p)
    world.page(a, "/orders?view=all", "staff.orders_list")
    world.page(a, "/orders?view=all&name=" + quote(p[:60]), "staff.orders_list.query")
    world.page(a, "/orders?view=all&brand=" + quote(p[:60]), "staff.orders_list.query")
    world.page(a, f"/orders/{order_id}", "staff.order_detail", shown=p)
    world.page(a, f"/orders/{order_id}/print", "staff.order_print", shown=p)
    world.page(a, "/notifications", "staff.notifications")
    world.page(a, "/settings/company", "settings.company", shown=p)
    anonymous = WebSession(world.client)
    world.page(anonymous, "/login?next=" + quote(p[:60]), "login.next")
    world.page(anonymous, f"/c/{company.slug}", "public.company", shown=p)
    public = anonymous.text()
    ld = json_scripts(public)
    if not ld:
        world.findings.append(Finding("public.company", "no JSON-LD on the public page"))
    elif not any(as_stored(company.name)[:50] in v for v in _strings(ld)):
        world.missing.append("public.company.json_ld")
    description = [
        v
        for tag, attrs in parse(public).elements
        if tag == "meta"
        for n, v in attrs
        if n == "content"
    ]
    if not any(CANARY in (v or "") or p[:20].strip() in (v or "") for v in description):
        world.missing.append("public.company.meta")


def _mail_views(world: World, since: int) -> None:
    """The HTML part of every e-mail of this world, parsed; the text part never HTML-escaped."""
    client = world.client
    outbox = WebSession(client)
    mails = [m for m in sent_mails()[since:] if any(a in m.to for a in world.addresses)]
    assert mails, "no e-mail was sent"
    seen_payload, kinds = False, set()
    for mail in mails:
        kind = _template_of(mail)
        world.check(f"email.{kind}.html", mail.html)
        world.checked.add(f"email.{kind}.txt")
        world.findings.extend(evaluated(escape(mail.text), world.payload, f"email.{kind}.txt"))
        escaped = str(as_stored(world.payload)).replace("&", "&amp;").replace("<", "&lt;")
        if "<" in world.payload and escaped[:40] in mail.text:
            world.findings.append(Finding(f"email.{kind}.txt", "HTML-escaped in plain text"))
        # The canary, or (for a template payload, which carries it only as 7*191) the payload.
        literal = as_stored(world.payload)[:20]
        seen_payload = seen_payload or CANARY in mail.text or literal in mail.text
        if kind in kinds:
            continue  # the outbox pages render every mail alike: one of each kind is enough
        kinds.add(kind)
        world.page(outbox, f"/dev/outbox/{mail.index}", "outbox.message")
        answer = outbox.get(f"/dev/outbox/{mail.index}/html")
        assert answer.status_code == 200
        world.check("outbox.message_html", outbox.text())
    if not seen_payload:
        world.missing.append("email")
    world.page(outbox, "/dev/outbox", "outbox.list")


def _template_of(mail: SentMail) -> str:
    for marker, name in (
        ("/invite/", "invitation"),
        ("/intake/confirm/", "intake_confirm"),
        ("/signup?invite=", "partner_invite"),
        ("/o/", "customer"),
        ("/orders/", "intake_new_order"),
        ("/partners/", "partner_request"),
    ):
        if marker in mail.text:
            return name
    return "other"


@pytest.mark.parametrize("name", list(CORPUS))
def test_a_payload_is_inert_in_every_view(client, name: str) -> None:
    FIGURES["runs"] = int(FIGURES["runs"]) + 1  # type: ignore[call-overload]
    world = World(client, CORPUS[name])
    since = len(sent_mails())
    a = _sign_up(world, client, "A")
    company = _profile(world, a)
    fields = _custom_fields(world, a)
    _users(world, client, a)
    _settings_pages(world, a)
    order_id, email = _orders(world, a, fields)
    _chat_and_workflow(world, a, order_id)
    _customer(world, client, email)
    _follow(world, client, company.slug, email)
    company = Company.get(*Company.key(company.company_id), consistent_read=True)
    _intake(world, client, a, company.intake_code)
    _partners(world, client, a, order_id)
    _staff_views(world, a, order_id, company)
    _mail_views(world, since)

    FIGURES["payloads"] = int(FIGURES["payloads"]) + 1  # type: ignore[call-overload]
    FIGURES["views"].update(world.checked)  # type: ignore[union-attr]
    FIGURES["fields"].update(world.fields)  # type: ignore[union-attr]
    FIGURES["checks"] = int(FIGURES["checks"]) + len(world.checked)  # type: ignore[call-overload]
    FIGURES["unescaped"] = int(FIGURES["unescaped"]) + len(world.findings)  # type: ignore[call-overload]
    assert not world.findings, "\n".join(str(f) for f in world.findings[:20])
    assert not world.missing, f"the payload never reached: {sorted(set(world.missing))}"
    uncovered = {
        f"{action}:{n}"
        for action, names in world.forms.items()
        for n in names
        if n not in COVERED.get(action, set())
    }
    assert not uncovered, f"typed fields the injection suite does not fill: {sorted(uncovered)}"


# Payloads that are plain text by design: inert even unescaped (they test template evaluation).
TEXT_ONLY = {"jinja", "jinja_block", "js_template", "angular", "fullwidth", "vbscript_url"}


@pytest.mark.parametrize("name", [n for n in XSS if n not in TEXT_ONLY])
def test_the_oracle_flags_every_markup_payload_left_unescaped(name: str) -> None:
    """The check above can fail: the same payload pasted raw into the usual contexts is caught."""
    payload = XSS[name]
    contexts = [
        f"<p>{payload}</p>",
        f'<input value="{payload}">',
        f"<input value='{payload}'>",
        f"<a href={payload}>x</a>",
        f"<textarea>{payload}</textarea>",
        f'<script type="application/ld+json">{{"name": "{payload}"}}</script>',
    ]
    assert any(dangerous(html, "raw") for html in contexts), name


# Template payloads: what a server- or client-side template engine would make of them.
TEMPLATES = [n for n in XSS if "7*191" in XSS[n].replace(" ", "")]


def _interpolated(payload: str) -> str:
    """``${…}`` / ``#{…}`` evaluated, as a JS template literal or Ruby/EL interpolation would."""
    return re.sub(r"[$#]\{\s*7\s*\*\s*191\s*\}", "1337", payload)


@pytest.mark.parametrize("name", TEMPLATES)
def test_the_oracle_flags_a_template_payload_that_was_evaluated(name: str) -> None:
    """Stored ``{{7*191}}`` shown as ``1337`` is template injection: the oracle sees it."""
    from jinja2 import Environment

    payload = XSS[name]
    shown = as_stored(payload)
    literal = [f"<p>{escape(shown)}</p>", f'<input value="{escape(shown)}">']
    for html in literal:
        assert not evaluated(html, payload, "literal"), (name, html)
    engines = [_interpolated(shown)]
    if "{{" in payload or "{%" in payload:
        engines.append(Environment(autoescape=True).from_string(shown).render())
    contexts = [
        html
        for out in engines
        if out != shown
        for html in (f"<p>{escape(out)}</p>", f'<input value="{escape(out)}">')
    ]
    assert contexts, f"{name}: no engine evaluates it"
    assert all(evaluated(html, payload, "evaluated") for html in contexts), (name, contexts)

"""Fault suite: AWS errors and crashes injected at every write path.

For each path the suite first sends the request while DynamoDB throttles its
first write, then learns from the retry which requests the path makes, and
injects what applies to them: throttling on the last write too, cancelled
transactions (conflict, failed condition), a crash between every two writes,
SES throttling and rejection, S3 errors. Each time: no 500 page, a clear
translated message (a posted form comes back with what was typed), nothing
half-written (the item set is "before", or the documented partial state, and
the invariant checker finds nothing), and a retry works.
"""

from __future__ import annotations

import html
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from chalicelib.domain import limits
from chalicelib.i18n import translate
from tests.figures import report
from tests.security.faults import (
    ANY_WRITE,
    INJECTOR,
    SimulatedCrash,
    crash_after,
    diff,
    fault,
    install,
    raw_item,
    resend_form,
    table_items,
    uninstall,
)
from tests.web.factories import (
    PASSWORD,
    ids_of,
    last_mail_to,
    link_in,
    mails_to,
    sign_up,
    unique_email,
)
from tests.web.session import WebSession

BUSY = translate("en", "error.busy.body")
# `make test` runs every path with a reduced matrix and audits each path once at its
# end (the invariant checker reads a whole company: ~1 s); `make security` runs it all.
THOROUGH = os.environ.get("CHECKOS_THOROUGH") == "1"


@dataclass
class Figures:
    paths: set[str] = field(default_factory=set)
    cases: int = 0  # answers a person saw, each checked by _clear
    clear: int = 0
    crashes: int = 0  # the process died mid-request: no answer; checked by retry and audit
    reruns: int = 0  # a scheduled job failed mid-run: no person; checked by the re-run
    inconsistencies: list[str] = field(default_factory=list)
    matrix: dict[str, list[str]] = field(default_factory=dict)  # path → cases run


FIGURES = Figures()


@pytest.fixture(scope="module", autouse=True)
def _injector(aws: None) -> Iterator[None]:
    install()
    start = INJECTOR.injected
    yield
    uninstall()
    report(
        "faults",
        # A path exercised must have injected faults and shown answers.
        require=("paths", "faults_injected", "user_errors") if FIGURES.paths else (),
        paths=len(FIGURES.paths),
        faults_injected=INJECTOR.injected - start,
        user_errors=FIGURES.cases,
        user_errors_clear=f"{FIGURES.clear}/{FIGURES.cases}",
        crashes_recovered=FIGURES.crashes,
        job_reruns=FIGURES.reruns,
        inconsistencies=len(FIGURES.inconsistencies),
    )
    if os.environ.get("CHECKOS_FAULT_MATRIX"):  # a file to write the matrix to
        with open(os.environ["CHECKOS_FAULT_MATRIX"], "a", encoding="utf-8") as out:
            for path, cases in FIGURES.matrix.items():
                out.write(f"{path}: {'; '.join(cases)}\n")


AUDIT: dict[str, Attempt] = {}  # paths exercised by the running test, audited at its end


@pytest.fixture(autouse=True)
def _sending_limits_out_of_the_way(monkeypatch) -> None:
    """The matrix repeats one action dozens of times from one company to one address;
    the sending limits (driven by test_rate_limits) would refuse it before the fault
    it injects. Their counters are still written, so faults still hit them."""
    raised = tuple(replace(rule, maximum=10**6) for rule in limits.RATE_LIMITS)
    monkeypatch.setattr(limits, "RATE_LIMITS", raised)


@pytest.fixture(autouse=True)
def _audit_at_the_end() -> Iterator[None]:
    """One invariant check per company a test touched (every case's leftovers included)."""
    AUDIT.clear()
    yield
    audited: set[str] = set()
    for attempt in AUDIT.values():
        if not audited.issuperset(attempt.companies()):
            _consistent(attempt, "after every case", always=True)
            audited.update(attempt.companies())


def violations(*company_ids: str) -> list[str]:
    from chalicelib.services.integrity import check_company

    found: list[str] = []
    for company_id in company_ids:
        found += check_company(company_id)
    return found


@dataclass
class Attempt:
    """One write path, ready to send: ``send()`` makes the request as the person would."""

    path: str
    tab: WebSession
    send: Callable[[], Any]
    done: Callable[[Any], bool]  # the request did what it is for
    companies: Callable[[], list[str]]
    typed: dict[str, str] = field(default_factory=dict)  # must come back on the busy page
    secret: dict[str, str] = field(default_factory=dict)  # typed again on a resend
    # Items a failed attempt may leave by design (pk prefixes), e.g. a login throttle count.
    tolerated: tuple[str, ...] = ()
    # The person's retry after a crash, when it differs from sending again (e.g. wait, resend).
    recover: Callable[[], Any] | None = None
    # More checks on every busy answer of the path (e.g. the CORS header of a JSON 503).
    busy_check: Callable[[Any], None] | None = None


def _consistent(attempt: Attempt, label: str, *, always: bool = False) -> None:
    if not (THOROUGH or always):
        return
    found = violations(*attempt.companies())
    if found:
        FIGURES.inconsistencies.append(f"{attempt.path} {label}: {found}")
    assert not found, f"{attempt.path} {label}: {found}"


def _unchanged(attempt: Attempt, before: dict, label: str) -> None:
    changes = diff(before, table_items())
    left = {k for k in changes.touched() if not k[0].startswith(attempt.tolerated or ("\0",))}
    if left:
        FIGURES.inconsistencies.append(f"{attempt.path} {label}: half-written {sorted(left)}")
    assert not left, f"{attempt.path} {label}: a failed request wrote {sorted(left)}"


def _catalogue(language: str) -> dict[str, str]:
    from chalicelib.i18n import catalog

    # A plural message is matched by its general ("other") form.
    return {
        key: texts[language]["other"] if isinstance(texts[language], dict) else texts[language]
        for key, texts in catalog().items()
        if language in texts
    }


def _fragment(text: str) -> str:
    """The longest literal run of a catalogue text (its {placeholders} vary)."""
    return max(re.split(r"\{[^}]*\}", text), key=len).strip()


def problem_named(body: str, language: str) -> str | None:
    """The catalogue key of the message that names the problem, in ``language``, if any.

    An alert or error flash on the page (a form's conflict, a refused action) whose text is
    a catalogue message,
    else one of the error pages' own messages (busy, not found, forbidden...).
    """
    texts = _catalogue(language)
    alerts = [
        html.unescape(re.sub(r"<[^>]+>", " ", inner))
        for inner in re.findall(
            r'(?:role="alert"|class="flash flash-error")[^>]*>(.*?)</(?:div|p|section)>', body, re.S
        )
    ]
    page = html.unescape(body)
    for key, text in texts.items():
        fragment = _fragment(text)
        if len(fragment) < 12:
            continue
        if any(fragment in " ".join(alert.split()) for alert in alerts):
            return key
        if key.startswith("error.") and key.endswith(".body") and fragment in page:
            return key
    return None


def _clear(
    response: Any,
    label: str,
    *,
    attempt: Attempt | None = None,
    language: str = "en",
    shown: Callable[[], None] | None = None,
) -> str:
    """A clear answer: never the 500 page or a stack trace, and one of

    - an error status whose page names the problem in the person's language;
    - ``shown()``: the caller's check that the page the person lands on says what happened;
    - the request did what it was for (``attempt.done``): nothing went wrong for the person;
    - else a redirect to a page that names the problem in the person's language.
    Only then is the case counted clear.
    """
    FIGURES.cases += 1
    body = response.body.decode() if isinstance(response.body, bytes) else str(response.body)
    assert response.status_code != 500, f"{label}: 500 page"
    assert "Traceback" not in body and "botocore" not in body and "injected" not in body, label
    if shown is not None:
        shown()
    elif response.status_code >= 400:
        named = problem_named(body, language)
        assert named, f"{label}: a {response.status_code} page names no problem in {language}"
    elif attempt is None or not attempt.done(response):
        # Not done, no error status: the page the person is sent to must say why.
        location = response.headers.get("Location")
        assert attempt is not None and location, f"{label}: {response.status_code}, not done"
        landing = attempt.tab.get(location)
        page = landing.body.decode() if isinstance(landing.body, bytes) else str(landing.body)
        named = problem_named(page, language)
        assert named, f"{label}: not done, and {location} names no problem in {language}"
    FIGURES.clear += 1
    return body


def _busy(attempt: Attempt, response: Any, label: str) -> None:
    body = _clear(response, label)
    assert response.status_code == 503, f"{label}: {response.status_code} {body[:300]}"
    assert BUSY in body, label
    if attempt.busy_check is not None:
        attempt.busy_check(response)
    if attempt.typed:
        _action, fields = resend_form(body)
        for name, value in attempt.typed.items():
            assert fields.get(name) == value, f"{label}: typed {name!r} not kept"
        assert not set(attempt.secret) & set(fields), f"{label}: a password was echoed"


def _retry(attempt: Attempt, response: Any) -> Any:
    """Retry as the person would: the busy page's resend button, else the same request."""
    if attempt.typed and response is not None and response.status_code == 503:
        action, fields = resend_form(attempt.tab.text())
        return attempt.tab.post(action, {**fields, **attempt.secret})
    return attempt.send()


def exercise(
    name: str,
    prepare: Callable[[], Attempt],
    *,
    crashes: int = 3,
    mail_failed: Callable[[Attempt, Any], None] | None = None,
    s3_failed: Callable[[Attempt, Any, dict], None] | None = None,
    quick: bool = False,
) -> None:
    """The whole fault matrix for one path; ``prepare`` sets up a fresh attempt each time.

    ``quick``: the path shares its writing code with a path tested before it, so `make
    test` runs only its throttle and crash cases (`make security` runs them all).
    """
    FIGURES.paths.add(name)

    # 1. DynamoDB throttles the path's first write: busy page, nothing written, resend works.
    attempt = prepare()
    before = table_items()
    with fault("dynamodb", ANY_WRITE, code="ThrottlingException") as armed:
        response = attempt.send()
    assert armed.hits == 1, f"{name}: no DynamoDB write to fault"
    _busy(attempt, response, f"{name} throttled")
    _unchanged(attempt, before, "throttled")
    _consistent(attempt, "throttled")
    start = len(INJECTOR.writes)
    retried = _retry(attempt, response)
    writes = INJECTOR.writes[start:]
    assert attempt.done(retried), f"{name}: retry failed {retried.status_code}"
    _consistent(attempt, "after retry")
    ddb_writes = [w for w in writes if w[0] == "dynamodb"]
    cases = FIGURES.matrix.setdefault(name, [])
    cases.append("writes " + " ".join(f"{s}.{o}" for s, o in writes))
    cases.append("ddb throttle first write")

    # 2. The last DynamoDB write fails (earlier ones committed): consistent, retry works.
    # (The reduced matrix leaves partial states to the crash case below.)
    if len(ddb_writes) > 1 and THOROUGH:
        attempt = prepare()
        with fault(
            "dynamodb",
            ANY_WRITE,
            code="ProvisionedThroughputExceededException",
            skip=len(ddb_writes) - 1,
        ) as armed:
            response = attempt.send()
        if armed.hits:
            cases.append(f"ddb throughput on write {len(ddb_writes)}")
            _clear(response, f"{name} last write throttled", attempt=attempt)
            _consistent(attempt, "last write throttled")
            assert attempt.done(_retry(attempt, response)), f"{name}: retry after last write"
            _consistent(attempt, "retry after last write")

    # 3. The transaction is cancelled: another writer won (conflict), or a condition failed.
    if ("dynamodb", "TransactWriteItems") in writes and (THOROUGH or not quick):
        kinds = [("None", "TransactionConflict"), ("ConditionalCheckFailed",)]
        for reasons in kinds if THOROUGH else kinds[:1]:
            attempt = prepare()
            before = table_items()
            with fault(
                "dynamodb",
                "TransactWriteItems",
                code="TransactionCanceledException",
                reasons=reasons,
            ) as armed:
                response = attempt.send()
            assert armed.hits == 1
            cases.append(f"tx cancelled {'/'.join(reasons)}")
            _clear(response, f"{name} cancelled {reasons}", attempt=attempt)
            _consistent(attempt, f"cancelled {reasons}")
            if attempt.done(response):  # the path retried the transaction itself
                cases[-1] += " (retried inside)"
            else:
                retried = _retry(attempt, response)
                assert attempt.done(retried), (
                    f"{name}: retry after {reasons}: {retried.status_code}"
                )
            _consistent(attempt, f"retry after {reasons}")

    # 4. SES throttles or rejects the mail: the path's documented answer, still consistent.
    if ("sesv2", "SendEmail") in writes and (THOROUGH or not quick):
        codes = ["TooManyRequestsException", "MessageRejected"]
        # Reduced matrix: the paths take turns between throttling and rejection.
        for code in codes if THOROUGH else [codes[len(FIGURES.matrix) % 2]]:
            attempt = prepare()
            with fault("sesv2", "SendEmail", code=code) as armed:
                response = attempt.send()
            assert armed.hits == 1
            cases.append(f"ses {code}")
            said = (lambda a=attempt, r=response: mail_failed(a, r)) if mail_failed else None
            _clear(response, f"{name} ses {code}", attempt=attempt, shown=said)
            _consistent(attempt, f"ses {code}")

    # 5. S3 fails (server error, slow down, access denied): busy page, no item written.
    for operation in ("PutObject", "DeleteObject"):
        if ("s3", operation) not in writes:
            continue
        codes = ["InternalError", "SlowDown", "AccessDenied"]
        for code in codes if THOROUGH else codes[:1]:
            attempt = prepare()
            before = table_items()
            with fault("s3", operation, code=code) as armed:
                response = attempt.send()
            assert armed.hits == 1
            cases.append(f"s3 {operation} {code}")
            if s3_failed is not None:
                s3_failed(attempt, response, before)
            else:
                _busy(attempt, response, f"{name} s3 {operation} {code}")
                _unchanged(attempt, before, f"s3 {operation} {code}")
            _consistent(attempt, f"s3 {operation} {code}")
            assert attempt.done(_retry(attempt, response)), f"{name}: retry after s3 {code}"
            _consistent(attempt, f"retry after s3 {code}")

    # 6. The process dies between two writes: the table stays consistent, a retry completes.
    points = list(range(1, min(len(writes), crashes + 1)))
    for survived in points if THOROUGH else points[-1:]:
        attempt = prepare()
        with crash_after(survived), pytest.raises(SimulatedCrash):
            attempt.send()
        cases.append(f"crash after write {survived}")
        # No answer to show after a crash (the gateway says 502): not a user-error case;
        # counted as recovered once the audit and the retry below have passed.
        _consistent(attempt, f"crash after {survived} writes")
        retried = (attempt.recover or attempt.send)()
        if not attempt.done(retried):  # e.g. a second order: counted, not only asserted
            FIGURES.inconsistencies.append(f"{name}: retry after crash {survived}")
        assert attempt.done(retried), f"{name}: retry after crash {survived}: {retried.status_code}"
        _consistent(attempt, f"retry after crash {survived}")
        FIGURES.crashes += 1
    # Whatever every case above left behind is still there: audited at the test's end.
    AUDIT[attempt.path] = attempt


# -- the paths -----------------------------------------------------------------------

ORDER = {
    "customer_name": "Maria José da Silva",
    "customer_phone": "(11) 91234-5678",
    "customer_email": "maria@example.com",
    "service_type": "Screen replacement",
    "brand": "Samsung",
    "model": "A54",
    "problem": "Cracked screen after a fall",
    "priority": "normal",
}


@pytest.fixture(scope="module")
def shop(aws: None, app) -> Iterator[WebSession]:
    from chalice.test import Client

    with Client(app) as client:
        yield sign_up(client)


def _company(tab: WebSession) -> Callable[[], list[str]]:
    company_id = ids_of(tab)[0]
    return lambda: [company_id]


def _redirected(response: Any) -> bool:
    return response.status_code == 303


def _new_order(tab: WebSession) -> str:
    tab.get("/orders/new")
    response = tab.post("/orders/new", ORDER)
    assert response.status_code == 303, tab.text()
    return response.headers["Location"].rsplit("/", 1)[-1]


def test_sign_up(shop: WebSession) -> None:
    def prepare() -> Attempt:
        tab = WebSession(shop.client)
        tab.get("/signup")
        form = {
            "company_name": f"Fault Shop {secrets.token_hex(3)}",
            "business_type": "Repairs",
            "area": "Porto",
            "contact_name": "Rui Costa",
            "phone": "+351 912 345 678",
            "email": unique_email("fault"),
        }

        def send() -> Any:
            if "sid" in tab.cookies:  # signed up before a crash: the account exists, sign in
                tab.cookies.clear()
            tab.get("/signup")
            answer = tab.post("/signup", {**form, "password": PASSWORD})
            if answer.status_code == 422:  # "already registered": the first try got through
                tab.get("/login")
                answer = tab.post("/login", {"email": form["email"], "password": PASSWORD})
            return answer

        return Attempt(
            "/signup",
            tab,
            send,
            _redirected,
            lambda: [ids_of(tab)[0]] if "sid" in tab.cookies else [],
            typed=form,
            secret={"password": PASSWORD},
        )

    exercise("sign-up", prepare)


def test_sign_in(shop: WebSession) -> None:
    def prepare() -> Attempt:
        tab = WebSession(shop.client)
        tab.get("/login")
        form = {"email": shop.email, "next": "/orders"}  # type: ignore[attr-defined]
        return Attempt(
            "/login",
            tab,
            lambda: tab.post("/login", {**form, "password": PASSWORD}),
            _redirected,
            _company(shop),
            typed=form,
            secret={"password": PASSWORD},
            tolerated=("THROTTLE#", "LOGIN#"),
        )

    exercise("sign-in", prepare)


def test_order_register(shop: WebSession) -> None:
    def prepare() -> Attempt:
        shop.get("/orders/new")
        form = {**ORDER, "customer_name": f"Keep {secrets.token_hex(2)}"}
        return Attempt(
            "/orders/new",
            shop,
            lambda: shop.post("/orders/new", form),
            _redirected,
            _company(shop),
            typed=form,
        )

    exercise("order register", prepare)


def _version(tab: WebSession, page: str) -> str:
    tab.get(page)
    found = re.search(r'name="version" value="(\d+)"', tab.text())
    assert found, page
    return found.group(1)


def _staff_form_path(
    name: str, tab: WebSession, page: str, path: Callable[[], str], form, quick: bool = False
) -> None:
    """A staff form posted from ``page`` (read again before each try, as a browser would)."""

    def prepare() -> Attempt:
        target = path()
        values = form(target)
        tab.get(page.format(target=target))
        return Attempt(
            target,
            tab,
            lambda: tab.post(target, values),
            _redirected,
            _company(tab),
            typed=values,
        )

    exercise(name, prepare, quick=quick)


def test_order_edit_status_and_chat(shop: WebSession) -> None:
    order_id = _new_order(shop)
    _staff_form_path(
        "order edit",
        shop,
        "/orders/{target}",
        lambda: f"/orders/{order_id}/edit",
        lambda _t: {
            **ORDER,
            "problem": f"Still cracked {secrets.token_hex(2)}",
            "version": _version(shop, f"/orders/{order_id}/edit"),
        },
    )
    exercise("order status", lambda: _status_change(shop, order_id))
    _staff_form_path(
        "order chat",
        shop,
        "/orders/{target}",
        lambda: f"/orders/{order_id}/messages",
        lambda _t: {"text": f"Parts arrived {secrets.token_hex(2)}"},
    )


NEXT_ACTION = {"registered": "start", "in_progress": "complete", "completed": "reopen"}


def _stored_order(order_id: str):
    from chalicelib.db.orders import Order

    # From moto's memory: the suite reads the order before and after every case.
    raw = raw_item(*Order.key(order_id))
    assert raw is not None, order_id
    return Order.from_raw_data(raw)


def _status_change(tab: WebSession, order_id: str) -> Attempt:
    """The next workflow button; done when the stored status moved."""
    start = _stored_order(order_id)
    values = {"action": NEXT_ACTION[start.status], "version": str(start.version)}
    tab.get(f"/orders/{order_id}")
    return Attempt(
        f"/orders/{order_id}/status",
        tab,
        lambda: tab.post(f"/orders/{order_id}/status", values),
        lambda answer: answer.status_code == 303 and _stored_order(order_id).status != start.status,
        _company(tab),
    )


def test_company_settings_save(shop: WebSession) -> None:
    from tests.web.company_factories import settings_form

    _staff_form_path(
        "company settings",
        shop,
        "/settings/company",
        lambda: "/settings/company",
        lambda _t: settings_form(shop, area=f"Braga {secrets.token_hex(2)}"),
    )


def test_logo_upload(shop: WebSession) -> None:
    from tests.web.company_factories import company_of, image_bytes, multipart_body

    sizes = iter(range(200, 400))

    def prepare() -> Attempt:
        data = image_bytes("PNG", (next(sizes), 120))
        old = company_of(shop).logo_key

        def send() -> Any:
            shop.get("/settings/company/logo")
            body, kind = multipart_body(
                {"csrf_token": shop.csrf()}, {"logo": ("logo.png", "image/png", data)}
            )
            return shop.post_raw("/settings/company/logo", body, kind)

        def done(answer: Any) -> bool:
            return answer.status_code == 303 and company_of(shop).logo_key != old

        return Attempt("/settings/company/logo", shop, send, done, _company(shop))

    def old_logo_kept(attempt: Attempt, answer: Any, before: dict) -> None:
        # Deleting the replaced object is best effort: the new logo is saved,
        # the old object stays (unreferenced, content-addressed) and is logged.
        _clear(answer, "logo: old object not deleted", attempt=attempt)

    def delete_or_put(attempt: Attempt, answer: Any, before: dict) -> None:
        if answer.status_code == 303:
            old_logo_kept(attempt, answer, before)
            # The retry in exercise() uploads yet another image.
        else:
            _busy(attempt, answer, "logo s3 put")
            _unchanged(attempt, before, "logo s3 put")

    # A first logo, so every later upload replaces (and deletes) one.
    prepare().send()
    exercise("logo upload", prepare, s3_failed=delete_or_put)


def test_notifications_read(shop: WebSession) -> None:
    from chalicelib.db.accounts import User
    from chalicelib.services import notifications

    company_id, user_id = ids_of(shop)

    def unread() -> int:
        return User.get(*User.key(company_id, user_id), consistent_read=True).unread or 0

    def prepare() -> Attempt:
        notifications.notify(company_id, [user_id], "message", params={"who": "Ana"})
        shop.get("/notifications")
        return Attempt(
            "/notifications/read",
            shop,
            lambda: shop.post("/notifications/read", {"note": "all"}),
            lambda answer: answer.status_code == 303 and unread() == 0,
            _company(shop),
            typed={"note": "all"},
        )

    exercise("notifications read", prepare)


def test_user_invite_role_and_remove(shop: WebSession) -> None:
    from tests.web.factories import invite_member

    def invite() -> Attempt:
        shop.get("/settings/users")
        form = {"name": "Bruno Lima", "email": unique_email("staff"), "role": "staff"}
        return Attempt(
            "/settings/users/invite",
            shop,
            lambda: shop.post("/settings/users/invite", form),
            _redirected,
            _company(shop),
            typed=form,
        )

    exercise("user invite", invite)
    member = ids_of(invite_member(shop.client, shop))[1]

    def other_role() -> str:
        """The role the member does not have now (the same role again writes nothing)."""
        from chalicelib.db.accounts import User

        raw = raw_item(*User.key(ids_of(shop)[0], member))
        return "staff" if raw and raw["role"]["S"] == "admin" else "admin"

    _staff_form_path(
        "user role",
        shop,
        "/settings/users",
        lambda: f"/settings/users/{member}/role",
        lambda _t: {"role": other_role()},
    )

    def remove() -> Attempt:
        user_id = ids_of(invite_member(shop.client, shop))[1]
        shop.get("/settings/users")
        return Attempt(
            f"/settings/users/{user_id}/remove",
            shop,
            lambda: shop.post(f"/settings/users/{user_id}/remove", {}),
            _redirected,
            _company(shop),
        )

    exercise("user remove", remove)


# -- intake: the embeddable form, its JSON API, the e-mailed confirmation --------------

ORIGIN = "https://shop.example"


def _later(minutes: int = 3) -> Any:
    """The clock a few minutes on (past the resend interval and a stale confirmation claim)."""
    from datetime import UTC, datetime, timedelta

    import time_machine

    return time_machine.travel(datetime.now(UTC) + timedelta(minutes=minutes), tick=True)


@pytest.fixture(scope="module")
def intake_shop(shop: WebSession) -> Iterator[tuple[WebSession, str]]:
    """A company with an intake form code and one allowed origin (CORS for the JSON API)."""
    from chalicelib.db.accounts import Company
    from chalicelib.services import intake
    from chalicelib.services.intake import RateLimit

    with pytest.MonkeyPatch.context() as patch:
        # Every test request comes from one address: the rate-limit suite tests the limits.
        patch.setattr(intake, "RATE_LIMITS", (RateLimit("ip", "hour", 100_000),))
        admin = sign_up(shop.client)
        for form in ({"action": "rotate"}, {"action": "origins", "origins": ORIGIN}):
            answer = admin.post(
                "/settings/intake", {**form, "version": _version(admin, "/settings/intake")}
            )
            assert answer.status_code == 303, admin.text()
        yield admin, Company.get(*Company.key(ids_of(admin)[0]), consistent_read=True).intake_code


def _intake_fields(code: str) -> dict[str, str]:
    from chalicelib.web.intake import form_token

    return {
        "customer_name": "Lucía Fernández",
        "customer_email": unique_email("lucia"),
        "customer_phone": "+34 600 123 456",
        "service_type": "Boiler service",
        "brand": "Junkers",
        "problem": f"No hot water since Monday {secrets.token_hex(2)}",
        "website": "",
        "form_token": form_token(code, time.time() - 30),  # filled in 30 s, as a person would
    }


def _pending(company_id: str, email: str) -> bool:
    from chalicelib.db.intake import PendingLock

    try:
        PendingLock.get(*PendingLock.key(company_id, email), consistent_read=True)
    except PendingLock.DoesNotExist:
        return False
    return True


def test_intake_form_submit(intake_shop: tuple[WebSession, str]) -> None:
    admin, code = intake_shop
    company_id = ids_of(admin)[0]

    def prepare() -> Attempt:
        visitor = WebSession(admin.client)
        visitor.get(f"/intake/{code}")
        fields = _intake_fields(code)
        path = f"/intake/{code}"

        def send() -> Any:
            return visitor.post(path, fields, csrf=None)

        def recover() -> Any:
            answer = send()
            if answer.status_code == 409:  # stored before the crash, link never sent: resend
                with _later():
                    resend = {"action": "resend", "customer_email": fields["customer_email"]}
                    answer = visitor.post(path, resend, csrf=None)
            return answer

        return Attempt(
            path,
            visitor,
            send,
            lambda answer: answer.status_code == 200 and 'id="intake-sent"' in visitor.text(),
            lambda: [company_id],
            typed=fields,
            recover=recover,
        )

    def mail_failed(attempt: Attempt, answer: Any) -> None:
        # The request is undone (the address is free again) and the form says so, as typed.
        email = attempt.typed["customer_email"]
        assert answer.status_code == 503, answer.status_code
        assert translate("en", "intake.mail_failed") in attempt.tab.text()
        assert f'value="{email}"' in attempt.tab.text()
        assert not _pending(company_id, email), "an unsent request still locks the address"

    exercise("intake form submit", prepare, mail_failed=mail_failed)


def test_intake_json_api_submit(intake_shop: tuple[WebSession, str]) -> None:
    admin, code = intake_shop
    company_id = ids_of(admin)[0]
    path = f"/api/v1/intake/{code}"

    def post(data: dict[str, str]) -> Any:
        headers = {"Content-Type": "application/json", "Accept-Language": "en", "Origin": ORIGIN}
        return admin.client.http.post(path, headers=headers, body=json.dumps(data))

    def readable_cross_origin(answer: Any) -> None:
        allowed = {k.lower(): v for k, v in answer.headers.items()}.get(
            "access-control-allow-origin"
        )
        assert allowed == ORIGIN, "the embed's script cannot read the 503"
        assert answer.json_body["status"] == "unavailable"

    def prepare() -> Attempt:
        data = {k: v for k, v in _intake_fields(code).items() if k not in ("website", "form_token")}

        def recover() -> Any:
            answer = post(data)
            if answer.status_code == 409:
                with _later():
                    answer = post({"action": "resend", "customer_email": data["customer_email"]})
            return answer

        return Attempt(
            path,
            WebSession(admin.client),
            lambda: post(data),
            lambda answer: answer.status_code == 202,
            lambda: [company_id],
            recover=recover,
            busy_check=readable_cross_origin,
        )

    def mail_failed(attempt: Attempt, answer: Any) -> None:
        assert answer.status_code == 503 and answer.json_body["error"] != "error"
        assert answer.json_body["message"] == translate("en", "intake.mail_failed")
        readable_cross_origin_error = {k.lower(): v for k, v in answer.headers.items()}
        assert readable_cross_origin_error.get("access-control-allow-origin") == ORIGIN

    exercise("intake api submit", prepare, mail_failed=mail_failed)


def _orders_for(email: str) -> int:
    return sum(
        1
        for (_pk, sk), raw in table_items().items()
        if sk == "META" and raw.get("customer_email", {}).get("S") == email
    )


def test_intake_confirm(intake_shop: tuple[WebSession, str]) -> None:
    from chalicelib.db.orders import Order

    admin, code = intake_shop
    company_id = ids_of(admin)[0]
    assert Order.SK == "META"

    def prepare() -> Attempt:
        visitor = WebSession(admin.client)
        visitor.get(f"/intake/{code}")
        fields = _intake_fields(code)
        assert visitor.post(f"/intake/{code}", fields, csrf=None).status_code == 200
        link = link_in(last_mail_to(fields["customer_email"]), "/intake/confirm/")
        visitor.get(link)

        def send() -> Any:
            return visitor.post(link, {}, csrf=None)

        def recover() -> Any:
            answer = send()
            if answer.status_code == 409:  # "being confirmed": the crashed claim times out
                with _later():
                    answer = send()
            return answer

        def done(answer: Any) -> bool:
            confirmed = (
                answer.status_code == 200 and 'class="flash flash-success"' in visitor.text()
            )
            # Exactly once: however many tries, one order for the request.
            return confirmed and _orders_for(fields["customer_email"]) == 1

        return Attempt(link, visitor, send, done, lambda: [company_id], recover=recover)

    exercise("intake confirm", prepare)


# -- partnerships and shared orders -----------------------------------------------------


def _side(a: str, b: str) -> Any:
    """One side of a partnership, read from moto's memory (the suite reads it often)."""
    from types import SimpleNamespace

    from chalicelib.db.partners import Partnership

    raw = raw_item(*Partnership.key(a, b))
    if raw is None:
        return None
    return SimpleNamespace(
        state=raw["state"]["S"],
        rev=raw["rev"]["N"],
        awaiting=raw.get("awaiting", {}).get("S"),
        we_approve=raw.get("we_approve", {}).get("BOOL", False),
        we_execute=raw.get("we_execute", {}).get("BOOL", False),
    )


def _rev(tab: WebSession, partner: str) -> str:
    tab.get(f"/partners/{partner}")
    found = re.search(r'name="rev" value="(\d+)"', tab.text())
    assert found, tab.text()
    return found.group(1)


@dataclass
class Pair:
    a: WebSession  # approves
    b: WebSession  # executes
    a_id: str
    b_id: str

    def companies(self) -> list[str]:
        return [self.a_id, self.b_id]

    def state(self) -> str | None:
        mine = _side(self.a_id, self.b_id)
        return mine.state if mine else None

    def propose(self, relationship: str = "approve") -> Any:
        self.a.get(f"/partners/propose?to={self.b_id}")
        form = {"to": self.b_id, "relationship": relationship, "quote_required": "1"}
        return self.a.post("/partners/propose", form)

    def accept(self) -> Any:
        return self.b.post(f"/partners/{self.a_id}/accept", {"rev": _rev(self.b, self.a_id)})

    def active(self) -> None:
        """Bring the link to active, A approving and B executing, whatever its state."""
        state = self.state()
        if state in (None, "disabled"):
            assert self.propose().status_code == 303, self.a.text()
            state = "proposed"
        mine = _side(self.a_id, self.b_id)
        if state != "active" and mine.awaiting == self.b_id:
            assert self.accept().status_code == 303
        elif state != "active":  # a counter-proposal waits for A: A accepts
            self.a.post(f"/partners/{self.b_id}/accept", {"rev": _rev(self.a, self.b_id)})
        mine = _side(self.a_id, self.b_id)
        if (mine.we_approve, mine.we_execute) != (True, False):
            self.change("approve")
            assert self.accept().status_code == 303
        assert self.state() == "active"

    def other(self) -> str:
        """Terms different from A's current ones (a change to the same terms is no change)."""
        mine = _side(self.a_id, self.b_id)
        return "both" if (mine.we_approve, mine.we_execute) == (True, False) else "approve"

    def change(self, relationship: str) -> Any:
        form = {"relationship": relationship, "quote_required": "1"}
        return self.a.post(
            f"/partners/{self.b_id}/change", {**form, "rev": _rev(self.a, self.b_id)}
        )


@pytest.fixture(scope="module")
def pair(shop: WebSession) -> Pair:
    a = sign_up(shop.client, company_name=f"Aprova {secrets.token_hex(2)}")
    b = sign_up(shop.client, company_name=f"Executa {secrets.token_hex(2)}")
    found = Pair(a, b, ids_of(a)[0], ids_of(b)[0])
    found.active()
    return found


def _mirrored(pair: Pair) -> bool:
    mine, theirs = _side(pair.a_id, pair.b_id), _side(pair.b_id, pair.a_id)
    return (mine.state, mine.rev, mine.awaiting) == (theirs.state, theirs.rev, theirs.awaiting)


def test_partnership_propose_accept_change_delete(pair: Pair) -> None:
    def moved(to: str) -> Callable[[Any], bool]:
        return lambda answer: answer.status_code == 303 and pair.state() == to and _mirrored(pair)

    def propose() -> Attempt:
        if pair.state() not in (None, "disabled"):
            pair.a.post(f"/partners/{pair.b_id}/delete", {})
        pair.a.get(f"/partners/propose?to={pair.b_id}")
        form = {"to": pair.b_id, "relationship": "approve", "quote_required": "1"}
        return Attempt(
            "/partners/propose",
            pair.a,
            lambda: pair.a.post("/partners/propose", form),
            moved("proposed"),
            pair.companies,
            typed=form,
        )

    def accept() -> Attempt:
        if pair.state() in (None, "disabled"):
            pair.propose()
        elif pair.state() == "active":
            pair.change(pair.other())  # suspended until B accepts the new terms
        form = {"rev": _rev(pair.b, pair.a_id)}
        path = f"/partners/{pair.a_id}/accept"
        return Attempt(
            path,
            pair.b,
            lambda: pair.b.post(path, form),
            moved("active"),
            pair.companies,
            typed=form,
        )

    def change() -> Attempt:
        pair.active()
        form = {
            "relationship": pair.other(),
            "quote_required": "1",
            "rev": _rev(pair.a, pair.b_id),
        }
        path = f"/partners/{pair.b_id}/change"
        return Attempt(
            path,
            pair.a,
            lambda: pair.a.post(path, form),
            moved("suspended"),
            pair.companies,
            typed=form,
        )

    def delete() -> Attempt:
        if pair.state() in (None, "disabled"):
            pair.propose()
        path = f"/partners/{pair.b_id}/delete"
        pair.a.get(f"/partners/{pair.b_id}")
        return Attempt(
            path, pair.a, lambda: pair.a.post(path, {}), moved("disabled"), pair.companies
        )

    exercise("partnership propose", propose)
    exercise("partnership accept", accept, quick=True)
    exercise("partnership change", change, quick=True)
    exercise("partnership delete", delete, quick=True)
    pair.active()


def test_shared_order_actions(pair: Pair) -> None:
    pair.active()
    order_id = _new_order(pair.a)

    def shared_form(tab: WebSession, fields: dict[str, str]) -> dict[str, str]:
        tab.get(f"/orders/{order_id}")
        return {**fields, "version": str(_stored_order(order_id).version)}

    def assign() -> Attempt:
        if _stored_order(order_id).executor_id:
            form = shared_form(pair.a, {"action": "withdraw"})
            assert pair.a.post(f"/orders/{order_id}/executor", form).status_code == 303
        form = shared_form(pair.a, {"action": "assign", "partner_id": pair.b_id})
        path = f"/orders/{order_id}/executor"
        return Attempt(
            path,
            pair.a,
            lambda: pair.a.post(path, form),
            lambda answer: (
                answer.status_code == 303 and _stored_order(order_id).executor_id == pair.b_id
            ),
            pair.companies,
            typed=form,
        )

    exercise("order executor", assign)

    def quote() -> Attempt:
        text = f"Gas and a valve {secrets.token_hex(2)}"
        form = shared_form(pair.b, {"quote_value": "350.00", "quote_text": text})
        path = f"/orders/{order_id}/quote"
        return Attempt(
            path,
            pair.b,
            lambda: pair.b.post(path, form),
            lambda answer: answer.status_code == 303 and _stored_order(order_id).quote_text == text,
            pair.companies,
            typed=form,
        )

    exercise("order quote", quote, quick=True)

    def decide() -> Attempt:
        if _stored_order(order_id).quote_state != "pending":
            form = shared_form(pair.b, {"quote_value": "300.00", "quote_text": "Again"})
            assert pair.b.post(f"/orders/{order_id}/quote", form).status_code == 303
        form = shared_form(pair.a, {"decision": "reject"})
        path = f"/orders/{order_id}/quote/decision"
        return Attempt(
            path,
            pair.a,
            lambda: pair.a.post(path, form),
            lambda answer: (
                answer.status_code == 303 and _stored_order(order_id).quote_state == "rejected"
            ),
            pair.companies,
            typed=form,
        )

    exercise("quote decision", decide, quick=True)
    _staff_form_path(
        "shared order chat",
        pair.b,
        "/orders/{target}",
        lambda: f"/orders/{order_id}/messages",
        lambda _t: {"text": f"On my way {secrets.token_hex(2)}"},
        quick=True,
    )


# -- the customer: link resend (staff), rating and chat on the private page ----------------


def test_customer_link_resend_rating_and_message(shop: WebSession) -> None:
    from chalicelib.db.customers import OrderRating

    email = unique_email("customer")
    order_id = _new_order_for(shop, email)

    def last_event_kinds() -> list[str]:
        return [
            raw.get("kind", {}).get("S", "")
            for (pk, sk), raw in sorted(table_items().items())
            if pk == f"ORDER#{order_id}" and sk.startswith("EVENT#")
        ]

    def resend() -> Attempt:
        shop.get(f"/orders/{order_id}")
        sent = len(mails_to(email))
        path = f"/orders/{order_id}/access/resend"
        return Attempt(
            path,
            shop,
            lambda: shop.post(path, {}),
            lambda answer: answer.status_code == 303 and len(mails_to(email)) > sent,
            _company(shop),
        )

    def mail_failed(attempt: Attempt, answer: Any) -> None:
        # Recorded, not raised: the history says the mail failed, with a resend button.
        assert answer.status_code == 303
        assert last_event_kinds()[-1] == "mail_failed"
        shop.get(f"/orders/{order_id}")
        assert translate("en", "customer.link_mail_failed") in shop.text()

    exercise("customer link resend", resend, mail_failed=mail_failed)

    for action in ("start", "complete"):
        values = {"action": action, "version": str(_stored_order(order_id).version)}
        shop.get(f"/orders/{order_id}")
        assert shop.post(f"/orders/{order_id}/status", values).status_code == 303
    customer = WebSession(shop.client)
    link = link_in([m for m in mails_to(email) if "/o/" in m.text][-1], "/o/")
    stars = iter(["4", "5", "2", "3"] * 20)

    def rating() -> Attempt:
        customer.get(link)
        form = {"stars": next(stars), "comment": f"Quick and clean {secrets.token_hex(2)}"}

        def done(answer: Any) -> bool:
            stored = OrderRating.get(*OrderRating.key(order_id), consistent_read=True)
            return answer.status_code == 303 and str(stored.stars) == form["stars"]

        return Attempt(
            f"{link}/rating",
            customer,
            lambda: customer.post(f"{link}/rating", form),
            done,
            _company(shop),
            typed=form,
        )

    exercise("customer rating", rating)

    def message() -> Attempt:
        customer.get(link)
        form = {"text": f"Thank you! {secrets.token_hex(2)}"}
        return Attempt(
            f"{link}/messages",
            customer,
            lambda: customer.post(f"{link}/messages", form),
            _redirected,
            _company(shop),
            typed=form,
        )

    exercise("customer message", message, quick=True)


def _new_order_for(tab: WebSession, email: str) -> str:
    tab.get("/orders/new")
    response = tab.post("/orders/new", {**ORDER, "customer_email": email})
    assert response.status_code == 303, tab.text()
    return response.headers["Location"].rsplit("/", 1)[-1]


# -- exports: S3 failing in the request and in the background job --------------------------


def _export_job(tab: WebSession, answer: Any) -> Any:
    from chalicelib.db.exports import ExportJob

    export_id = answer.headers["Location"].rsplit("/", 1)[-1]
    return ExportJob.get(*ExportJob.key(ids_of(tab)[0], export_id), consistent_read=True)


def _export_says(tab: WebSession, job: Any, key: str) -> None:
    page = tab.get(f"/exports/{job.export_id}")
    assert page.status_code == 200 and translate("en", key) in tab.text(), tab.text()[-600:]


def test_export_in_request_and_in_background(shop: WebSession) -> None:
    from chalicelib.db.exports import DONE, FAILED
    from chalicelib.services import export

    _new_order(shop)

    def prepare() -> Attempt:
        shop.get("/orders")

        def send() -> Any:
            answer = shop.post("/exports", {})
            export.join_background()  # the background job runs inside the armed faults
            return answer

        return Attempt(
            "/exports",
            shop,
            send,
            lambda answer: answer.status_code == 303 and _export_job(shop, answer).status == DONE,
            _company(shop),
        )

    def failed_in_request(attempt: Attempt, answer: Any, before: dict) -> None:
        # The person sees the busy page; the job the request started says FAILED, not RUNNING.
        _busy(attempt, answer, "export s3 put")
        added = diff(before, table_items()).touched()
        jobs = [key for key in added if key[1].startswith("EXPORT#")]
        assert len(jobs) == 1 and added == set(jobs), added
        assert table_items()[jobs[0]]["status"]["S"] == FAILED

    exercise("export in request", prepare, s3_failed=failed_in_request)

    def failed_in_background(attempt: Attempt, answer: Any, before: dict) -> None:
        # The request started the job (303); the job ends FAILED and its page says so.
        def says_failed() -> None:
            assert answer.status_code == 303
            job = _export_job(shop, answer)
            assert job.status == FAILED, job.status
            _export_says(shop, job, "export.failed")

        _clear(answer, "export job s3 put", shown=says_failed)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(export, "IN_REQUEST_ROWS", 0)  # every export is a background job
        exercise("export background", prepare, s3_failed=failed_in_background, crashes=0)
        # The job's claim is throttled: it says FAILED at once, not "queued" for ever.
        attempt = prepare()
        with fault("dynamodb", "UpdateItem", code="ThrottlingException") as armed:
            answer = attempt.send()
        assert armed.hits == 1
        FIGURES.matrix["export background"].append("ddb throttle on the job's claim")
        _clear(
            answer,
            "export job claim throttled",
            shown=lambda: _export_says(shop, _export_job(shop, answer), "export.failed"),
        )
        assert attempt.done(attempt.send())
    # A job that died while running (no word for longer than a Lambda runs) reads as failed.
    attempt = prepare()
    with crash_after(2), pytest.raises(SimulatedCrash):  # the job's item and the S3 file
        attempt.send()
    FIGURES.matrix["export in request"].append("crash before DONE, page after 17 minutes")
    stuck = sorted(
        (raw["created_at"]["S"], raw["export_id"]["S"])
        for (_pk, sk), raw in table_items().items()
        if sk.startswith("EXPORT#") and raw["company_id"]["S"] == ids_of(shop)[0]
    )[-1]
    job = _export_job(shop, type("A", (), {"headers": {"Location": f"/exports/{stuck[1]}"}})())
    assert job.status == "running"
    with _later(export.STALLED_MINUTES + 1):
        _export_says(shop, job, "export.failed")
    AUDIT["/exports"] = attempt


# -- reads: S3 GetObject (logo file) and the export page's DynamoDB read ---------------------


IMAGE_ACCEPT = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"  # what a browser asks


def test_read_faults_logo_file_and_export_page(shop: WebSession) -> None:
    from tests.web.company_factories import company_of, image_bytes, multipart_body

    FIGURES.paths.update({"logo file read", "export page read"})
    shop.get("/settings/company/logo")
    body, kind = multipart_body(
        {"csrf_token": shop.csrf()}, {"logo": ("logo.png", "image/png", image_bytes("PNG"))}
    )
    assert shop.post_raw("/settings/company/logo", body, kind).status_code == 303
    company = company_of(shop)
    logo = f"/logo/{company.company_id}/{company.logo_key.rsplit('/', 1)[-1]}"
    codes = ["InternalError", "SlowDown", "AccessDenied"]
    for code in codes if THOROUGH else codes[:2]:
        for language, busy in (("en", BUSY), ("es", translate("es", "error.busy.body"))):
            with fault("s3", "GetObject", code=code) as armed:
                headers = {"Accept": IMAGE_ACCEPT, "Accept-Language": language}
                answer = shop.client.http.get(logo, headers=headers)
            assert armed.hits == 1
            text = _clear(answer, f"logo file {code}", language=language)
            assert answer.status_code == 503 and text == busy, (answer.status_code, text[:200])
            FIGURES.matrix.setdefault("logo file read", []).append(
                f"s3 GetObject {code} {language}"
            )
        again = shop.client.http.get(logo, headers={"Accept": IMAGE_ACCEPT})
        assert again.status_code == 200 and again.headers["Content-Type"].startswith("image/")

    # The download itself is a presigned S3 link (no app request to fault); the page that
    # makes it reads the job: a throttled read is the busy page, and reloading works.
    _new_order(shop)
    shop.get("/orders")
    started = shop.post("/exports", {})
    page = started.headers["Location"]
    with fault(
        "dynamodb",
        "GetItem",
        code="ProvisionedThroughputExceededException",
        when=lambda p: "EXPORT#" in json.dumps(p),
    ) as armed:
        answer = shop.get(page)
    assert armed.hits == 1
    body = _clear(answer, "export page read")
    assert answer.status_code == 503 and BUSY in body
    FIGURES.matrix.setdefault("export page read", []).append("ddb GetItem throughput")
    assert shop.get(page).status_code == 200 and 'id="download"' in shop.text()


# -- scheduled jobs: a throttle mid-run, then the re-run, without duplicates ---------------


def _day(day: Any, hour: int = 12) -> Any:
    from datetime import UTC, datetime

    import time_machine

    return time_machine.travel(datetime(day.year, day.month, day.day, hour, tzinfo=UTC), tick=False)


def _run_mid_throttled(job: Callable[[], Any], skip: int, label: str) -> Any:
    """Run ``job`` with its (skip+1)-th DynamoDB write throttled: it fails; the re-run completes."""
    from chalicelib.web.context import AWS_UNAVAILABLE

    with (
        fault("dynamodb", ANY_WRITE, code="ThrottlingException", skip=skip) as armed,
        pytest.raises(AWS_UNAVAILABLE) as failed,
    ):
        job()
    assert armed.hits == 1, f"{label}: nothing throttled"
    assert getattr(failed.value, "cause_response_code", None) == "ThrottlingException"
    rerun = job()
    FIGURES.reruns += 1  # no person to show anything to: the re-run is the check
    return rerun


def test_scheduled_jobs_rerun_after_a_throttle(shop: WebSession) -> None:
    from datetime import date, timedelta

    from chalicelib.config import get_settings
    from chalicelib.db.orders import Notification
    from chalicelib.services import jobs
    from chalicelib.services.jobs import JobCursor

    FIGURES.paths.update({"job aging", "job inactivity"})
    base = date(2230, 1, 1) + timedelta(days=secrets.randbelow(3000))  # days no other test uses

    # Aging: three open orders registered on ``base`` are 20 days open on base+20.
    with _day(base):
        tab = sign_up(shop.client, company_name=f"Aging {secrets.token_hex(2)}")
        for _ in range(3):
            _new_order(tab)
    company_id, user_id = ids_of(tab)
    JobCursor(
        *JobCursor.key(jobs.AGING), done_through=(base + timedelta(days=19)).isoformat()
    ).save()
    with _day(base + timedelta(days=20), 6):
        summary = _run_mid_throttled(lambda: jobs.run_aging(base + timedelta(days=20)), 1, "aging")
    assert summary.counts.get("open_20_days") == 3 and summary.counts.get("notified") == 2
    notes = [
        raw
        for (pk, _sk), raw in table_items().items()
        if pk == Notification.partition(company_id, user_id) and raw["kind"]["S"] == "open_20_days"
    ]
    assert len(notes) == 3, f"{len(notes)} aging notifications for 3 orders"
    FIGURES.matrix["job aging"] = ["ddb throttle on notification write 2, re-run"]

    # Inactivity: two companies last active on ``base`` are warned on base+idle-notice.
    settings = get_settings()
    warn_on = base + timedelta(days=settings.inactivity_days - settings.inactivity_warning_days)
    with _day(base + timedelta(days=1)):  # a day of their own in the activity index
        idle = [sign_up(shop.client, company_name=f"Idle {secrets.token_hex(2)}") for _ in range(2)]
    JobCursor(
        *JobCursor.key(jobs.INACTIVITY), done_through=(warn_on + timedelta(days=0)).isoformat()
    ).save()
    warn_day = warn_on + timedelta(days=1)
    with _day(warn_day, 3):
        summary = _run_mid_throttled(lambda: jobs.run_inactivity(warn_day), 1, "inactivity")
    assert summary.counts.get("warned") == 1 and summary.counts.get("skipped") == 1, summary
    for admin in idle:
        warnings = [m for m in mails_to(admin.email) if "inactive on" in m.subject]
        assert len(warnings) == 1, f"{len(warnings)} warnings to {admin.email}"
    FIGURES.matrix["job inactivity"] = ["ddb throttle on the second warning claim, re-run"]
    found = violations(company_id, *(ids_of(admin)[0] for admin in idle))
    FIGURES.inconsistencies += [f"jobs: {v}" for v in found]
    assert not found, found


def test_the_clear_check_can_fail() -> None:
    """An error page that names nothing, or names it in another language, is not clear."""

    @dataclass
    class Answer:
        status_code: int
        body: bytes
        headers: dict = field(default_factory=dict)

    counted = (FIGURES.cases, FIGURES.clear)
    try:
        with pytest.raises(AssertionError, match="names no problem"):
            _clear(Answer(409, b"<main><h1>Order 12</h1></main>"), "silent conflict")
        said = translate("es", "order.edit_conflict", who="Ana", when="10:00")
        flash = f'<div class="flash flash-error" role="status">{said}</div>'.encode()
        with pytest.raises(AssertionError, match="names no problem in en"):
            _clear(Answer(409, flash), "conflict in Spanish for an English reader")
        assert _clear(Answer(409, flash), "conflict in Spanish", language="es")
        with pytest.raises(AssertionError, match="not done"):
            _clear(Answer(303, b"", {"Location": "/orders"}), "redirect, nothing done")
    finally:
        FIGURES.cases, FIGURES.clear = counted

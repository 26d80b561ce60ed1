"""What a company costs to serve and how long a page makes it wait (issue 24).

    make cost      # the standard free-plan company's month in US dollars, by service

Used by `make bench` too. Everything is measured on one company with 100 orders and
one of every resource, in-process on moto:

- capacity units per page and per write action (tests/perf/capacity.py: DynamoDB's
  rules applied to the items each request touched);
- sequential DynamoDB round trips per page (request timestamps: a request sent after
  another answered is one step further on the critical path);
- server time per page: every AWS answer of the page recorded once and replayed from
  botocore's before-call event, so only the app's own work is timed, 200 times, beside
  a bare Chalice + Jinja2 page of the same size served by the same test client;
- the month: those figures times the standard company's month, at the list prices of
  tests/perf/aws_prices.json.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from tests.awscalls import CALLS, AwsCall
from tests.perf import capacity

ROOT = Path(__file__).resolve().parents[2]
PRICES = Path(__file__).with_name("aws_prices.json")
RUNS = 200


@dataclass
class Measured:
    """One page view or one write action, measured once (warm)."""

    name: str
    kind: str  # "staff", "customer" (customer and intake pages) or "action"
    status: int = 0
    requests: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    round_trips: int = 0
    emails: int = 0
    s3_puts: int = 0
    s3_bytes: int = 0
    body_bytes: int = 0
    # The measured request without the simulated network: the app's work and moto's (an
    # upper bound of a write's Lambda time, which server_ms does not replay).
    wall_ms: float = 0.0
    server_ms: float | None = None
    server_p95_ms: float | None = None
    floor_ms: float | None = None
    replay: Callable[[], object] | None = field(default=None, repr=False)
    answer: object = field(default=None, repr=False)

    @property
    def units(self) -> float:
        return self.read_units + self.write_units


def _measure(name: str, kind: str, send: Callable[[], object]) -> Measured:
    mark = CALLS.mark()
    started = time.perf_counter()
    answer = send()
    wall_ms = (time.perf_counter() - started) * 1000
    calls = CALLS.since(mark)
    if CALLS.observe is capacity.observe:  # the simulated network is not the app's time
        requests = sum(c.service == "dynamodb" for c in calls)
        wall_ms = max(0.0, wall_ms - requests * capacity.LATENCY_SECONDS * 1000)
    if any(c.operation == "Scan" for c in calls):
        raise SystemExit(f"bench: {name} made a Scan")
    units = capacity.total_units(calls)
    dynamo = [c for c in calls if c.service == "dynamodb"]
    return Measured(
        name=name,
        kind=kind,
        status=answer.status_code,  # type: ignore[attr-defined]
        requests=len(dynamo),
        read_units=units.read,
        write_units=units.write,
        round_trips=capacity.sequential_round_trips(dynamo),
        emails=sum(c.service in ("ses", "sesv2") and "Send" in c.operation for c in calls),
        s3_puts=sum(c.service == "s3" and c.operation == "PutObject" for c in calls),
        s3_bytes=sum(_s3_bytes(c) for c in calls),
        body_bytes=len(answer.body or b""),  # type: ignore[attr-defined]
        wall_ms=round(wall_ms, 2),
        answer=answer,
    )


def _s3_bytes(call: AwsCall) -> int:
    if call.service != "s3" or call.operation != "PutObject":
        return 0
    # The request's own header, or the length of the chunk s3transfer streamed (closed now).
    headers = {k.lower(): v for k, v in (call.params.get("headers") or {}).items()}
    if "content-length" in headers:
        return int(headers["content-length"])
    body = call.params.get("body")
    return len(body) if hasattr(body, "__len__") else 0


# -- the standard company ------------------------------------------------------------


@dataclass
class Company:
    admin: object
    visitor: object
    made: dict[str, str]
    company_id: str
    intake_code: str
    customer_link: str


def standard_company(client: object, orders: int = 100) -> Company:
    from chalicelib.db.accounts import Company as CompanyItem
    from tests.perf import bench_tenants as bench
    from tests.perf.bench_partition import _customer_link
    from tests.web.factories import ids_of
    from tests.web.session import WebSession

    tenant = bench._tenant(client, "standard", orders)
    admin = tenant.tab
    company_id = ids_of(admin)[0]  # type: ignore[arg-type]
    admin.get("/settings/intake")  # type: ignore[attr-defined]
    version = re.search(r'name="version" value="(\d+)"', admin.text()).group(1)  # type: ignore[attr-defined,union-attr]
    admin.post("/settings/intake", {"action": "rotate", "version": version})  # type: ignore[attr-defined]
    code = CompanyItem.get(*CompanyItem.key(company_id)).intake_code
    link = _customer_link(tenant.made["order_id"], company_id)
    return Company(admin, WebSession(client), tenant.made, company_id, code, link)


def _intake_fields(code: str, email: str) -> dict[str, str]:
    from chalicelib.web.intake import form_token

    return {
        "customer_name": "Lucía Fernández",
        "customer_email": email,
        "customer_phone": "+34 600 123 456",
        "service_type": "Boiler service",
        "brand": "Junkers",
        "model": "Cerapur",
        "problem": "No hot water since Monday",
        "website": "",
        "form_token": form_token(code, time.time() - 10),
    }


def measure_pages(client: object, app: object, company: Company) -> list[Measured]:
    """Every staff GET page, the customer page, the intake form and its confirmation page."""
    from tests.perf import bench_tenants as bench
    from tests.web.factories import last_mail_to, link_in

    pages: list[tuple[str, str, object, str]] = [
        (path, "staff", company.admin, bench._url(path, company.made))
        for path in bench._staff_get_routes(app)
    ]
    email = f"intake-{time.time_ns()}@example.com"
    company.visitor.post(  # type: ignore[attr-defined]
        f"/intake/{company.intake_code}", _intake_fields(company.intake_code, email), csrf=None
    )
    confirm = link_in(last_mail_to(email), "/intake/confirm/")
    company.made["intake_confirm"] = confirm
    pages += [
        ("/o/{token}", "customer", company.visitor, company.customer_link),
        ("/intake/{code}", "customer", company.visitor, f"/intake/{company.intake_code}"),
        ("/intake/confirm/{token}", "customer", company.visitor, confirm),
    ]
    found = []
    for name, kind, tab, url in pages:
        tab.get(url)  # type: ignore[attr-defined]  (warm: templates compiled)
        page = _measure(name, kind, lambda tab=tab, url=url: tab.get(url))  # type: ignore[attr-defined]
        if page.status >= 400:
            print(f"bench: GET {url} answered {page.status}")
        page.replay = lambda tab=tab, url=url: tab.get(url)  # type: ignore[attr-defined]
        found.append(page)
    return found


def measure_actions(company: Company) -> list[Measured]:
    """The write actions of a month: register, edit, status, chat, intake confirm, export."""
    from chalicelib.services import export
    from tests.web.test_tenant_isolation import ORDER_FORM

    admin = company.admin
    found = []
    admin.get("/orders/new")  # type: ignore[attr-defined]
    token = admin.csrf()  # type: ignore[attr-defined]
    register = _measure(
        "register",
        "action",
        lambda: admin.post("/orders/new", ORDER_FORM, csrf=token),  # type: ignore[attr-defined]
    )
    order_id = register.answer.headers["Location"].rsplit("/", 1)[-1]  # type: ignore[attr-defined]
    found.append(register)
    admin.get(f"/orders/{order_id}/edit")  # type: ignore[attr-defined]
    version = re.search(r'name="version" value="(\d+)"', admin.text()).group(1)  # type: ignore[attr-defined,union-attr]
    token = admin.csrf()  # type: ignore[attr-defined]
    edited = {**ORDER_FORM, "version": version, "problem": "No hot water, pilot light out"}
    found.append(
        _measure(
            "edit",
            "action",
            lambda: admin.post(f"/orders/{order_id}/edit", edited, csrf=token),  # type: ignore[attr-defined]
        )
    )
    admin.get(f"/orders/{order_id}")  # type: ignore[attr-defined]
    token = admin.csrf()  # type: ignore[attr-defined]
    found.append(
        _measure(
            "status",
            "action",
            lambda: admin.post(f"/orders/{order_id}/status", {"action": "start"}, csrf=token),  # type: ignore[attr-defined]
        )
    )
    found.append(
        _measure(
            "chat",
            "action",
            lambda: admin.post(  # type: ignore[attr-defined]
                f"/orders/{order_id}/messages", {"text": "Parts arrived, on Tuesday"}, csrf=token
            ),
        )
    )
    confirm = company.made["intake_confirm"]
    found.append(
        _measure(
            "intake confirm",
            "action",
            lambda: company.visitor.post(confirm, {}, csrf=None),  # type: ignore[attr-defined]
        )
    )
    admin.get("/orders")  # type: ignore[attr-defined]
    token = admin.csrf()  # type: ignore[attr-defined]

    def export_all() -> object:
        answer = admin.post("/exports", {}, csrf=token)  # type: ignore[attr-defined]
        export.join_background()
        return answer

    found.append(_measure("export", "action", export_all))
    for action in found:
        if action.status >= 400:
            print(f"bench: {action.name} answered {action.status}")
    return found


# -- server time: AWS answered instantly ------------------------------------------------


def _replayer(recorded: list[AwsCall]) -> Callable[[AwsCall], tuple[object, dict]]:
    """Answers each call with the answer the same request got when recorded (reads that
    overlap on threads arrive in any order); a request whose body differs (a timestamp
    in it) gets the next recorded answer of its operation."""
    ok = SimpleNamespace(status_code=200, headers={})
    by_body = {(c.operation, c.params.get("body")): c.parsed or {} for c in recorded}
    by_operation: dict[str, list[dict]] = {}
    for c in recorded:
        by_operation.setdefault(c.operation, []).append(c.parsed or {})
    turn: dict[str, int] = {}

    def answer(call: AwsCall) -> tuple[object, dict]:
        found = by_body.get((call.operation, call.params.get("body")))
        if found is None:
            answers = by_operation.get(call.operation)
            if not answers:
                raise RuntimeError(f"replay: {call.operation} was not recorded")
            index = turn.get(call.operation, 0)
            turn[call.operation] = index + 1
            found = answers[index % len(answers)]
        return ok, found

    return answer


def server_times(pages: list[Measured], runs: int = RUNS) -> None:
    """Median and p95 of each page's server time with every AWS call answered from memory,
    beside a bare Chalice + Jinja2 page of the same size through the same test client."""
    CALLS.observe = None  # the capacity hooks are the bench's, not the app's, work
    for page in pages:
        assert page.replay is not None
        mark = CALLS.mark()
        page.replay()
        recorded = CALLS.since(mark)
        if any(c.parsed is None and c.service == "dynamodb" for c in recorded):
            raise SystemExit(f"bench: {page.name}: a call without an answer to replay")
        CALLS.answer = _replayer(recorded) if recorded else None
        timings = []
        try:
            for _ in range(runs):
                started = time.perf_counter()
                page.replay()
                timings.append((time.perf_counter() - started) * 1000)
        finally:
            CALLS.answer = None
        page.server_ms = round(statistics.median(timings), 2)
        page.server_p95_ms = round(statistics.quantiles(timings, n=20)[-1], 2)
        page.floor_ms = floor_ms(page.body_bytes, runs)


_FLOOR_APPS: dict[int, object] = {}


def floor_ms(size: int, runs: int = RUNS) -> float:
    """A bare Chalice route rendering a Jinja2 template to ``size`` bytes, same client."""
    from chalice import Chalice, Response
    from chalice.test import Client
    from jinja2 import Environment

    template = Environment(autoescape=True).from_string(
        "<!doctype html><html><body>{% for row in rows %}<p>{{ row }}</p>{% endfor %}</body></html>"
    )
    rows = ["x" * 93] * max(1, size // 100)
    app = Chalice(app_name="floor")

    @app.route("/")
    def page() -> Response:
        return Response(
            body=template.render(rows=rows), headers={"Content-Type": "text/html; charset=utf-8"}
        )

    timings = []
    with Client(app) as client:
        client.http.get("/")
        for _ in range(runs):
            started = time.perf_counter()
            client.http.get("/")
            timings.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(timings), 2)


# -- the month in dollars ------------------------------------------------------------------


def prices() -> dict:
    return json.loads(PRICES.read_text())


def lambda_memory_gb() -> tuple[float, float]:
    """The web function's and the export function's memory (.chalice/config.json, prod)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    web = config.get("lambda_memory_size", 128)
    stage = config["stages"]["prod"]
    web = stage.get("lambda_memory_size", web)
    functions = stage.get("lambda_functions", {})
    exporter = functions.get("export_orders", {}).get("lambda_memory_size", web)
    return web / 1024, exporter / 1024


def month_cost(pages: list[Measured], actions: list[Measured]) -> dict[str, float]:
    """US dollars per company-month by service, for the standard company's month."""
    table = prices()
    month, price = table["standard_company_month"], table["prices"]
    web_gb, export_gb = lambda_memory_gb()
    by_name = {m.name: m for m in pages + actions}

    # Page views: the mix of tests/perf/aws_prices.json; "other" is the mean of the rest.
    views: list[tuple[Measured, float]] = []
    named = set(month["page_mix"]) - {"other staff pages"}
    others = [p for p in pages if p.kind == "staff" and p.name not in named]
    for name, share in month["page_mix"].items():
        group = others if name == "other staff pages" else [by_name[name]]
        for page in group:
            views.append((page, month["page_views"] * share / len(group)))
    doing = [(by_name[name], count) for name, count in month["actions"].items()]
    doing.append((by_name["export"], month["exports"]))
    wait_ms = price["lambda"]["dynamodb_round_trip_ms"]

    read = write = gb_seconds = requests = out_bytes = 0.0
    for item, count in views + doing:
        read += item.read_units * count
        write += item.write_units * count
        requests += count
        out_bytes += item.body_bytes * count
        app_ms = item.server_ms if item.server_ms is not None else item.wall_ms
        memory = export_gb if item.name == "export" else web_gb
        gb_seconds += (app_ms + item.round_trips * wait_ms) / 1000 * memory * count
    export = by_name["export"]
    s3_puts = export.s3_puts * month["exports"]
    s3_gets = month["exports"]  # each file downloaded once through its presigned link
    s3_bytes = export.s3_bytes * month["exports"]
    ddb = price["dynamodb"]
    cost = {
        "dynamodb": read / 1e6 * ddb["read_request_unit_per_million"]
        + write / 1e6 * ddb["write_request_unit_per_million"],
        "lambda": gb_seconds * price["lambda"]["gb_second"]
        + requests / 1e6 * price["lambda"]["requests_per_million"],
        "api_gateway": requests / 1e6 * price["api_gateway"]["rest_requests_per_million"],
        "s3": s3_puts / 1000 * price["s3"]["put_per_thousand"]
        + s3_gets / 1000 * price["s3"]["get_per_thousand"]
        + s3_bytes / 2**30 * price["s3"]["storage_gb_month"],
        "data_transfer": (out_bytes + s3_bytes) / 2**30 * price["data_transfer"]["out_gb"],
        "cloudwatch_logs": requests
        * price["cloudwatch_logs"]["bytes_per_request"]
        / 2**30
        * price["cloudwatch_logs"]["ingest_gb"],
    }
    cost = {name: round(value, 6) for name, value in cost.items()}
    figures: dict[str, float] = {f"cost_{name}_usd": value for name, value in cost.items()}
    figures["cost_per_company_month_usd"] = round(sum(cost.values()), 4)
    figures["email_cost_per_company_month_usd"] = round(
        month["emails"] / 1000 * price["ses"]["per_thousand_emails"], 4
    )
    figures["month_read_units"] = round(read)
    figures["month_write_units"] = round(write)
    figures["month_lambda_gb_seconds"] = round(gb_seconds, 2)
    figures["month_requests"] = round(requests)
    return figures


# -- figures -----------------------------------------------------------------------------


def figures_of(pages: list[Measured], actions: list[Measured]) -> dict[str, float]:
    shown = [p for p in pages if p.status < 400]
    slowest = max(shown, key=lambda p: p.server_ms or 0)
    busiest = sorted(shown, key=lambda p: p.units, reverse=True)
    figures: dict[str, float] = {
        "ddb_units_max_page": max(p.units for p in shown),
        "ddb_units_max_page_name": busiest[0].name,  # type: ignore[dict-item]
        "sequential_round_trips_max": max(p.round_trips for p in shown),
        "server_ms_median_max": slowest.server_ms or 0.0,
        "server_ms_p95_max": max(p.server_p95_ms or 0.0 for p in shown),
        "server_ms_floor": slowest.floor_ms or 0.0,
        "server_ms_slowest_page": slowest.name,  # type: ignore[dict-item]
        "ddb_write_units_max_action": max(a.write_units for a in actions),
    }
    return figures


def print_tables(pages: list[Measured], actions: list[Measured]) -> None:
    print(
        f"{'page / action (standard company)':36} {'req':>4} {'RRU':>6} {'WRU':>6} "
        f"{'seq':>4} {'ms med':>7} {'p95':>7} {'floor':>6} {'bytes':>7} {'mail':>4} {'S3 KB':>6}"
    )
    for item in pages + actions:
        ms = "" if item.server_ms is None else f"{item.server_ms:7.2f}"
        p95 = "" if item.server_p95_ms is None else f"{item.server_p95_ms:7.2f}"
        floor = "" if item.floor_ms is None else f"{item.floor_ms:6.2f}"
        print(
            f"{item.name[:36]:36} {item.requests:>4} {item.read_units:>6.1f} "
            f"{item.write_units:>6.1f} {item.round_trips:>4} {ms:>7} {p95:>7} {floor:>6} "
            f"{item.body_bytes:>7} {item.emails:>4} {item.s3_bytes / 1024:>6.1f}"
        )
    print()


def print_cost(figures: dict[str, float]) -> None:
    table = prices()
    print(f"Standard company-month at {table['region']} list prices ({table['as_of']}):")
    for key, value in figures.items():
        if key.startswith("cost_") and key != "cost_per_company_month_usd":
            print(f"  {key[5:-4]:18} ${value:.6f}")
    print(f"  {'total (no e-mail)':18} ${figures['cost_per_company_month_usd']:.4f}")
    print(f"  {'e-mail (SES)':18} ${figures['email_cost_per_company_month_usd']:.4f}")
    print()


def measure(client: object, app: object, runs: int = RUNS) -> tuple[dict, list, list]:
    """Pages, actions, server times and the month, on a fresh standard company."""
    capacity.install()
    try:
        company = standard_company(client)
        pages = measure_pages(client, app, company)
        actions = measure_actions(company)
    finally:
        CALLS.observe = None
    server_times(pages, runs)
    figures = figures_of(pages, actions)
    figures.update(month_cost(pages, actions))
    return figures, pages, actions


def on_moto(runs: int) -> tuple[dict, list, list]:
    from chalice.test import Client
    from moto import mock_aws

    from infra import moto_patches
    from tests.perf import bench

    moto_patches.apply()
    with mock_aws():
        bench._provision()
        from app import app

        with Client(app) as client:
            return measure(client, app, runs)


def main(argv: list[str]) -> int:
    import tests.perf.bench  # noqa: F401  (the environment the app reads, set on import)

    runs = 40 if "--quick" in argv else RUNS
    figures, pages, actions = on_moto(runs)
    print_tables(pages, actions)
    print_cost(figures)
    print(json.dumps({k: v for k, v in figures.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

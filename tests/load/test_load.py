"""Load: concurrent browser-like clients against the served app on loopback, then the checker.

A fixed workload, counted in operations, not seconds: `make load` runs 32
clients of 150 operations each (``LOAD_CLIENTS``, ``LOAD_OPERATIONS``), then
``LOAD_RACES`` edit races per company; `make test` a short run of the same
shape. The app is served over real HTTP by Chalice's threaded local server
on 127.0.0.1; its AWS calls go to the serialised loopback moto server that
tests/conftest.py starts for this suite. Every client signs in, creates an
order, submits an intake request and confirms it, then mixes lists,
filters, order pages, create, edit, status changes, chat and intake. An
edit refused as stale (409) is resolved as a person would: re-read the
order and apply the change again. In the race phase two colleagues open
the same order's edit form, wait for each other (a barrier: both read
before either writes) and save: exactly one is refused, and re-applies.
Afterwards every success a client was told about must be in the table (no
lost update), every conflict resolved, and the invariant checker must find
nothing.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import secrets
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.client import HTTPConnection
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from chalicelib.db import keys
from chalicelib.db.accounts import Company
from chalicelib.db.base import Item
from chalicelib.db.intake import CONFIRMED, IntakeRequest
from chalicelib.db.orders import Order, OrderEvent, OrderMessage
from chalicelib.domain.tokens import token_hash
from chalicelib.services import intake, intake_codes, integrity
from chalicelib.services.sessions import now
from tests.figures import report
from tests.service.factories import new_company, staff_logins
from tests.web.factories import PASSWORD

CLIENTS = int(os.environ.get("LOAD_CLIENTS", "32"))
OPERATIONS = int(os.environ.get("LOAD_OPERATIONS", "150"))  # per client, the first five fixed
RACES = int(os.environ.get("LOAD_RACES", "3"))  # edit races per company, two colleagues each
CLIENTS_PER_COMPANY = 4  # colleagues editing the same orders: real optimistic-lock races

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_ORDER_LINK = re.compile(r'href="/orders/([0-9a-f]{16})"')
_VERSION = re.compile(r'name="version" value="(\d+)"')
_ACTION = re.compile(r'name="action" value="(schedule|start|complete|reopen)"')
NAMES = ["Maria Silva", "Carlos Pérez", "Ana Prado", "John Carter", "Lucía Fernández"]
BRANDS = ["Samsung", "LG", "Bosch", "Apple", "Dell"]


@dataclass
class Tally:
    """Requests, outcomes and latencies of every client (one lock: they are all threads)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    by_label: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, label: str, status: int, seconds: float) -> None:
        with self.lock:
            self.by_label[label].append(seconds)
            self.latencies.append(seconds)
            self.statuses[status] += 1
            self.operations[label] += 1
            if status >= 500:
                self.server_errors.append(f"{status} {label}")

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000 if ordered else 0


@dataclass
class Ledger:
    """Every success a client was told about; all must be in the table afterwards."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    created: list[str] = field(default_factory=list)
    messages: list[tuple[str, str]] = field(default_factory=list)
    edits: dict[str, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    moves: Counter[str] = field(default_factory=Counter)
    confirmed: list[str] = field(default_factory=list)  # intake tokens confirmed
    submitted: int = 0  # intake requests accepted (a confirmation link e-mailed)
    conflicts: int = 0  # edits refused as stale (409)
    resolved: int = 0  # of those, re-read and saved again
    races: list[tuple[str, int]] = field(default_factory=list)  # (order, 409s in the round)


class Tokens:
    """The intake confirmation links, captured as the app e-mails them (same process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_company: dict[str, list[str]] = defaultdict(list)

    def put(self, company_id: str, token: str) -> None:
        with self.lock:
            self.by_company[company_id].append(token)

    def take(self, company_id: str) -> str | None:
        with self.lock:
            waiting = self.by_company[company_id]
            return waiting.pop(0) if waiting else None


@dataclass
class Seat:
    company: Company
    email: str


class Browser:
    """One tab: keeps its cookies, knows its CSRF token, times every request."""

    def __init__(self, port: int, tally: Tally) -> None:
        self.port = port
        self.tally = tally
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def request(
        self,
        label: str,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> tuple[int, dict[str, str], str]:
        headers = {"Accept-Language": "en"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if form is not None:
            body = urlencode({**form, "csrf_token": self.csrf}).encode()
        if body is not None:
            headers["Content-Type"] = content_type
        connection = HTTPConnection("127.0.0.1", self.port, timeout=120)
        started = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
        finally:
            connection.close()
        self.tally.add(label, response.status, time.perf_counter() - started)
        flashes: list[str] = []
        for name, value in response.getheaders():
            if name.lower() != "set-cookie":
                continue
            jar: SimpleCookie = SimpleCookie()
            jar.load(value)
            for key, morsel in jar.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(key, None)
                else:
                    self.cookies[key] = morsel.value
                    if key == "flash":
                        flashes.append(morsel.value)
        token = _CSRF.search(text)
        if token:
            self.csrf = token.group(1)
        out = {k.lower(): v for k, v in response.getheaders()}
        out["flash"] = flashes[-1] if flashes else ""
        return response.status, out, text

    def flash_level(self, headers: dict[str, str]) -> str:
        """'success' or 'error' from the signed flash cookie a redirect sets."""
        from chalicelib.web.http import unpack

        flashes = unpack(headers.get("flash") or None, "flash") or []
        return str(flashes[-1][0]) if flashes else ""


class Client:
    """One person at work: a seat at a company, its own random mix of actions."""

    def __init__(self, number: int, seat: Seat, port: int, world: Load) -> None:
        self.rng = random.Random(number)
        self.seat = seat
        self.world = world
        self.browser = Browser(port, world.tally)
        self.orders: list[str] = []
        self.number = number

    def sign_in(self) -> None:
        b = self.browser
        if b.cookies.get("sid"):
            b.request("sign-in", "POST", "/logout", form={})
        b.request("sign-in", "GET", "/login")
        status, _, _ = b.request(
            "sign-in", "POST", "/login", form={"email": self.seat.email, "password": PASSWORD}
        )
        assert status == 303, f"sign-in refused ({status})"
        b.request("sign-in", "GET", "/orders")  # the session's CSRF token

    def remember(self, text: str) -> None:
        found = _ORDER_LINK.findall(text)
        if found:
            self.orders = list(dict.fromkeys(found + self.orders))[:60]

    def some_order(self) -> str | None:
        return self.rng.choice(self.orders) if self.orders else None

    # -- actions ----------------------------------------------------------------

    def list_orders(self) -> None:
        path = self.rng.choice(["/orders", "/orders?view=all"])
        self.remember(self.browser.request("list", "GET", path)[2])

    def filter_orders(self) -> None:
        query = self.rng.choice(
            [
                {"status": self.rng.choice(["registered", "in_progress", "completed"])},
                {"name": self.rng.choice(NAMES).split()[0]},
                {"brand": self.rng.choice(BRANDS)},
                {"phone": "9123"},
                {"view": "all", "date_from": now().date().isoformat()},
            ]
        )
        self.remember(self.browser.request("filter", "GET", "/orders?" + urlencode(query))[2])

    def view_order(self) -> None:
        order_id = self.some_order()
        if order_id:
            self.browser.request("view", "GET", f"/orders/{order_id}")

    def _order_form(self, marker: str) -> dict[str, str]:
        with_mail = self.rng.random() < 0.3
        return {
            "customer_name": f"{self.rng.choice(NAMES)} {self.number}",
            "customer_phone": f"(11) 9123-{self.rng.randrange(10000):04d}",
            "customer_email": f"load-{secrets.token_hex(3)}@example.com" if with_mail else "",
            "service_type": self.rng.choice(["Screen", "Battery", "Boiler"]),
            "brand": self.rng.choice(BRANDS),
            "problem": marker,
            "priority": "normal",
        }

    def create(self) -> None:
        self.browser.request("create", "GET", "/orders/new")
        marker = f"created by {self.number} {secrets.token_hex(4)}"
        status, headers, _ = self.browser.request(
            "create", "POST", "/orders/new", form=self._order_form(marker)
        )
        if status == 303:
            order_id = headers["location"].rsplit("/", 1)[-1]
            self.orders.insert(0, order_id)
            with self.world.ledger.lock:
                self.world.ledger.created.append(order_id)

    def edit(self) -> None:
        order_id = self.some_order()
        if not order_id:
            return
        status, _, page = self.browser.request("edit", "GET", f"/orders/{order_id}/edit")
        version = _VERSION.search(page)
        if status != 200 or not version:
            return  # a partner's order, or gone from this client's view
        marker = f"edited by {self.number} {secrets.token_hex(4)}"
        self.save_edit(order_id, int(version.group(1)), self._order_form(marker))

    def save_edit(self, order_id: str, version: int, form: dict[str, str]) -> int:
        """Post the edit; refused as stale (409), re-read the order and apply it again.

        Returns the number of conflicts met."""
        ledger = self.world.ledger
        met = 0
        for _attempt in range(5):
            path = f"/orders/{order_id}/edit"
            status, _, _ = self.browser.request(
                "edit", "POST", path, form={**form, "version": str(version)}
            )
            if status == 303:
                with ledger.lock:
                    ledger.edits[order_id].append((version, form["problem"]))
                    ledger.resolved += met  # every refusal met on the way is resolved
                return met
            if status != 409:
                return met
            met += 1
            with ledger.lock:
                ledger.conflicts += 1
            status, _, page = self.browser.request("edit", "GET", path)  # re-read
            fresh = _VERSION.search(page)
            if status != 200 or not fresh:
                return met
            version = int(fresh.group(1))
        return met

    def move(self) -> None:
        order_id = self.some_order()
        if not order_id:
            return
        _, _, page = self.browser.request("status", "GET", f"/orders/{order_id}")
        version = _VERSION.search(page)
        actions = _ACTION.findall(page)
        if not version or not actions:
            return
        form = {"action": self.rng.choice(actions), "version": version.group(1)}
        if form["action"] == "schedule":
            form["action"] = "start"  # scheduling needs a service date: keep the mix simple
        status, headers, _ = self.browser.request(
            "status", "POST", f"/orders/{order_id}/status", form=form
        )
        if status == 303 and self.browser.flash_level(headers) == "success":
            with self.world.ledger.lock:
                self.world.ledger.moves[order_id] += 1

    def chat(self) -> None:
        order_id = self.some_order()
        if not order_id:
            return
        text = f"message {self.number}-{secrets.token_hex(5)}"
        status, _, _ = self.browser.request(
            "chat", "POST", f"/orders/{order_id}/messages", form={"text": text}
        )
        if status == 303:
            with self.world.ledger.lock:
                self.world.ledger.messages.append((order_id, text))

    def submit_intake(self) -> None:
        body = json.dumps(
            {
                "customer_name": f"Visitor {self.number}",
                "customer_email": f"visitor-{secrets.token_hex(4)}@example.com",
                "customer_phone": "+55 21 99876-5432",
                "problem": "Does not spin",
            }
        ).encode()
        path = f"/api/v1/intake/{self.seat.company.intake_code}"
        status, _, _ = self.browser.request(
            "intake", "POST", path, body=body, content_type="application/json"
        )
        if 200 <= status < 300:
            with self.world.ledger.lock:
                self.world.ledger.submitted += 1

    def confirm_intake(self) -> None:
        token = self.world.tokens.take(self.seat.company.company_id)
        if token is None:
            return
        visitor = Browser(self.browser.port, self.world.tally)  # the requester, not the staff
        visitor.request("confirm", "GET", f"/intake/confirm/{token}")
        status, _, _ = visitor.request("confirm", "POST", f"/intake/confirm/{token}", body=b"")
        if status == 200:
            with self.world.ledger.lock:
                self.world.ledger.confirmed.append(token)

    def notifications(self) -> None:
        self.browser.request("notifications", "GET", "/notifications")

    def run(self, operations: int) -> None:
        """A fixed workload: the first five operations every client does, then a random mix."""
        fixed = [self.sign_in, self.create, self.submit_intake, self.confirm_intake, self.edit]
        for action in fixed[:operations]:
            action()
        actions = [
            (self.sign_in, 2),
            (self.list_orders, 12),
            (self.filter_orders, 10),
            (self.view_order, 10),
            (self.create, 12),
            (self.edit, 16),
            (self.move, 12),
            (self.chat, 14),
            (self.submit_intake, 5),
            (self.confirm_intake, 5),
            (self.notifications, 2),
        ]
        moves, weights = zip(*actions, strict=True)
        for _ in range(operations - len(fixed)):
            self.rng.choices(moves, weights)[0]()

    def race(self, order_id: str, barrier: threading.Barrier) -> None:
        """One round: both read the edit form, wait for each other, save; the loser re-applies."""
        status, _, page = self.browser.request("race", "GET", f"/orders/{order_id}/edit")
        version = _VERSION.search(page)
        assert status == 200 and version, f"race: no edit form ({status})"
        barrier.wait(timeout=120)  # both have read version v: neither has written yet
        marker = f"raced by {self.number} {secrets.token_hex(4)}"
        met = self.save_edit(order_id, int(version.group(1)), self._order_form(marker))
        with self.world.ledger.lock:
            self.world.ledger.races.append((order_id, met))


@dataclass
class Load:
    tally: Tally = field(default_factory=Tally)
    ledger: Ledger = field(default_factory=Ledger)
    tokens: Tokens = field(default_factory=Tokens)
    companies: list[Company] = field(default_factory=list)


def _seats(load: Load) -> list[Seat]:
    """Companies of CLIENTS_PER_COMPANY colleagues: the admin and staff with logins."""
    seats: list[Seat] = []
    for index in range(max(1, -(-CLIENTS // CLIENTS_PER_COMPANY))):
        account = new_company(f"Load Co {index} {secrets.token_hex(2)}")
        company = account.company
        company.update(
            actions=[Company.email_validated.set(True), Company.monthly_quota.set(1_000_000)]
        )
        intake_codes.generate_code(company, company.version)
        company = Company.get(*Company.key(company.company_id))
        load.companies.append(company)
        seats.append(Seat(company, account.user.email))
        for _user_id, email in staff_logins(company, CLIENTS_PER_COMPANY - 1):
            seats.append(Seat(company, email))
    return seats[:CLIENTS]


def _ms(times: list[float], share: float) -> int:
    ordered = sorted(times)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000)


def _serve(app) -> tuple[object, int]:
    from chalice.config import Config
    from chalice.local import CustomLocalChalice, ThreadedHTTPServer, create_local_server

    if type(app) is CustomLocalChalice:  # served before in this process (tests/load has two)
        app.__class__ = CustomLocalChalice.__bases__[1]  # else chalice makes a class cycle

    # socketserver's default listen backlog is 5: with every client opening a
    # connection per request, the dev server itself would reset connections.
    ThreadedHTTPServer.request_queue_size = 128
    ThreadedHTTPServer.daemon_threads = True
    server = create_local_server(app, Config.create(chalice_stage="dev"), "127.0.0.1", 0)
    port = server.server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


def _lost_updates(ledger: Ledger) -> list[str]:
    """Every success a client saw, looked up in the table."""
    lost: list[str] = []
    touched = set(ledger.created) | {o for o, _ in ledger.messages} | set(ledger.edits)
    touched |= set(ledger.moves)
    groups = {order_id: list(Item.query(keys.order(order_id))) for order_id in touched}
    for order_id in ledger.created:
        if not any(isinstance(i, Order) for i in groups[order_id]):
            lost.append(f"created order {order_id} missing")
    texts = {
        (order_id, item.text)
        for order_id, group in groups.items()
        for item in group
        if isinstance(item, OrderMessage)
    }
    lost += [f"message {t!r} on {o} missing" for o, t in ledger.messages if (o, t) not in texts]
    for order_id, edits in ledger.edits.items():
        order = next(i for i in groups[order_id] if isinstance(i, Order))
        events = [i for i in groups[order_id] if isinstance(i, OrderEvent) and i.kind == "edited"]
        if len(events) != len(edits):
            lost.append(f"order {order_id}: {len(edits)} edits saved, {len(events)} in history")
        last = max(edits)[1]  # the edit saved at the highest version is the current one
        if order.problem != last:
            lost.append(f"order {order_id}: problem {order.problem!r}, last saved {last!r}")
    for order_id, count in ledger.moves.items():
        events = [i for i in groups[order_id] if isinstance(i, OrderEvent) and i.kind == "status"]
        if len(events) != count:
            lost.append(f"order {order_id}: {count} status changes saved, {len(events)} events")
    for token in ledger.confirmed:
        request = IntakeRequest.get(*IntakeRequest.key(token_hash(token)), consistent_read=True)
        if request.status != CONFIRMED or not request.order_id:
            lost.append(f"intake request {token_hash(token)[:12]} not confirmed")
        elif not any(True for _ in Item.query(keys.order(request.order_id))):
            lost.append(f"intake order {request.order_id} missing")
    return lost


def test_concurrent_clients_lose_nothing_and_leave_the_table_consistent(aws, app, monkeypatch):
    load = Load()
    # One loopback address for every visitor: lift the per-IP intake limits here
    # (they are proved in tests/service/test_intake.py), keep everything else.
    monkeypatch.setattr(intake, "RATE_LIMITS", ())
    original_send = intake._send_link

    def capture(company, email, name, token, locale, expires) -> None:
        original_send(company, email, name, token, locale, expires)
        load.tokens.put(company.company_id, token)

    monkeypatch.setattr(intake, "_send_link", capture)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log
    seats = _seats(load)
    server, port = _serve(app)
    clients = [Client(n, seat, port, load) for n, seat in enumerate(seats)]
    failures: list[BaseException] = []

    def work(job, *args) -> None:
        try:
            job(*args)
        except BaseException as problem:  # a client that dies must fail the test
            failures.append(problem)

    def together(jobs: list[tuple]) -> None:
        threads = [threading.Thread(target=work, args=job) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    started = time.monotonic()
    together([(c.run, OPERATIONS) for c in clients])
    # Races: per company, its first two colleagues on one order of theirs (the same each round).
    pairs = [
        (a, b)
        for a, b in zip(
            clients[::CLIENTS_PER_COMPANY], clients[1::CLIENTS_PER_COMPANY], strict=False
        )
        if a.seat.company is b.seat.company and a.orders
    ]
    for _round in range(RACES):
        jobs = []
        for a, b in pairs:
            barrier = threading.Barrier(2)
            order_id = a.orders[-1]
            jobs += [(a.race, order_id, barrier), (b.race, order_id, barrier)]
        together(jobs)
    elapsed = time.monotonic() - started
    server.server.shutdown()

    lost = _lost_updates(load.ledger)
    checked = integrity.audit(c.company_id for c in load.companies)
    tally = load.tally
    ledger = load.ledger
    conflicts = tally.statuses[409]
    refused = sum(n for s, n in tally.statuses.items() if 400 <= s < 500 and s != 409)
    rounds = Counter(order_id for order_id, _ in ledger.races)
    race_conflicts = [met for _, met in ledger.races]
    operations = {
        "sign_ins": tally.operations["sign-in"],
        "lists": tally.operations["list"] + tally.operations["filter"],
        "views": tally.operations["view"],
        "orders": len(ledger.created),
        "edits": sum(len(e) for e in ledger.edits.values()),
        "moves": sum(ledger.moves.values()),
        "messages": len(ledger.messages),
        "intake_submitted": ledger.submitted,
        "intake_confirmed": len(ledger.confirmed),
    }
    report(
        "load",
        clients=len(clients),
        operations_per_client=OPERATIONS,
        seconds=round(elapsed, 1),
        requests=len(tally.latencies),
        rps=round(len(tally.latencies) / elapsed, 1),
        server_errors=len(tally.server_errors),
        **operations,
        races=len(ledger.races) // 2,
        conflicts_409=conflicts,
        conflicts_resolved=ledger.resolved,
        other_4xx=refused,
        p50_ms=round(tally.percentile(0.50)),
        p95_ms=round(tally.percentile(0.95)),
        items_checked=checked.items,
        violations=len(checked.violations),
        lost_updates=len(lost),
    )
    # Per operation: requests x median / 95th percentile latency.
    report(
        "load-ops",
        **{
            label: f"{len(times)}x{_ms(times, 0.5)}/{_ms(times, 0.95)}ms"
            for label, times in sorted(tally.by_label.items())
        },
    )
    assert not failures, failures[0]
    assert tally.server_errors == [], tally.server_errors[:5]
    # The work happened: every kind of operation, at least one real race per company pair.
    assert all(count > 0 for count in operations.values()), operations
    assert pairs and RACES > 0, "no two colleagues to race"
    assert len(ledger.races) == 2 * RACES * len(pairs), ledger.races
    # Both read before either wrote: in every round exactly one of the two was refused.
    assert all(n == 2 * RACES for n in rounds.values()), rounds
    assert sum(race_conflicts) == RACES * len(pairs), race_conflicts
    assert conflicts >= 1 and conflicts == ledger.conflicts, (conflicts, ledger.conflicts)
    assert ledger.resolved == conflicts, f"{conflicts} conflicts, {ledger.resolved} resolved"
    assert checked.items > 0 and checked.violations == [], checked.violations[:10]
    assert lost == [], lost[:10]

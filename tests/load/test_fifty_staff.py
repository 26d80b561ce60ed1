"""Fifty staff of one company at work at once, with DynamoDB's conflicts, lag and throttles.

Every client works on an order of its own, so every conflict message any of
them sees is spurious: nobody else touched that order. What they do share is
what DynamoDB makes them collide on: the company's order counter and monthly
usage (every fifth client registers its order in the workload, ten at one
moment), the dashboard counters (``STAT#…``) every registration, edit and
completion carries in its transaction, and the unread count of the five
technicians every chat message notifies. The realism layer
(infra/ddb_realism.py) cancels overlapping transactions with
``TransactionConflict``, lags the indexes and throttles a share of requests.
A fixed workload: each client (signed in) waits for the others, opens (or
registers) its order, then ``STAFF_ROUNDS`` times edits it, writes in its
chat, starts and completes it (reopening it between rounds). Afterwards
every success a client was told about must be in the table (history, chat,
notifications), and the invariant checker must find nothing.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from chalicelib.db import keys, stats
from chalicelib.db.accounts import Company
from chalicelib.db.base import Item
from chalicelib.db.orders import Notification, OrderEvent, OrderMessage
from chalicelib.services import integrity, orders, sessions
from chalicelib.services.orders import Actor
from chalicelib.web import http
from chalicelib.web.context import SESSION_COOKIE
from chalicelib.web.http import unpack
from infra.ddb_realism import REALISM
from tests.figures import report
from tests.load.test_load import Browser, Tally, _serve
from tests.service.factories import new_company, staff_logins

CLIENTS = int(os.environ.get("STAFF_CLIENTS", "50"))
ROUNDS = int(os.environ.get("STAFF_ROUNDS", "2"))
TECHNICIANS = 5
# The other option measured (docs/design.md): STAFF_STAT_SHARDS=1 puts every counter
# back in one item, so order changes collide on it and only the retries absorb that.
STAT_SHARDS = os.environ.get("STAFF_STAT_SHARDS")
REGISTERING = 5  # every fifth client registers its order in the workload (10 at once)
BRANDS = ["Samsung", "LG", "Bosch", "Apple", "Dell"]
_VERSION = re.compile(r'name="version" value="(\d+)"')
CONFLICT_TEXT = "while you were editing"  # order.edit_conflict, in English


@dataclass
class Outcomes:
    """What the clients were told (one lock: they are all threads)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    registered: dict[int, str] = field(default_factory=dict)  # client -> order id
    edits: Counter[str] = field(default_factory=Counter)
    moves: Counter[str] = field(default_factory=Counter)
    messages: list[tuple[str, str]] = field(default_factory=list)
    notes_expected: Counter[tuple[str, str]] = field(default_factory=Counter)  # (tech, order)
    spurious: list[str] = field(default_factory=list)  # conflict messages shown
    other_failures: list[str] = field(default_factory=list)

    def add(self, what: str, bucket: list[str]) -> None:
        with self.lock:
            bucket.append(what)


class RetryLog(logging.Handler):
    """Every committed write's retry count, from chalicelib.db.base.retried's records."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.retries: list[int] = []
        self.by_what: dict[str, list[int]] = defaultdict(list)

    def emit(self, record: logging.LogRecord) -> None:
        n = getattr(record, "retries", None)
        if n is not None:
            self.retries.append(int(n))
            self.by_what[str(getattr(record, "what", "?"))].append(int(n))


class Staff:
    """One member of staff: signs in, registers an order, works on it."""

    def __init__(self, number: int, email: str, technician: str, port: int, world) -> None:
        self.number = number
        self.email = email
        self.technician = technician  # of the order this client registers
        self.user_id = ""
        self.browser = Browser(port, world.tally)
        self.world = world
        self.order_id = ""
        self.version = 0

    def form(self, marker: str, brand: str) -> dict[str, str]:
        return {
            "customer_name": f"Customer {self.number}",
            "customer_phone": f"(11) 9123-{self.number:04d}",
            "service_type": "Screen",
            "brand": brand,
            "problem": marker,
            "priority": "normal",
            "technician_id": self.technician,
        }

    def sign_in(self) -> None:
        """A session of its own, made in the setup (signing in is argon2 work, not
        DynamoDB's: 50 of them would be most of this test's CPU), then a page for the
        session's CSRF token."""
        self.browser.cookies[SESSION_COOKIE] = self.world.cookies[self.number]
        status, _, _ = self.browser.request("sign-in", "GET", "/orders")
        assert status == 200 and self.browser.csrf, f"not signed in ({status})"

    def register(self) -> None:
        """A new order at the same moment as the other registering colleagues; the client
        then works on it (the page the registration sends you to shows it)."""
        out = self.world.outcomes
        marker = f"registered by {self.number}"
        status, headers, _ = self.browser.request(
            "register", "POST", "/orders/new", form=self.form(marker, BRANDS[0])
        )
        if status != 303:
            out.add(f"register {status}", out.other_failures)
            return
        self.order_id = headers["location"].rsplit("/", 1)[-1]
        with out.lock:
            out.registered[self.number] = self.order_id
        self.look(marker)

    def open_assigned(self, order_id: str) -> None:
        self.order_id = order_id
        self.look(f"assigned to {self.number}")

    def look(self, marker: str) -> None:
        """The order page after a write shows it; its forms carry the order's version."""
        out = self.world.outcomes
        status, _, page = self.browser.request("view", "GET", f"/orders/{self.order_id}")
        version = _VERSION.search(page)
        if status != 200 or marker not in page or not version:
            out.add(f"order page after a write: {status}", out.other_failures)
            return
        self.version = int(version.group(1))

    def edit(self, round_: int) -> None:
        out = self.world.outcomes
        brand = BRANDS[(self.number + round_ + 1) % len(BRANDS)]  # moves STAT#BRAND counters
        marker = f"edited by {self.number} in {round_}"
        status, _, page = self.browser.request(
            "edit",
            "POST",
            f"/orders/{self.order_id}/edit",
            form={**self.form(marker, brand), "version": str(self.version)},
        )
        if status == 303:
            with out.lock:
                out.edits[self.order_id] += 1
            self.look(marker)
        elif status == 409 or CONFLICT_TEXT in page:
            out.add(f"edit conflict on {self.order_id}", out.spurious)
        else:
            out.add(f"edit {status}", out.other_failures)

    def chat(self) -> None:
        out = self.world.outcomes
        text = f"message {self.number}-{secrets.token_hex(4)}"
        status, _, _ = self.browser.request(
            "chat", "POST", f"/orders/{self.order_id}/messages", form={"text": text}
        )
        if status != 303:
            out.add(f"chat {status}", out.other_failures)
            return
        with out.lock:
            out.messages.append((self.order_id, text))
            if self.technician != self.user_id:  # the author is not notified of their own
                out.notes_expected[(self.technician, self.order_id)] += 1

    def move(self, action: str) -> None:
        out = self.world.outcomes
        status, headers, _ = self.browser.request(
            "status",
            "POST",
            f"/orders/{self.order_id}/status",
            form={"action": action, "version": str(self.version)},
        )
        flashes = unpack(headers.get("flash") or None, "flash") or []
        level, text = (str(flashes[-1][0]), str(flashes[-1][1])) if flashes else ("", "")
        if status == 303 and level == "success":
            self.version += 1  # what the order page it redirects to would show
            with out.lock:
                out.moves[self.order_id] += 1
        elif CONFLICT_TEXT in text:
            out.add(f"{action} conflict on {self.order_id}", out.spurious)
        else:
            out.add(f"{action} {status} {level} {text[:60]}", out.other_failures)

    def run(self, ready: threading.Barrier) -> None:
        self.sign_in()
        ready.wait(timeout=120)  # everyone signed in: the workload starts at one moment
        if self.number % REGISTERING == 0:
            self.register()
        else:
            self.open_assigned(self.world.assigned[self.number])
        if not self.version:
            return
        for round_ in range(ROUNDS):
            if round_:
                self.move("reopen")
            self.edit(round_)
            self.chat()
            self.move("start")
            self.move("complete")


@dataclass
class World:
    tally: Tally = field(default_factory=Tally)
    outcomes: Outcomes = field(default_factory=Outcomes)
    cookies: dict[int, str] = field(default_factory=dict)  # client -> session cookie
    assigned: dict[int, str] = field(default_factory=dict)  # client -> order made in setup


def _lost_events(company_id: str, outcomes: Outcomes) -> list[str]:
    """Every success a client was told about, looked up in the table (read by key)."""
    lost: list[str] = []
    for order_id in outcomes.registered.values():
        group = list(Item.query(keys.order(order_id), consistent_read=True))
        events = Counter(i.kind for i in group if isinstance(i, OrderEvent))
        if events["edited"] != outcomes.edits[order_id]:
            lost.append(f"{order_id}: {outcomes.edits[order_id]} edits, {events['edited']} events")
        if events["status"] != outcomes.moves[order_id]:
            lost.append(f"{order_id}: {outcomes.moves[order_id]} moves, {events['status']} events")
        texts = {i.text for i in group if isinstance(i, OrderMessage)}
        lost += [
            f"message {t!r} missing"
            for o, t in outcomes.messages
            if o == order_id and t not in texts
        ]
    found: Counter[tuple[str, str]] = Counter()
    for technician in {tech for tech, _ in outcomes.notes_expected}:
        partition = Notification.partition(company_id, technician)
        for note in Item.query(partition, consistent_read=True):
            if isinstance(note, Notification) and note.kind == "chat_message":
                found[(technician, str(note.order_id))] += 1
    for key, expected in outcomes.notes_expected.items():
        if found[key] != expected:
            lost.append(f"notifications of {key}: {expected} sent, {found[key]} stored")
    return lost


def _p95(values: list[int] | list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0


def test_fifty_staff_of_one_company_see_no_conflict_they_did_not_cause(aws, app, monkeypatch):
    if STAT_SHARDS:
        monkeypatch.setattr(stats, "STAT_SHARDS", int(STAT_SHARDS))
    saved = (REALISM.conflict_hold_ms, REALISM.index_lag_ms, REALISM.throttle_share)
    account = new_company(f"Fifty Staff {secrets.token_hex(2)}")
    company = account.company
    company.update(actions=[Company.monthly_quota.set(1_000_000)])
    people = [(account.user.user_id, account.user.email), *staff_logins(company, CLIENTS - 1)]
    technicians = [user_id for user_id, _ in people[1 : TECHNICIANS + 1]]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    retry_log = RetryLog()
    db_log = logging.getLogger("checkos.db")
    db_log.addHandler(retry_log)
    old_level = db_log.level
    db_log.setLevel(logging.DEBUG)
    server, port = _serve(app)
    world = World()
    clients = []
    REALISM.off()  # the setup is not measured
    team = orders.team(company.company_id)
    for number, (user_id, email) in enumerate(people):
        client = Staff(number, email, technicians[number % TECHNICIANS], port, world)
        client.user_id = user_id
        clients.append(client)
        token = sessions.start_session(user_id, company.company_id)
        world.cookies[number] = http.pack(
            [token, user_id, company.company_id, int(time.time())], "session"
        )
        if number % REGISTERING:
            made = orders.register_order(
                company,
                Actor(name="Setup"),
                client.form(f"assigned to {number}", BRANDS[0]),
                team,
            )
            world.assigned[number] = made.order_id
            world.outcomes.registered[number] = made.order_id
    REALISM.from_env({"DDB_REALISM": "1"})
    ready = threading.Barrier(len(clients))
    failures: list[BaseException] = []

    def work(client: Staff) -> None:
        try:
            client.run(ready)
        except BaseException as problem:  # a client that dies must fail the test
            failures.append(problem)
            ready.abort()

    try:
        REALISM.reset()
        started = time.monotonic()
        threads = [threading.Thread(target=work, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        injected = REALISM.reset()
    finally:
        server.server.shutdown()
        db_log.removeHandler(retry_log)
        db_log.setLevel(old_level)
        REALISM.configure(conflict_hold_ms=saved[0], index_lag_ms=saved[1], throttle_share=saved[2])
    time.sleep(REALISM.index_lag_ms / 1000 + 0.1)  # indexes caught up before the checker reads
    outcomes = world.outcomes
    lost = _lost_events(company.company_id, outcomes)
    checked = integrity.audit([company.company_id])
    operations = (
        len(outcomes.registered)
        + sum(outcomes.edits.values())
        + sum(outcomes.moves.values())
        + len(outcomes.messages)
    )
    conflicts = injected["transaction_conflicts"] + injected["single_write_conflicts"]
    report(
        "dynamo_realism",
        require=("clients", "operations", "injected_conflicts"),
        clients=len(clients),
        operations=operations,
        injected_conflicts=conflicts,
        spurious_conflicts=len(outcomes.spurious),
        lost_events=len(lost),
        retries_p95=_p95(retry_log.retries),
        violations=len(checked.violations),
    )
    tally = world.tally
    report(
        "dynamo_realism-cost",
        stat_shards=getattr(stats, "STAT_SHARDS", 1),
        seconds=round(elapsed, 1),
        requests=len(tally.latencies),
        p50_ms=round(tally.percentile(0.50)),
        p95_ms=round(tally.percentile(0.95)),
        retried_writes=sum(1 for n in retry_log.retries if n),
        writes=len(retry_log.retries),
        retries_max=max(retry_log.retries, default=0),
        throttled=injected["throttled"],
        lagged_index_queries=injected["lagged_index_queries"],
        other_failures=len(outcomes.other_failures),
        **{
            f"retries_p95_{what.replace(' ', '_').replace('-', '_')}": _p95(values)
            for what, values in sorted(retry_log.by_what.items())
        },
    )
    assert not failures, failures[0]
    assert outcomes.spurious == [], outcomes.spurious[:5]
    assert outcomes.other_failures == [], outcomes.other_failures[:5]
    assert tally.server_errors == [], tally.server_errors[:5]
    assert len(outcomes.registered) == len(clients)
    assert sorted(Counter(outcomes.moves).values()) == [3 * ROUNDS - 1] * len(clients)
    assert lost == [], lost[:10]
    assert checked.items > 0 and checked.violations == [], checked.violations[:10]

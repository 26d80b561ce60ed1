"""Invariant checker: recompute what the table's redundant items claim, report every mismatch.

A maintenance tool (``make check-data``, the fault and load suites): it reads
a company's partitions and indexes with paginated Queries, GetItems and
BatchGetItems — many items, but never a table-wide read. Each violation is one
human-readable line; an empty list means the company is consistent.

What it cannot reach through keys is said where it matters: list entries in
a PHONE/TYPE/BRAND partition that no current order or counter names, items of
orders no key points to, and intake items written before the intake index.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.db import exports as _exports  # noqa: F401  (registers its discriminator)
from chalicelib.db import keys
from chalicelib.db.accounts import Company, Invitation, LinkToken, Login, Slug, User
from chalicelib.db.base import Item
from chalicelib.db.customers import CustomerAccess, OrderRating
from chalicelib.db.intake import CONFIRMED, CONFIRMING, PENDING, IntakeRequest, PendingLock
from chalicelib.db.orders import (
    MonthlyUsage,
    Notification,
    Order,
    OrderCounter,
    OrderEntry,
    OrderEvent,
    OrderMessage,
)
from chalicelib.db.partners import DirectoryEntry, PartnerInvite, Partnership
from chalicelib.db.stats import Stat, counter_name, week_of
from chalicelib.domain import workflow
from chalicelib.domain.validation import fold
from chalicelib.services import directory
from chalicelib.services.customers import LINK_DAYS_AFTER_CLOSE
from chalicelib.services.erasure_orders import CUSTOMER_FIELDS, ERASED_NAME
from chalicelib.services.orders import entries_for, month_of
from chalicelib.services.partners import DISABLED
from chalicelib.services.sessions import now

# Attributes an OrderEntry copies from its order (compared field by field).
ENTRY_FIELDS: tuple[str, ...] = (
    "order_id",
    "owner_id",
    "number",
    "status",
    "customer_name",
    "customer_phone",
    "service_type",
    "brand",
    "service_date",
    "technician_id",
    "technician_name",
    "created",
    "rating",
    "f_name",
    "f_type",
    "f_brand",
    "phone_digits",
    "gsi1pk",
    "gsi1sk",
    "gsi2pk",
    "gsi2sk",
)
DIRECTORY_FIELDS: tuple[str, ...] = (
    "company_id",
    *directory.CARD_FIELDS,
    "f_name",
    "f_contact",
    "f_type",
    "f_area",
)
# Both sides of a partnership state these facts identically.
PARTNER_SHARED: tuple[str, ...] = (
    "state",
    "awaiting",
    "proposed_by",
    "config_version",
    "rev",
    "quote_required",
)
ORDER_CHILDREN = (OrderEvent, OrderMessage, OrderRating)


@dataclass
class Audit:
    """What one run of the checker read and found."""

    companies: int = 0
    items: int = 0
    violations: list[str] = field(default_factory=list)


class _Reader:
    """Paginated, strongly consistent reads (where DynamoDB allows), counting items."""

    def __init__(self) -> None:
        self.items = 0

    def query(self, partition: str, range_condition: Any = None) -> list[Item]:
        found = list(Item.query(partition, range_condition, consistent_read=True))
        self.items += len(found)
        return found

    def index(self, name: str, partition: str) -> list[Item]:
        found = list(getattr(Item, name).query(partition))
        self.items += len(found)
        return found

    def get(self, key: tuple[str, str]) -> Item | None:
        try:
            item = Item.get(*key, consistent_read=True)
        except DoesNotExist:
            return None
        self.items += 1
        return item

    def batch(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Item]:
        wanted = list(dict.fromkeys(wanted))
        if not wanted:
            return {}
        found = {(i.pk, i.sk): i for i in Item.batch_get(wanted, consistent_read=True)}
        self.items += len(found)
        return found


def _number(value: Any) -> Any:
    """Numbers compare by value whatever their Python type (Decimal, float, int)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _differences(actual: Item, expected: Item, names: Iterable[str]) -> list[str]:
    return [
        name
        for name in names
        if _number(getattr(actual, name, None)) != _number(getattr(expected, name, None))
    ]


def _expired(item: Item, at: datetime) -> bool:
    expires = getattr(item, "expires_at", None)
    return expires is not None and expires <= at


class _CompanyCheck:
    """Every invariant of one company; violations go to the shared list."""

    def __init__(self, reader: _Reader, company_id: str, out: list[str]) -> None:
        self.r = reader
        self.cid = company_id
        self.out = out
        self.at = now()
        self.orders: dict[str, Order] = {}
        self.children: dict[str, list[Item]] = {}
        # Owners of orders we hold whose Company item is gone (erased): we keep those orders.
        self.erased_owners: set[str] = set()

    def fail(self, text: str) -> None:
        self.out.append(text)

    # -- company, users, slug, indexes ------------------------------------------

    def run(self) -> None:
        company = self.r.get(Company.key(self.cid))
        if not isinstance(company, Company):
            self.fail(f"company {self.cid}: no PROFILE item")
            return
        items = self.r.query(keys.company(self.cid))
        users = [i for i in items if isinstance(i, User)]
        self._company(company, users)
        self._directory(company)
        self._invitations([i for i in items if isinstance(i, Invitation)])
        self._partnerships(items)
        self._orders(company, items, users)
        self._notifications(users)
        self._intake(company)

    def _company(self, company: Company, users: list[User]) -> None:
        cid = self.cid
        if (company.gsi2pk, company.gsi2sk) != (Company.registry_partition(cid), cid):
            self.fail(f"company {cid}: not in the company registry (gsi2 COMPANIES#…)")
        activity = company.gsi3pk or ""
        if company.active and not (
            activity.startswith(Company.ACTIVITY_PREFIX) and company.gsi3sk == cid
        ):
            self.fail(f"company {cid}: active but not in the activity index (gsi3 {activity!r})")
        if not company.active and activity.startswith(Company.ACTIVITY_PREFIX):
            self.fail(f"company {cid}: {company.status} but still in the activity index")
        slug = self.r.get(Slug.key(company.slug))
        if not isinstance(slug, Slug) or slug.company_id != cid:
            owner = getattr(slug, "company_id", None)
            self.fail(f"company {cid}: slug {company.slug!r} points to {owner or 'nothing'}")
        admins = sum(1 for u in users if u.is_admin)
        if int(company.admin_count or 0) != admins:
            self.fail(f"company {cid}: admin_count {company.admin_count} but {admins} admin users")
        if admins < 1:
            self.fail(f"company {cid}: no administrator")
        logins = self.r.batch(Login.key(u.email) for u in users)
        for user in users:
            login = logins.get(Login.key(user.email))
            if user.company_id != cid:
                self.fail(f"user {user.user_id}: stored under {cid} but says {user.company_id}")
            if not isinstance(login, Login):
                self.fail(f"user {user.user_id} of {cid}: no login for {user.email}")
            elif (login.user_id, login.company_id) != (user.user_id, cid):
                self.fail(
                    f"user {user.user_id} of {cid}: login {user.email} points to "
                    f"user {login.user_id} of {login.company_id}"
                )
        if company.intake_code:
            from chalicelib.db.intake import FormKey

            key = self.r.get(FormKey.key(company.intake_code))
            if not isinstance(key, FormKey) or key.company_id != cid:
                self.fail(f"company {cid}: its intake code has no FORMKEY item pointing back")

    def _directory(self, company: Company) -> None:
        """Active: every card present and current. Inactive: none of them left."""
        shown = directory.snapshot(company)
        shown.status = "active"
        expected = directory.entries_for(shown)
        found = self.r.batch(expected)
        for key, entry in expected.items():
            actual = found.get(key)
            if not company.active:
                if actual is not None:
                    self.fail(f"company {self.cid}: inactive but listed in the directory at {key}")
            elif not isinstance(actual, DirectoryEntry):
                self.fail(f"company {self.cid}: directory entry {key} missing")
            elif stale := _differences(actual, entry, DIRECTORY_FIELDS):
                self.fail(f"company {self.cid}: directory entry {key} stale ({', '.join(stale)})")

    def _invitations(self, invitations: list[Invitation]) -> None:
        links = self.r.batch(LinkToken.key("INVITE", i.invite_id) for i in invitations)
        for invitation in invitations:
            if _expired(invitation, self.at):
                continue  # TTL deletes the two items independently
            link = links.get(LinkToken.key("INVITE", invitation.invite_id))
            if not isinstance(link, LinkToken) or link.company_id != self.cid:
                self.fail(f"company {self.cid}: invitation {invitation.invite_id} has no link")

    # -- partnerships -----------------------------------------------------------

    def _partnerships(self, items: list[Item]) -> None:
        sides = [i for i in items if isinstance(i, Partnership)]
        mirrors = self.r.batch(Partnership.key(p.partner_id, self.cid) for p in sides)
        companies = self.r.batch(Company.key(p.partner_id) for p in sides)
        for mine in sides:
            label = f"partnership {self.cid}→{mine.partner_id}"
            if (mine.company_id, mine.sk) != (
                self.cid,
                f"{Partnership.SK_PREFIX}{mine.partner_id}",
            ):
                self.fail(f"{label}: ids do not match its key ({mine.company_id})")
            theirs = mirrors.get(Partnership.key(mine.partner_id, self.cid))
            if Company.key(mine.partner_id) not in companies:
                self._partner_erased(label, mine, theirs)
                continue
            if not isinstance(theirs, Partnership):
                self.fail(f"{label}: the other side is missing")
                continue
            differ = _differences(mine, theirs, PARTNER_SHARED)
            if bool(mine.we_approve) != bool(theirs.we_execute):
                differ.append("we_approve/we_execute")
            if bool(mine.we_execute) != bool(theirs.we_approve):
                differ.append("we_execute/we_approve")
            if theirs.partner_id != self.cid:
                differ.append("partner_id")
            if differ:
                # Same text from both sides: audit() keeps one line per pair.
                pair = "↔".join(sorted((self.cid, mine.partner_id)))
                self.fail(f"partnership {pair}: the two sides disagree on {', '.join(differ)}")
        self._partner_invites([i for i in items if isinstance(i, PartnerInvite)])

    def _partner_erased(self, label: str, mine: Partnership, theirs: Item | None) -> None:
        """The partner company was erased: its side is gone and ours was disabled for good.

        Erasure deletes the erased company's side and disables ours with a "deleted"
        history line (unless it was disabled already, by the same kind of change), so
        only a disabled side with nothing on the other end is consistent.
        """
        history = list(mine.history or [])
        if mine.state != DISABLED or mine.awaiting:
            self.fail(f"{label}: the partner company does not exist but the link is {mine.state}")
        elif not history or history[-1].kind != "deleted":
            self.fail(f"{label}: the partner company does not exist, no 'deleted' history line")
        if theirs is not None:
            self.fail(f"{label}: the partner company does not exist but its side remains")

    def _partner_invites(self, listings: list[PartnerInvite]) -> None:
        links = self.r.batch(PartnerInvite.link_key(i.invite_id) for i in listings)
        for listing in listings:
            if _expired(listing, self.at):
                continue
            link = links.get(PartnerInvite.link_key(listing.invite_id))
            if not isinstance(link, PartnerInvite) or link.inviter_id != self.cid:
                self.fail(f"company {self.cid}: partner invitation {listing.invite_id} has no link")

    # -- orders, entries, counters ----------------------------------------------

    def _entry_partition(self, dimension: str) -> str:
        return keys.order_entries(self.cid, dimension)

    def _orders(self, company: Company, items: list[Item], users: list[User]) -> None:
        cid = self.cid
        counter = next((i for i in items if isinstance(i, OrderCounter)), None)
        last = int(counter.last_number or 0) if counter else 0
        stats = {i.sk: i for i in items if isinstance(i, Stat)}
        # Partitions where this company's entries can be found through keys.
        dimensions = {"ALL", "OPEN", "NAME", *(f"STATUS#{s}" for s in workflow.STATUSES)}
        dimensions |= {f"RATING#{n}" for n in range(1, 6)}
        dimensions |= {f"TECH#{u.user_id}" for u in users}
        dimensions |= {f"NUM#{n}" for n in range(1, last + 1)}
        for sk in stats:
            kind, _, name = counter_name(sk).removeprefix("STAT#").partition("#")
            if kind in ("TYPE", "BRAND") and name:
                dimensions.add(f"{kind}#{name}")
        actual: dict[tuple[str, str], Item] = {}
        read: set[str] = set()

        def read_partitions(partitions: Iterable[str]) -> None:
            for partition in sorted(set(partitions) - read):
                read.add(partition)
                for item in self.r.query(partition):
                    actual[(item.pk, item.sk)] = item

        read_partitions(self._entry_partition(d) for d in dimensions)
        for key, item in actual.items():
            if not isinstance(item, OrderEntry):
                self.fail(f"entry {key[0]} / {key[1]}: not a list entry ({type(item).__name__})")
        for order_id in sorted({e.order_id for e in actual.values() if isinstance(e, OrderEntry)}):
            self._load_order(order_id)
        mine = keys.order_entries(cid, "")
        owners = {o.company_id for o in self.orders.values() if o.company_id != cid}
        present = self.r.batch(Company.key(owner) for owner in owners)
        self.erased_owners = {o for o in owners if Company.key(o) not in present}
        expected: dict[tuple[str, str], OrderEntry] = {}
        # An erased owner's entries of an order we keep must be gone with it.
        erased: dict[tuple[str, str], str] = {}
        for order in self.orders.values():
            for key, entry in entries_for(order).items():
                if order.company_id in self.erased_owners and not key[0].startswith(mine):
                    erased[key] = order.order_id
                else:
                    expected[key] = entry
        read_partitions(pk for pk, _ in expected if pk.startswith(mine))
        elsewhere = self.r.batch(k for k in [*expected, *erased] if not k[0].startswith(mine))
        for key, order_id in erased.items():
            if key in elsewhere:
                where = f"entry {key[0]} / {key[1]}"
                self.fail(f"{where}: left behind by the erased owner of order {order_id}")
        actual.update((k, v) for k, v in elsewhere.items() if k not in erased)
        for key, entry in expected.items():
            found = actual.get(key)
            where = f"entry {key[0]} / {key[1]}"
            if not isinstance(found, OrderEntry):
                self.fail(f"{where}: missing for order {entry.order_id} ({entry.status})")
            elif stale := _differences(found, entry, ENTRY_FIELDS):
                self.fail(f"{where}: stale copy of order {entry.order_id} ({', '.join(stale)})")
        for key, found in actual.items():
            if key[0].startswith(mine) and key not in expected and isinstance(found, OrderEntry):
                order = self.orders.get(found.order_id)
                why = (
                    "its order does not exist"
                    if order is None
                    else f"order is {order.status}, owner {order.company_id}, "
                    f"executor {order.executor_id or 'none'}"
                )
                self.fail(f"entry {key[0]} / {key[1]}: stale, {why}")
        owned = [o for o in self.orders.values() if o.company_id == cid]
        self._numbers(owned, last)
        self._stats(owned, stats)
        self._usage(owned, [i for i in items if isinstance(i, MonthlyUsage)])
        for order in self.orders.values():
            self._order(order)

    def _load_order(self, order_id: str) -> Order | None:
        if order_id in self.orders:
            return self.orders[order_id]
        group = self.r.query(keys.order(order_id))
        meta = next((i for i in group if isinstance(i, Order)), None)
        others = [i for i in group if not isinstance(i, Order)]
        if meta is None:
            what = f"{len(others)} orphan item(s) without META" if others else "no items at all"
            self.fail(f"order {order_id}: referenced from company {self.cid}, {what}")
            return None
        self.orders[order_id] = meta
        self.children[order_id] = others
        return meta

    def _numbers(self, owned: list[Order], last: int) -> None:
        numbers = Counter(int(o.number) for o in owned)
        duplicates = sorted(n for n, count in numbers.items() if count > 1)
        if duplicates:
            self.fail(f"company {self.cid}: order numbers used twice: {duplicates[:20]}")
        missing = sorted(set(range(1, last + 1)) - set(numbers))
        if missing:
            self.fail(f"company {self.cid}: order numbers missing (gaps): {missing[:20]}")
        beyond = sorted(n for n in numbers if n > last or n < 1)
        if beyond:
            self.fail(f"company {self.cid}: order numbers beyond the counter {last}: {beyond[:20]}")

    def _stats(self, owned: list[Order], stats: dict[str, Stat]) -> None:
        want: Counter[str] = Counter()
        registered: Counter[str] = Counter()
        completed: Counter[str] = Counter()
        for order in owned:
            for kind, value in (("TYPE", order.service_type), ("BRAND", order.brand)):
                if value and fold(value):
                    want[f"STAT#{kind}#{fold(value)}"] += 1
            registered[f"STAT#WEEK#{week_of(order.created_at)}"] += 1
            for event in self.children.get(order.order_id, []):
                if (
                    isinstance(event, OrderEvent)
                    and event.kind == "status"
                    and event.to_status == workflow.COMPLETED
                    and event.from_status != workflow.COMPLETED
                ):
                    completed[f"STAT#WEEK#{week_of(event.at)}"] += 1
        have: Counter[str] = Counter()
        have_registered: Counter[str] = Counter()
        have_completed: Counter[str] = Counter()
        rating = stats.get("STAT#RATING")
        for item_sk, stat in stats.items():
            sk = counter_name(item_sk)  # the shards of one counter add up
            kind, _, name = sk.removeprefix("STAT#").partition("#")
            if kind in ("TYPE", "BRAND") and name:
                have[sk] += int(stat.count or 0)
            elif kind == "WEEK":
                have_registered[sk] += int(stat.registered or 0)
                have_completed[sk] += int(stat.completed or 0)
        for label, counted, stored in (
            ("orders", want, have),
            ("registered", registered, have_registered),
            ("completed", completed, have_completed),
        ):
            for sk in sorted(set(counted) | set(stored)):
                if counted[sk] != stored[sk]:
                    self.fail(
                        f"company {self.cid}: counter {sk} {label} = {stored[sk]}, "
                        f"the orders say {counted[sk]}"
                    )
        rated = [int(o.rating) for o in owned if o.rating]
        stored_total = int(getattr(rating, "total", None) or 0)
        stored_count = int(getattr(rating, "count", None) or 0)
        if (stored_total, stored_count) != (sum(rated), len(rated)):
            self.fail(
                f"company {self.cid}: counter STAT#RATING total/count = "
                f"{stored_total}/{stored_count}, the orders say {sum(rated)}/{len(rated)}"
            )

    def _usage(self, owned: list[Order], usage: list[MonthlyUsage]) -> None:
        counted = Counter(month_of(o.created_at) for o in owned)
        stored = {u.sk.removeprefix("USAGE#"): int(u.count or 0) for u in usage}
        for month in sorted(set(counted) | set(stored)):
            if counted[month] != stored.get(month, 0):
                self.fail(
                    f"company {self.cid}: USAGE#{month} = {stored.get(month, 0)}, "
                    f"{counted[month]} orders registered that month"
                )

    def _order(self, order: Order) -> None:
        """Per-order invariants; checked by the owner (the executor checks only its entries),
        or by the executor that kept the order when its owner was erased."""
        kept = order.company_id in self.erased_owners and order.executor_id == self.cid
        if order.company_id != self.cid and not kept:
            return
        label = f"order {order.order_id} (#{order.number} of {order.company_id})"
        children = self.children.get(order.order_id, [])
        for child in children:
            if not isinstance(child, ORDER_CHILDREN):
                self.fail(f"{label}: unexpected {type(child).__name__} item {child.sk}")
        created = [c for c in children if isinstance(c, OrderEvent) and c.kind == "created"]
        # Erasure deletes the customer's own events: an intake order loses its "created".
        allowed = {0, 1} if kept and order.source == "intake" else {1}
        if len(created) not in allowed:
            self.fail(f"{label}: {len(created)} 'created' events")
        if kept:
            self._kept_order(label, order, children)
        rating = next((c for c in children if isinstance(c, OrderRating)), None)
        stars = int(rating.stars) if rating else None
        if (int(order.rating) if order.rating else None) != stars:
            self.fail(f"{label}: rating {order.rating} but RATING item says {stars}")
        if order.executor_id and not kept:  # an erased owner's side of the link is gone
            if order.executor_id == order.company_id:
                self.fail(f"{label}: shared with its own owner")
            found = self.r.batch(
                [
                    Partnership.key(order.company_id, order.executor_id),
                    Partnership.key(order.executor_id, order.company_id),
                ]
            )
            if len(found) != 2:
                self.fail(f"{label}: shared with {order.executor_id} without a partnership")
        if order.access_hash:
            access = self.r.get(CustomerAccess.key(order.access_hash))
            lapsed = not workflow.is_open(order.status) and order.updated_at < self.at - timedelta(
                days=LINK_DAYS_AFTER_CLOSE
            )
            if access is None and not lapsed:
                self.fail(f"{label}: customer link {order.access_hash[:12]}… missing")
            elif access is not None and (
                not isinstance(access, CustomerAccess)
                or (access.order_id, access.company_id) != (order.order_id, order.company_id)
            ):
                self.fail(f"{label}: customer link points to another order")

    def _kept_order(self, label: str, order: Order, children: list[Item]) -> None:
        """An order kept by its executor after the owner was erased holds none of the owner's
        customer's personal data (what erasure promises: fields cleared, customer items gone)."""
        kept = [name for name in CUSTOMER_FIELDS if getattr(order, name, None)]
        if order.customer_name != ERASED_NAME:
            kept.insert(0, "customer_name")
        if order.custom_values:
            kept.append("custom")
        if order.access_hash:
            kept.append("access_hash")
        if order.rating:
            kept.append("rating")
        if order.source == "intake" and order.created_by_name != ERASED_NAME:
            kept.append("created_by_name")  # the customer created it through the form
        for child in children:
            if (
                (isinstance(child, OrderMessage) and child.author_kind == "customer")
                or (
                    isinstance(child, OrderEvent)
                    and (child.actor_kind == "customer" or child.kind in ("mail", "mail_failed"))
                )
                or isinstance(child, OrderRating)
            ):
                kept.append(child.sk)
        if kept:
            self.fail(
                f"{label}: kept by {self.cid} after its owner was erased but still holds "
                f"the customer's data ({', '.join(kept)})"
            )

    # -- notifications, intake ----------------------------------------------------

    def _notifications(self, users: list[User]) -> None:
        for user in users:
            notes = [
                n
                for n in self.r.query(Notification.partition(self.cid, user.user_id))
                if isinstance(n, Notification)
            ]
            read_at = user.notes_read_at
            unread = sum(1 for n in notes if not n.read and (read_at is None or n.at > read_at))
            if int(user.unread or 0) != unread:
                self.fail(
                    f"user {user.user_id} of {self.cid}: unread count {user.unread}, "
                    f"{unread} unread notifications"
                )
            for note in notes:
                if note.order_id and self._load_order(note.order_id) is None:
                    self.fail(f"notification {note.sk} of {user.user_id}: its order is gone")

    def _intake(self, company: Company) -> None:
        found = self.r.index("gsi1", f"{keys.company(self.cid)}#INTAKE")
        requests = {i.intake_id: i for i in found if isinstance(i, IntakeRequest)}
        locks = {
            i.pk.removeprefix(f"PENDING#{self.cid}#"): i
            for i in found
            if isinstance(i, PendingLock) and not _expired(i, self.at)
        }
        for email, lock in locks.items():
            request = requests.get(lock.intake_id) or self.r.get(IntakeRequest.key(lock.intake_id))
            if not isinstance(request, IntakeRequest):
                self.fail(f"intake lock {email} of {self.cid}: its request is gone")
            elif (request.company_id, request.email) != (self.cid, email):
                self.fail(f"intake lock {email} of {self.cid}: points to another address's request")
            elif request.status not in (PENDING, CONFIRMING):
                self.fail(f"intake lock {email} of {self.cid}: its request is {request.status}")
        for request in requests.values():
            lock = locks.get(request.email)
            live = request.status in (PENDING, CONFIRMING) and not _expired(request, self.at)
            if live and (lock is None or lock.intake_id != request.intake_id):
                self.fail(
                    f"intake request {request.intake_id[:12]}… of {self.cid}: "
                    f"{request.status} without its lock"
                )
            if request.status == CONFIRMED:
                order = self._load_order(str(request.order_id)) if request.order_id else None
                if order is None or order.company_id != self.cid:
                    self.fail(
                        f"intake request {request.intake_id[:12]}… of {self.cid}: "
                        "confirmed without its order"
                    )
                elif int(order.number) != int(request.order_number or 0):
                    self.fail(
                        f"intake request {request.intake_id[:12]}… of {self.cid}: "
                        f"order number {request.order_number}, the order says {order.number}"
                    )
                if lock is not None and lock.intake_id == request.intake_id:
                    self.fail(
                        f"intake request {request.intake_id[:12]}… of {self.cid}: "
                        "confirmed but still locks its address"
                    )


def audit(company_ids: Iterable[str]) -> Audit:
    """Check every company given; violations deduplicated (a shared order's entry is
    reported once even when both companies are checked)."""
    reader = _Reader()
    result = Audit()
    found: list[str] = []
    for company_id in dict.fromkeys(company_ids):
        result.companies += 1
        _CompanyCheck(reader, company_id, found).run()
    result.items = reader.items
    result.violations = list(dict.fromkeys(found))
    return result


def check(company_ids: Iterable[str]) -> list[str]:
    return audit(company_ids).violations


def check_company(company_id: str) -> list[str]:
    """Human-readable violations of one company's invariants; empty when consistent."""
    return check([company_id])


def registered_companies() -> list[str]:
    """Every company id in the registry index (gsi2 ``COMPANIES#<shard>``): 16 Queries."""
    ids: list[str] = []
    for shard in range(Company.REGISTRY_SHARDS):
        partition = f"COMPANIES#{shard:02d}"
        ids += [i.company_id for i in Item.gsi2.query(partition) if isinstance(i, Company)]
    return ids


def active_companies(days: int) -> list[str]:
    """Companies in the activity index (gsi3 ``ACTIVE#<day>``) for the last ``days`` days,
    to reach companies created before the registry existed."""
    today = now().date()
    ids: list[str] = []
    for back in range(-1, days + 1):
        partition = Company.activity_partition((today - timedelta(days=back)).isoformat())
        ids += [i.company_id for i in Item.gsi3.query(partition) if isinstance(i, Company)]
    return ids

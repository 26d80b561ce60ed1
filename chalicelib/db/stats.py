"""Dashboard counters, kept current in the same transaction as every order change.

``CO#<id>`` / ``STAT#TYPE#<folded>`` and ``STAT#BRAND#<folded>``: orders per
service type and brand; ``STAT#WEEK#<yyyy-Www>``: registered and completed
per ISO week. The dashboard reads them all with one Query (``STAT#`` prefix).

Each of those counters is split into ``STAT_SHARDS`` items (``…#~<shard>``, one
picked at random per change), so order changes of one company rarely touch
the same counter item at the same moment: DynamoDB cancels overlapping
transactions on one item (``TransactionConflict``), and every order change
carries its counters in its transaction. Readers add the shards up
(:func:`counter_name`); ``STAT#RATING`` (rare, customer ratings) is one item.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from chalicelib.db import keys
from chalicelib.db.base import Item
from chalicelib.domain.validation import fold

if TYPE_CHECKING:
    from chalicelib.db.orders import Order


STAT_SHARDS = 8
_SHARD = re.compile(r"#~\d+$")


def counter_name(sk: str) -> str:
    """The counter a (possibly sharded) ``STAT#`` item belongs to: its sort key without
    the shard suffix (items written before sharding have none)."""
    return _SHARD.sub("", sk)


def _sharded(name: str) -> str:
    return f"{name}#~{random.randrange(STAT_SHARDS)}"


class Stat(Item, discriminator="Stat"):
    label = UnicodeAttribute(null=True)
    # The stored attribute is named "count", shadowing pynamodb's Model.count
    # classmethod (a table-wide count, which this app never runs).
    count = NumberAttribute(null=True)  # type: ignore[assignment]
    registered = NumberAttribute(null=True)
    completed = NumberAttribute(null=True)
    # STAT#RATING: sum of the customers' stars (``count`` = rated orders).
    total = NumberAttribute(null=True)

    @classmethod
    def key(cls, company_id: str, name: str) -> tuple[str, str]:
        return keys.company(company_id), f"STAT#{name}"


def week_of(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def _bump(company_id: str, name: str, label: str, delta: int) -> tuple[Item, list[Any]]:
    item = Stat(*Stat.key(company_id, _sharded(name)))
    return item, [Stat.type.set(Stat), Stat.label.set(label), Stat.count.add(delta)]


def rating_updates(company_id: str, old: int | None, new: int) -> list[tuple[Item, list[Any]]]:
    """``STAT#RATING`` change for a first (old None) or changed rating; average = total / count."""
    item = Stat(*Stat.key(company_id, "RATING"))
    actions: list[Any] = [Stat.type.set(Stat), Stat.total.add(new - (old or 0))]
    if old is None:
        actions.append(Stat.count.add(1))
    return [(item, actions)]


def stat_updates(before: Order | None, after: Order, at: datetime) -> list[tuple[Item, list[Any]]]:
    """Counter changes implied by ``before`` → ``after`` (None before = registration)."""
    company = after.company_id
    changes: list[tuple[Item, list[Any]]] = []
    for kind, attribute in (("TYPE", "service_type"), ("BRAND", "brand")):
        old = getattr(before, attribute) if before else ""
        new = getattr(after, attribute)
        if fold(old) == fold(new):
            continue
        if old:
            changes.append(_bump(company, f"{kind}#{fold(old)}", old, -1))
        if new:
            changes.append(_bump(company, f"{kind}#{fold(new)}", new, +1))
    if before is None:
        week = Stat(*Stat.key(company, _sharded(f"WEEK#{week_of(at)}")))
        changes.append((week, [Stat.type.set(Stat), Stat.registered.add(1)]))
    elif after.status == "completed" and before.status != "completed":
        week = Stat(*Stat.key(company, _sharded(f"WEEK#{week_of(at)}")))
        changes.append((week, [Stat.type.set(Stat), Stat.completed.add(1)]))
    return changes


@dataclass(frozen=True)
class StatSnapshot:
    """Every dashboard counter of one company, as one Query returned them."""

    types: list[tuple[str, str, int]]  # (folded name, label, count)
    brands: list[tuple[str, str, int]]
    weeks: dict[str, tuple[int, int]]  # yyyy-Www -> (registered, completed)
    rating_total: int
    rating_count: int
    items: int  # STAT# items read


def read_stats(company_id: str) -> StatSnapshot:
    """``CO#<id>`` begins_with ``STAT#``: one Query, items ∝ distinct types, brands and weeks."""
    counts: dict[tuple[str, str], int] = {}
    labels: dict[tuple[str, str], str] = {}
    weeks: dict[str, tuple[int, int]] = {}
    rating_total = rating_count = items = 0
    for item in Item.query(keys.company(company_id), Item.sk.startswith("STAT#")):
        items += 1
        kind, _, name = counter_name(item.sk).removeprefix("STAT#").partition("#")
        # getattr: a counter written by an older model may lack an attribute.
        count = int(getattr(item, "count", None) or 0)
        if kind in ("TYPE", "BRAND"):
            counts[(kind, name)] = counts.get((kind, name), 0) + count
            labels.setdefault((kind, name), str(getattr(item, "label", None) or name))
        elif kind == "WEEK":
            registered, completed = weeks.get(name, (0, 0))
            registered += int(getattr(item, "registered", None) or 0)
            weeks[name] = (registered, completed + int(getattr(item, "completed", None) or 0))
        elif kind == "RATING":
            rating_total, rating_count = int(getattr(item, "total", None) or 0), count
    types = [(n, labels[(k, n)], c) for (k, n), c in counts.items() if k == "TYPE"]
    brands = [(n, labels[(k, n)], c) for (k, n), c in counts.items() if k == "BRAND"]
    return StatSnapshot(types, brands, weeks, rating_total, rating_count, items)

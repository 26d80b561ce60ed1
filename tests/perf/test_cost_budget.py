"""What a page costs in DynamoDB capacity and in sequential round trips (issue 24).

The standard company (100 orders, one of every resource) is measured as `make cost`
measures it; these budgets keep the critical path and the units of the three busiest
pages from growing. The capacity rules themselves are checked on items of known size.
"""

from __future__ import annotations

import json

import pytest

from tests.awscalls import AwsCall
from tests.figures import report
from tests.perf import capacity

# Sequential DynamoDB round trips of every page: the session, then the page's reads sent
# together (db/overlap.py). Before, the order page took 4: the session, then its order
# and history, its chat and its partner panel, each sent after the previous answered.
SEQUENTIAL_ROUND_TRIPS_MAX = 2
# Read units of the three busiest pages, as measured when the budget was set: the order
# page (session, 4 Queries' pages), its printed view and the customer page (link, 2 Queries).
# The order page's two partition Queries read strongly consistent (every write redirects to
# it, and it must show that write: README "Concurrency"), which doubles their units: 4.5;
# the printed order reads the same way (3.5) and is now busier than the dashboard (2.5).
BUSIEST_UNITS = {"/orders/{order_id}": 4.5, "/orders/{order_id}/print": 3.5, "/o/{token}": 3.0}


@pytest.fixture(scope="module")
def pages(aws, app):
    from chalice.test import Client

    from tests.perf import bench_cost

    capacity.install()
    try:
        with Client(app) as client:
            company = bench_cost.standard_company(client)
            return bench_cost.measure_pages(client, app, company)
    finally:
        capacity.CALLS.observe = None


def test_no_page_takes_more_sequential_round_trips_or_units_than_its_budget(pages):
    shown = {page.name: page for page in pages if page.status < 400}
    busiest = sorted(shown.values(), key=lambda page: page.units, reverse=True)[:3]
    longest = max(shown.values(), key=lambda page: page.round_trips)
    print(
        report(
            "cost-pages",
            pages=len(shown),
            sequential_round_trips_max=longest.round_trips,
            slowest_path_page=longest.name,
            **{f"units {page.name}": page.units for page in busiest},
            **{f"units_budget {name}": units for name, units in BUSIEST_UNITS.items()},
        )
    )
    assert len(shown) == len(pages) >= 20, [(p.name, p.status) for p in pages]
    assert 0 < longest.round_trips <= SEQUENTIAL_ROUND_TRIPS_MAX
    for name, budget in BUSIEST_UNITS.items():
        assert 0 < shown[name].units <= budget, (name, shown[name].units)
    # No other page became busier than the three watched ones.
    assert busiest[-1].units <= min(BUSIEST_UNITS.values())


# -- the rules, on items of known size --------------------------------------------------


def _call(operation: str, request: dict, parsed: dict | None = None, **kw: object) -> AwsCall:
    call = AwsCall("dynamodb", operation, {"body": json.dumps(request).encode()})
    call.parsed = parsed or {}
    for name, value in kw.items():
        setattr(call, name, value)
    return call


def _item(size: int, **keys: str) -> dict:
    """An item of exactly ``size`` bytes: its keys and a padding string attribute."""
    item = {name: {"S": value} for name, value in keys.items()}
    used = capacity.item_size(item) + len("pad")
    return {**item, "pad": {"S": "x" * (size - used)}}


def test_item_sizes_follow_dynamodbs_rules():
    assert capacity.item_size({"name": {"S": "Ana"}}) == 4 + 3
    assert capacity.item_size({"n": {"N": "12345"}}) == 1 + 4  # 3 bytes of digits + 1
    assert capacity.item_size({"ok": {"BOOL": True}, "no": {"NULL": True}}) == 3 + 3
    assert capacity.item_size({"m": {"M": {"a": {"S": "xy"}}}}) == 1 + 3 + 1 + 1 + 2
    assert capacity.item_size({"l": {"L": [{"S": "ab"}, {"N": "7"}]}}) == 1 + 3 + 3 + 3


def test_read_units_round_each_request_to_4_kb_and_halve_eventual_reads():
    small, big = _item(1000, pk="a", sk="b"), _item(5000, pk="a", sk="c")
    eventual = _call("GetItem", {"Key": {}}, {"Item": big})
    strong = _call("GetItem", {"Key": {}, "ConsistentRead": True}, {"Item": big})
    missing = _call("GetItem", {"Key": {}}, {})
    assert capacity.call_units(eventual).read == 1.0  # 2 units of 4 KB, halved
    assert capacity.call_units(strong).read == 2.0
    assert capacity.call_units(missing).read == 0.5  # a miss still costs a half unit
    # A Query rounds its items' total once; an index Query is always eventual.
    query = {"TableName": "t", "KeyConditionExpression": "pk = :p", "ConsistentRead": True}
    read = {"Items": [small] * 5, "Count": 5, "ScannedCount": 5}
    assert capacity.call_units(_call("Query", query, read)).read == 2.0  # 5,000 B: 2 units
    assert capacity.call_units(_call("Query", {**query, "IndexName": "gsi1"}, read)).read == 1.0


def test_write_units_count_the_larger_item_the_indexes_and_double_in_a_transaction(
    monkeypatch,
):
    monkeypatch.setattr(capacity, "_index_keys", lambda table: [("gsi1pk", "gsi1sk")])
    monkeypatch.setattr(capacity, "_key_of", lambda table, item: {"pk": item["pk"]})
    before = _item(900, pk="a", sk="b")
    after = {**_item(2100, pk="a", sk="b"), "gsi1pk": {"S": "x"}, "gsi1sk": {"S": "y"}}
    put = {"TableName": "t", "Item": after}
    plain = _call("PutItem", put, before=[before], after=[after])
    # 3 units for the item (2,106 B), 3 for the new index entry.
    assert capacity.call_units(plain).write == 6.0
    moved = {**after, "gsi1sk": {"S": "z"}}
    # The index key changed: the old index entry is deleted, the new one put.
    changed = _call("PutItem", {"TableName": "t", "Item": moved}, before=[after], after=[moved])
    assert capacity.call_units(changed).write == 3.0 + 3.0 + 3.0
    transaction = _call(
        "TransactWriteItems",
        {"TransactItems": [{"Put": put}, {"ConditionCheck": {"TableName": "t", "Key": {}}}]},
        before=[before, None],
        after=[after, None],
    )
    assert capacity.call_units(transaction).write == 2 * (6.0 + 1.0)


def test_the_critical_path_counts_requests_sent_after_an_answer():
    def at(start: float, end: float) -> AwsCall:
        call = _call("GetItem", {})
        call.started, call.ended = start, end
        return call

    serial = [at(0, 1), at(1.5, 2), at(2.5, 3)]
    overlapped = [at(0, 1), at(1.5, 3), at(1.6, 2.5), at(1.7, 2.9)]
    assert capacity.sequential_round_trips(serial) == 3
    assert capacity.sequential_round_trips(overlapped) == 2
    assert capacity.sequential_round_trips([]) == 0

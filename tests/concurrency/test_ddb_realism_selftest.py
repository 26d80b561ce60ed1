"""The local stack's DynamoDB realism does what it says: conflicts, lagging indexes, throttles.

Each behaviour is shown happening against the loopback server (and not
happening with its knob at 0), so the suites that rely on it are not
passing against a stack that quietly stopped simulating anything.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from pynamodb.exceptions import TransactWriteError, UpdateError

from chalicelib.db.base import Item, conflicted, transaction
from chalicelib.db.stats import Stat
from infra.ddb_realism import REALISM
from tests.figures import report


@pytest.fixture
def realism(aws) -> Iterator[object]:
    """The server's knobs, all off, restored afterwards (other tests keep their setting)."""
    saved = (REALISM.conflict_hold_ms, REALISM.index_lag_ms, REALISM.throttle_share)
    REALISM.off()
    REALISM.reset()
    REALISM.rng.seed(33)  # which requests are throttled: the same on every run
    yield REALISM
    REALISM.configure(conflict_hold_ms=saved[0], index_lag_ms=saved[1], throttle_share=saved[2])


def _bump_together(company: str, parallel: int) -> list[str]:
    """``parallel`` transactions adding 1 to the same counter, released at one moment."""
    start = threading.Barrier(parallel, timeout=20)

    def bump(index: int) -> str:
        own = Stat(f"CO#{company}", f"STAT#OWN#{index}")  # an item only this one touches
        shared = Stat(f"CO#{company}", "STAT#WEEK#shared")
        start.wait()
        try:
            with transaction() as tx:
                tx.update(own, actions=[Stat.type.set(Stat), Stat.count.add(1)])
                tx.update(shared, actions=[Stat.type.set(Stat), Stat.registered.add(1)])
        except TransactWriteError as error:
            return "conflict" if conflicted(error) else f"other: {error}"
        return "saved"

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(bump, range(parallel)))


def test_overlapping_transactions_on_a_shared_item_are_cancelled(realism):
    company = secrets.token_hex(6)
    without = _bump_together(company, 4)
    realism.configure(conflict_hold_ms=300)
    with_hold = _bump_together(company, 4)
    counts = realism.reset()
    report(
        "ddb-realism-conflicts",
        require=("injected",),
        without_hold=without.count("conflict"),
        injected=counts["transaction_conflicts"],
        saved_with_hold=with_hold.count("saved"),
    )
    assert without == ["saved"] * 4, "no hold, no overlap: every transaction applies"
    # All four were in flight together: the first holds the item, the three others collide.
    assert with_hold.count("saved") >= 1 and with_hold.count("conflict") >= 1, with_hold
    assert set(with_hold) == {"saved", "conflict"}, with_hold
    stored = Stat.get(f"CO#{company}", "STAT#WEEK#shared", consistent_read=True)
    assert stored.registered == 4 + with_hold.count("saved"), "a cancelled one wrote nothing"


def test_a_single_write_to_an_item_of_a_transaction_in_flight_is_refused(realism):
    company = secrets.token_hex(6)
    realism.configure(conflict_hold_ms=400)
    item = Stat(f"CO#{company}", "STAT#WEEK#held")
    in_flight = threading.Event()

    def long_transaction() -> None:
        with transaction() as tx:
            in_flight.set()
            tx.update(item, actions=[Stat.type.set(Stat), Stat.count.add(1)])

    writer = threading.Thread(target=long_transaction)
    writer.start()
    in_flight.wait()
    time.sleep(0.1)  # the transaction is at the server, held for 400 ms
    with pytest.raises(UpdateError) as refused:
        Stat(f"CO#{company}", "STAT#WEEK#held").update(actions=[Stat.count.add(5)])
    writer.join()
    assert refused.value.cause_response_code == "TransactionConflictException"
    assert realism.reset()["single_write_conflicts"] == 1


def test_index_queries_lag_behind_writes_but_the_table_does_not(realism):
    realism.configure(index_lag_ms=600)
    partition = f"LAGTEST#{secrets.token_hex(6)}"
    old = Stat(f"LAG#{secrets.token_hex(6)}", "A", gsi1pk=partition, gsi1sk="1")
    old.save()
    time.sleep(0.7)  # older than the lag: indexed
    new = Stat(f"LAG#{secrets.token_hex(6)}", "A", gsi1pk=partition, gsi1sk="2")
    new.save()
    moved = Stat(old.pk, "A", gsi1pk=partition, gsi1sk="0")  # its index key changed
    moved.save()

    def indexed() -> list[str]:
        return [i.gsi1sk for i in Item.gsi1.query(partition)]

    right_after = indexed()
    by_key = Item.get(new.pk, "A", consistent_read=True).gsi1sk
    time.sleep(0.7)
    later = indexed()
    lagged = realism.reset()["lagged_index_queries"]
    report(
        "ddb-realism-lag",
        require=("lagged_queries",),
        right_after=len(right_after),
        later=len(later),
        lagged_queries=lagged,
    )
    assert right_after == ["1"], "the new item is not indexed yet; the moved one shows its old key"
    assert by_key == "2", "a read by key sees the write at once"
    assert later == ["0", "2"], "after the lag the index has caught up"
    realism.configure(index_lag_ms=0)
    fresh = Stat(f"LAG#{secrets.token_hex(6)}", "A", gsi1pk=partition, gsi1sk="3")
    fresh.save()
    assert indexed() == ["0", "2", "3"], "without lag the index is current"


def test_a_share_of_requests_is_throttled_and_botocore_retries_them(realism):
    from botocore.config import Config
    from botocore.exceptions import ClientError
    from botocore.session import Session

    from chalicelib.config import get_settings

    realism.configure(throttle_share=1.0)
    bare = Session().create_client(
        "dynamodb",
        region_name=get_settings().region,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )
    with pytest.raises(ClientError) as throttled:
        bare.get_item(
            TableName=get_settings().table_name,
            Key={"pk": {"S": "NOPE"}, "sk": {"S": "NOPE"}},
        )
    assert throttled.value.response["Error"]["Code"] in (
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
    )
    realism.reset()
    realism.configure(throttle_share=0.2)
    partition = f"CO#{secrets.token_hex(6)}"
    for index in range(20):  # the app's own client (PynamoDB: standard retry mode)
        Stat(partition, f"STAT#T#{index}", count=index).save()
    stored = list(Item.query(partition, consistent_read=True))
    counts = realism.reset()
    report("ddb-realism-throttle", require=("throttled",), throttled=counts["throttled"])
    assert len(stored) == 20, "every throttled request was retried by botocore and applied"

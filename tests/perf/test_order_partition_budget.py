"""One order with 10,000 chat messages: its pages cost what a 10-message order's cost,
and its data archive and its erasure finish with the memory of a 1,000-message one."""

from __future__ import annotations

import pytest

from chalicelib.services.orders import HISTORY_PAGE
from tests.figures import report
from tests.perf.bench_partition import memory_figures, page_figures

SMALL, BIG = 10, 10_000
# Order page: session, partnerships, and two Queries of a page each (newest history, newest chat).
ORDER_PAGE_REQUESTS = 4
# Customer page: the link, and the same two Queries.
CUSTOMER_PAGE_REQUESTS = 3
# Each Query reads its page, the order or the rating, and one more to know if older ones exist.
ITEMS_READ = 2 * (HISTORY_PAGE + 2)
# Held in memory (before: a list of the partition), 9,000 more messages and 900 history
# lines took 10 MB more for the erasure, 22 MB more for the archive; paged: 0.1 MB.
FLAT_MB = 4.0


@pytest.fixture(scope="module")
def pages(aws, app):
    from chalice.test import Client

    with Client(app) as client:
        return page_figures(client, (SMALL, BIG))


def test_order_and_customer_pages_of_a_10000_message_order_cost_a_10_message_one(pages):
    big, small = pages[BIG], pages[SMALL]
    print(
        report(
            "order-partition-pages",
            messages=BIG,
            **big,
            small_page_requests=small["page_requests"],
            small_customer_page_requests=small["customer_page_requests"],
        )
    )
    assert big["page_messages_shown"] == big["customer_page_messages_shown"] == HISTORY_PAGE
    assert small["page_messages_shown"] == small["customer_page_messages_shown"] == SMALL
    assert big["page_requests"] == small["page_requests"] <= ORDER_PAGE_REQUESTS
    assert big["customer_page_requests"] == small["customer_page_requests"]
    assert big["customer_page_requests"] <= CUSTOMER_PAGE_REQUESTS
    assert 0 < big["page_items_read"] <= ITEMS_READ
    assert 0 < big["customer_page_items_read"] <= ITEMS_READ


def test_archive_and_erasure_of_a_10000_message_order_keep_memory_flat():
    found = memory_figures((1_000, BIG))
    small, big = found[1_000], found[BIG]
    archive_growth = round(big["archive_peak_mb"] - small["archive_peak_mb"], 1)
    erasure_growth = round(big["erasure_peak_mb"] - small["erasure_peak_mb"], 1)
    print(
        report(
            "order-partition",
            messages=BIG,
            archive_peak_mb=big["archive_peak_mb"],
            archive_peak_mb_1000=small["archive_peak_mb"],
            archive_growth_mb=archive_growth,
            erasure_peak_mb=big["erasure_peak_mb"],
            erasure_peak_mb_1000=small["erasure_peak_mb"],
            erasure_growth_mb=erasure_growth,
            messages_archived=big["messages_archived"],
            items_left=big["items_left"],
        )
    )
    # The work was really done: every message archived, every item erased.
    assert small["messages_archived"] == 1_000 and big["messages_archived"] == BIG
    assert small["erasure_done"] and big["erasure_done"]
    assert small["items_left"] == big["items_left"] == 0
    assert archive_growth < FLAT_MB, found
    assert erasure_growth < FLAT_MB, found

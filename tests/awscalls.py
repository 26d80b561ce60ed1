"""Every AWS API call the process makes, recorded by a botocore event hook.

Used by the test suite (request budgets, the Scan guard) and by `make bench`.
Importing this module registers the hook for every botocore session created
afterwards (boto3's and PynamoDB's), so import it before the app makes its
first client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import botocore.handlers


@dataclass
class AwsCall:
    service: str
    operation: str
    params: dict
    scanned: int | None = None  # items a Query read (ScannedCount), filled after the call
    # items a read request read: Query's ScannedCount, GetItem 0 or 1, BatchGetItem's answers
    items_read: int = 0
    # For the bench's capacity and critical-path figures (tests/perf/capacity.py):
    # when the request left and its answer came back (perf_counter), on which thread,
    # the parsed answer, and what the table held before a write (``CALLS.observe``).
    started: float = 0.0
    ended: float | None = None
    thread: int = 0
    parsed: dict | None = None
    before: object = None
    after: object = None


@dataclass
class AwsCallLog:
    """Every AWS API call the process makes, recorded by a botocore event hook."""

    calls: list[AwsCall] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Called with each DynamoDB call before it is sent and after its answer ("before",
    # "after": the bench reads the items a write changes); None in the test suite.
    observe: Callable[[AwsCall, str], object] | None = None
    # When set, answers every call instead of AWS: (http response, parsed answer), as
    # botocore takes it from a before-call handler (the bench's replayed server times).
    answer: Callable[[AwsCall], tuple[object, dict]] | None = None

    def record(self, model, params, **_: object) -> None:
        call = AwsCall(model.service_model.service_name, model.name, dict(params))
        call.thread = threading.get_ident()
        call.started = time.perf_counter()
        if self.observe is not None and call.service == "dynamodb":
            call.before = self.observe(call, "before")
        with self.lock:
            self.calls.append(call)
        return None if self.answer is None else self.answer(call)

    def record_result(self, model, parsed, **_: object) -> None:
        ended = time.perf_counter()
        if model.service_model.service_name != "dynamodb" or not isinstance(parsed, dict):
            return
        with self.lock:
            for call in reversed(self.calls):
                if (
                    call.operation == model.name
                    and call.scanned is None
                    and call.thread == threading.get_ident()
                ):
                    call.ended, call.parsed = ended, parsed
                    call.scanned = int(parsed.get("ScannedCount", parsed.get("Count", 0)) or 0)
                    call.items_read = _items_read(model.name, parsed, call.scanned)
                    if self.observe is not None:
                        call.after = self.observe(call, "after")
                    break

    def mark(self) -> int:
        return len(self.calls)

    def since(self, mark: int) -> list[AwsCall]:
        return self.calls[mark:]


def _items_read(operation: str, parsed: dict, scanned: int) -> int:
    if operation == "GetItem":
        return int("Item" in parsed)
    if operation == "BatchGetItem":
        return sum(len(items) for items in parsed.get("Responses", {}).values())
    return scanned if operation in ("Query", "Scan") else 0


CALLS = AwsCallLog()
# Registered like moto's own hook: every botocore session (boto3's and
# PynamoDB's) created from now on calls it before each request.
botocore.handlers.BUILTIN_HANDLERS.append(("before-call", CALLS.record))
botocore.handlers.BUILTIN_HANDLERS.append(("after-call", CALLS.record_result))

"""Fault injection for the fault suite: AWS errors and crashes on the real code paths.

Every AWS request of the process (boto3's S3/SES clients and PynamoDB's
DynamoDB client alike) goes through ``botocore.client.BaseClient._make_api_call``;
the injector wraps it once, so a fault armed with

    with fault("dynamodb", "TransactWriteItems", code="ThrottlingException"):
        ...

makes the next matching request raise exactly the ``ClientError`` botocore
would raise for that answer (same exception class, same ``response`` shape,
``CancellationReasons`` included), before anything reaches moto. Nothing is
written by a faulted request, as with the real service.

``crash_after(n)`` simulates the Lambda dying after ``n`` write requests
succeeded: the next write raises ``SimulatedCrash``, a ``BaseException`` the
app's ``except Exception`` handlers cannot swallow, as nothing runs after a
real crash.

``table_items()`` reads the whole moto table directly (no AWS request, so no
Scan): the before/after item sets the tests compare.
"""

from __future__ import annotations

import html
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.client

# DynamoDB, S3 and SES requests that change something.
WRITES = {
    ("dynamodb", "PutItem"),
    ("dynamodb", "UpdateItem"),
    ("dynamodb", "DeleteItem"),
    ("dynamodb", "TransactWriteItems"),
    ("dynamodb", "BatchWriteItem"),
    ("s3", "PutObject"),
    ("s3", "DeleteObject"),
    ("s3", "CreateMultipartUpload"),
    ("s3", "UploadPart"),
    ("s3", "CompleteMultipartUpload"),
    ("sesv2", "SendEmail"),
    ("ses", "SendRawEmail"),
    ("lambda", "Invoke"),
}

ANY_WRITE = "*write"  # a Fault.operation matching every write request of its service

# HTTP status each injected error code comes with (as the real services answer).
_STATUS = {
    "InternalError": 500,
    "SlowDown": 503,
    "AccessDenied": 403,
    "TooManyRequestsException": 429,
    "MessageRejected": 400,
    "ThrottlingException": 400,
    "ProvisionedThroughputExceededException": 400,
    "TransactionCanceledException": 400,
    "InternalServerError": 500,
}


class SimulatedCrash(BaseException):
    """The process died between two requests (a Lambda timeout or out-of-memory)."""


@dataclass
class Fault:
    service: str
    operation: str | None  # None: any operation of the service; ANY_WRITE: any write
    code: str
    times: int = 1
    skip: int = 0  # let this many matching requests through first
    reasons: tuple[str | None, ...] = ()  # TransactionCanceledException reasons, in sent order
    when: Callable[[dict[str, Any]], bool] | None = None
    hits: int = 0  # requests that raised
    seen: int = 0  # matching requests, raised or let through

    def matches(self, service: str, operation: str, params: dict[str, Any]) -> bool:
        if service != self.service:
            return False
        if self.operation == ANY_WRITE:
            if (service, operation) not in WRITES:
                return False
        elif self.operation and operation != self.operation:
            return False
        return self.when is None or self.when(params)

    def error(self, client: Any, operation: str, params: dict[str, Any]) -> Exception:
        body: dict[str, Any] = {
            "Error": {"Code": self.code, "Message": f"injected {self.code}"},
            "ResponseMetadata": {"HTTPStatusCode": _STATUS.get(self.code, 400)},
        }
        if self.code == "TransactionCanceledException":
            count = len(params.get("TransactItems", [])) or 1
            codes = list(self.reasons) or ["ConditionalCheckFailed"]
            codes = (codes + ["None"] * count)[:count]
            body["CancellationReasons"] = [
                {"Code": code or "None", **({"Message": code} if code != "None" else {})}
                for code in codes
            ]
            listed = ", ".join(c or "None" for c in codes)
            body["Error"]["Message"] = f"Transaction cancelled, reasons [{listed}]"
        return client.exceptions.from_code(self.code)(body, operation)


@dataclass
class Injector:
    faults: list[Fault] = field(default_factory=list)
    crash_budget: int | None = None  # writes left before a simulated crash
    writes: list[tuple[str, str]] = field(default_factory=list)  # write requests seen
    injected: int = 0  # faults raised since the process started (the figure)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def before(self, client: Any, operation: str, params: dict[str, Any]) -> None:
        service = client.meta.service_model.service_name
        with self.lock:
            for armed in self.faults:
                if armed.hits >= armed.times or not armed.matches(service, operation, params):
                    continue
                armed.seen += 1
                if armed.seen <= armed.skip:
                    continue
                armed.hits += 1
                self.injected += 1
                raise armed.error(client, operation, params)
            if (service, operation) in WRITES:
                if self.crash_budget is not None:
                    if self.crash_budget <= 0:
                        self.injected += 1
                        raise SimulatedCrash(f"crashed before {service} {operation}")
                    self.crash_budget -= 1
                self.writes.append((service, operation))


INJECTOR = Injector()
_ORIGINAL = botocore.client.BaseClient._make_api_call


def _make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
    INJECTOR.before(self, operation_name, api_params)
    return _ORIGINAL(self, operation_name, api_params)


def install() -> None:
    """Wrap every botocore client's request call once (idempotent)."""
    if botocore.client.BaseClient._make_api_call is not _make_api_call:
        botocore.client.BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]


def uninstall() -> None:
    botocore.client.BaseClient._make_api_call = _ORIGINAL  # type: ignore[method-assign]


@contextmanager
def fault(
    service: str,
    operation: str | None = None,
    *,
    code: str,
    times: int = 1,
    skip: int = 0,
    reasons: tuple[str | None, ...] = (),
    when: Callable[[dict[str, Any]], bool] | None = None,
) -> Iterator[Fault]:
    """Arm one fault for the block; yields it so a test can assert it fired (``hits``)."""
    armed = Fault(service, operation, code, times, skip, reasons, when)
    INJECTOR.faults.append(armed)
    try:
        yield armed
    finally:
        INJECTOR.faults.remove(armed)


@contextmanager
def crash_after(writes: int) -> Iterator[None]:
    """Let ``writes`` write requests through, then crash on the next one."""
    INJECTOR.crash_budget = writes
    try:
        yield
    finally:
        INJECTOR.crash_budget = None


@contextmanager
def count_writes() -> Iterator[list[tuple[str, str]]]:
    """The write requests made inside the block, in order."""
    start = len(INJECTOR.writes)
    seen: list[tuple[str, str]] = []
    try:
        yield seen
    finally:
        seen.extend(INJECTOR.writes[start:])


def table_items() -> dict[tuple[str, str], dict[str, Any]]:
    """Every item of the moto table by (pk, sk), read from moto's memory (no request)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]]
    table = backend.get_table(os.environ["TABLE_NAME"])
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for item in table.all_items():
        raw = item.to_json()["Attributes"]
        found[(raw["pk"]["S"], raw["sk"]["S"])] = raw
    return found


def bucket_keys() -> set[str]:
    """Every object key in the moto bucket, read from moto's memory (no request)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    bucket = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets[os.environ["BUCKET_NAME"]]
    return set(bucket.keys.keys())


@dataclass
class Changes:
    added: set[tuple[str, str]]
    removed: set[tuple[str, str]]
    changed: set[tuple[str, str]]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def touched(self) -> set[tuple[str, str]]:
        return self.added | self.removed | self.changed


def diff(
    before: dict[tuple[str, str], dict[str, Any]], after: dict[tuple[str, str], dict[str, Any]]
) -> Changes:
    return Changes(
        added=set(after) - set(before),
        removed=set(before) - set(after),
        changed={k for k in set(before) & set(after) if before[k] != after[k]},
    )


# -- the web side: what the person sees -----------------------------------------

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
_FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)">')


def resend_form(page: str) -> tuple[str, dict[str, str]]:
    """The busy page's resend form: its action and the hidden fields it posts."""
    section = page.split('<section class="card narrow center">', 1)[-1]
    action = _FORM_ACTION.search(section)
    assert action, "the busy page has no resend form"
    section = section[action.end() : section.index("</form>", action.end())]
    fields = {html.unescape(n): html.unescape(v) for n, v in _HIDDEN.findall(section)}
    fields.pop("csrf_token", None)
    return html.unescape(action.group(1)), fields


def raw_item(pk: str, sk: str) -> dict[str, Any] | None:
    """One item's raw attributes from moto's memory (no request, no deserialising)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]]
    table = backend.get_table(os.environ["TABLE_NAME"])
    from moto.dynamodb.models.dynamo_type import DynamoType

    item = table.items.get(DynamoType({"S": pk}), {}).get(DynamoType({"S": sk}))
    return item.to_json()["Attributes"] if item is not None else None

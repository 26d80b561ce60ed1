"""Shared test harness: fake AWS from infra/, an AWS-call recorder, and the Scan guard.

The environment is set before anything imports boto3 or the app: PynamoDB
reads its table name at class definition, and botocore reads the handler list
when the first session is created.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

os.environ.update(
    {
        "STAGE": "test",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "TABLE_NAME": "checkos-test",
        "BUCKET_NAME": "checkos-test-files",
        "MAIL_SENDER": "no-reply@checkos.example",
        "MAIL_CONFIGURATION_SET": "checkos-test-mail",
        "BASE_URL": "http://testserver",
        "OUTBOX_ENABLED": "1",
        "SECURE_COOKIES": "0",
    }
)
for leaked in ("AWS_ENDPOINT_URL", "DYNAMODB_HOST", "AWS_PROFILE"):
    os.environ.pop(leaked, None)

# Concurrency tests need real parallel HTTP requests, which in-process moto
# cannot serve safely: `make test` runs them in a second pytest process where
# every client (boto3 and PynamoDB) talks to a ThreadedMotoServer instead.
# Budget tests seed thousands of items; moto deep-copies every table on each
# transaction, so they get a process (and an in-memory table) of their own too.
SUITE = os.environ.get("CHECKOS_SUITE", "main")
# Suites whose clients talk to a real (loopback) moto server instead of in-process moto.
CONCURRENCY_SUITE = SUITE in ("concurrency", "load")
collect_ignore = [name for name in ("concurrency", "perf", "load") if name != SUITE]
_SERVER = None
if CONCURRENCY_SUITE:
    # DynamoDB as it behaves under load (infra/ddb_realism.py): conflicts, lag, throttles.
    os.environ.setdefault("DDB_REALISM", "1")
    from infra.moto_server import SerialMotoServer

    _SERVER = SerialMotoServer()
    _SERVER.start()
    os.environ["AWS_ENDPOINT_URL"] = os.environ["DYNAMODB_HOST"] = _SERVER.endpoint

import pytest  # noqa: E402

from infra import moto_patches  # noqa: E402

moto_patches.apply()


from tests.awscalls import CALLS, AwsCall  # noqa: E402


def _scans(calls: list[AwsCall]) -> list[AwsCall]:
    return [c for c in calls if c.service == "dynamodb" and c.operation == "Scan"]


@pytest.fixture(autouse=True)
def _no_scan_anywhere() -> Iterator[None]:
    """Any DynamoDB Scan during a test fails that test (no Scan, ever)."""
    mark = CALLS.mark()
    yield
    scans = _scans(CALLS.since(mark))
    if scans:
        pytest.fail(f"DynamoDB Scan is forbidden; this test made {len(scans)}: {scans[0].params}")


@pytest.fixture(autouse=True)
def _settings_of_the_test_stage() -> None:
    """Settings read here, outside any request: chalice's test client swaps in
    .chalice/config.json's variables (STAGE=dev) while it runs one, so settings first
    read inside a request (after a test cleared the cache) would be the dev stage's."""
    from chalicelib.config import get_settings

    if get_settings().stage != os.environ["STAGE"]:
        get_settings.cache_clear()
        assert get_settings().stage == os.environ["STAGE"]


@pytest.fixture(autouse=True)
def _background_jobs_end_with_their_test() -> Iterator[None]:
    yield
    from tests.background import join_background

    join_background()


def _provision() -> None:
    import boto3

    from infra.provision import provision

    provision(
        boto3.session.Session(),
        table_name=os.environ["TABLE_NAME"],
        bucket_name=os.environ["BUCKET_NAME"],
        sender=os.environ["MAIL_SENDER"],
        configuration_set=os.environ["MAIL_CONFIGURATION_SET"],
        # The key ring as deployed (infra/resources.yaml AppSecret); tests that read it
        # set SIGNING_SECRET_ARN to this name (tests/infra/test_signing_keys.py).
        signing_secret="checkos-test-signing-keys",
    )


_SERVER_PROVISIONED = False


@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    """moto for every AWS service, provisioned from infra/: fresh for each test module.

    Fresh because moto answers an index Query by walking every item of the
    table: a table that grew through all the earlier modules of a worker
    made later tests many times slower. The server suites (concurrency,
    load) share one loopback server, provisioned once.
    """
    global _SERVER_PROVISIONED
    if CONCURRENCY_SUITE:
        if not _SERVER_PROVISIONED:
            _provision()
            _SERVER_PROVISIONED = True
        yield
        return
    from moto import mock_aws

    with mock_aws():
        _provision()
        yield


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _SERVER is not None:
        _SERVER.stop()


@pytest.fixture(scope="session", autouse=True)
def wired() -> None:
    """Order events wired as app.py wires them (service tests run without the app)."""
    from chalicelib.wiring import wire

    wire()


@pytest.fixture(scope="session")
def app():
    from app import app as chalice_app

    return chalice_app


@pytest.fixture
def client(aws: None, app):
    from chalice.test import Client

    with Client(app) as test_client:
        yield test_client


@dataclass
class Budget:
    """Counts DynamoDB requests made inside ``with budget:``."""

    calls: list[AwsCall] = field(default_factory=list)
    _mark: int = 0

    def __enter__(self) -> Budget:
        self._mark = CALLS.mark()
        return self

    def __exit__(self, *exc: object) -> None:
        self.calls = CALLS.since(self._mark)

    @property
    def dynamodb(self) -> list[AwsCall]:
        return [c for c in self.calls if c.service == "dynamodb"]

    @property
    def dynamodb_requests(self) -> int:
        return len(self.dynamodb)

    @property
    def items_read_by_queries(self) -> int:
        return sum(c.scanned or 0 for c in self.dynamodb if c.operation == "Query")


@pytest.fixture
def budget() -> Budget:
    return Budget()


pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    """The controller names one figures file for the run; xdist workers inherit it."""
    if not hasattr(config, "workerinput") and "CHECKOS_FIGURES" not in os.environ:
        import tempfile

        handle, path = tempfile.mkstemp(prefix="checkos-figures-", suffix=".txt")
        os.close(handle)
        os.environ["CHECKOS_FIGURES"] = path


def _order_seed_line(config: pytest.Config) -> str | None:
    seed = getattr(config.option, "randomly_seed", None)
    if not isinstance(seed, int) or not config.pluginmanager.has_plugin("randomly"):
        return None
    return f"random order: replay with -p randomly --randomly-seed={seed}"


def pytest_sessionstart(session: pytest.Session) -> None:
    """The seed of the shuffled order, printed first (-q hides pytest-randomly's header)."""
    line = _order_seed_line(session.config)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if line and reporter is not None and not hasattr(session.config, "workerinput"):
        reporter.write_line(line)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    from tests.figures import collected

    seed_line = _order_seed_line(config)
    if seed_line and not hasattr(config, "workerinput"):
        terminalreporter.write_line(seed_line)

    lines = collected()
    if lines and not hasattr(config, "workerinput"):
        terminalreporter.section("figures")
        for line in lines:
            terminalreporter.write_line(line)

"""The local outbox and /dev/jobs exist only in the local and test stages, whatever is set."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.config import get_settings
from tests.web.session import WebSession

DEV_PAGES = ("/dev/outbox", "/dev/outbox/0", "/dev/jobs")


@pytest.fixture
def stage(monkeypatch) -> Iterator[object]:
    """Run the app as another stage would, OUTBOX_ENABLED still set (settings re-read)."""

    def use(name: str) -> None:
        monkeypatch.setenv("STAGE", name)
        monkeypatch.setenv("SECRET_KEY", "s" * 64)
        monkeypatch.setenv("SECURE_COOKIES", "0")  # the test client speaks plain http
        monkeypatch.setenv("OUTBOX_ENABLED", "1")
        get_settings.cache_clear()
        # Read now: chalice's test client swaps in .chalice/config.json's variables
        # while it runs a request, and the settings must be this stage's.
        assert get_settings().stage == name

    yield use
    monkeypatch.undo()
    get_settings.cache_clear()
    assert get_settings().stage == "test"  # read back outside any request


def test_the_dev_pages_answer_in_the_test_stage(client):
    tab = WebSession(client)
    assert tab.get("/dev/outbox").status_code == 200
    assert tab.get("/dev/jobs").status_code == 200


@pytest.mark.parametrize("name", ["dev", "staging"])
def test_the_dev_pages_are_absent_in_a_deployed_stage_even_with_outbox_enabled(client, stage, name):
    stage(name)
    tab = WebSession(client)
    answers = {path: tab.get(path).status_code for path in DEV_PAGES}
    assert answers == {path: 404 for path in DEV_PAGES}

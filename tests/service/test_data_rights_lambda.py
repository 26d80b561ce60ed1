"""Deployed, an archive and an erasure each start the one data-rights Lambda, which routes them.

Locally both run in a thread; this is the other path, with the Lambda client
replaced by a recorder and the settings of a deployed stage.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

import app
from chalicelib.config import get_settings
from chalicelib.services import data_rights_lambda, erasure, takeout
from chalicelib.services.sessions import now
from tests.figures import report
from tests.service.factories import new_company


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **request: Any) -> dict[str, int]:
        self.calls.append(request)
        return {"StatusCode": 202}


@pytest.fixture
def deployed(monkeypatch) -> _Recorder:
    recorder = _Recorder()
    local = get_settings()
    monkeypatch.setattr(data_rights_lambda, "get_settings", lambda: replace(local, stage="prod"))
    monkeypatch.setattr(data_rights_lambda, "client", lambda service: recorder)
    monkeypatch.setenv(data_rights_lambda.FUNCTION_NAME_VARIABLE, "checkos-prod-data-rights:live")
    return recorder


def test_an_archive_and_a_resumed_erasure_invoke_the_data_rights_lambda(aws, deployed, monkeypatch):
    archived = new_company("Arquivo Reparos")
    erased = new_company("Apagada Reparos")
    job = takeout.request_archive(archived.company, archived.user.user_id, "pt-BR")
    erasure.mark(erased.company, erased.user.user_id)
    resumed = erasure.sweep(as_of=now() + erasure.STALE_AFTER + timedelta(minutes=1))
    payloads = [json.loads(call["Payload"]) for call in deployed.calls]
    routed: list[str] = []
    monkeypatch.setattr(
        "chalicelib.services.takeout.handle_event", lambda event: routed.append("archive") or {}
    )
    monkeypatch.setattr(
        "chalicelib.services.erasure.handle_event",
        lambda event, context=None: routed.append("erase") or {},
    )
    for payload in payloads:
        app.data_rights_job(payload, None)
    print(
        report(
            "data-rights-lambda",
            invocations=len(deployed.calls),
            resumed=resumed["resumed"],
            routed=len(routed),
            require=("invocations",),
        )
    )
    assert [call["FunctionName"] for call in deployed.calls] == [
        "checkos-prod-data-rights:live"
    ] * 2
    assert {call["InvocationType"] for call in deployed.calls} == {"Event"}
    assert payloads == [
        {"job": "archive", "company_id": archived.company.company_id, "archive_id": job.archive_id},
        {"job": "erase", "company_id": erased.company.company_id},
    ]
    assert routed == ["archive", "erase"]

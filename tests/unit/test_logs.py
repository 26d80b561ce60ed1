"""Structured logs: each line is JSON with the request id and, once known, the company id."""

from __future__ import annotations

import io
import json
import logging

from chalice import Chalice
from chalice.test import Client

from chalicelib import logs


def test_a_request_logs_json_lines_with_its_request_id_and_company():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    app = Chalice(app_name="logs-test")
    logs.install(app, handler)
    log = logging.getLogger("checkos.test")

    @app.route("/")
    def index() -> dict:
        log.info("before the session")
        logs.bind_company("c-42")
        log.warning("após a sessão: ñ")
        return {}

    try:
        with Client(app) as client:
            assert client.http.get("/").status_code == 200
        log.info("outside any request")
    finally:
        logging.getLogger("checkos").removeHandler(handler)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["message"] for line in lines] == [
        "before the session",
        "após a sessão: ñ",
        "outside any request",
    ]
    request_ids = {line["request_id"] for line in lines[:2]}
    assert len(request_ids) == 1 and None not in request_ids
    assert [line["company_id"] for line in lines] == [None, "c-42", None]
    assert lines[2]["request_id"] is None
    assert lines[1]["level"] == "WARNING" and lines[1]["logger"] == "checkos.test"

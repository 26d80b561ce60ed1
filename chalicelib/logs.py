"""Structured logs: one JSON object per line, with the request id and the company id.

The stdlib's logging with a small JSON formatter rather than Powertools' Logger:
importing ``aws_lambda_powertools.logging`` alone took 41-52 ms on the build machine,
paid by every cold start of the web function, for what these few lines do.
"""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar
from typing import Any

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_company_id: ContextVar[str | None] = ContextVar("company_id", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id.get(),
            "company_id": _company_id.get(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def bind_company(company_id: str | None) -> None:
    """Every later line of this request names the company (set once the session is known)."""
    _company_id.set(company_id)


def _request_id_of(event: Any) -> str | None:
    context = getattr(event, "lambda_context", None) or getattr(event, "context", None)
    if isinstance(context, dict):  # an HTTP request: API Gateway's request context
        return context.get("requestId")
    return getattr(context, "aws_request_id", None)


def install(app: Any, handler: logging.Handler | None = None) -> None:
    """Bind each event's request id; in Lambda (or with ``handler``), log JSON lines."""
    import os

    from chalicelib.config import deployed

    if handler is not None or deployed(os.environ):
        root = logging.getLogger()
        handlers = [handler] if handler is not None else root.handlers
        if handler is not None:
            logging.getLogger("checkos").addHandler(handler)
        for each in handlers:
            each.setFormatter(JsonFormatter())
        logging.getLogger("checkos").setLevel(logging.INFO)

    @app.middleware("all")
    def _bind_request(event: Any, get_response: Any) -> Any:
        request = _request_id.set(_request_id_of(event))
        company = _company_id.set(None)
        try:
            return get_response(event)
        finally:
            _request_id.reset(request)
            _company_id.reset(company)

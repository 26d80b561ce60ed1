"""The data-rights Lambda (archives and erasures): its name, and starting a run of it."""

from __future__ import annotations

import json
import os
from typing import Any

from chalicelib.aws.clients import client
from chalicelib.config import get_settings

FUNCTION_NAME_VARIABLE = "DATA_RIGHTS_FUNCTION_NAME"


def function_name() -> str:
    # A packaged stack passes the name; `chalice deploy` names it <app>-<stage>-data_rights.
    stage = get_settings().stage
    return os.environ.get(FUNCTION_NAME_VARIABLE) or f"checkos-{stage}-data_rights"


def invoke(payload: dict[str, Any]) -> None:
    """Start one run in the background (an asynchronous Lambda invocation)."""
    client("lambda").invoke(
        FunctionName=function_name(),
        InvocationType="Event",
        Payload=json.dumps(payload).encode(),
    )

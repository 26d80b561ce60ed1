"""The data-rights Lambda (archives, erasures): its name, and its runs started in the background."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any

from chalicelib.aws.clients import client
from chalicelib.config import get_settings

FUNCTION_NAME_VARIABLE = "DATA_RIGHTS_FUNCTION_NAME"


def function_name() -> str:
    # A packaged stack passes the name; `chalice deploy` names it <app>-<stage>-data_rights.
    stage = get_settings().stage
    return os.environ.get(FUNCTION_NAME_VARIABLE) or f"checkos-{stage}-data_rights"


class Background:
    """Runs of one job: an asynchronous Lambda invocation, or a thread in the local run."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []

    def start(self, payload: dict[str, Any], local: Callable[[], object]) -> None:
        """Invoke the Lambda with ``payload``; locally (no Lambda) call ``local`` in a thread."""
        if get_settings().is_local:
            thread = threading.Thread(target=local, daemon=True)
            self._threads[:] = [*(t for t in self._threads if t.is_alive()), thread]
            thread.start()
            return
        client("lambda").invoke(
            FunctionName=function_name(),
            InvocationType="Event",
            Payload=json.dumps(payload).encode(),
        )

    def join(self, timeout: float = 60.0) -> None:
        """Wait for the runs this process started (tests, local shutdown)."""
        while self._threads:
            self._threads.pop().join(timeout)

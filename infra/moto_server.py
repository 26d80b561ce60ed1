"""A moto server on loopback that applies one AWS request at a time.

moto's DynamoDB backend is not thread-safe (a transaction deep-copies tables
while another thread writes them). Real DynamoDB applies each request
atomically; serialising requests at the server gives the same guarantee while
clients still race each other between their requests — which is exactly what
the concurrency tests and a multi-tab local run need. In front of that lock,
``infra.ddb_realism`` can make it answer as DynamoDB does under load
(transaction conflicts, lagging indexes, throttles) when ``DDB_REALISM`` asks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from infra import ddb_realism


class _OneAtATime:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            return list(self.app(environ, start_response))


class SerialMotoServer(ThreadedMotoServer):
    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.realism = ddb_realism.REALISM.from_env()
        ddb_realism.apply()

    def _server_entry(self) -> None:
        app = ddb_realism.RealisticDynamo(
            _OneAtATime(DomainDispatcherApplication(create_backend_app)), self.realism
        )  # uses the lock and the app of _OneAtATime
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def endpoint(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

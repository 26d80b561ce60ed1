"""Wait for the background jobs the local run starts in threads (exports, archives, erasures).

In-process moto is not thread-safe: a job thread writing while a request
reads the same item can break moto itself. Tests that fire requests which
start jobs wait for them before the next request, and every test waits for
its jobs before the next test (an autouse fixture in tests/conftest.py).
"""

from __future__ import annotations

import sys

JOB_MODULES = (
    "chalicelib.services.export",
    "chalicelib.services.takeout",
    "chalicelib.services.erasure",
)


def join_background() -> None:
    for name in JOB_MODULES:
        module = sys.modules.get(name)  # a job can only run if its module was loaded
        if module is not None:
            module.join_background()

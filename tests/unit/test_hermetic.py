"""The suite stays on this machine and says how it ordered itself.

Every pytest process of `make test` reads pyproject's addopts: pytest-socket refuses any
connection beyond loopback, pytest-randomly shuffles the tests and prints its seed.
"""

from __future__ import annotations

import socket
import threading
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_a_connection_beyond_loopback_is_refused_before_it_leaves():
    # 192.0.2.1 is TEST-NET-1: never routed, so without the guard this would time out.
    with pytest.raises(RuntimeError, match=r"socket\.connect\(\) with host \"192\.0\.2\.1\""):
        socket.create_connection(("192.0.2.1", 443), timeout=2)


def test_loopback_connections_still_work():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        accepted: list[bytes] = []

        def serve() -> None:
            peer, _ = server.accept()
            with peer:
                accepted.append(peer.recv(5))

        thread = threading.Thread(target=serve)
        thread.start()
        for host in ("127.0.0.1", "localhost"):
            if host == "localhost":
                thread.join(timeout=5)
                thread = threading.Thread(target=serve)
                thread.start()
            with socket.create_connection((host, port), timeout=5) as connection:
                connection.sendall(b"hello")
        thread.join(timeout=5)
    assert accepted == [b"hello", b"hello"]


def test_every_pytest_process_is_guarded_and_shuffled():
    """`make test` starts several pytest processes; none may drop the shared options."""
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    addopts = options["addopts"].split()
    assert "--allow-hosts=127.0.0.1,localhost,::1" in addopts
    assert "no:randomly" not in " ".join(addopts)
    makefile = (ROOT / "Makefile").read_text()
    runs = [line for line in makefile.splitlines() if "-m pytest" in line]
    assert runs, "the Makefile runs pytest"
    for line in runs:  # neither overriding addopts nor turning a plugin off
        assert "addopts" not in line and "no:randomly" not in line and "no:socket" not in line
        assert "force-enable-socket" not in line


def test_the_run_prints_its_seed(pytestconfig):
    from tests.conftest import _order_seed_line

    assert pytestconfig.pluginmanager.has_plugin("randomly"), "pytest-randomly is not installed"
    seed = pytestconfig.getoption("randomly_seed")
    assert isinstance(seed, int), seed
    assert _order_seed_line(pytestconfig) == (
        f"random order: replay with -p randomly --randomly-seed={seed}"
    )

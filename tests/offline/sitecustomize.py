"""Loopback only, for the Python processes a test starts (put this folder on PYTHONPATH).

pytest-socket guards the pytest process itself; `chalice package` and the pip runs it
starts are separate processes. Python imports ``sitecustomize`` at start-up, so each of
them refuses a connection beyond loopback the same way.
"""

from __future__ import annotations

import ipaddress
import socket

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _refuse_beyond_loopback(sock: socket.socket, address: object) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = address[0] if isinstance(address, tuple) else address
    try:
        loopback = ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConnectionRefusedError(f"offline test run: a connection to {host} was refused")


def _connect_loopback(self: socket.socket, address: object) -> None:
    _refuse_beyond_loopback(self, address)
    return _connect(self, address)


def _connect_ex_loopback(self: socket.socket, address: object) -> int:
    _refuse_beyond_loopback(self, address)
    return _connect_ex(self, address)


socket.socket.connect = _connect_loopback  # type: ignore[method-assign]
socket.socket.connect_ex = _connect_ex_loopback  # type: ignore[method-assign]

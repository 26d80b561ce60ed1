"""Static assets shipped with the app (no CDN), with content-hashed URLs."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from chalicelib.urls import url

STATIC_DIR = Path(__file__).with_name("static")
TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".png": "image/png",
    ".webmanifest": "application/manifest+json",
}
# Served as bytes (API Gateway base64-encodes them; app.py declares them binary).
BINARY_TYPES = ["image/x-icon", "image/png"]


def is_binary(content_type: str) -> bool:
    return content_type in BINARY_TYPES


@lru_cache(maxsize=64)
def asset(name: str) -> tuple[bytes, str, str] | None:
    """(content, content type, short hash) of a shipped asset, or None."""
    path = (STATIC_DIR / name).resolve()
    if path.parent != STATIC_DIR.resolve() or path.suffix not in TYPES or not path.is_file():
        return None
    content = path.read_bytes()
    return content, TYPES[path.suffix], hashlib.sha256(content).hexdigest()[:10]


def static_url(name: str) -> str:
    found = asset(name)
    return url(f"/static/{name}?v={found[2]}" if found else f"/static/{name}")

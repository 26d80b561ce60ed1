"""Small HTTP pieces: cookies, form bodies, redirects, signed values."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chalice import Response

from chalicelib import signing_keys, urls
from chalicelib.config import get_settings

MAX_FORM_BYTES = 256 * 1024
# Every GET route answers HEAD too (uptime monitors and link checkers use it).
GET_AND_HEAD = ["GET", "HEAD"]


def parse_cookies(header: str | None) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header or "")
    except Exception:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def cookie_header(
    name: str, value: str, *, max_age: int | None = None, http_only: bool = True
) -> str:
    settings = get_settings()
    parts = [f"{name}={value}", "Path=/", "SameSite=Lax"]
    if http_only:
        parts.append("HttpOnly")
    if settings.secure_cookies:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def expired_cookie(name: str) -> str:
    return cookie_header(name, "", max_age=0)


def parse_form(body: bytes | str | None) -> dict[str, str]:
    """First value of each field of an urlencoded body; blanks are kept as ''."""
    if not body:
        return {}
    if isinstance(body, bytes):
        if len(body) > MAX_FORM_BYTES:
            return {}
        body = body.decode("utf-8", errors="replace")
    parsed = parse_qs(body, keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site relative paths are followed after login."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    # Control characters: CR/LF would break the Location header (a 500), and
    # browsers drop tabs and newlines, so "/\t/evil" would become "//evil".
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return default
    return target


def redirect(location: str, status: int = 303) -> Response:
    """Go to ``location``; a site path (``/orders/1``) goes out under the request's prefix."""
    return Response(body="", status_code=status, headers={"Location": urls.url(location)})


def under_site_prefix(request: Any, get_response: Callable[[Any], Response]) -> Response:
    """Middleware: every URL made while serving ``request`` carries its path prefix.

    API Gateway's own address answers under the stage (``/api``); any other host
    (a custom domain, ``make run``) under the path of ``BASE_URL`` (usually none).
    """
    context = request.context or {}
    host = context.get("domainName") or request.headers.get("host")
    prefix = urls.prefix_for(host, context.get("stage"), get_settings().base_url)
    with urls.serving(prefix):
        return get_response(request)


def sign(payload: str, purpose: str) -> str:
    return _sign_with(signing_keys.current(), payload, purpose)


def _sign_with(key: str, payload: str, purpose: str) -> str:
    mac = hmac.new(key.encode(), f"{purpose}:{payload}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")


def verify(payload: str, signature: str, purpose: str) -> bool:
    """Signed with any key of the ring (current or previous: a rotation signs nobody out)."""
    return any(
        hmac.compare_digest(_sign_with(key, payload, purpose), signature)
        for key in signing_keys.accepted()
    )


def pack(data: Any, purpose: str) -> str:
    """A tamper-proof cookie value (not secret: don't put secrets in it)."""
    raw = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()
    raw = raw.rstrip("=")
    return f"{raw}.{sign(raw, purpose)}"


def unpack(value: str | None, purpose: str) -> Any:
    if not value or "." not in value:
        return None
    raw, _, signature = value.rpartition(".")
    if not verify(raw, signature, purpose):
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except ValueError:
        return None


def head_answer(request: Any, response: Response) -> Response:
    """A HEAD gets the GET's status and headers without its body."""
    if request is not None and request.method.upper() == "HEAD":
        response.body = b"" if isinstance(response.body, bytes) else ""
    return response

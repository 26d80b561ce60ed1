"""Security headers on every response, and HTML for Chalice's own JSON errors."""

from __future__ import annotations

from collections.abc import Callable

from chalice import Blueprint, Response
from chalice.app import Request

bp = Blueprint(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'; frame-ancestors {ancestors}"
)
# Responses may widen this (an embeddable form) by setting the header themselves.
DEFAULT_ANCESTORS = "'none'"


@bp.middleware("http")
def security_headers(event: Request, get_response: Callable[[Request], Response]) -> Response:
    return secured(event, get_response(event))


def secured(event: Request, response: Response) -> Response:
    """The response with the security headers a route did not set itself."""
    if isinstance(response.body, dict):
        # Chalice's own answers (an unhandled exception's 500, 405, 415) are JSON; the app's
        # never are. A person gets the translated error page, never a stack trace or JSON.
        from chalicelib.web.context import build_context, error_page

        response = error_page(build_context(event), response.status_code)
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP.format(ancestors=DEFAULT_ANCESTORS))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if "frame-ancestors 'none'" in headers["Content-Security-Policy"]:
        # Only where framing is refused: a route that allows it (an embeddable
        # form) must not be blocked by a legacy header older browsers obey.
        headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response

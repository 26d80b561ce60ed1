"""Export pages: start an XLSX export of the filtered order list, follow it, download it.

The dashboard itself is ``/`` (``web/pages.py`` calls ``services.dashboard``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.lazy import lazy_module
from chalicelib.web import http
from chalicelib.web.context import SignedIn, route

# Imported on first use (cold start): see chalicelib/lazy.py.
if TYPE_CHECKING:
    from chalicelib.services import export, orders
else:
    export = lazy_module("chalicelib.services.export")
    orders = lazy_module("chalicelib.services.orders")

bp = Blueprint(__name__)


@route(bp, "/exports", methods=("POST",))
def start_export(ctx: SignedIn) -> Response:
    job = export.request_export(
        ctx.principal.company,
        ctx.principal.user_id,
        orders.OrderFilters.from_query(ctx.form),
        ctx.locale,
    )
    # Always to our own page, never straight to S3: the CSP's form-action 'self'
    # also covers the redirects that follow a form post.
    return http.redirect(f"/exports/{job.export_id}")


@route(bp, "/exports/{export_id}")
def export_status(ctx: SignedIn, export_id: str) -> Response:
    view = export.export_status(ctx.principal.company_id, export_id)
    return ctx.render(
        "pages/export_status.html",
        job=view.job,
        state=view.status,
        download_url=view.download_url,
        list_url=view.list_url,
        minutes=export.URL_SECONDS // 60,
        days=export.JOB_DAYS,
    )

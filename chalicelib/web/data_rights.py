"""Your data (admin): download everything as one archive, or delete the company for good."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.domain.errors import ValidationFailed
from chalicelib.lazy import lazy_module
from chalicelib.services import sessions
from chalicelib.web import http
from chalicelib.web.context import ADMIN, PUBLIC, Ctx, SignedIn, route

# Imported on first use (cold start): see chalicelib/lazy.py.
if TYPE_CHECKING:
    from chalicelib.services import erasure, takeout
else:
    erasure = lazy_module("chalicelib.services.erasure")
    takeout = lazy_module("chalicelib.services.takeout")

bp = Blueprint(__name__)
PAGE = "pages/settings_data.html"


def _page(ctx: SignedIn, status: int = 200, **extra: object) -> Response:
    context: dict[str, object] = {"errors": {}, "values": {}, **extra}
    return ctx.render(
        PAGE,
        status=status,
        archives=takeout.recent_archives(ctx.principal.company_id),
        days=takeout.ARCHIVE_DAYS,
        **context,
    )


@route(bp, "/settings/data", auth=ADMIN)
def data_settings(ctx: SignedIn) -> Response:
    return _page(ctx)


@route(bp, "/settings/data/archive", methods=("POST",), auth=ADMIN)
def start_archive(ctx: SignedIn) -> Response:
    job = takeout.request_archive(ctx.principal.company, ctx.principal.user_id, ctx.locale)
    return http.redirect(f"/settings/data/archive/{job.archive_id}")


@route(bp, "/settings/data/archive/{archive_id}", auth=ADMIN)
def archive_status(ctx: SignedIn, archive_id: str) -> Response:
    view = takeout.archive_status(ctx.principal.company_id, archive_id)
    return ctx.render(
        "pages/settings_data_archive.html",
        view=view,
        minutes=takeout.URL_SECONDS // 60,
        days=takeout.ARCHIVE_DAYS,
    )


@route(bp, "/settings/data/delete", methods=("POST",), auth=ADMIN)
def delete_company(ctx: SignedIn) -> Response:
    try:
        erasure.request_erasure(ctx.principal, ctx.form)
    except ValidationFailed as problem:
        errors = {name: ctx._(key, **params) for name, (key, params) in problem.errors.items()}
        values = {"confirmation": ctx.form.get("confirmation", "")}  # never the password
        return _page(ctx, status=422, errors=errors, values=values)
    if ctx.session_token:
        sessions.end_session(ctx.session_token)
    ctx.sign_out()
    return http.redirect("/goodbye")


@route(bp, "/goodbye", auth=PUBLIC)
def goodbye(ctx: Ctx) -> Response:
    return ctx.render("pages/goodbye.html")

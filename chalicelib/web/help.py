"""Help center, About and System Policy: public pages, cacheable for visitors.

A visitor without a session cookie gets a page that is the same for everyone in
a language: no DynamoDB request, no per-visitor data (no CSRF token, no cookie),
so browsers and a CDN may keep it. Its language comes from the ``lang`` cookie
or Accept-Language, hence ``Vary: Accept-Language, Cookie``. A signed-in user
(session cookie present) gets the app's navigation and the language saved in
their profile, in a page that is never cached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Response

from chalicelib.config import get_settings
from chalicelib.i18n import normalise
from chalicelib.lazy import lazy_module
from chalicelib.templating import render
from chalicelib.web import http
from chalicelib.web.context import LANG_COOKIE, PUBLIC, Ctx, route

# Imported on first use (cold start): see chalicelib/lazy.py.
if TYPE_CHECKING:
    from chalicelib.services import help as articles
else:
    articles = lazy_module("chalicelib.services.help")

bp = Blueprint(__name__)

CACHE_CONTROL = "public, max-age=3600"
VARY = "Accept-Language, Cookie"
MAX_QUERY = 200


def _numbers() -> dict[str, object]:
    from chalicelib.web.intake import MIN_SIZE

    numbers: dict[str, object] = articles.figures({"min_size": MIN_SIZE})
    return numbers


def _page(ctx: Ctx, template: str, status: int = 200, **context: Any) -> Response:
    """Signed out: nothing personal (no CSRF token, no flash cookie), so cacheable.

    Signed in: the app's top bar (with its CSRF-protected sign-out), never cached.
    """
    signed_in = ctx.principal is not None
    body = render(
        template,
        ctx.locale,
        ctx=ctx,
        principal=ctx.principal,
        csrf_token=ctx.csrf_token if signed_in else "",
        flashes=[],
        settings=get_settings(),
        **context,
    )
    cacheable = status == 200 and not signed_in
    return Response(
        body=body,
        status_code=status,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": CACHE_CONTROL if cacheable else "no-store",
            "Vary": VARY,
        },
    )


def _not_found(ctx: Ctx) -> Response:
    return _page(
        ctx,
        "pages/error.html",
        status=404,
        code=404,
        title=ctx._("error.404.title"),
        message=ctx._("error.404.body"),
    )


@route(bp, "/help", auth=PUBLIC)
def help_center(ctx: Ctx) -> Response:
    query = " ".join((ctx.query.get("q") or "").split())[:MAX_QUERY]
    numbers = _numbers()
    if query:
        hits = articles.search(query, ctx.locale, numbers)
        return _page(ctx, "help/search.html", query=query, hits=hits)
    return _page(ctx, "help/index.html", query="", entries=articles.index(ctx.locale, numbers))


@route(bp, "/help/{slug}", auth=PUBLIC)
def help_article(ctx: Ctx, slug: str) -> Response:
    shown = articles.render_article(slug, ctx.locale, _numbers())
    if shown is None:
        return _not_found(ctx)
    others = [(s, title) for s, title, _ in articles.index(ctx.locale, {}) if s != slug]
    return _page(ctx, "help/article.html", article=shown, others=others, query="")


@route(bp, "/help/img/{name}", auth=PUBLIC, session=False)
def help_image(ctx: Ctx, name: str) -> Response:
    """A screenshot taken by the browser suite (WebP, a binary type of the app)."""
    data = articles.read_shot(name)
    if data is None:
        return Response(
            body="Not found",
            status_code=404,
            headers={"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"},
        )
    return Response(
        body=data, headers={"Content-Type": "image/webp", "Cache-Control": CACHE_CONTROL}
    )


@route(bp, "/help/language", auth=PUBLIC, session=False)
def help_language(ctx: Ctx) -> Response:
    """The language chooser of cacheable pages: a GET (their pages carry no CSRF token).

    It only sets the ``lang`` cookie (no table write, unlike the signed-in
    chooser, which also saves the user's language), then goes back.
    """
    locale = normalise(ctx.query.get("locale")) or ctx.locale
    ctx.out_cookies.append(http.cookie_header(LANG_COOKIE, locale, max_age=365 * 86400))
    return http.redirect(http.safe_next(ctx.query.get("next"), "/help"))


@route(bp, "/about", auth=PUBLIC)
def about(ctx: Ctx) -> Response:
    page = articles.render_page("about", ctx.locale, _numbers())
    return _page(ctx, "help/about.html", article=page, query="")


@route(bp, "/policy", auth=PUBLIC)
def policy(ctx: Ctx) -> Response:
    page = articles.render_page("policy", ctx.locale, _numbers())
    return _page(ctx, "help/policy.html", article=page, query="")

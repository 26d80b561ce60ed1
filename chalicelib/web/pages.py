"""Public shell pages: landing/home, assets, language choice, health, 404."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.assets import asset, is_binary
from chalicelib.config import get_settings
from chalicelib.i18n import normalise
from chalicelib.web import http
from chalicelib.web.context import ADMIN, LANG_COOKIE, PUBLIC, Ctx, SignedIn, error_page, route

bp = Blueprint(__name__)


@route(bp, "/", auth=PUBLIC)
def home(ctx: Ctx) -> Response:
    if ctx.principal is None:
        return ctx.render("pages/landing.html", quota=get_settings().free_plan_monthly_orders)
    from chalicelib.services.companies import missing_profile_fields
    from chalicelib.services.dashboard import build_dashboard

    return ctx.render(
        "pages/home.html",
        missing=missing_profile_fields(ctx.principal.company),
        dashboard=build_dashboard(ctx.principal.company_id, ctx.locale),
    )


# Every settings page, in the order the hub lists them: (path, title key, lead key).
SETTINGS_SECTIONS: list[tuple[str, str, str]] = [
    ("/settings/company", "nav.company", "settings.company_lead"),
    ("/settings/company/logo", "settings.logo", "settings.logo_lead"),
    ("/settings/users", "nav.users", "settings.users_lead"),
    ("/settings/fields", "nav.fields", "settings.fields_lead"),
    ("/settings/follow-snippet", "nav.follow_snippet", "settings.follow_lead"),
    ("/settings/intake", "intake.settings.title", "intake.settings.hub_lead"),
    ("/settings/data", "data.title", "settings.data_lead"),
]


# The help about each settings page, shown on its card in the hub; optional (a
# section without an entry simply has no help link).
SETTINGS_HELP: dict[str, str] = {
    "/settings/company": "/help/company-info",
    "/settings/company/logo": "/help/logo",
    "/settings/users": "/help/team#users",
    "/settings/fields": "/help/team#fields",
    "/settings/follow-snippet": "/help/follow-snippet",
    "/settings/intake": "/help/intake-form",
    "/settings/data": "/policy#data",
}


@route(bp, "/settings", auth=ADMIN)
def settings_hub(ctx: SignedIn) -> Response:
    return ctx.render("pages/settings.html", sections=SETTINGS_SECTIONS, help_links=SETTINGS_HELP)


@bp.route("/static/{name}", methods=http.GET_AND_HEAD)
def static(name: str) -> Response:
    return http.head_answer(bp.current_request, _asset_response(name, IMMUTABLE))


IMMUTABLE = "public, max-age=31536000, immutable"
# Fixed addresses browsers and phones ask for on their own (no hashed URL): cached a day.
WELL_KNOWN = {
    "/favicon.ico": "favicon.ico",
    "/apple-touch-icon.png": "apple-touch-icon.png",
    "/manifest.webmanifest": "manifest.webmanifest",
}
DAY = "public, max-age=86400"


def _asset_response(name: str, cache_control: str) -> Response:
    found = asset(name)
    if found is None:
        return Response(body="Not found", status_code=404, headers={"Content-Type": "text/plain"})
    content, content_type, _digest = found
    body: bytes | str = content if is_binary(content_type) else content.decode("utf-8")
    return Response(
        body=body, headers={"Content-Type": content_type, "Cache-Control": cache_control}
    )


def _well_known(path: str) -> Response:
    return http.head_answer(bp.current_request, _asset_response(WELL_KNOWN[path], DAY))


@bp.route("/favicon.ico", methods=http.GET_AND_HEAD)
def favicon() -> Response:
    return _well_known("/favicon.ico")


@bp.route("/apple-touch-icon.png", methods=http.GET_AND_HEAD)
def apple_touch_icon() -> Response:
    return _well_known("/apple-touch-icon.png")


@bp.route("/manifest.webmanifest", methods=http.GET_AND_HEAD)
def web_app_manifest() -> Response:
    return _well_known("/manifest.webmanifest")


@route(bp, "/language", methods=("POST",), auth=PUBLIC)
def choose_language(ctx: Ctx) -> Response:
    locale = normalise(ctx.form.get("locale")) or ctx.locale
    ctx.out_cookies.append(http.cookie_header(LANG_COOKIE, locale, max_age=365 * 86400))
    if ctx.principal is not None:
        from chalicelib.services.users import set_user_locale

        set_user_locale(ctx.principal.user, locale)
    return http.redirect(http.safe_next(ctx.form.get("next")))


@bp.route("/healthz", methods=http.GET_AND_HEAD)
def health() -> Response:
    answer = Response(body='{"status": "ok"}', headers={"Content-Type": "application/json"})
    return http.head_answer(bp.current_request, answer)


@route(bp, "/{proxy+}", methods=("GET", "POST"), auth=PUBLIC, csrf=False)
def not_found(ctx: Ctx, proxy: str = "") -> Response:
    return error_page(ctx, 404)

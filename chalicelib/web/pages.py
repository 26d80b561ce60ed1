"""Public shell pages: landing/home, assets, language choice, health, 404."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.assets import asset
from chalicelib.config import get_settings
from chalicelib.i18n import normalise
from chalicelib.web import http
from chalicelib.web.context import ADMIN, LANG_COOKIE, PUBLIC, Ctx, error_page, route

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
def settings_hub(ctx: Ctx) -> Response:
    return ctx.render("pages/settings.html", sections=SETTINGS_SECTIONS, help_links=SETTINGS_HELP)


@bp.route("/static/{name}", methods=["GET"])
def static(name: str) -> Response:
    found = asset(name)
    if found is None:
        return Response(body="Not found", status_code=404, headers={"Content-Type": "text/plain"})
    content, content_type, _digest = found
    return Response(
        body=content.decode("utf-8"),
        headers={
            "Content-Type": content_type,
            "Cache-Control": "public, max-age=31536000, immutable",
        },
    )


@route(bp, "/language", methods=("POST",), auth=PUBLIC)
def choose_language(ctx: Ctx) -> Response:
    locale = normalise(ctx.form.get("locale")) or ctx.locale
    ctx.out_cookies.append(http.cookie_header(LANG_COOKIE, locale, max_age=365 * 86400))
    if ctx.principal is not None:
        from chalicelib.services.users import set_user_locale

        set_user_locale(ctx.principal.user, locale)
    return http.redirect(http.safe_next(ctx.form.get("next")))


@bp.route("/healthz", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@route(bp, "/{proxy+}", methods=("GET", "POST"), auth=PUBLIC, csrf=False)
def not_found(ctx: Ctx, proxy: str = "") -> Response:
    return error_page(ctx, 404)

"""Company settings (profile, status, logo upload), the public company page and logo files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.config import get_settings
from chalicelib.domain.errors import AppError, ValidationFailed
from chalicelib.i18n import negotiate, translate
from chalicelib.lazy import lazy_module
from chalicelib.web import http
from chalicelib.web.context import ADMIN, AWS_UNAVAILABLE, PUBLIC, Ctx, SignedIn, route

# Imported on first use (cold start): see chalicelib/lazy.py.
if TYPE_CHECKING:
    from chalicelib.domain import logos as logo_rules
    from chalicelib.services import companies, logos
else:
    companies = lazy_module("chalicelib.services.companies")
    logos = lazy_module("chalicelib.services.logos")
    logo_rules = lazy_module("chalicelib.domain.logos")

bp = Blueprint(__name__)

# Response types app.py adds to ``app.api.binary_types``. API Gateway looks only
# at the FIRST type of the Accept header to decide whether to decode a binary
# body, and Chromium and Firefox ask for images with "image/avif,image/webp,...":
# both must be binary types or the browser receives base64 text.
BINARY_TYPES = ["image/webp", "image/avif"]
SETTINGS_PAGE = "pages/settings_company.html"
LOGO_PAGE = "pages/settings_logo.html"


@route(bp, "/settings/company", methods=("GET", "POST"), auth=ADMIN)
def company_settings(ctx: SignedIn) -> Response:
    company = ctx.principal.company
    if ctx.method == "GET":
        values = companies.profile_values(company)
        return ctx.render(SETTINGS_PAGE, values=values, errors={}, conflict=False)
    try:
        saved = companies.update_profile(company, ctx.form, ctx.locale, ip=ctx.client_ip)
    except ValidationFailed as problem:
        return ctx.form_error_page(SETTINGS_PAGE, problem, conflict=False)
    except companies.ProfileChanged:
        # Nothing was saved; keep what was typed (and the old version, so a second
        # click cannot overwrite the other person's change either).
        return ctx.render(SETTINGS_PAGE, status=409, values=ctx.form, errors={}, conflict=True)
    ctx.flash("profile.saved", "success")
    if saved.code_sent_to and saved.mail_problem:
        ctx.flash(saved.mail_problem, "error", **saved.mail_params)
    elif saved.code_sent_to:
        ctx.flash("profile.email_code_sent", "info", email=saved.code_sent_to)
    return http.redirect("/settings/company")


@route(bp, "/settings/company/reactivate", methods=("POST",), auth=ADMIN)
def reactivate_company(ctx: SignedIn) -> Response:
    companies.reactivate(ctx.principal.company)
    ctx.flash("profile.reactivated", "success")
    return http.redirect(http.safe_next(ctx.form.get("next"), "/settings/company"))


@route(bp, "/settings/company/logo", methods=("GET", "POST"), auth=ADMIN)
def company_logo(ctx: SignedIn) -> Response:
    limit = logo_rules.MAX_UPLOAD_BYTES
    limit_mb = limit // (1024 * 1024)
    if ctx.method == "GET":
        return ctx.render(LOGO_PAGE, problem=None, limit_mb=limit_mb, limit_bytes=limit)
    upload = ctx.files.get("logo")
    try:
        logos.replace_logo(ctx.principal.company, upload.data if upload else b"")
    except AppError as problem:
        return ctx.render(
            LOGO_PAGE,
            status=problem.status,
            problem=ctx._(problem.key, **problem.params),
            limit_mb=limit_mb,
            limit_bytes=limit,
        )
    ctx.flash("profile.logo.saved", "success")
    return http.redirect("/settings/company#f-logo")


@route(bp, "/c/{slug}", auth=PUBLIC)
def public_company(ctx: Ctx, slug: str) -> Response:
    company = companies.public_company(slug)
    public = companies.public_profile(company, get_settings().base_url)
    return ctx.render("pages/public_company.html", company=company, public=public)


@bp.route("/logo/{company_id}/{name}", methods=http.GET_AND_HEAD)
def logo_file(company_id: str, name: str) -> Response:
    """Logo bytes from S3. No session and no DynamoDB read: the name is content-addressed."""
    return http.head_answer(bp.current_request, _logo_file(company_id, name))


def _logo_file(company_id: str, name: str) -> Response:
    try:
        found = logos.read_logo(company_id, name)
    except AWS_UNAVAILABLE:  # S3 failed or throttled: a short, translated 503, never a 500
        headers = bp.current_request.headers
        chosen = http.parse_cookies(headers.get("cookie")).get("lang")
        locale = negotiate(headers.get("accept-language"), chosen)
        return Response(
            body=translate(locale, "error.busy.body"),
            status_code=503,
            headers={
                "Content-Type": "text/plain; charset=utf-8",
                "Cache-Control": "no-store",
                "Retry-After": "5",
            },
        )
    if found is None:
        return Response(
            body="Not found",
            status_code=404,
            headers={"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"},
        )
    return Response(
        body=found.data,
        headers={"Content-Type": found.content_type, "Cache-Control": logos.CACHE_CONTROL},
    )

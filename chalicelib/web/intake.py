"""Intake pages: the embeddable form, its JSON API, the e-mailed confirmation, the settings page.

The form lives in other companies' websites (a cross-site iframe), where
SameSite=Lax cookies are never sent: its POST is CSRF-free and protected by a
signed, time-stamped form token instead (HMAC with the app secret over the
code and the moment the form was issued), a honeypot and rate limits.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, TypedDict

from chalice import Blueprint, Response
from markupsafe import escape

from chalicelib.config import get_settings
from chalicelib.db.accounts import Company
from chalicelib.domain.errors import AppError, ValidationFailed
from chalicelib.i18n import normalise
from chalicelib.lazy import lazy_module
from chalicelib.web import http
from chalicelib.web.context import ADMIN, PUBLIC, Ctx, SignedIn, route
from chalicelib.web.security import CSP

if TYPE_CHECKING:
    from chalicelib.services.intake import FormClosed

# Imported on first use (cold start): see chalicelib/lazy.py.
if TYPE_CHECKING:
    from chalicelib.services import intake, intake_codes, intake_confirmation, logos
else:
    intake = lazy_module("chalicelib.services.intake")
    intake_codes = lazy_module("chalicelib.services.intake_codes")
    intake_confirmation = lazy_module("chalicelib.services.intake_confirmation")
    logos = lazy_module("chalicelib.services.logos")

bp = Blueprint(__name__)

FORM_PAGE = "pages/intake_form.html"
SIGNING_PURPOSE = "intake-form"
DEFAULT_SIZE = (600, 1100)
MIN_SIZE = 300


def _form_problems() -> tuple[type[AppError], ...]:
    """Errors the form page shows above the form, keeping what was typed."""
    return (
        intake.AutomatedSubmission,
        intake.TooFast,
        intake.FormExpired,
        intake.RateLimited,
        intake.MailFailed,
        intake.ResendTooSoon,
        intake.NothingPending,
    )


# -- helpers -----------------------------------------------------------------


def form_token(code: str, issued_at: float | None = None) -> str:
    """Signed (code, issued-at): proves the form came from us and when."""
    return http.pack(
        [code, int(issued_at if issued_at is not None else time.time())], SIGNING_PURPOSE
    )


def _issued_at(code: str, token: str | None) -> float | None:
    data = http.unpack(token, SIGNING_PURPOSE)
    if not isinstance(data, list) or len(data) != 2 or data[0] != code:
        return None
    try:
        return float(data[1])
    except (TypeError, ValueError):
        return None


def _language(ctx: Ctx) -> str:
    """``?lang=`` lets a website pin the form's language; else Accept-Language decides."""
    chosen = normalise(ctx.query.get("lang"))
    if chosen:
        ctx.locale = chosen
    return f"?lang={chosen}" if chosen else ""


def _embeddable(response: Response, company: Company | None) -> Response:
    """Frame-able by the company's origins (or any site); security.py then skips X-Frame-Options."""
    response.headers["Content-Security-Policy"] = CSP.format(
        ancestors=intake.frame_ancestors(company)
    )
    return response


def _closed(ctx: Ctx, closed: FormClosed) -> Response:
    page = ctx.render(
        "pages/intake_closed.html",
        status=closed.status,
        company=closed.company,
        logo=logos.logo_url(closed.company) if closed.company else None,
    )
    return _embeddable(page, closed.company)


def _form_page(
    ctx: Ctx,
    company: Company,
    code: str,
    *,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    pending_email: str | None = None,
    token: str | None = None,
    lang: str = "",
) -> Response:
    page = ctx.render(
        FORM_PAGE,
        status=status,
        company=company,
        logo=logos.logo_url(company),
        code=code,
        action=f"/intake/{code}{lang}",
        values=values or {},
        errors=errors or {},
        problem=problem,
        pending_email=pending_email,
        form_token=token or form_token(code),
        honeypot=intake.HONEYPOT,
        min_seconds=intake.MIN_SECONDS_TO_SUBMIT,
    )
    return _embeddable(page, company)


class _Kept(TypedDict):
    """What a re-shown form keeps: the values typed, the form's token, its language."""

    values: dict[str, str]
    token: str
    lang: str


def _kept_token(code: str, sent: str | None) -> str:
    """Re-showing the form keeps its token, so the time to submit counts from the first load."""
    issued = _issued_at(code, sent)
    fresh_enough = (
        issued is not None
        and time.time() - issued < intake.FORM_TOKEN_MAX_AGE.total_seconds() - 600
    )
    return sent if fresh_enough and sent else form_token(code)


# -- the embeddable form -------------------------------------------------------------


@route(bp, "/intake/{code}", methods=("GET", "POST"), auth=PUBLIC, csrf=False)
def intake_form(ctx: Ctx, code: str) -> Response:
    lang = _language(ctx)
    try:
        company = intake.form_company(code)
    except intake.FormClosed as closed:
        return _closed(ctx, closed)
    if ctx.method == "GET":
        return _form_page(ctx, company, code, lang=lang)
    form = ctx.form
    sent_token = form.get("form_token")
    keep: _Kept = {"values": form, "token": _kept_token(code, sent_token), "lang": lang}
    try:
        if form.get("action") == "resend":
            done = intake.resend_link(
                company, form.get("customer_email", ""), locale=ctx.locale, ip=ctx.client_ip
            )
        else:
            done = intake.submit_request(
                company,
                form,
                locale=ctx.locale,
                ip=ctx.client_ip,
                issued_at=_issued_at(code, sent_token),
            )
    except ValidationFailed as problem:
        errors = {name: ctx._(key, **params) for name, (key, params) in problem.errors.items()}
        return _form_page(ctx, company, code, status=422, errors=errors, **keep)
    except intake.PendingExists as problem:
        message = ctx._(problem.key, **problem.params)
        return _form_page(
            ctx,
            company,
            code,
            status=409,
            problem=message,
            pending_email=str(problem.params["email"]),
            **keep,
        )
    except _form_problems() as problem:
        message = ctx._(problem.key, **problem.params)
        return _form_page(ctx, company, code, status=problem.status, problem=message, **keep)
    page = ctx.render(
        "pages/intake_sent.html",
        company=company,
        logo=logos.logo_url(company),
        email=done.email,
        hours=int(intake.PENDING_LIFETIME.total_seconds() // 3600),
        again=f"/intake/{code}{lang}",
        resent=form.get("action") == "resend",
    )
    return _embeddable(page, company)


# -- the JSON variant ------------------------------------------------------------------


def _json(status: int, payload: dict[str, Any], cors: dict[str, str]) -> Response:
    headers: dict[str, str | list[str]] = {
        "Content-Type": "application/json; charset=utf-8",
        "Vary": "Origin",
        **cors,
    }
    return Response(
        body=json.dumps(payload, ensure_ascii=False), status_code=status, headers=headers
    )


def _error(ctx: Ctx, problem: AppError, cors: dict[str, str]) -> Response:
    payload: dict[str, Any] = {
        "error": getattr(problem, "code", "error"),
        "message": ctx._(problem.key, **problem.params),
    }
    if isinstance(problem, ValidationFailed):
        payload["error"] = "invalid"
        payload["fields"] = {n: ctx._(k, **p) for n, (k, p) in problem.errors.items()}
    return _json(problem.status, payload, cors)


def _cors(company: Company | None, origin: str | None) -> dict[str, str]:
    if company is None or not intake.allowed_origin(company, origin):
        return {}
    return {"Access-Control-Allow-Origin": str(origin)}


def _schema(ctx: Ctx, company: Company) -> dict[str, Any]:
    fields: list[dict[str, Any]] = [
        {
            "name": name,
            "label": ctx._(f"intake.field.{name}"),
            "required": name in intake.REQUIRED_FIELDS,
            "type": "email" if name == "customer_email" else "text",
        }
        for name in intake.FIELDS
    ]
    for spec in company.custom_fields or []:
        item: dict[str, Any] = {
            "name": f"cf_{spec.field_id}",
            "label": spec.label,
            "required": bool(spec.required),
            "type": spec.kind,
        }
        if spec.kind == "choice":
            item["options"] = list(spec.options or [])
        fields.append(item)
    return {"company": company.name, "fields": fields, "max_body_bytes": intake.MAX_JSON_BYTES}


def _json_body(ctx: Ctx) -> dict[str, object]:
    """The request's JSON object, or a 400 AppError with a message a developer can act on."""
    content_type = ctx.request.headers.get("content-type", "")
    if not content_type.startswith("application/json"):
        raise _BadRequest("intake.api.not_json", "not_json")
    raw = ctx.request.raw_body or b""
    if len(raw) > intake.MAX_JSON_BYTES:
        raise _BadRequest("intake.api.too_large", "body_too_large", n=intake.MAX_JSON_BYTES // 1024)
    try:
        data = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, ValueError):
        raise _BadRequest("intake.api.bad_json", "bad_json") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, str | int | float) or v is None for v in data.values()
    ):
        raise _BadRequest("intake.api.not_object", "bad_json")
    return {str(k): ("" if v is None else str(v)) for k, v in data.items()}


class _BadRequest(AppError):
    status = 400

    def __init__(self, key: str, code: str, **params: object) -> None:
        super().__init__(key, **params)
        self.code = code


@route(bp, "/api/v1/intake/{code}", methods=("GET", "POST", "OPTIONS"), auth=PUBLIC, csrf=False)
def intake_api(ctx: Ctx, code: str) -> Response:
    _language(ctx)
    origin = ctx.request.headers.get("origin")
    try:
        company = intake.form_company(code)
    except intake.FormClosed as closed:
        return _error(ctx, closed, _cors(closed.company, origin))
    cors = _cors(company, origin)
    ctx.cors = dict(cors)  # a 503 from the route decorator must be readable by the embed too
    if ctx.method == "OPTIONS":
        # Preflight: only a configured origin gets the permission headers.
        if cors:
            cors.update(
                {
                    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                    "Access-Control-Allow-Headers": "Content-Type",
                    "Access-Control-Max-Age": "600",
                }
            )
        return Response(body="", status_code=204, headers={"Vary": "Origin", **cors})
    if ctx.method == "GET":
        return _json(200, _schema(ctx, company), cors)
    try:
        data = _json_body(ctx)
        if data.get("action") == "resend":
            done = intake.resend_link(
                company, str(data.get("customer_email", "")), locale=ctx.locale, ip=ctx.client_ip
            )
        else:
            done = intake.submit_request(
                company, data, locale=ctx.locale, ip=ctx.client_ip, browser=False
            )
    except AppError as problem:
        return _error(ctx, problem, cors)
    message = ctx._("intake.sent.lead", email=done.email, company=company.name)
    return _json(202, {"status": "pending_confirmation", "message": message}, cors)


# -- confirmation ------------------------------------------------------------------


@route(bp, "/intake/confirm/{token}", methods=("GET", "POST"), auth=PUBLIC, csrf=False)
def confirm(ctx: Ctx, token: str) -> Response:
    """GET shows the request and a button; POST (the token is the credential) confirms it."""
    try:
        if ctx.method == "GET":
            view = intake_confirmation.open_request(token)
            return ctx.render(
                "pages/intake_confirm.html",
                company=view.company,
                logo=logos.logo_url(view.company),
                request=view.request,
                confirmation=None,
                problem=None,
                action=f"/intake/confirm/{token}",
            )
        done = intake_confirmation.confirm_request(token)
    except (intake_confirmation.LinkInvalid, intake_confirmation.LinkExpired) as problem:
        return _confirm_problem(ctx, problem, None, None)
    except (
        intake_confirmation.IntakeQuotaReached,
        intake_confirmation.ConfirmBusy,
        intake.FormClosed,
    ) as problem:
        return _confirm_problem(ctx, problem, problem.company, token)
    return ctx.render(
        "pages/intake_confirm.html",
        company=done.company,
        logo=logos.logo_url(done.company),
        request=done.request,
        confirmation=done,
        problem=None,
        action=None,
    )


def _confirm_problem(
    ctx: Ctx, problem: AppError, company: Company | None, token: str | None
) -> Response:
    return ctx.render(
        "pages/intake_confirm.html",
        status=problem.status,
        company=company,
        logo=logos.logo_url(company) if company else None,
        request=None,
        confirmation=None,
        problem=ctx._(problem.key, **problem.params),
        # A full quota or a busy moment can be retried with the same link.
        action=f"/intake/confirm/{token}" if token and problem.status == 409 else None,
    )


# -- settings (admin) ------------------------------------------------------------------


def _snippet(ctx: Ctx, company: Company, width: int, height: int) -> str:
    """The HTML a website pastes (shown as text; settings_intake.js edits its size live)."""
    if not company.intake_code:
        return ""
    url = f"{get_settings().base_url}/intake/{company.intake_code}"
    title = escape(ctx._("intake.settings.iframe_title", company=company.name))
    return (
        f'<iframe src="{url}" width="{width}" height="{height}" title="{title}" '
        'style="border:0;max-width:100%" loading="lazy"></iframe>'
    )


def _size(raw: str | None, default: int) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) <= 4000 else default


@route(bp, "/settings/intake", methods=("GET", "POST"), auth=ADMIN)
def intake_settings(ctx: SignedIn) -> Response:
    company = ctx.principal.company
    width = _size(ctx.query.get("width"), DEFAULT_SIZE[0])
    height = _size(ctx.query.get("height"), DEFAULT_SIZE[1])
    page: dict[str, Any] = {
        "width": width,
        "height": height,
        "min_size": MIN_SIZE,
        "snippet": _snippet(ctx, company, width, height),
        "base_url": get_settings().base_url,
        "errors": {},
        "conflict": None,
        "values": {"origins": "\n".join(company.intake_origins or [])},
    }
    if ctx.method == "GET":
        return ctx.render("pages/settings_intake.html", **page)
    action = ctx.form.get("action")
    try:
        if action == "rotate":
            seen = ctx.form.get("version", "")
            intake_codes.generate_code(company, int(seen) if seen.isdigit() else None)
            ctx.flash("intake.settings.rotated", "success")
        else:
            intake_codes.save_origins(company, ctx.form)
            ctx.flash("intake.settings.origins_saved", "success")
    except ValidationFailed as problem:
        errors = {n: ctx._(k, **p) for n, (k, p) in problem.errors.items()}
        page.update(errors=errors, values=ctx.form)
        return ctx.render("pages/settings_intake.html", status=422, **page)
    except intake_codes.IntakeSettingsChanged as problem:
        page.update(conflict=ctx._(problem.key), values=ctx.form)
        return ctx.render("pages/settings_intake.html", status=409, **page)
    return http.redirect("/settings/intake")

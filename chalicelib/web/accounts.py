"""Sign-up, e-mail validation, login/logout, unlock links and password reset pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.domain.errors import AppError, TooManyRequests, ValidationFailed
from chalicelib.lazy import lazy_module
from chalicelib.services import sessions
from chalicelib.web import http
from chalicelib.web.context import PUBLIC, Ctx, SignedIn, route

# Imported on first use (cold start): see chalicelib/lazy.py.
if TYPE_CHECKING:
    from chalicelib.services import email_codes, partners, password_reset, signin
else:
    email_codes = lazy_module("chalicelib.services.email_codes")
    password_reset = lazy_module("chalicelib.services.password_reset")
    signin = lazy_module("chalicelib.services.signin")
    partners = lazy_module("chalicelib.services.partners")
signups = lazy_module("chalicelib.services.signup")  # the page handler is named signup

bp = Blueprint(__name__)


@route(bp, "/signup", methods=("GET", "POST"), auth=PUBLIC)
def signup(ctx: Ctx) -> Response:
    if ctx.principal is not None:
        return http.redirect("/")
    if ctx.method == "GET":
        return ctx.render("pages/signup.html", values=_invited(ctx, dict(ctx.query)), errors={})
    try:
        account = signups.sign_up(ctx.form, ctx.locale, ip=ctx.client_ip)
    except ValidationFailed as problem:
        return ctx.form_error_page("pages/signup.html", problem)
    except TooManyRequests as problem:  # the message above the form, everything typed kept
        ctx.flash(problem.key, "error", **problem.params)
        return ctx.render("pages/signup.html", status=429, values=ctx.form, errors={})
    token = sessions.start_session(account.user.user_id, account.company.company_id)
    ctx.sign_in(token, account.user.user_id, account.company.company_id)
    try:
        email_codes.send_email_code(
            account.company, account.company.email, ctx.locale, ip=ctx.client_ip
        )
        ctx.flash("signup.welcome", "success", email=account.company.email)
    except AppError as problem:
        ctx.flash(problem.key, "error", **problem.params)
    if ctx.form.get("invite"):
        # Invited by a partner: its proposal now waits for this company's acceptance.
        try:
            link = partners.join_by_invitation(ctx.form["invite"], account.company)
            ctx.flash("partners.joined", "success", partner=link.partner_name)
        except AppError as problem:
            ctx.flash(problem.key, "error")
    return http.redirect("/verify-email")


def _invited(ctx: Ctx, values: dict[str, str]) -> dict[str, str]:
    """A partner's invitation link pre-fills the company's name and e-mail."""
    if not values.get("invite"):
        return values
    try:
        return {**values, **partners.invitation_prefill(values["invite"])}
    except AppError as problem:
        ctx.flash(problem.key, "error")
        return {k: v for k, v in values.items() if k != "invite"}


@route(bp, "/verify-email", methods=("GET", "POST"))
def verify_email(ctx: SignedIn) -> Response:
    company = ctx.principal.company
    pending = company.pending_email or (None if company.email_validated else company.email)
    if ctx.method == "GET":
        return ctx.render("pages/verify_email.html", pending=pending, errors={}, values={})
    try:
        email_codes.verify_email_code(company, ctx.form.get("code", ""))
    except AppError as problem:
        errors = {"code": ctx._(problem.key, **problem.params)}
        return ctx.render(
            "pages/verify_email.html", status=400, pending=pending, errors=errors, values=ctx.form
        )
    ctx.flash("verify.done", "success", email=company.email)
    return http.redirect("/")


@route(bp, "/verify-email/resend", methods=("POST",))
def resend_code(ctx: SignedIn) -> Response:
    company = ctx.principal.company
    target = company.pending_email or company.email
    try:
        email_codes.send_email_code(company, target, ctx.locale, resend=True, ip=ctx.client_ip)
        ctx.flash("verify.sent", "success", email=target)
    except AppError as problem:
        ctx.flash(problem.key, "error", **problem.params)
    return http.redirect("/verify-email")


@route(bp, "/login", methods=("GET", "POST"), auth=PUBLIC)
def login(ctx: Ctx) -> Response:
    next_page = http.safe_next(ctx.form.get("next") or ctx.query.get("next"))
    if ctx.method == "GET":
        if ctx.principal is not None:
            return http.redirect(next_page)
        return ctx.render("pages/login.html", values={"next": next_page}, errors={}, problem=None)
    try:
        token, found = signin.log_in(
            ctx.form.get("email", ""), ctx.form.get("password", ""), ctx.client_ip
        )
    except AppError as problem:
        return ctx.render(
            "pages/login.html",
            status=problem.status,
            values={"email": ctx.form.get("email", ""), "next": next_page},
            errors={},
            problem=ctx._(problem.key, **problem.params),
        )
    # A new session id at every login (no fixation); the old one ends now.
    if ctx.session_token:
        signin.log_out(ctx.session_token)
    ctx.sign_in(token, found.user_id, found.company_id)
    return http.redirect(next_page)


@route(bp, "/login/unlock/{token}", methods=("GET", "POST"), auth=PUBLIC)
def unlock(ctx: Ctx, token: str) -> Response:
    """The e-mailed unlock link: a button (a GET changes nothing, mail scanners open links)."""
    signin.unlock_token(token)
    if ctx.method == "GET":
        return ctx.render("pages/unlock.html", token=token)
    signin.unlock_account(token)
    ctx.flash("unlock.done", "success")
    return http.redirect("/login")


@route(bp, "/logout", methods=("POST",), auth=PUBLIC)
def logout(ctx: Ctx) -> Response:
    if ctx.session_token:
        signin.log_out(ctx.session_token)
    ctx.sign_out()
    ctx.flash("logout.done", "success")
    return http.redirect("/login")


@route(bp, "/password/forgot", methods=("GET", "POST"), auth=PUBLIC)
def forgot_password(ctx: Ctx) -> Response:
    if ctx.method == "GET":
        return ctx.render("pages/forgot.html", values={}, errors={}, sent=False)
    try:
        password_reset.request_password_reset(
            ctx.form.get("email", ""), ctx.locale, ip=ctx.client_ip
        )
    except TooManyRequests as problem:
        ctx.flash(problem.key, "error", **problem.params)
        return ctx.render("pages/forgot.html", status=429, values=ctx.form, errors={}, sent=False)
    # The same answer whether or not the account exists.
    return ctx.render("pages/forgot.html", values={}, errors={}, sent=True)


@route(bp, "/password/reset/{token}", methods=("GET", "POST"), auth=PUBLIC)
def reset_password(ctx: Ctx, token: str) -> Response:
    password_reset.reset_token(token)
    if ctx.method == "GET":
        return ctx.render("pages/reset.html", values={}, errors={}, token=token)
    try:
        password_reset.reset_password(token, ctx.form)
    except ValidationFailed as problem:
        return ctx.form_error_page("pages/reset.html", problem, token=token)
    ctx.sign_out()
    ctx.flash("reset.done", "success")
    return http.redirect("/login")

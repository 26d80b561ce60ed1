"""Users and roles: the users page, invitations, role changes, removal, accepting an invite."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Response

from chalicelib.domain.errors import AppError, Conflict, TooManyRequests, ValidationFailed
from chalicelib.lazy import lazy_module
from chalicelib.services import sessions
from chalicelib.web import http
from chalicelib.web.context import ADMIN, PUBLIC, Ctx, SignedIn, route

# Imported on first use (cold start): see chalicelib/lazy.py.
if TYPE_CHECKING:
    from chalicelib.services import signin, users
else:
    signin = lazy_module("chalicelib.services.signin")
    users = lazy_module("chalicelib.services.users")

bp = Blueprint(__name__)

USERS_PAGE = "/settings/users"


def _users_page(ctx: SignedIn, status: int = 200, **form: object) -> Response:
    team = users.list_team(ctx.principal.company_id)
    form.setdefault("values", {"role": "staff"})
    form.setdefault("errors", {})
    return ctx.render(
        "pages/settings_users.html",
        status=status,
        team=team,
        is_expired=users.is_expired,
        lifetime_days=users.INVITE_LIFETIME.days,
        **form,
    )


@route(bp, USERS_PAGE, auth=ADMIN)
def users_page(ctx: SignedIn) -> Response:
    return _users_page(ctx)


@route(bp, USERS_PAGE + "/invite", methods=("POST",), auth=ADMIN)
def invite(ctx: SignedIn) -> Response:
    try:
        invitation = users.invite(ctx.principal, ctx.form, ctx.locale, ip=ctx.client_ip)
    except ValidationFailed as problem:
        errors = {name: ctx._(key, **params) for name, (key, params) in problem.errors.items()}
        return _users_page(ctx, status=422, values=ctx.form, errors=errors)
    except TooManyRequests as problem:  # the message above the form, everything typed kept
        ctx.flash(problem.key, "error", **problem.params)
        return _users_page(ctx, status=429, values=ctx.form, errors={})
    except AppError as problem:
        ctx.flash(problem.key, "error", **problem.params)
        return http.redirect(USERS_PAGE)
    ctx.flash("users.invited", "success", email=invitation.email)
    return http.redirect(USERS_PAGE)


@route(bp, USERS_PAGE + "/invitations/{invite_id}/revoke", methods=("POST",), auth=ADMIN)
def revoke_invitation(ctx: SignedIn, invite_id: str) -> Response:
    users.revoke_invitation(ctx.principal.company_id, invite_id)
    ctx.flash("users.revoked", "success")
    return http.redirect(USERS_PAGE)


@route(bp, USERS_PAGE + "/{user_id}/role", methods=("POST",), auth=ADMIN)
def set_role(ctx: SignedIn, user_id: str) -> Response:
    try:
        changed = users.set_role(ctx.principal, user_id, ctx.form.get("role", ""))
    except Conflict as problem:  # the last admin, or a stale page
        ctx.flash(problem.key, "error", **problem.params)
        return http.redirect(USERS_PAGE)
    ctx.flash(f"users.role_set.{changed.role}", "success", name=changed.name)
    if changed.user_id == ctx.principal.user_id and not changed.is_admin:
        return http.redirect("/")  # no longer allowed on the users page
    return http.redirect(USERS_PAGE)


@route(bp, USERS_PAGE + "/{user_id}/remove", methods=("POST",), auth=ADMIN)
def remove_user(ctx: SignedIn, user_id: str) -> Response:
    try:
        removed = users.remove_user(ctx.principal, user_id)
    except Conflict as problem:
        ctx.flash(problem.key, "error", **problem.params)
        return http.redirect(USERS_PAGE)
    if removed.user_id == ctx.principal.user_id:
        ctx.sign_out()  # the session is already void: the User item is gone
        ctx.flash("users.removed_self", "success")
        return http.redirect("/login")
    ctx.flash("users.removed", "success", name=removed.name)
    return http.redirect(USERS_PAGE)


@route(bp, "/invite/{token}", methods=("GET", "POST"), auth=PUBLIC)
def accept_invitation(ctx: Ctx, token: str) -> Response:
    pending = users.invitation_for(token)
    page: dict[str, Any] = {"invite": pending.link, "company": pending.company, "token": token}
    if ctx.method == "GET":
        values = {"name": pending.link.name or ""}
        return ctx.render("pages/invite_accept.html", values=values, errors={}, **page)
    try:
        user = users.accept_invitation(token, ctx.form, ctx.locale)
    except ValidationFailed as problem:
        return ctx.form_error_page("pages/invite_accept.html", problem, **page)
    except Conflict as problem:  # the address got an account meanwhile
        return ctx.render(
            "pages/invite_accept.html",
            status=problem.status,
            values=ctx.form,
            errors={},
            problem=ctx._(problem.key),
            **page,
        )
    # Whoever was signed in on this browser is signed out first; the new
    # session cookie below replaces theirs.
    if ctx.session_token:
        signin.log_out(ctx.session_token)
    session_token = sessions.start_session(user.user_id, user.company_id)
    ctx.sign_in(session_token, user.user_id, user.company_id)
    ctx.flash("invite.welcome", "success", company=pending.company.name)
    return http.redirect("/")

"""Partner pages: directory search, proposals, the partnership page, invitations, shared orders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from chalice import Blueprint, Response

from chalicelib.domain.errors import AppError, TooManyRequests, ValidationFailed
from chalicelib.lazy import lazy_module
from chalicelib.web import http
from chalicelib.web import orders as order_pages
from chalicelib.web.context import ADMIN, Ctx, SignedIn, route

# Imported on first use (cold start): see chalicelib/lazy.py.
if TYPE_CHECKING:
    from chalicelib.services import directory, orders, partners
else:
    directory = lazy_module("chalicelib.services.directory")
    orders = lazy_module("chalicelib.services.orders")
    partners = lazy_module("chalicelib.services.partners")

bp = Blueprint(__name__)

PARTNERS = "/partners"


def _overview_page(ctx: SignedIn, status: int = 200, **form: object) -> Response:
    found = partners.overview(ctx.principal.company_id)
    form.setdefault("values", {"relationship": "approve", "quote_required": "1"})
    form.setdefault("errors", {})
    return ctx.render(
        "pages/partners.html",
        status=status,
        overview=found,
        relation_of=partners.relation_of,
        is_expired=partners.is_expired,
        relations=tuple(partners.RELATIONS),
        lifetime_days=partners.INVITE_LIFETIME.days,
        **form,
    )


@route(bp, PARTNERS)
def partner_list(ctx: SignedIn) -> Response:
    return _overview_page(ctx)


@route(bp, PARTNERS + "/directory")
def partner_directory(ctx: SignedIn) -> Response:
    query = directory.DirectoryQuery.from_query(ctx.query)
    page = directory.search(query, ctx.query.get("cursor") or None)
    active = query.active()
    return ctx.render(
        "pages/directory.html",
        query=query,
        page=page,
        logo_path=directory.logo_path,
        next_url=(PARTNERS + "/directory?" + urlencode({**active, "cursor": page.next_cursor}))
        if page.next_cursor
        else None,
        first_url=(PARTNERS + "/directory?" + urlencode(active))
        if ctx.query.get("cursor")
        else None,
    )


@route(bp, PARTNERS + "/propose", methods=("GET", "POST"))
def propose(ctx: SignedIn) -> Response:
    target_id = (ctx.form.get("to") if ctx.method == "POST" else ctx.query.get("to")) or ""
    target = partners.proposal_target(ctx.principal.company_id, target_id)
    page: dict[str, Any] = {"target": target, "relations": tuple(partners.RELATIONS)}
    if ctx.method == "GET":
        values = {"relationship": "approve", "quote_required": "1"}
        return ctx.render("pages/partners_propose.html", values=values, errors={}, **page)
    try:
        partners.propose(ctx.principal, target_id, ctx.form)
    except ValidationFailed as problem:
        return ctx.form_error_page("pages/partners_propose.html", problem, **page)
    except partners.AlreadyPartners as problem:
        ctx.flash(problem.key, "error", **problem.params)
        return http.redirect(f"{PARTNERS}/{target_id}")
    except partners.PartnershipChanged as problem:
        ctx.flash(problem.key, "error")
        return http.redirect(f"{PARTNERS}/{target_id}")
    ctx.flash("partners.proposed", "success", partner=target.company.name)
    return http.redirect(f"{PARTNERS}/{target_id}")


@route(bp, PARTNERS + "/invite", methods=("POST",), auth=ADMIN)
def invite(ctx: SignedIn) -> Response:
    try:
        sent = partners.invite(ctx.principal, ctx.form, ctx.locale, ip=ctx.client_ip)
    except ValidationFailed as problem:
        errors = {name: ctx._(key, **params) for name, (key, params) in problem.errors.items()}
        return _overview_page(ctx, status=422, values=ctx.form, errors=errors)
    except TooManyRequests as problem:  # the message above the form, everything typed kept
        ctx.flash(problem.key, "error", **problem.params)
        return _overview_page(ctx, status=429, values=ctx.form, errors={})
    except AppError as problem:
        if problem.status == 404:
            raise
        ctx.flash(problem.key, "error", **problem.params)
        return http.redirect(PARTNERS)
    ctx.flash("partners.invited", "success", email=sent.email)
    return http.redirect(PARTNERS + "#invitations")


@route(bp, PARTNERS + "/invitations/{partner_invite_id}/revoke", methods=("POST",), auth=ADMIN)
def revoke_invitation(ctx: SignedIn, partner_invite_id: str) -> Response:
    partners.revoke_invitation(ctx.principal, partner_invite_id)
    ctx.flash("partners.invite_revoked", "success")
    return http.redirect(PARTNERS + "#invitations")


def _detail_page(ctx: SignedIn, partner_id: str, status: int = 200, **form: object) -> Response:
    link = partners.own_side(ctx.principal.company_id, partner_id)
    form.setdefault(
        "values",
        {
            "relationship": partners.relation_of(link),
            "quote_required": "1" if link.quote_required else "",
        },
    )
    form.setdefault("errors", {})
    return ctx.render(
        "pages/partners_detail.html",
        status=status,
        link=link,
        relation=partners.relation_of(link),
        history=list(reversed(link.history or [])),
        relations=tuple(partners.RELATIONS),
        awaiting_us=link.awaiting == ctx.principal.company_id,
        **form,
    )


@route(bp, PARTNERS + "/{partner_id}")
def partner_detail(ctx: SignedIn, partner_id: str) -> Response:
    return _detail_page(ctx, partner_id)


def _after_change(ctx: Ctx, partner_id: str, problem: AppError) -> Response:
    if problem.status == 404:
        raise problem
    ctx.flash(problem.key, "error", **problem.params)
    return http.redirect(f"{PARTNERS}/{partner_id}")


@route(bp, PARTNERS + "/{partner_id}/accept", methods=("POST",), auth=ADMIN)
def accept(ctx: SignedIn, partner_id: str) -> Response:
    try:
        link = partners.accept(ctx.principal, partner_id, ctx.form.get("rev"))
    except AppError as problem:
        return _after_change(ctx, partner_id, problem)
    ctx.flash("partners.accepted", "success", partner=link.partner_name)
    return http.redirect(f"{PARTNERS}/{partner_id}")


@route(bp, PARTNERS + "/{partner_id}/change", methods=("POST",), auth=ADMIN)
def change(ctx: SignedIn, partner_id: str) -> Response:
    try:
        link = partners.change(ctx.principal, partner_id, ctx.form)
    except ValidationFailed as problem:
        errors = {name: ctx._(key, **params) for name, (key, params) in problem.errors.items()}
        return _detail_page(ctx, partner_id, status=422, values=ctx.form, errors=errors)
    except AppError as problem:
        return _after_change(ctx, partner_id, problem)
    if link is None:
        ctx.flash("partners.unchanged", "info")
    elif link.state == partners.SUSPENDED:
        ctx.flash("partners.changed_suspended", "success", partner=link.partner_name)
    else:
        ctx.flash("partners.changed_proposed", "success", partner=link.partner_name)
    return http.redirect(f"{PARTNERS}/{partner_id}")


@route(bp, PARTNERS + "/{partner_id}/delete", methods=("POST",), auth=ADMIN)
def delete(ctx: SignedIn, partner_id: str) -> Response:
    try:
        link = partners.delete(ctx.principal, partner_id)
    except AppError as problem:
        return _after_change(ctx, partner_id, problem)
    ctx.flash("partners.deleted", "success", partner=link.partner_name)
    return http.redirect(f"{PARTNERS}/{partner_id}")


# -- shared orders --------------------------------------------------------------


def _order_problem(ctx: Ctx, order_id: str, problem: AppError) -> Response:
    if problem.status == 404:
        raise problem
    if isinstance(problem, orders.EditConflict):
        ctx.flash(
            "order.edit_conflict",
            "error",
            who=problem.who,
            when=ctx.when(problem.when),
        )
    elif isinstance(problem, ValidationFailed):
        _name, (key, params) = next(iter(problem.errors.items()))
        ctx.flash(key, "error", **params)
    else:
        ctx.flash(problem.key, "error", **problem.params)
    return http.redirect(f"/orders/{order_id}#partner")


@route(bp, "/orders/{order_id}/executor", methods=("POST",))
def order_executor(ctx: SignedIn, order_id: str) -> Response:
    version = ctx.form.get("version")
    try:
        if ctx.form.get("action") == "withdraw":
            partners.withdraw_executor(ctx.principal, order_id, version)
            ctx.flash("partners.order_withdrawn", "success")
        else:
            order = partners.assign_executor(
                ctx.principal, order_id, ctx.form.get("partner_id", ""), version
            )
            ctx.flash("partners.order_shared", "success", partner=order.executor_name or "")
    except AppError as problem:
        return _order_problem(ctx, order_id, problem)
    return http.redirect(f"/orders/{order_id}#partner")


@route(bp, "/orders/{order_id}/quote", methods=("POST",))
def order_quote(ctx: SignedIn, order_id: str) -> Response:
    try:
        partners.send_quote(ctx.principal, order_id, ctx.form, ctx.locale)
    except ValidationFailed as problem:
        # The order page again, the message beside the field and the quote as typed.
        errors = {name: ctx._(key, **params) for name, (key, params) in problem.errors.items()}
        return order_pages.order_detail(ctx, order_id, status=422, errors=errors)
    except AppError as problem:
        return _order_problem(ctx, order_id, problem)
    ctx.flash("partners.quote_sent", "success")
    return http.redirect(f"/orders/{order_id}#partner")


@route(bp, "/orders/{order_id}/quote/decision", methods=("POST",))
def order_quote_decision(ctx: SignedIn, order_id: str) -> Response:
    try:
        order = partners.decide_quote(ctx.principal, order_id, ctx.form)
    except AppError as problem:
        return _order_problem(ctx, order_id, problem)
    ctx.flash(f"partners.quote_{order.quote_state}", "success")
    return http.redirect(f"/orders/{order_id}#partner")

"""Customer pages (private link, chat, rating), the embeddable follow form, staff link actions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.domain.errors import AppError, TooManyRequests, ValidationFailed
from chalicelib.i18n import normalise
from chalicelib.lazy import lazy_module
from chalicelib.web import http
from chalicelib.web.context import ADMIN, PUBLIC, Ctx, SignedIn, route
from chalicelib.web.security import CSP

if TYPE_CHECKING:
    from chalicelib.services.orders import Actor

# Imported on first use (cold start): see chalicelib/lazy.py.
if TYPE_CHECKING:
    from chalicelib.services import companies, customer_page, customers, follow_form, orders
else:
    companies = lazy_module("chalicelib.services.companies")
    customer_page = lazy_module("chalicelib.services.customer_page")
    customers = lazy_module("chalicelib.services.customers")
    follow_form = lazy_module("chalicelib.services.follow_form")
    orders = lazy_module("chalicelib.services.orders")

bp = Blueprint(__name__)

CUSTOMER_PAGE = "pages/customer_order.html"
UNSUBSCRIBE_PAGE = "pages/unsubscribe.html"
FOLLOW_PAGE = "pages/follow.html"
SNIPPET_PAGE = "pages/settings_follow.html"
# The follow form is made to sit in an iframe on any company website.
FOLLOW_HEADERS = {"Content-Security-Policy": CSP.format(ancestors="*")}
PRIVATE_HEADERS = {"X-Robots-Tag": "noindex, nofollow"}


# -- the customer's private page ---------------------------------------------


def _customer_page(ctx: Ctx, token: str, status: int = 200, **extra: object) -> Response:
    view = customer_page.customer_page(
        token, ctx.query.get("history_before") or None, ctx.query.get("chat_before") or None
    )
    context = {"page": view, "token": token, "errors": {}, "values": {}, "problem": None}
    context["zone"] = view.zone
    context.update(extra)
    response = ctx.render(CUSTOMER_PAGE, status=status, **context)
    response.headers.update(PRIVATE_HEADERS)
    return response


@route(bp, "/o/{token}", auth=PUBLIC)
def customer_order(ctx: Ctx, token: str) -> Response:
    return _customer_page(ctx, token)


@route(bp, "/o/{token}/messages", methods=("POST",), auth=PUBLIC)
def customer_message(ctx: Ctx, token: str) -> Response:
    try:
        customer_page.customer_message(token, ctx.form.get("text", ""), ctx.client_ip)
    except ValidationFailed as problem:
        errors = {n: ctx._(k, **p) for n, (k, p) in problem.errors.items()}
        return _customer_page(ctx, token, 422, errors=errors, values=ctx.form)
    except TooManyRequests as problem:
        # What they typed stays in the box; the message says when to send it.
        errors = {"text": ctx._(problem.key, **problem.params)}
        return _customer_page(ctx, token, 429, errors=errors, values=ctx.form)
    ctx.flash("customer.message_sent", "success")
    return http.redirect(f"/o/{token}#chat")


@route(bp, "/o/{token}/rating", methods=("POST",), auth=PUBLIC)
def customer_rating(ctx: Ctx, token: str) -> Response:
    try:
        customer_page.rate_order(token, ctx.form)
    except ValidationFailed as problem:
        errors = {n: ctx._(k, **p) for n, (k, p) in problem.errors.items()}
        return _customer_page(ctx, token, 422, errors=errors, values=ctx.form)
    except (customer_page.RatingNotYet, customer_page.RatingLocked) as problem:
        return _customer_page(ctx, token, 409, values=ctx.form, problem=ctx._(problem.key))
    ctx.flash("customer.rating.thanks", "success")
    return http.redirect(f"/o/{token}#rating")


@route(bp, "/o/{token}/mail", methods=("POST",), auth=PUBLIC)
def customer_mail_choice(ctx: Ctx, token: str) -> Response:
    """The private page's switch: e-mails about the order back on (or off)."""
    if ctx.form.get("mail") == "on":
        customer_page.resubscribe(token)
        ctx.flash("customer.mail.resumed", "success")
    else:
        customer_page.stop_mail_from_page(token)
    return http.redirect(f"/o/{token}#mail")


# -- one-click unsubscribe (RFC 8058) ------------------------------------------


@route(bp, "/unsubscribe/{token}", methods=("GET", "POST"), auth=PUBLIC, csrf=False)
def unsubscribe(ctx: Ctx, token: str) -> Response:
    """GET asks (mail scanners follow links); POST, from a mail program or the button, acts."""
    if ctx.method == "POST":
        link = customers.unsubscribe(token)
        done = True
    else:
        link = customers.unsubscribe_link(token)
        done = False
    response = ctx.render(UNSUBSCRIBE_PAGE, token=token, address=link.address, done=done)
    response.headers.update(PRIVATE_HEADERS)
    return response


# -- the embeddable "follow your order" form -----------------------------------


def _follow(ctx: Ctx, slug: str) -> Response:
    company = companies.public_company(slug)
    # The snippet names the company's language: a third-party iframe gets no cookies.
    ctx.locale = normalise(ctx.query.get("lang")) or ctx.locale
    look = follow_form.follow_look(company, ctx.locale)
    state: dict[str, object] = {"errors": {}, "values": {}, "sent": False, "problem": None}
    status = 200
    if ctx.method == "POST":
        try:
            follow_form.request_link(company, ctx.form, ctx.client_ip, ctx.locale)
            state["sent"] = True
        except ValidationFailed as problem:
            status = 422
            state["errors"] = {n: ctx._(k, **p) for n, (k, p) in problem.errors.items()}
            state["values"] = ctx.form
        except TooManyRequests as problem:
            status = 429
            state["problem"] = ctx._(problem.key, **problem.params)
            state["values"] = ctx.form
    else:
        state["values"] = {"number": ctx.query.get("number", "")[:12]}
    response = ctx.render(FOLLOW_PAGE, status=status, company=company, look=look, **state)
    response.headers.update(FOLLOW_HEADERS)
    return response


# Not CSRF-checked on purpose: the form lives in a third-party iframe, where a
# SameSite cookie never arrives, and it carries no authority (it can only
# e-mail an order's own customer). Rate limits and identical answers guard it.
@route(bp, "/follow/{slug}", methods=("GET", "POST"), auth=PUBLIC, csrf=False)
def follow(ctx: Ctx, slug: str) -> Response:
    return _follow(ctx, slug)


def _snippet_page(ctx: SignedIn, status: int = 200, **context: object) -> Response:
    company = ctx.principal.company
    look = follow_form.follow_look(company, company.locale)
    default_button, default_intro = follow_form.default_texts(company.locale)
    return ctx.render(
        SNIPPET_PAGE,
        status=status,
        snippet=follow_form.snippet(company),
        look=look,
        preview_src=f"/follow/{company.slug}?lang={company.locale}",
        accents=follow_form.ACCENTS,
        default_button=default_button,
        default_intro=default_intro,
        **context,
    )


@route(bp, "/settings/follow-snippet", methods=("GET", "POST"), auth=ADMIN)
def follow_settings(ctx: SignedIn) -> Response:
    company = ctx.principal.company
    if ctx.method == "POST":
        try:
            follow_form.save_follow_settings(company, ctx.form)
        except ValidationFailed as problem:
            errors = {n: ctx._(k, **p) for n, (k, p) in problem.errors.items()}
            return _snippet_page(ctx, 422, values=ctx.form, errors=errors)
        ctx.flash("follow.saved", "success")
        return http.redirect("/settings/follow-snippet")
    return _snippet_page(ctx, values=follow_form.follow_values(company), errors={})


# -- staff: the customer's link on the order page --------------------------------


def _actor(ctx: SignedIn) -> Actor:
    actor: Actor = orders.Actor(  # the lazy module is untyped; the class is not
        name=ctx.principal.user.name,
        user_id=ctx.principal.user_id,
        company_id=ctx.principal.company_id,
    )
    return actor


@route(bp, "/orders/{order_id}/access/resend", methods=("POST",))
def resend_access(ctx: SignedIn, order_id: str) -> Response:
    try:
        sent = customers.resend_link(ctx.principal.company, order_id)
    except AppError as problem:
        if problem.status == 404:
            raise
        ctx.flash(problem.key, "error", **problem.params)
    else:
        ctx.flash(
            "customer.link_sent" if sent else "customer.link_mail_failed",
            "success" if sent else "error",
        )
    return http.redirect(f"/orders/{order_id}#customer")


@route(bp, "/orders/{order_id}/access/revoke", methods=("POST",))
def revoke_access(ctx: SignedIn, order_id: str) -> Response:
    try:
        revoked = customers.revoke_link(ctx.principal.company, order_id, _actor(ctx))
    except AppError as problem:
        if problem.status == 404:
            raise
        ctx.flash(problem.key, "error", **problem.params)
    else:
        ctx.flash(
            "customer.link_revoked" if revoked else "customer.no_link",
            "success" if revoked else "info",
        )
    return http.redirect(f"/orders/{order_id}#customer")

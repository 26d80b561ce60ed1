"""Order pages: list and search, register, view (history + chat), edit, workflow, print."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from chalice import Blueprint, Response

from chalicelib.db.base import plain_map
from chalicelib.domain import workflow
from chalicelib.domain.aging import aging_colour
from chalicelib.domain.errors import AppError, ValidationFailed
from chalicelib.i18n import formatting
from chalicelib.lazy import lazy_module
from chalicelib.services import sessions
from chalicelib.web import http
from chalicelib.web.context import ADMIN, SignedIn, route

if TYPE_CHECKING:
    from datetime import date

    from chalicelib.db.accounts import Company
    from chalicelib.db.orders import Order
    from chalicelib.services.orders import Actor

# Imported on first use (cold start): see chalicelib/lazy.py.
if TYPE_CHECKING:
    from chalicelib.services import (
        companies,
        custom_fields,
        customers,
        notifications,
        orders,
        partners,
    )
else:
    companies = lazy_module("chalicelib.services.companies")
    custom_fields = lazy_module("chalicelib.services.custom_fields")
    customers = lazy_module("chalicelib.services.customers")
    notifications = lazy_module("chalicelib.services.notifications")
    orders = lazy_module("chalicelib.services.orders")
    partners = lazy_module("chalicelib.services.partners")

bp = Blueprint(__name__)


def _actor(ctx: SignedIn) -> Actor:
    actor: Actor = orders.Actor(  # the lazy module is untyped; the class is not
        name=ctx.principal.user.name,
        user_id=ctx.principal.user_id,
        company_id=ctx.principal.company_id,
    )
    return actor


def _writable(ctx: SignedIn) -> None:
    companies.require_active(ctx.principal.company)


@route(bp, "/orders")
def order_list(ctx: SignedIn) -> Response:
    filters = orders.OrderFilters.from_query(ctx.query)
    page = orders.list_orders(ctx.principal.company_id, filters, ctx.query.get("cursor") or None)
    today = sessions.now().date()
    colours = {
        e.order_id: aging_colour(
            _day(e.created), _day(e.service_date) if e.service_date else None, today
        )
        for e in page.entries
        if workflow.is_open(e.status)
    }
    active = filters.active()
    return ctx.render(
        "pages/orders_list.html",
        page=page,
        filters=filters,
        active=active,
        colours=colours,
        next_url=("/orders?" + urlencode({**active, "cursor": page.next_cursor}))
        if page.next_cursor
        else None,
        first_url=("/orders?" + urlencode(active)) if ctx.query.get("cursor") else None,
        statuses=workflow.STATUSES,
    )


def _day(iso: str) -> date:
    from datetime import date

    return date.fromisoformat(iso[:10])


@route(bp, "/orders/new", methods=("GET", "POST"))
def new_order(ctx: SignedIn) -> Response:
    company = ctx.principal.company
    limit = orders.monthly_limit(company)
    if ctx.method == "GET":
        team, usage = orders.team_and_usage(company.company_id)
        return ctx.render(
            "pages/order_form.html",
            order=None,
            values={"priority": "normal"},
            errors={},
            team=team,
            usage=usage,
            limit=limit,
            conflict=None,
        )
    team = orders.team(company.company_id)
    try:
        _writable(ctx)
        order = orders.register_order(company, _actor(ctx), ctx.form, team, locale=ctx.locale)
    except ValidationFailed as problem:
        return ctx.form_error_page(
            "pages/order_form.html",
            problem,
            order=None,
            team=team,
            usage=None,
            limit=limit,
            conflict=None,
        )
    except orders.QuotaExceeded as problem:
        return ctx.render(
            "pages/order_form.html",
            status=409,
            order=None,
            values=ctx.form,
            errors={},
            team=team,
            usage=limit,
            limit=limit,
            conflict=ctx._(problem.key, **problem.params),
        )
    ctx.flash("order.registered", "success", number=order.number)
    return http.redirect(f"/orders/{order.order_id}")


@route(bp, "/orders/{order_id}")
def order_detail(
    ctx: SignedIn, order_id: str, *, status: int = 200, errors: dict[str, str] | None = None
) -> Response:
    """The order page; forms posted elsewhere re-show it with their errors (and what was typed)."""
    # The order's view, and sharing with a partner: what this company may do (an
    # executor fewer actions).
    view, panel = partners.order_page(
        ctx.principal.company,
        order_id,
        events_before=ctx.query.get("history_before") or None,
        messages_before=ctx.query.get("chat_before") or None,
    )
    return ctx.render(
        "pages/order_detail.html",
        status=status,
        view=view,
        order=view.shown,  # only the fields this company may see (domain/visibility.py)
        actions=panel.actions(workflow.available_actions(view.order.status)),
        partner_panel=panel,
        customer=customers.staff_panel(ctx.principal.company, view),
        colour=_colour(view.order),
        errors=errors or {},
        values=ctx.form if errors else {},
    )


def _colour(order: Order) -> str | None:
    if not workflow.is_open(order.status):
        return None
    service_day = _day(order.service_date) if order.service_date else None
    return aging_colour(order.created_at.date(), service_day, sessions.now().date())


@route(bp, "/orders/{order_id}/edit", methods=("GET", "POST"))
def edit_order(ctx: SignedIn, order_id: str) -> Response:
    company = ctx.principal.company
    order, team = orders.order_and_team(company.company_id, order_id)
    orders.require_owner(order, company.company_id)  # a partner executes, never edits
    if ctx.method == "GET":
        return ctx.render(
            "pages/order_form.html",
            order=order,
            values=_form_values(order, company, ctx.locale),
            errors={},
            team=team,
            usage=None,
            limit=None,
            conflict=None,
        )
    try:
        _writable(ctx)
        orders.edit_order(company, order_id, _actor(ctx), ctx.form, team, ctx.locale)
    except ValidationFailed as problem:
        return ctx.form_error_page(
            "pages/order_form.html",
            problem,
            order=order,
            team=team,
            usage=None,
            limit=None,
            conflict=None,
        )
    except orders.EditConflict as problem:
        # Keep everything the person typed; tell them who changed it and when.
        return ctx.render(
            "pages/order_form.html",
            status=409,
            order=order,
            values=ctx.form,
            errors={},
            team=team,
            usage=None,
            limit=None,
            conflict=ctx._(
                "order.edit_conflict",
                who=problem.who,
                when=ctx.when(problem.when),
            ),
        )
    ctx.flash("order.saved", "success")
    return http.redirect(f"/orders/{order_id}")


def _form_values(order: Order, company: Company, locale: str) -> dict[str, str]:
    """The edit form filled in: amounts written the way the reader types them back."""
    values = {name: getattr(order, name) or "" for name in orders.EDITABLE_FIELDS}
    values["estimated_value"] = formatting.format_amount(order.estimated_value, locale)
    numbers = {spec.field_id for spec in company.custom_fields or [] if spec.kind == "number"}
    values.update(
        {
            f"cf_{k}": formatting.format_amount(v, locale) if k in numbers else v
            for k, v in order.custom_values.items()
        }
    )
    values["version"] = str(order.version)
    return values


@route(bp, "/orders/{order_id}/status", methods=("POST",))
def change_status(ctx: SignedIn, order_id: str) -> Response:
    action = ctx.form.get("action", "")
    try:
        _writable(ctx)
        version = int(ctx.form["version"]) if ctx.form.get("version", "").isdigit() else None
        order, _event = orders.change_status(
            ctx.principal.company_id,
            order_id,
            _actor(ctx),
            action,
            note=ctx.form.get("note", ""),
            version=version,
        )
        ctx.flash(f"order.moved.{order.status}", "success", number=order.number)
    except ValidationFailed as problem:
        ctx.flash(next(iter(problem.errors.values()))[0], "error")
    except orders.EditConflict as problem:
        ctx.flash(
            "order.edit_conflict",
            "error",
            who=problem.who,
            when=ctx.when(problem.when),
        )
    except workflow.InvalidTransition as problem:
        ctx.flash(
            problem.key,
            "error",
            action=ctx._(f"action.{action}") if action in workflow.ACTIONS else action,
            status=ctx._(f"status.{problem.params.get('status')}"),
        )
    except partners.PartnerActionRefused as problem:
        ctx.flash(problem.key, "error", **problem.params)
    return http.redirect(f"/orders/{order_id}")


@route(bp, "/orders/{order_id}/messages", methods=("POST",))
def post_message(ctx: SignedIn, order_id: str) -> Response:
    try:
        _writable(ctx)
        orders.post_message(
            ctx.principal.company_id, order_id, _actor(ctx), ctx.form.get("text", "")
        )
    except ValidationFailed as problem:
        errors = {n: ctx._(k, **p) for n, (k, p) in problem.errors.items()}
        return order_detail(ctx, order_id, status=422, errors=errors)
    except partners.PartnerActionRefused as problem:
        ctx.flash(problem.key, "error", **problem.params)
        return http.redirect(f"/orders/{order_id}#chat")
    order = orders.load_order(ctx.principal.company_id, order_id)
    watchers = {order.technician_id} - {ctx.principal.user_id, None}
    # The technician is the owner's: a partner's message does not reach the owner's users here.
    if watchers and order.company_id == ctx.principal.company_id:
        notifications.notify(
            ctx.principal.company_id,
            watchers,
            "chat_message",
            order_id=order_id,
            order_number=int(order.number),
            params={"author": ctx.principal.user.name},
        )
    return http.redirect(f"/orders/{order_id}#chat")


@route(bp, "/orders/{order_id}/print")
def print_order(ctx: SignedIn, order_id: str) -> Response:
    view = orders.order_view(ctx.principal.company_id, order_id)
    return ctx.render("pages/order_print.html", view=view, order=view.shown)


# -- notifications ---------------------------------------------------------


@route(bp, "/notifications")
def notification_list(ctx: SignedIn) -> Response:
    notes, next_sk = notifications.latest(
        ctx.principal.company_id, ctx.principal.user_id, ctx.query.get("cursor") or None
    )
    read_at = ctx.principal.user.notes_read_at
    texts = [
        (n, ctx._(f"notes.kind.{n.kind}", number=n.order_number or "", **plain_map(n.params)))
        for n in notes
    ]
    return ctx.render(
        "pages/notifications.html",
        notes=texts,
        unread={n.sk for n in notes if not n.read and (read_at is None or n.at > read_at)},
        # The cursor is a sort key ("NOTE#<time>#<id>"): '#' and '+' must be encoded.
        next_url=("/notifications?" + urlencode({"cursor": next_sk})) if next_sk else None,
    )


@route(bp, "/notifications/read", methods=("POST",))
def notification_read(ctx: SignedIn) -> Response:
    note = ctx.form.get("note", "")
    if note == "all":
        notifications.mark_all_read(ctx.principal.company_id, ctx.principal.user_id)
    elif note.startswith("NOTE#"):
        notifications.mark_read(ctx.principal.company_id, ctx.principal.user_id, note)
    target = ctx.form.get("next", "")
    return http.redirect(http.safe_next(target, "/notifications"))


# -- custom fields ------------------------------------------------------------


@route(bp, "/settings/fields", methods=("GET", "POST"), auth=ADMIN)
def field_settings(ctx: SignedIn) -> Response:
    company = ctx.principal.company
    if ctx.method == "POST":
        try:
            custom_fields.add_field(company, ctx.form)
            ctx.flash("fields.added", "success")
            return http.redirect("/settings/fields")
        except ValidationFailed as problem:
            return ctx.form_error_page(
                "pages/settings_fields.html", problem, kinds=custom_fields.KINDS
            )
    return ctx.render("pages/settings_fields.html", values={}, errors={}, kinds=custom_fields.KINDS)


@route(bp, "/settings/fields/{field_id}", methods=("POST",), auth=ADMIN)
def field_change(ctx: SignedIn, field_id: str) -> Response:
    company = ctx.principal.company
    action = ctx.form.get("action")
    try:
        if action == "remove":
            custom_fields.remove_field(company, field_id)
        else:
            custom_fields.set_required(company, field_id, action == "require")
        ctx.flash("fields.saved", "success")
    except AppError as problem:
        if problem.status == 404:
            raise
        ctx.flash(problem.key, "error")
    return http.redirect("/settings/fields")

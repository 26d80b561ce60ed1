"""Per-request context and the ``route`` decorator every page goes through.

The decorator does the cross-cutting work once: locale, session, role checks,
CSRF, flash messages, error pages and response cookies. Views stay a few lines.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Concatenate, Final, Literal, ParamSpec, overload

from botocore.exceptions import BotoCoreError, ClientError
from chalice import Blueprint, Response
from chalice.app import Request
from pynamodb.exceptions import PynamoDBException

from chalicelib import logs
from chalicelib.config import get_settings
from chalicelib.domain.errors import AppError, Forbidden, ValidationFailed
from chalicelib.domain.tokens import new_token
from chalicelib.i18n import formatting, negotiate, translate
from chalicelib.lazy import lazy_module
from chalicelib.services import activity, limiter, sessions
from chalicelib.services.sessions import Principal
from chalicelib.templating import render
from chalicelib.web import http

if TYPE_CHECKING:
    from chalicelib.web.multipart import Upload

# Imported on first use (cold start): only uploads need it. See chalicelib/lazy.py.
if TYPE_CHECKING:
    from chalicelib.web import multipart
else:
    multipart = lazy_module("chalicelib.web.multipart")

log = logging.getLogger("checkos.web")

# Final: each name is its literal type, so ``route`` can tell public views from signed-in ones.
PUBLIC: Final = "public"
STAFF: Final = "staff"
ADMIN: Final = "admin"
FORM_TYPES = ["application/x-www-form-urlencoded", "application/json", "multipart/form-data"]
SESSION_COOKIE = "sid"
CSRF_HEADER = "x-csrf-token"  # scripts may send the token here instead of the form
ANON_COOKIE = "aid"
FLASH_COOKIE = "flash"
LANG_COOKIE = "lang"
# The signed last-seen stamp in the cookie is refreshed at most this often.
SESSION_REFRESH_SECONDS = 60


class Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


@dataclass
class Ctx:
    request: Request
    cookies: dict[str, str]
    locale: str
    principal: Principal | None = None
    session_token: str | None = None
    out_cookies: list[str] = field(default_factory=list)
    flashes_out: list[tuple[str, str]] = field(default_factory=list)
    _form: dict[str, str] | None = None
    _files: dict[str, Upload] | None = None
    _anon_id: str | None = None
    # CORS headers a JSON API granted this caller; its busy (503) answer sends them too.
    cors: dict[str, str] = field(default_factory=dict)

    # -- request data -------------------------------------------------
    @property
    def method(self) -> str:
        """The request's method; a HEAD is served as the GET it asks about (body dropped)."""
        method = self.request.method.upper()
        return "GET" if method == "HEAD" else method

    @property
    def path(self) -> str:
        # API Gateway puts the stage-free path at the top of the event.
        event = self.request.to_original_event()
        return event.get("path") or self.request.context.get("path") or "/"

    @property
    def query(self) -> dict[str, str]:
        return dict(self.request.query_params or {})

    @property
    def form(self) -> dict[str, str]:
        if self._form is None:
            content_type = self.request.headers.get("content-type", "")
            if content_type.startswith("application/x-www-form-urlencoded"):
                self._form = http.parse_form(self.request.raw_body)
            elif content_type.startswith("multipart/form-data"):
                body = self.request.raw_body
                self._form, self._files = multipart.parse_multipart(body, content_type)
            else:
                self._form = {}
        return self._form

    @property
    def files(self) -> dict[str, Upload]:
        """File parts of a multipart form, by field name (text fields are in ``form``)."""
        _ = self.form  # parses the body once; a multipart body fills _files
        return self._files or {}

    @property
    def client_ip(self) -> str:
        identity = self.request.context.get("identity") or {}
        return identity.get("sourceIp") or "unknown"

    # -- translation and rendering -----------------------------------
    def _(self, key: str, **params: object) -> str:
        return translate(self.locale, key, **params)

    @property
    def zone(self) -> str | None:
        """The signed-in company's IANA zone: every time a page shows is in it."""
        return self.principal.company.time_zone if self.principal else None

    def when(self, moment: datetime) -> str:
        """A moment for a sentence: the locale's date and time in the company's zone."""
        return formatting.format_datetime(moment, self.locale, self.zone)

    def flash(self, key: str, level: str = "info", **params: object) -> None:
        self.flashes_out.append((level, self._(key, **params)))

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        flashes = http.unpack(self.cookies.get(FLASH_COOKIE), "flash") or []
        if flashes:
            self.out_cookies.append(http.expired_cookie(FLASH_COOKIE))
        context.setdefault("zone", self.zone)
        body = render(
            template,
            self.locale,
            ctx=self,
            principal=self.principal,
            csrf_token=self.csrf_token,
            flashes=flashes + [list(f) for f in self.flashes_out],
            settings=get_settings(),
            **context,
        )
        self.flashes_out.clear()
        return Response(
            body=body, status_code=status, headers={"Content-Type": "text/html; charset=utf-8"}
        )

    def form_error_page(self, template: str, error: ValidationFailed, **context: Any) -> Response:
        """Re-show a form with per-field messages and everything the user typed."""
        errors = {name: self._(key, **params) for name, (key, params) in error.errors.items()}
        return self.render(template, status=422, errors=errors, values=self.form, **context)

    # -- CSRF ----------------------------------------------------------
    @property
    def csrf_seed(self) -> str:
        if self.session_token:
            return "s:" + self.session_token
        if self._anon_id is None:
            existing = self.cookies.get(ANON_COOKIE)
            if existing and len(existing) >= 32:
                self._anon_id = existing
            else:
                self._anon_id = new_token()
                self.out_cookies.append(http.cookie_header(ANON_COOKIE, self._anon_id))
        return "a:" + self._anon_id

    @property
    def csrf_token(self) -> str:
        return http.sign(self.csrf_seed, "csrf")

    def check_csrf(self) -> None:
        sent = self.form.get("csrf_token") or self.request.headers.get(CSRF_HEADER)
        if not sent or not http.verify(self.csrf_seed, sent, "csrf"):
            raise Forbidden("error.csrf")

    # -- sessions ------------------------------------------------------
    def sign_in(self, token: str, user_id: str, company_id: str) -> None:
        # Signing in is what keeps a company active (sessions last hours, not
        # days), so the day is stamped here and pages never pay for it.
        activity.record_sign_in(token, user_id, company_id)
        self.session_token = token
        self.out_cookies.append(
            http.cookie_header(SESSION_COOKIE, _session_cookie(token, user_id, company_id))
        )

    def sign_out(self) -> None:
        self.session_token = None
        self.principal = None
        self.out_cookies.append(http.expired_cookie(SESSION_COOKIE))


@dataclass
class SignedIn(Ctx):
    """The context a staff or admin view receives: its ``principal`` is never None.

    Only the ``route`` decorator builds one, after the session proved who is
    asking; a view annotated ``ctx: SignedIn`` needs no check of its own.
    """

    principal: Principal

    def __post_init__(self) -> None:
        # A real check that holds under ``python -O`` too.
        if not isinstance(self.principal, Principal):
            raise TypeError("a signed-in context needs the principal its session proved")

    def sign_out(self) -> None:
        """End the session (its cookie expires); the rest of the request still
        answers for the person who made it, so ``principal`` stays set."""
        self.session_token = None
        self.out_cookies.append(http.expired_cookie(SESSION_COOKIE))


def _session_cookie(token: str, user_id: str, company_id: str) -> str:
    return http.pack([token, user_id, company_id, int(time.time())], "session")


def _load_principal(ctx: Ctx) -> None:
    data = http.unpack(ctx.cookies.get(SESSION_COOKIE), "session")
    if not isinstance(data, list) or len(data) != 4:
        return
    token, user_id, company_id, last_seen = data
    idle = time.time() - float(last_seen)
    if idle >= get_settings().session_idle_minutes * 60:
        ctx.out_cookies.append(http.expired_cookie(SESSION_COOKIE))
        return
    principal = sessions.authenticate(token, user_id, company_id)
    if principal is None:
        ctx.out_cookies.append(http.expired_cookie(SESSION_COOKIE))
        return
    ctx.principal, ctx.session_token = principal, token
    logs.bind_company(company_id)
    if idle > SESSION_REFRESH_SECONDS:
        ctx.out_cookies.append(
            http.cookie_header(SESSION_COOKIE, _session_cookie(token, user_id, company_id))
        )


def build_context(request: Request, load_session: bool = True) -> Ctx:
    cookies = http.parse_cookies(request.headers.get("cookie"))
    locale = negotiate(request.headers.get("accept-language"), cookies.get(LANG_COOKIE))
    ctx = Ctx(request=request, cookies=cookies, locale=locale)
    if load_session and SESSION_COOKIE in cookies:
        _load_principal(ctx)
        if ctx.principal and LANG_COOKIE not in cookies and ctx.principal.user.locale:
            ctx.locale = ctx.principal.user.locale
    return ctx


def _unchecked_context(request: Request) -> Ctx:
    """A context when the session store did not answer: no principal, same CSRF seed.

    The session token comes from the signed cookie without a lookup, so the
    busy page's resend form carries a CSRF token the next, normal request accepts.
    """
    cookies = http.parse_cookies(request.headers.get("cookie"))
    locale = negotiate(request.headers.get("accept-language"), cookies.get(LANG_COOKIE))
    ctx = Ctx(request=request, cookies=cookies, locale=locale)
    data = http.unpack(cookies.get(SESSION_COOKIE), "session")
    if isinstance(data, list) and len(data) == 4:
        ctx.session_token = str(data[0])
    return ctx


def error_page(ctx: Ctx, status: int, message: str | None = None) -> Response:
    code = status if status in (400, 403, 404, 500) else 500 if status >= 500 else 400
    return ctx.render(
        "pages/error.html",
        status=status,
        code=code,
        title=ctx._(f"error.{code}.title"),
        message=message or ctx._(f"error.{code}.body"),
    )


# An AWS service throttled, failed or did not answer (after botocore's own retries):
# the request did not complete, and trying again in a moment is what helps.
AWS_UNAVAILABLE = (ClientError, BotoCoreError, PynamoDBException)


def busy_page(ctx: Ctx) -> Response:
    """503 with a translated message; a posted form comes back ready to send again."""
    if ctx.path.startswith("/api/"):
        body = json.dumps({"status": "unavailable", "message": ctx._("error.busy.body")})
        headers: dict[str, str | list[str]] = {
            "Content-Type": "application/json",
            "Retry-After": "5",
            **ctx.cors,
        }
        return Response(body=body, status_code=503, headers=headers)
    kept: dict[str, str] = {}
    upload = False
    if ctx.method == "POST":
        try:
            upload = bool(ctx.files)
            kept = {name: value for name, value in ctx.form.items() if name != "csrf_token"}
        except Exception:  # an unreadable body: nothing to give back
            kept = {}
    # Passwords are never echoed into a page; the person types them again.
    secret = {name for name in kept if "password" in name}
    response = ctx.render(
        "pages/busy.html",
        status=503,
        action=ctx.path,
        kept={name: value for name, value in kept.items() if name not in secret},
        resend=bool(kept) and not upload,
        upload=upload,
        without_password=bool(secret),
    )
    response.headers["Retry-After"] = "5"
    return response


def finish(ctx: Ctx, response: Response) -> Response:
    if ctx.flashes_out:
        ctx.out_cookies.append(
            http.cookie_header(FLASH_COOKIE, http.pack(ctx.flashes_out, "flash"))
        )
    if ctx.out_cookies:
        existing = response.headers.get("Set-Cookie")
        cookies = [existing] if isinstance(existing, str) else list(existing or [])
        response.headers["Set-Cookie"] = cookies + ctx.out_cookies
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Content-Language", ctx.locale)
    return response


ViewFunc = Callable[..., Response]
_Params = ParamSpec("_Params")
# A view takes its context first, then the route's path parameters by name.
PublicView = Callable[Concatenate[Ctx, _Params], Response]
SignedInView = Callable[Concatenate[SignedIn, _Params], Response]


@overload
def route(
    bp: Blueprint,
    path: str,
    methods: tuple[str, ...] = ...,
    *,
    auth: Literal["public"],
    csrf: bool = ...,
    content_types: list[str] | None = ...,
    session: bool = ...,
) -> Callable[[PublicView[_Params]], PublicView[_Params]]: ...


@overload
def route(
    bp: Blueprint,
    path: str,
    methods: tuple[str, ...] = ...,
    *,
    auth: Literal["staff", "admin"] = ...,
    csrf: bool = ...,
    content_types: list[str] | None = ...,
    session: bool = ...,
) -> Callable[[SignedInView[_Params]], SignedInView[_Params]]: ...


def route(
    bp: Blueprint,
    path: str,
    methods: tuple[str, ...] = ("GET",),
    *,
    auth: str = STAFF,
    csrf: bool = True,
    content_types: list[str] | None = None,
    session: bool = True,
) -> Callable[[ViewFunc], ViewFunc]:
    """Register ``view(ctx, **path_params)`` on ``bp`` with the shared request handling.

    A public view gets a ``Ctx``; a staff or admin view gets a ``SignedIn``,
    whose principal is never None (mypy holds a public route to ``Ctx``).
    ``session=False`` (public pages only) never reads the session: the page costs
    no DynamoDB request and is the same for every visitor, so it can be cached.
    """
    if not session and auth != PUBLIC:
        raise ValueError("only public routes can skip the session")

    def decorate(view: ViewFunc) -> ViewFunc:
        @functools.wraps(view)
        def handler(**params: str) -> Response:
            started = time.perf_counter()
            try:
                ctx = build_context(bp.current_request, load_session=session)
            except AWS_UNAVAILABLE:  # the session could not be read
                log.exception("aws unavailable", extra={"path": bp.current_request.path})
                ctx = _unchecked_context(bp.current_request)
                return http.head_answer(bp.current_request, finish(ctx, busy_page(ctx)))
            limiter.set_request_ip(ctx.client_ip)  # e-mails sent for this request count per IP
            try:
                ctx = _admit(ctx, auth, csrf)
                response = view(ctx, **params)
            except Redirect as jump:
                response = http.redirect(jump.location)
            except ValidationFailed as problem:
                response = error_page(ctx, 400, ctx._(problem.key))
            except AppError as problem:
                response = error_page(ctx, problem.status, ctx._(problem.key, **problem.params))
            except AWS_UNAVAILABLE:
                log.exception("aws unavailable", extra={"path": ctx.path})
                response = busy_page(ctx)
            except Exception:
                log.exception("unhandled error", extra={"path": ctx.path})
                response = error_page(ctx, 500)
            log.info(
                "request",
                extra={
                    "path": ctx.path,
                    "status": response.status_code,
                    "company": ctx.principal.company_id if ctx.principal else None,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            return http.head_answer(bp.current_request, finish(ctx, response))

        # Marks read by the route-walking suites (access matrix, CSRF, tenant isolation);
        # a function object takes any attribute, its declared type does not know them.
        handler.checkos_auth = auth  # type: ignore[attr-defined]
        # Read by the CSRF suite, which fails on any CSRF-free route it was not told about.
        handler.checkos_csrf = csrf  # type: ignore[attr-defined]
        served = [*methods, "HEAD"] if "GET" in methods and "HEAD" not in methods else methods
        bp.route(path, methods=list(served), content_types=content_types or FORM_TYPES)(handler)
        return view

    return decorate


def _admit(ctx: Ctx, auth: str, csrf: bool) -> Ctx:
    """The route's checks before its view: signed in, admin where asked, CSRF on writes.

    Returns the context the view gets: a ``SignedIn`` for a staff or admin route.
    A module-level function (not inside ``route``'s closure) so that it runs,
    and can be mutated, on every request rather than once at import.
    """
    if auth != PUBLIC:
        ctx = _signed_in(ctx)
        if auth == ADMIN and not ctx.principal.is_admin:
            raise Forbidden("error.admin_only")
    if ctx.method != "GET" and csrf:  # HEAD reads as GET (Ctx.method); OPTIONS routes skip CSRF
        ctx.check_csrf()
    return ctx


def _signed_in(ctx: Ctx) -> SignedIn:
    """The context as a ``SignedIn``, whose principal is never None; nobody: refused."""
    if ctx.principal is None:
        raise _signed_out_refusal(ctx)
    # The same request state, shared lists and all: cookies, flashes and CORS
    # headers the view adds reach the response through the new context.
    return SignedIn(**{spec.name: getattr(ctx, spec.name) for spec in fields(ctx)})


def _signed_out_refusal(ctx: Ctx) -> Exception:
    """Nobody signed in: a page read goes to sign-in and back, a write is refused."""
    if ctx.method == "GET":
        return Redirect("/login?next=" + _quote(ctx.path))
    return Forbidden("error.signed_out")


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")

"""The path prefix of every URL the site makes: API Gateway's stage, a base path, or none.

Called at its own address (``https://{id}.execute-api.{region}.amazonaws.com/api/``)
the API answers under its stage, while the event's ``path`` (what routes see) has no
stage in it; behind a custom domain the base path mapping is stripped the same way.
Routes and services keep working with stage-free paths (``/orders/new``); what goes
back to the browser (links, form actions, assets, redirects) is prefixed here, once:
``url(path)`` in Python, ``{{ root }}`` and ``|url`` in templates.

The prefix is decided per request (``prefix_for``) and held in a context variable for
the request's duration; outside a request (e-mails, jobs) it is empty, and e-mails
link with the absolute ``BASE_URL`` anyway.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import urlsplit

from markupsafe import Markup, escape

# API Gateway's own address for a REST API (regional or edge), as Host or domainName.
EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.[a-z0-9-]+\.amazonaws\.com(:\d+)?$")
_STAGE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")

_prefix: ContextVar[str] = ContextVar("checkos_url_prefix", default="")


def prefix_for(host: str | None, stage: str | None, base_url: str) -> str:
    """``/{stage}`` on the execute-api address, else the path of the public base URL.

    A custom domain maps the API at its base path (usually none): ``BASE_URL``
    (``https://orders.example.com`` or ``https://example.com/app``) says which.
    """
    host = (host or "").strip().lower()
    if EXECUTE_API_HOST.match(host) and stage and _STAGE.match(stage):
        return f"/{stage}"
    return urlsplit(base_url).path.rstrip("/")


def current() -> str:
    """The prefix of the request being served ('' outside a request)."""
    return _prefix.get()


@contextmanager
def serving(prefix: str) -> Iterator[None]:
    """Make ``prefix`` the one ``url`` adds while a request is served."""
    token = _prefix.set(prefix)
    try:
        yield
    finally:
        _prefix.reset(token)


def url(target: str) -> str:
    """A site path (``/orders/1``) under the prefix; anything else is returned as it is.

    Absolute URLs (``https://…``), protocol-relative ones (``//host``), query-only
    (``?page=2``) and fragment (``#top``) references are left alone: they either leave
    the site on purpose or resolve against the current (already prefixed) page.
    """
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//"):
        return target
    return current() + target


class _Root:
    """``{{ root }}`` in templates: the current prefix, read when the page is rendered.

    A global (not a render variable) so that imported macros see it too.
    """

    def __str__(self) -> str:
        return current()

    def __html__(self) -> Markup:
        return escape(current())


ROOT = _Root()

"""Jinja2 environment for pages and e-mails, with the catalogue as ``_``.

Dates, times and amounts are shown through the ``date``, ``time``, ``datetime``,
``number`` and ``amount`` filters (chalicelib/i18n/formatting.py), which read the
reader's ``locale`` and the company's ``zone`` from the render context.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup, escape

from chalicelib import urls
from chalicelib.i18n import LOCALE_NAMES, LOCALES, formatting, translate

_ROOT = Path(__file__).resolve().parents[1]
# In the source tree templates/ sits beside chalicelib/; the Lambda bundle
# carries a copy inside chalicelib/ (infra/package.py puts it there).
_SEARCH = [p for p in (_ROOT / "templates", _ROOT / "chalicelib" / "templates") if p.is_dir()]


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader([str(p) for p in _SEARCH]),
        autoescape=select_autoescape(("html", "xml"), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    from chalicelib.assets import static_url

    env.globals.update(LOCALES=LOCALES, LOCALE_NAMES=LOCALE_NAMES, static_url=static_url)
    # Every site path in a page goes out under the request's prefix (chalicelib/urls.py):
    # "{{ root }}/orders" for written paths, "{{ path|url }}" for computed ones.
    env.globals["root"] = urls.ROOT
    env.filters["url"] = urls.url
    env.filters["linkify"] = linkify
    env.filters["datetime_attr"] = datetime_attr
    env.filters["address_breaks"] = address_breaks
    env.filters["date"] = _date
    env.filters["time"] = _time
    env.filters["datetime"] = _datetime
    env.filters["number"] = _number
    env.filters["amount"] = _amount
    env.globals["shown_field"] = shown_field
    env.globals["default_zone"] = lambda locale: formatting.clean_zone(None, locale)
    return env


@pass_context
def shown_field(context: Context, spec: Any, value: str | None) -> str:
    """A company-defined field's stored value as the reader writes it (numbers, dates)."""
    if not value:
        return ""
    kind = getattr(spec, "kind", "text")
    if kind == "number":
        return formatting.format_amount(value, _where(context)[0])
    if kind == "date":
        return formatting.format_date(value, *_where(context))
    return value


def _where(context: Context) -> tuple[str, str | None]:
    return context.get("locale") or "en", context.get("zone")


@pass_context
def _date(context: Context, value: Any) -> str:
    return formatting.format_date(value, *_where(context))


@pass_context
def _time(context: Context, value: Any) -> str:
    return formatting.format_time(value, *_where(context))


@pass_context
def _datetime(context: Context, value: Any) -> str:
    return formatting.format_datetime(value, *_where(context))


@pass_context
def _number(context: Context, value: Any) -> str:
    return formatting.format_number(value, _where(context)[0])


@pass_context
def _amount(context: Context, value: Any) -> str:
    return formatting.format_amount(value, _where(context)[0])


def address_breaks(address: str | None) -> Markup:
    """An e-mail address that may wrap after its ``@`` and before its dots, never mid-word."""
    if not address:
        return Markup("")
    local, at, domain = str(address).rpartition("@")
    if not at:
        return escape(address)
    pieces = str(escape(domain)).split(".")
    return Markup(f"{escape(local)}@<wbr>" + "<wbr>.".join(pieces))  # noqa: S704 - escaped


def datetime_attr(moment: datetime) -> str:
    """A valid ``<time datetime>``: UTC to the second (HTML allows at most 3 fraction digits)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_URL = re.compile(r"https?://[^\s<>\"']+")


def linkify(text: str) -> Markup:
    """Escape everything, then make http(s) links clickable."""
    out: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?)")
        out.append(str(escape(text[position : match.start()])))
        safe = str(escape(url))
        out.append(f'<a href="{safe}" rel="noopener nofollow">{safe}</a>')
        position = match.start() + len(url)
    out.append(str(escape(text[position:])))
    return Markup("".join(out))  # noqa: S704 - every piece above is escaped


def render(template: str, locale: str, zone: str | None = None, **context: Any) -> str:
    """Render in ``locale``; times shown in ``zone`` (the company's IANA zone; UTC if None)."""

    def _(key: str, count: object = None, **params: object) -> str:
        return translate(locale, key, count=count, **params)

    shown_in = zone or formatting.DEFAULT_ZONE
    return environment().get_template(template).render(_=_, locale=locale, zone=shown_in, **context)

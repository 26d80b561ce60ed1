"""Dates, times, numbers and amounts as people read and type them (Babel/CLDR), in a zone.

One helper for the whole app: templates use it through the ``date``, ``time``,
``datetime``, ``number`` and ``amount`` filters, services through these
functions. Stored times stay UTC; only what a person reads is converted, to the
company's IANA zone. Babel is imported on first use so a cold start that renders
nothing localised never pays for it.

Labelling rule: every time of day shown to a person carries its UTC offset,
"14:03 (GMT-3)". The reader may be a customer, a partner company elsewhere or
someone travelling; a bare "14:03" is ambiguous for all of them, and a short
offset is the one label that reads the same in the three languages.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from babel import Locale

DEFAULT_ZONE = "UTC"
# Sign-up's guess when the browser sends no zone: the most populous zone of the
# language's first markets (Brazil is one country mostly on São Paulo time; for
# Spanish, Mexico City is the largest Spanish-speaking city and market of Latin
# America). English has no such market yet: UTC, labelled, is never silently wrong.
ZONE_BY_LOCALE = {"pt-BR": "America/Sao_Paulo", "es": "America/Mexico_City", "en": DEFAULT_ZONE}
# Largest amount accepted in a money field, and its decimals.
AMOUNT_MAX = Decimal("1000000000")
AMOUNT_PLACES = 2


class AmountUnclear(ValueError):
    """Typed text that is not one amount in the reader's locale (the caller shows a message)."""


@lru_cache(maxsize=8)
def babel_locale(locale: str) -> Locale:
    from babel import Locale

    return Locale.parse((locale or "en").replace("-", "_"))


@lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    from zoneinfo import available_timezones  # imported on use: a cold start never pays

    return frozenset(available_timezones())


def is_zone(name: str | None) -> bool:
    return bool(name) and name in zone_names()


def clean_zone(name: str | None, locale: str | None = None) -> str:
    """A valid IANA name: the given one, else the locale's market zone, else UTC."""
    if name and is_zone(name):
        return name
    return ZONE_BY_LOCALE.get(locale or "", DEFAULT_ZONE)


@lru_cache(maxsize=64)
def _zone(name: str | None) -> ZoneInfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def local(moment: datetime, zone: str | None) -> datetime:
    """The wall-clock time in ``zone`` (a naive moment is taken as UTC, as stored)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(_zone(zone))


def offset_label(moment: datetime) -> str:
    """ "GMT-3", "GMT+5:30", "GMT" for an aware moment (see the labelling rule above)."""
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    if minutes == 0:
        return "GMT"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"GMT{sign}{hours}" + (f":{rest:02d}" if rest else "")


def _as_date(value: date | datetime | str, zone: str | None) -> date:
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if len(value) > 10 else date.fromisoformat(value)
    if isinstance(value, datetime):
        return local(value, zone).date()
    return value


def format_date(value: date | datetime | str | None, locale: str, zone: str | None = None) -> str:
    """ "29 mar 2026", "29 de mar. de 2026", "Mar 29, 2026": a date that cannot be misread."""
    if value is None or value == "":
        return ""
    from babel.dates import format_date as babel_date

    return babel_date(_as_date(value, zone), "medium", locale=babel_locale(locale))


def format_time(value: datetime | time | str | None, locale: str, zone: str | None = None) -> str:
    """ "14:03 (GMT-3)" for a moment; a wall-clock time (a service time) stays unlabelled."""
    if value is None or value == "":
        return ""
    from babel.dates import format_time as babel_time

    if isinstance(value, str):
        value = datetime.fromisoformat(value) if len(value) > 8 else time.fromisoformat(value)
    if isinstance(value, time):
        return babel_time(value, "short", locale=babel_locale(locale))
    moment = local(value, zone)
    shown = babel_time(moment.replace(tzinfo=None), "short", locale=babel_locale(locale))
    return f"{shown} ({offset_label(moment)})"


def format_datetime(value: datetime | str | None, locale: str, zone: str | None = None) -> str:
    """ "29 mar 2026, 9:03 (GMT-3)": the locale's own way of joining a date and a time."""
    if value is None or value == "":
        return ""
    from babel.dates import format_date as babel_date
    from babel.dates import format_time as babel_time

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    moment = local(value, zone)
    where = babel_locale(locale)
    day = babel_date(moment.date(), "medium", locale=where)
    clock = babel_time(moment.replace(tzinfo=None), "short", locale=where)
    joined = str(where.datetime_formats.get("medium", "{1} {0}"))
    return joined.replace("{1}", day).replace("{0}", clock) + f" ({offset_label(moment)})"


def format_number(value: int | float | Decimal | str | None, locale: str) -> str:
    if value is None or value == "":
        return ""
    from babel.numbers import format_decimal

    return format_decimal(Decimal(str(value)), locale=babel_locale(locale))


def format_amount(value: Decimal | str | float | None, locale: str) -> str:
    """An amount with the locale's marks and two decimals: "1.500,00", "1,500.00".

    Companies have no currency setting, so no symbol is guessed.
    """
    if value is None or value == "":
        return ""
    from babel.numbers import format_decimal

    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return format_decimal(number, format="#,##0.00", locale=babel_locale(locale))


_SPACED_GROUPS = re.compile(r"^\d{1,3}(?: \d{3})+(?:[.,]\d+)?$")


def parse_amount(text: str, locale: str) -> Decimal:
    """The amount a person typed, read with their locale's marks, or ``AmountUnclear``.

    "1.500,00", "1500,00" and "1.500" are 1500 in es/pt-BR; "1,500.00" in en.
    Anything the locale does not read exactly one way (marks in the wrong
    places, the other locale's decimal mark, more than two decimals: "1.500" in
    English) is refused rather than guessed.
    """
    from babel.numbers import NumberFormatError, parse_decimal

    raw = " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())
    if _SPACED_GROUPS.match(raw):
        raw = raw.replace(" ", "")  # "1 500,00": spaces as thousands separators
    if not raw or " " in raw:
        raise AmountUnclear(text)
    try:
        value = parse_decimal(raw, locale=babel_locale(locale), strict=True)
    except (NumberFormatError, InvalidOperation) as problem:
        raise AmountUnclear(text) from problem
    exponent = value.as_tuple().exponent
    if not value.is_finite() or not isinstance(exponent, int) or -exponent > AMOUNT_PLACES:
        raise AmountUnclear(text)
    if value < 0 or value > AMOUNT_MAX:
        raise AmountUnclear(text)
    return value.quantize(Decimal(1).scaleb(-AMOUNT_PLACES))


def amount_example(locale: str) -> str:
    """How this locale writes one thousand five hundred, for the error message."""
    return format_amount(Decimal("1500"), locale)


def plural_category(locale: str, count: Any) -> str:
    """CLDR plural category of ``count`` in ``locale`` ("one", "many", "other"…)."""
    try:
        number = Decimal(str(count))
    except InvalidOperation:
        return "other"
    rule = babel_locale(locale).plural_form
    return str(rule(int(number) if number == number.to_integral_value() else number))


def plural_tags(locale: str) -> frozenset[str]:
    return frozenset(babel_locale(locale).plural_form.tags) | {"other"}

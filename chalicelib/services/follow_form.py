"""The embeddable "follow your order" form: its look and snippet, and the link it e-mails again."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from markupsafe import escape
from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action

from chalicelib.config import get_settings
from chalicelib.db import keys
from chalicelib.db.accounts import Company
from chalicelib.db.base import query_page
from chalicelib.db.orders import Order, OrderEntry
from chalicelib.domain.validation import Checker
from chalicelib.i18n import translate
from chalicelib.services import customers, limiter
from chalicelib.services.customers import HEIGHT_RANGE, WIDTH_RANGE

log = logging.getLogger("checkos.customers")

# Every accepted follow request answers after the same time, whether an order
# matched (lookup + link + SES) or not, so timing tells nothing either.
FOLLOW_ANSWER_SECONDS = 0.8

# Follow snippet look: a small palette (CSS classes, no inline styles).
ACCENTS: tuple[str, ...] = ("blue", "green", "teal", "purple", "orange", "red", "graphite")
DEFAULT_WIDTH, DEFAULT_HEIGHT = 420, 380
MAX_BUTTON, MAX_INTRO = 40, 240


# -- "follow your order" form (embeddable) -------------------------------------


@dataclass(frozen=True)
class FollowLook:
    button: str
    intro: str
    accent: str
    width: int
    height: int


def default_texts(locale: str) -> tuple[str, str]:
    """The follow form's button and introduction when the company wrote none."""
    return translate(locale, "follow.default_button"), translate(locale, "follow.default_intro")


def follow_look(company: Company, locale: str) -> FollowLook:
    button, intro = default_texts(locale)
    return FollowLook(
        button=company.follow_button or button,
        intro=company.follow_intro or intro,
        accent=company.follow_accent if company.follow_accent in ACCENTS else ACCENTS[0],
        width=int(company.follow_width or DEFAULT_WIDTH),
        height=int(company.follow_height or DEFAULT_HEIGHT),
    )


def follow_values(company: Company) -> dict[str, str]:
    return {
        "button": company.follow_button or "",
        "intro": company.follow_intro or "",
        "accent": company.follow_accent or ACCENTS[0],
        "width": str(int(company.follow_width or DEFAULT_WIDTH)),
        "height": str(int(company.follow_height or DEFAULT_HEIGHT)),
    }


def _whole(check: Checker, name: str, bounds: tuple[int, int]) -> int:
    raw = (check.data.get(name) or "").strip()
    low, high = bounds
    if not raw.isdigit() or not low <= int(raw) <= high:
        check.fail(name, "follow.bad_size", low=low, high=high)
        return 0
    return int(raw)


def save_follow_settings(company: Company, form: Mapping[str, str]) -> None:
    """Admin: the snippet's texts and look, on the Company item (blank text = default)."""
    check = Checker(form)
    button = check.text("button", max_len=MAX_BUTTON)
    intro = check.text("intro", max_len=MAX_INTRO, multiline=True)
    accent = check.choice("accent", ACCENTS)
    width = _whole(check, "width", WIDTH_RANGE)
    height = _whole(check, "height", HEIGHT_RANGE)
    check.done()
    actions: list[Action] = [
        Company.follow_button.set(button) if button else Company.follow_button.remove(),
        Company.follow_intro.set(intro) if intro else Company.follow_intro.remove(),
        Company.follow_accent.set(accent),
        Company.follow_width.set(width),
        Company.follow_height.set(height),
    ]
    # These attributes belong to this page alone: no version condition (a
    # profile edit elsewhere must not block it); the version still goes up.
    company.update(actions=actions, condition=Company.pk.exists(), add_version_condition=False)


def snippet(company: Company) -> str:
    """The HTML a company pastes into its website."""
    look = follow_look(company, company.locale)
    src = f"{get_settings().base_url}/follow/{company.slug}?lang={company.locale}"
    title = translate(company.locale, "follow.iframe_title", company=company.name)
    return (
        f'<iframe src="{escape(src)}" title="{escape(title)}" width="{look.width}" '
        f'height="{look.height}" loading="lazy" style="border:0;max-width:100%"></iframe>'
    )


def _another_link_allowed(order: Order) -> bool:
    """A matched order gets a few links per window, so nobody can flood its customer."""
    try:
        limiter.count("follow", order=order.order_id)
    except limiter.LimitReached:
        return False  # enough links for this order for now; the answer stays the same
    return True


def check_follow_form(form: Mapping[str, str]) -> tuple[int, str]:
    check = Checker(form)
    raw = (form.get("number") or "").strip().lstrip("#").strip()
    if not raw:
        check.fail("number", "form.required")
    elif not raw.isdigit() or len(raw) > 9:
        check.fail("number", "follow.bad_number")
    email = check.email("email")
    check.done()
    return int(raw), email


def _matching_order(company: Company, number: int, email: str) -> Order | None:
    """The company's order with this number, if its customer e-mail is ``email``."""
    entries, _ = query_page(keys.order_entries(company.company_id, f"NUM#{number}"), page_size=5)
    for entry in entries:
        # A partner's NUM# list also holds orders it executes for others.
        if not isinstance(entry, OrderEntry) or entry.owner_id != company.company_id:
            continue
        try:
            order = Order.get(*Order.key(entry.order_id))
        except DoesNotExist:
            continue
        if order.company_id == company.company_id and order.customer_email == email:
            return order
    return None


def request_link(company: Company, form: Mapping[str, str], ip: str, locale: str) -> None:
    """The follow form: (re)send the private link if number and e-mail match an order.

    The answer is the same whether or not they match (no enumeration): same
    result, and the same answer time. Rate-limited per IP and per company.
    """
    number, email = check_follow_form(form)
    limiter.count("follow", ip=ip, company=company.company_id)
    started = time.monotonic()
    try:
        order = _matching_order(company, number, email)
        if order is not None and _another_link_allowed(order):
            customers.send_access_link(company, order, locale)
    except Exception:  # a failure must look like any other answer
        log.exception("follow request failed", extra={"company": company.company_id})
    finally:
        time.sleep(max(0.0, FOLLOW_ANSWER_SECONDS - (time.monotonic() - started)))

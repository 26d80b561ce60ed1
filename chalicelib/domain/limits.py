"""Every limit of the product, declared once: rate limits (name, scope, window, maximum) and caps.

The platform's sending reputation is shared by every tenant, so every e-mail a
user can trigger is counted per company, per recipient and per client IP
(``services/limiter.py`` counts with one conditional UpdateItem per scope and
refuses at the maximum). Public forms are counted the same way. A limit is
named ``<path>:<scope>:<window>``; tests enumerate ``RATE_LIMITS`` and ``CAPS``
so a new limit without a test that drives it to its refusal fails the suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

SCOPES = ("company", "recipient", "ip", "form", "order")
QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class RateLimit:
    path: str  # what is counted: one user-triggerable e-mail or public form
    scope: str  # whose count: company | recipient | ip | form | order
    window: timedelta  # fixed windows aligned on the epoch (days on UTC midnight)
    maximum: int  # accepted per window; the next one is refused
    # Catalogue key shown at the limit (params: minutes or hours); "" = silent
    # (the caller drops the e-mail without telling the requester, e.g. follow per order).
    message: str = "limits.company"
    # Loopback is not counted per IP (the local gateway reports 127.0.0.1 for
    # everyone), except on the public forms, whose limits always counted it.
    loopback_counted: bool = False

    @property
    def name(self) -> str:
        return f"{self.path}:{self.scope}:{window_label(self.window)}"


def window_label(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


_CO, _TO, _IP = "limits.company", "limits.recipient", "limits.ip"
_ANON = "limits.mail_too_many"  # anonymous pages: one message that tells nothing about an account

RATE_LIMITS: tuple[RateLimit, ...] = (
    # Anonymous visitors make these pages e-mail an address they typed.
    RateLimit("signup", "ip", HOUR, 10, _ANON),
    RateLimit("password-reset", "ip", HOUR, 10, _ANON),
    RateLimit("password-reset", "recipient", HOUR, 3, _ANON),
    # Failed sign-ins lock an address and e-mail its owner an unlock link; anyone can
    # fail sign-ins for any address, so the link goes out at most once an hour (silently).
    RateLimit("account-unlock", "recipient", HOUR, 1, ""),
    # Validation codes: after sign-up, on "send again" and on every e-mail change.
    RateLimit("email-code", "company", DAY, 10, _CO),
    RateLimit("email-code", "recipient", DAY, 5, _TO),
    RateLimit("email-code", "ip", DAY, 30, _IP),
    # Invitations go to addresses nobody validated, in the company's name:
    # re-inviting or revoke-then-invite counts again (the counters are not the invitations).
    RateLimit("staff-invite", "company", DAY, 20, _CO),
    RateLimit("staff-invite", "recipient", DAY, 3, _TO),
    RateLimit("staff-invite", "ip", DAY, 30, _IP),
    RateLimit("partner-invite", "company", DAY, 20, _CO),
    RateLimit("partner-invite", "recipient", DAY, 3, _TO),
    RateLimit("partner-invite", "ip", DAY, 30, _IP),
    # A partnership proposal or change is e-mailed to the other company's validated
    # address; beyond these the change is still saved and shown in the app, unmailed.
    RateLimit("partner-request", "company", DAY, 20, ""),
    RateLimit("partner-request", "recipient", DAY, 5, ""),
    RateLimit("partner-request", "ip", DAY, 30, ""),
    # Customer e-mails (private link, its resends, status news): what a free
    # company's day of orders needs (a status e-mail or two per open order).
    RateLimit("customer-mail", "company", DAY, 60, _CO),
    RateLimit("customer-mail", "recipient", DAY, 10, _TO),
    RateLimit("customer-mail", "ip", DAY, 90, _IP),
    # The public "follow your order" form; a matched order gets a few links per window.
    RateLimit("follow", "ip", QUARTER, 5, "follow.too_many", True),
    RateLimit("follow", "company", QUARTER, 60, "follow.too_many"),
    RateLimit("follow", "order", QUARTER, 3, ""),
    # Customer-link chat: no sign-in, so per order (the link) and per client IP.
    RateLimit("customer-chat", "order", QUARTER, 20, "customer.chat_too_many"),
    RateLimit("customer-chat", "ip", QUARTER, 40, "customer.chat_too_many", True),
    # The embeddable intake form: Zammad's web-form limits per IP, a ceiling per
    # company form, and a few confirmation e-mails per requester address.
    RateLimit("intake", "ip", HOUR, 20, "intake.rate_limited", True),
    RateLimit("intake", "ip", DAY, 240, "intake.rate_limited", True),
    RateLimit("intake", "form", HOUR, 100, "intake.rate_limited"),
    RateLimit("intake", "recipient", DAY, 5, "intake.rate_limited"),
)


def rate_limits(path: str) -> tuple[RateLimit, ...]:
    found = tuple(rule for rule in RATE_LIMITS if rule.path == path)
    if not found:
        raise KeyError(path)
    return found


def rate_limit(path: str, scope: str, window: timedelta | None = None) -> RateLimit:
    """The one declared limit of ``path`` for ``scope`` (and ``window`` when there are two)."""
    found = [
        r
        for r in RATE_LIMITS
        if r.path == path and r.scope == scope and (window is None or r.window == window)
    ]
    if len(found) != 1:
        raise KeyError(f"{path}:{scope}")
    return found[0]


@dataclass(frozen=True)
class Cap:
    """A limit that is not a rate: a quota, a size, a count or a lifetime (value where it lives)."""

    name: str
    where: str  # the constant that holds the value


CAPS: tuple[Cap, ...] = (
    Cap("monthly-orders", "config.Settings.free_plan_monthly_orders"),
    Cap("logo-upload-bytes", "domain.logos.MAX_UPLOAD_BYTES"),
    Cap("intake-json-bytes", "services.intake.MAX_JSON_BYTES"),
    Cap("pending-staff-invitations", "services.users.MAX_PENDING_INVITATIONS"),
    Cap("pending-partner-invitations", "services.partners.MAX_PENDING_INVITES"),
    Cap("email-code-tries", "services.email_codes.CODE_MAX_TRIES"),
    Cap("email-code-resend-cooldown", "services.email_codes.CODE_RESEND_COOLDOWN"),
    Cap("intake-resend-interval", "services.intake.RESEND_INTERVAL"),
    # Lifetimes: what a link, code or session is worth until when.
    Cap("email-code-lifetime", "services.email_codes.CODE_LIFETIME"),
    Cap("password-reset-lifetime", "services.password_reset.RESET_LIFETIME"),
    Cap("unlock-link-lifetime", "services.signin.UNLOCK_LIFETIME"),
    Cap("staff-invitation-lifetime", "services.users.INVITE_LIFETIME"),
    Cap("partner-invitation-lifetime", "services.partners.INVITE_LIFETIME"),
    Cap("intake-confirmation-lifetime", "services.intake.PENDING_LIFETIME"),
    Cap("session-idle", "config.Settings.session_idle_minutes"),
    Cap("session-lifetime", "config.Settings.session_ttl_hours"),
    Cap("customer-link-lifetime", "services.customers.LINK_DAYS_OPEN"),
    # Sizes and counts a form accepts.
    Cap("chat-message-chars", "services.orders.MAX_MESSAGE"),
    Cap("custom-fields", "services.custom_fields.MAX_FIELDS"),
    Cap("intake-origins", "services.intake.MAX_ORIGINS"),
)


def all_limit_names() -> list[str]:
    return [r.name for r in RATE_LIMITS] + [c.name for c in CAPS]

"""The limiter itself (services/limiter.py): which addresses count, whose window is charged.

The drivers of tests/security/test_rate_limits.py take every declared limit to
its refusal; these pin what they cannot see: loopback and missing addresses are
not counted, "unknown" is one visitor, each address has a window of its own,
given rules replace the declared ones (the intake adjusts its limits that way),
and the narrower scope is charged first, so a full one does not use up a
broader allowance.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import time_machine

from chalicelib.domain import limits
from chalicelib.domain.limits import RateLimit
from chalicelib.i18n import translate
from chalicelib.services import intake, limiter

# Frozen at 10:00:05 UTC: every window (15 minutes to a day) holding it runs to 10:15 at
# least, so no test crosses a window unless it moves the clock itself.
AT = datetime(2031, 3, 4, 10, 0, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen(aws: None):
    with time_machine.travel(AT, tick=False) as traveller:
        yield traveller


def _accepted(path: str, times: int, **scopes: object) -> int:
    """How many of ``times`` attempts ``count`` accepted (it stops at the first refusal)."""
    for done in range(times):
        try:
            limiter.count(path, **scopes)
        except limiter.LimitReached:
            return done
    return times


def test_loopback_is_not_counted_per_ip():
    signup = limits.rate_limit("signup", "ip")
    for ip in ("127.0.0.1", "::1"):
        assert not limiter.counted_ip(ip)
        # `chalice local` reports 127.0.0.1 for every visitor: none of them is refused.
        assert _accepted("signup", signup.maximum + 5, ip=ip) == signup.maximum + 5


def test_a_request_without_a_client_address_is_not_counted_per_ip():
    # A job or an e-mail sent outside a request has no address: nothing to count it under.
    signup = limits.rate_limit("signup", "ip")
    assert not limiter.counted_ip(None)
    assert not limiter.counted_ip("")
    assert _accepted("signup", signup.maximum + 5, ip="") == signup.maximum + 5


def test_an_unknown_address_counts_as_one_visitor_and_is_told_how_long_to_wait():
    # The gateway's "unknown" (no source IP) is not a way around the limit.
    signup = limits.rate_limit("signup", "ip")
    assert limiter.counted_ip("unknown")
    assert _accepted("signup", signup.maximum, ip="unknown") == signup.maximum
    with pytest.raises(limiter.LimitReached) as refused:
        limiter.count("signup", ip="unknown")
    # 10:00:05 -> the hour's window ends at 11:00: 59 min 55 s, said as 60 minutes.
    said = {
        locale: translate(locale, refused.value.key, **refused.value.params)
        for locale in ("en", "es", "pt-BR")
    }
    assert said == {
        "en": "Too many requests from here for now. Please try again in 60 minutes.",
        "es": "Demasiadas solicitudes desde aquí por ahora. Inténtelo de nuevo en 60 minutos.",
        "pt-BR": "Solicitações demais daqui por enquanto. Tente de novo em 60 minutos.",
    }


def test_each_address_has_its_own_window_and_a_new_window_starts_afresh(_frozen):
    rule = limits.rate_limit("password-reset", "recipient")
    full = f"full-{secrets.token_hex(4)}@example.com"
    other = f"other-{secrets.token_hex(4)}@example.com"
    ip = "203.0.113.10"
    assert _accepted("password-reset", rule.maximum, ip=ip, recipient=full) == rule.maximum
    with pytest.raises(limiter.LimitReached) as refused:
        limiter.count("password-reset", ip="203.0.113.11", recipient=full.upper())
    assert refused.value.limit == rule
    # Another address is not refused because the first one is full.
    limiter.count("password-reset", ip=ip, recipient=other)
    # Exactly at the end of the window the full address starts again.
    _frozen.move_to(AT.replace(minute=59, second=59, microsecond=999999))
    with pytest.raises(limiter.LimitReached):
        limiter.count("password-reset", ip="203.0.113.12", recipient=full)
    _frozen.move_to(AT.replace(hour=11, second=0))
    limiter.count("password-reset", ip="203.0.113.12", recipient=full)


def test_rules_given_replace_the_declared_ones():
    strict = replace(limits.rate_limit("signup", "ip"), maximum=2)
    ip = "198.51.100.20"
    assert _accepted("signup", 5, ip=ip, rules=(strict,)) == 2
    # No rules given, nothing is counted (the declared ten would still accept these).
    assert _accepted("signup", 12, ip="198.51.100.21", rules=()) == 12


def test_an_intake_submission_counts_its_address_once_per_window():
    """The intake counts the IP and the form first, then the requester's address alone:
    the declared 20 submissions an hour from one IP are 20, not 10."""
    hourly = limits.rate_limit("intake", "ip", limits.HOUR)
    form, ip = f"form-{secrets.token_hex(4)}", "192.0.2.30"
    for n in range(hourly.maximum):
        intake.count_submission(form, ip)
        intake.count_submission(form, ip, f"requester-{n}@example.com")
    with pytest.raises(intake.RateLimited) as refused:
        intake.count_submission(form, ip)
    assert translate("en", refused.value.key).startswith("Too many requests were sent from here")
    # Another address on the same form is still served (the form's ceiling is 100).
    intake.count_submission(form, "192.0.2.31")


# Scopes from the narrowest: each pair is charged narrow first, whatever order they come in.
NARROW_TO_BROAD = ("recipient", "order", "ip", "form", "company")
VALUES = {
    "recipient": "someone@example.com",
    "order": "order-1",
    "ip": "203.0.113.40",
    "form": "form-1",
    "company": "company-1",
}


@pytest.mark.parametrize("narrow,broad", list(itertools.pairwise(NARROW_TO_BROAD)))
def test_a_full_narrow_window_does_not_use_up_the_broader_one(narrow, broad):
    path = f"order-test-{secrets.token_hex(4)}"
    narrow_rule = RateLimit(path, narrow, limits.HOUR, 1)
    broad_rule = RateLimit(path, broad, limits.HOUR, 1)
    limiter.count(path, rules=(narrow_rule,), **{narrow: VALUES[narrow]})
    # Given broadest first, the full narrow window still refuses before the broad one is charged.
    with pytest.raises(limiter.LimitReached) as refused:
        limiter.count(
            path, rules=(broad_rule, narrow_rule), **{narrow: VALUES[narrow], broad: VALUES[broad]}
        )
    assert refused.value.limit == narrow_rule
    # The broad window's one attempt is still there.
    limiter.count(path, rules=(broad_rule,), **{broad: VALUES[broad]})

"""Every declared limit (chalicelib/domain/limits.py) driven to its threshold, and its refusal seen.

The limits are enumerated from their single declaration: a limit without a
driver in ``tests/security/limit_drivers.py`` fails the completeness test.
Each driver makes exactly the allowed attempts (all must be accepted), then
goes past the threshold (each must be refused, with the translated message
and, on a form, what was typed kept). The figure is counted from what the
drivers saw: limits declared, limits driven to their threshold, refusals seen.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine

from chalicelib.domain import limits
from chalicelib.i18n import translate
from chalicelib.services import follow_form, signin
from chalicelib.services.sessions import now
from tests.figures import report
from tests.security.actors import cheap_passwords, own_ip
from tests.security.limit_drivers import DRIVERS, PAST, Drive, fresh_day, run, says
from tests.web.factories import PASSWORD, sign_up, unique_email
from tests.web.session import WebSession

DRIVES: dict[str, Drive] = {}


@pytest.fixture(scope="module", autouse=True)
def _figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not any(item.name.startswith("test_limit_is_driven") for item in request.session.items):
        return  # no drive was selected (-k): no figure to print
    declared = limits.all_limit_names()
    driven = [DRIVES[name] for name in declared if name in DRIVES]
    report(
        "rate-limits",
        limits=len(declared),
        driven_to_threshold=sum(1 for d in driven if d.at_threshold),
        refusals_seen=sum(d.refusals for d in driven),
    )
    assert driven, "no limit was driven: the figure has nothing behind it"


@pytest.fixture
def aws() -> Iterator[None]:
    """A fresh moto for every drive: moto answers an index Query by walking every item, so
    a table grown by the earlier drives would make each later one many times slower."""
    from moto import mock_aws

    from tests.conftest import _provision

    with mock_aws():
        _provision()
        yield


@pytest.fixture(autouse=True)
def _fast(monkeypatch) -> Iterator[None]:
    cheap_passwords(monkeypatch)
    monkeypatch.setattr(follow_form, "FOLLOW_ANSWER_SECONDS", 0)
    yield


def test_every_declared_limit_has_a_driver():
    declared = limits.all_limit_names()
    assert len(declared) == len(set(declared)), "a limit is declared twice"
    assert sorted(set(declared) - set(DRIVERS)) == [], "declared limits nobody drives"
    assert sorted(set(DRIVERS) - set(declared)) == [], "drivers of limits nobody declares"


def test_every_cap_names_the_constant_that_holds_its_value():
    import importlib

    for cap in limits.CAPS:
        module, _sep, attribute = cap.where.rpartition(".")
        owner, _sep, member = module.rpartition(".")
        try:
            holder = getattr(importlib.import_module(f"chalicelib.{owner}"), member)
        except (ImportError, AttributeError, ValueError):
            holder = importlib.import_module(f"chalicelib.{module}")
        assert hasattr(holder, attribute), f"{cap.name}: {cap.where} does not exist"


@pytest.mark.parametrize("name", limits.all_limit_names())
def test_limit_is_driven_to_its_threshold_and_refuses(client, name):
    drive = run(name, client)
    DRIVES[name] = drive
    print(f"{name}: maximum={drive.maximum} accepted={drive.accepted} refusals={drive.refusals}")
    assert drive.accepted == drive.maximum, f"{name}: {drive.accepted} accepted below the limit"
    assert drive.refusals == PAST, f"{name}: {drive.refusals} of {PAST} attempts refused"


def test_a_full_window_recovers_when_the_next_one_starts(client):
    """The follow form per IP: refused at the limit, accepted again in the next window."""
    rule = limits.rate_limit("follow", "ip")
    with fresh_day() as clock:
        from tests.security.limit_drivers import company, company_id

        staff = company(client)
        from chalicelib.db.accounts import Company

        slug = Company.get(*Company.key(company_id(staff))).slug
        with own_ip():
            visitor = WebSession(client, accept_language="es")
            form = {"number": "1", "email": "nobody@example.com"}
            answers = [
                visitor.post(f"/follow/{slug}", form, csrf=None).status_code
                for _ in range(rule.maximum + 1)
            ]
            assert answers == [200] * rule.maximum + [429]
            assert says(visitor.text(), "es", rule.message)
            clock.shift(rule.window)
            assert visitor.post(f"/follow/{slug}", form, csrf=None).status_code == 200


# -- sign-in lockout (its throttle is not a window counter: see services/signin.py) ----------


def later(**delta: float):
    """The clock moved forward (ticking), for a lock to pass."""
    return time_machine.travel(now() + timedelta(**delta), tick=True)


def shows(tab: WebSession, locale: str, key: str, **params: object) -> bool:
    return html.escape(translate(locale, key, **params), quote=True) in tab.text()


def _login(tab: WebSession, email: str, password: str):
    tab.get("/login")
    return tab.post("/login", {"email": email, "password": password})


def test_login_locks_an_address_after_five_failures_and_unlocks_after_the_lock(client):
    with own_ip():
        owner = sign_up(client)
        visitor = WebSession(client, accept_language="es")
        for _ in range(signin.ACCOUNT_FAILURES):
            assert _login(visitor, owner.email, "wrong password").status_code == 401
        # Locked: even the right password is refused, with a translated reason.
        answer = _login(visitor, owner.email, PASSWORD)
        assert answer.status_code == 429
        assert shows(visitor, "es", "login.locked", minutes=1)
        assert "sid" not in visitor.cookies
        with later(seconds=signin.FIRST_LOCK_SECONDS + 1):
            assert _login(visitor, owner.email, PASSWORD).status_code == 303


def test_login_locks_an_address_of_origin_after_twenty_failures(client):
    with own_ip():
        owner = sign_up(client)
        visitor = WebSession(client, accept_language="pt-BR")
        for _ in range(signin.IP_FAILURES):
            # Different addresses every time: only the per-IP count can stop this.
            assert _login(visitor, unique_email("guess"), "wrong password").status_code == 401
        answer = _login(visitor, owner.email, PASSWORD)
        assert answer.status_code == 429
        assert shows(visitor, "pt-BR", "login.locked", minutes=1)
        with later(seconds=signin.FIRST_LOCK_SECONDS + 1):
            assert _login(visitor, owner.email, PASSWORD).status_code == 303

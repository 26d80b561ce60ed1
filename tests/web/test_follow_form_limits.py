"""The follow form's limits besides the per-IP one: per company and per order, window by window.

The form sits in an iframe on any website and answers anonymous visitors, so
a crowd of addresses must not be able to flood one company (60 requests per
15-minute window) nor one customer's inbox (3 links per order per window).
"""

from __future__ import annotations

import html
import itertools
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from chalice.local import LambdaEventConverter

from chalicelib.db.accounts import Company
from chalicelib.i18n import translate
from chalicelib.services import customers, follow_form
from tests.awscalls import CALLS
from tests.security.actors import cheap_passwords, register_order
from tests.web.counter_writes import counter_expiries
from tests.web.factories import ids_of, mails_to, sign_up
from tests.web.session import WebSession

_addresses = itertools.count(1)


@pytest.fixture(autouse=True)
def _fast(monkeypatch) -> None:
    cheap_passwords(monkeypatch)
    monkeypatch.setattr(follow_form, "FOLLOW_ANSWER_SECONDS", 0)


@pytest.fixture
def window_start() -> Iterator[time_machine.Coordinates]:
    """A stopped clock one minute into a fresh follow-form window (a day ahead of the others)."""
    size = int(customers.FOLLOW_WINDOW.total_seconds())
    ahead = int((datetime.now(UTC) + timedelta(days=2)).timestamp()) // size * size
    with time_machine.travel(datetime.fromtimestamp(ahead + 60, UTC), tick=False) as clock:
        yield clock


def _from_new_address(monkeypatch) -> str:
    """The next request comes from an address no other request used."""
    address = f"203.0.{next(_addresses) % 250}.{secrets.randbelow(250) + 1}"
    monkeypatch.setattr(LambdaEventConverter, "LOCAL_SOURCE_IP", address)
    return address


def _company_form(client) -> tuple[WebSession, str, str]:
    staff = sign_up(client)
    _order, email = register_order(staff)
    slug = Company.get(*Company.key(ids_of(staff)[0])).slug
    return staff, slug, email


def _ask(client, monkeypatch, slug: str, number: str, email: str) -> int:
    _from_new_address(monkeypatch)
    visitor = WebSession(client, accept_language="es")
    answer = visitor.post(f"/follow/{slug}", {"number": number, "email": email}, csrf=None)
    if answer.status_code == 429:
        # The minutes left in the window follow the sentence's opening words.
        opening = translate("es", "follow.too_many").split("{", 1)[0].strip()
        assert html.escape(opening, quote=True) in visitor.text()
    return answer.status_code


def test_one_company_answers_sixty_requests_per_window_from_any_addresses_then_429(
    client, monkeypatch, window_start
):
    _staff, slug, _email = _company_form(client)
    _other, other_slug, _ = _company_form(client)
    limit = customers.FOLLOW_LIMIT_COMPANY
    # Each from a fresh address: the per-IP limit (5) never trips.
    answers = [_ask(client, monkeypatch, slug, "999", "nobody@example.com") for _ in range(limit)]
    assert answers == [200] * limit
    assert _ask(client, monkeypatch, slug, "999", "nobody@example.com") == 429
    # The limit is the company's: another company's form still answers.
    assert _ask(client, monkeypatch, other_slug, "999", "nobody@example.com") == 200
    # Still refused at the window's last second, answered again in the next window.
    window_start.shift(customers.FOLLOW_WINDOW - timedelta(minutes=1, seconds=1))
    assert _ask(client, monkeypatch, slug, "999", "nobody@example.com") == 429
    window_start.shift(timedelta(seconds=1))
    assert _ask(client, monkeypatch, slug, "999", "nobody@example.com") == 200


def test_one_order_gets_three_links_per_window_however_many_addresses_ask(
    client, monkeypatch, window_start
):
    _staff, slug, email = _company_form(client)
    before = len(mails_to(email))
    limit = customers.FOLLOW_LIMIT_ORDER
    for sent in range(1, limit + 1):
        assert _ask(client, monkeypatch, slug, "1", email) == 200
        assert len(mails_to(email)) == before + sent
    # The same answer (no enumeration), but no fourth e-mail in this window.
    assert _ask(client, monkeypatch, slug, "1", email) == 200
    assert len(mails_to(email)) == before + limit
    # The limit is that order's: another order's customer still gets a link.
    _other_staff, other_slug, other_email = _company_form(client)
    others = len(mails_to(other_email))
    assert _ask(client, monkeypatch, other_slug, "1", other_email) == 200
    assert len(mails_to(other_email)) == others + 1
    window_start.shift(customers.FOLLOW_WINDOW)
    assert _ask(client, monkeypatch, slug, "1", email) == 200
    assert len(mails_to(email)) == before + limit + 1


def test_a_wrong_email_or_number_sends_nothing_and_answers_the_same(
    client, monkeypatch, window_start
):
    _staff, slug, email = _company_form(client)
    before = len(mails_to(email))
    assert _ask(client, monkeypatch, slug, "1", "someone-else@example.com") == 200
    assert _ask(client, monkeypatch, slug, "2", email) == 200
    assert len(mails_to(email)) == before
    assert _ask(client, monkeypatch, slug, "1", email) == 200
    assert len(mails_to(email)) == before + 1


def test_follow_counters_expire_an_hour_after_their_window_ends(client, monkeypatch, window_start):
    _staff, slug, email = _company_form(client)
    window_begins = int(time.time()) - 60  # the clock stands one minute into the window
    window_ends = window_begins + int(customers.FOLLOW_WINDOW.total_seconds())
    mark = CALLS.mark()
    assert _ask(client, monkeypatch, slug, "1", email) == 200
    expiries = counter_expiries(mark, key_prefix="THROTTLE#follow:")
    assert len(expiries) == 3, expiries  # the address, the company and the order
    assert all(stamps == [window_ends + 3600] for stamps in expiries.values()), expiries


class _Stopwatch:
    """Stands in for the follow form's clock: each reading advances it, sleeps are recorded."""

    def __init__(self, step: float) -> None:
        self.now, self.step, self.slept = 1000.0, step, []

    def monotonic(self) -> float:
        self.now += self.step
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.mark.parametrize("number", ["1", "2"])
def test_every_answer_is_padded_to_the_same_duration_match_or_not(
    client, monkeypatch, window_start, number
):
    _staff, slug, email = _company_form(client)
    monkeypatch.setattr(follow_form, "FOLLOW_ANSWER_SECONDS", 0.8)
    watch = _Stopwatch(step=0.25)  # the lookup "took" 0.25 s
    monkeypatch.setattr(follow_form, "time", watch)
    assert _ask(client, monkeypatch, slug, number, email) == 200
    assert watch.slept == [pytest.approx(0.55)]


def test_a_slow_lookup_is_not_padded_further(client, monkeypatch, window_start):
    _staff, slug, email = _company_form(client)
    monkeypatch.setattr(follow_form, "FOLLOW_ANSWER_SECONDS", 0.8)
    watch = _Stopwatch(step=2.0)
    monkeypatch.setattr(follow_form, "time", watch)
    assert _ask(client, monkeypatch, slug, "1", email) == 200
    assert watch.slept == [0.0]


def test_a_failing_lookup_answers_like_any_other_and_is_logged(
    client, monkeypatch, window_start, caplog
):
    _staff, slug, email = _company_form(client)
    company_id = ids_of(_staff)[0]

    def broken(*_args, **_kwargs):
        raise RuntimeError("table unavailable")

    monkeypatch.setattr(follow_form, "query_page", broken)
    with caplog.at_level("ERROR", logger=follow_form.log.name):
        assert _ask(client, monkeypatch, slug, "1", email) == 200
    (record,) = [r for r in caplog.records if r.name == follow_form.log.name]
    assert record.getMessage() == "follow request failed"
    assert record.company == company_id  # type: ignore[attr-defined]
    assert record.exc_info and "table unavailable" in str(record.exc_info[1])


def test_the_address_and_company_counters_never_mix_even_when_their_values_match(
    client, monkeypatch, window_start
):
    """Counted per scope: an address that reads like the company's id is still just an address."""
    _staff, slug, _email = _company_form(client)
    company_id = ids_of(_staff)[0]
    monkeypatch.setattr(LambdaEventConverter, "LOCAL_SOURCE_IP", company_id)
    visitor = WebSession(client)
    answers = [
        visitor.post(f"/follow/{slug}", {"number": "9", "email": "x@example.com"}, csrf=None)
        for _ in range(customers.FOLLOW_LIMIT_IP + 1)
    ]
    codes = [answer.status_code for answer in answers]
    assert codes == [200] * customers.FOLLOW_LIMIT_IP + [429]


def test_erasing_a_company_leaves_no_follow_counter_named_after_it(
    client, monkeypatch, window_start
):
    from chalicelib.db.base import Item
    from chalicelib.services import erasure

    staff, slug, email = _company_form(client)
    company_id, user_id = ids_of(staff)
    mark = CALLS.mark()
    assert _ask(client, monkeypatch, slug, "1", email) == 200
    named = [pk for pk in counter_expiries(mark, key_prefix="THROTTLE#follow:") if company_id in pk]
    assert len(named) == 1, named  # the company's own counter
    erasure.mark(Company.get(*Company.key(company_id)), user_id)
    assert erasure.run_erasure(company_id) == "done"
    assert not list(Item.query(named[0]))


def test_the_link_is_mailed_in_the_language_of_the_page_the_customer_used(
    client, monkeypatch, window_start
):
    staff, slug, email = _company_form(client)  # an English-speaking company
    company = Company.get(*Company.key(ids_of(staff)[0]))
    assert company.locale != "es"
    assert _ask(client, monkeypatch, slug, "1", email) == 200  # the page in Spanish
    subject = translate("es", "email.customer_access.subject", company=company.name, number=1)
    assert mails_to(email)[-1].subject == subject

"""Mail flood: every user-triggerable e-mail path driven past its limits (company, recipient, IP).

The platform's sending reputation is shared by every tenant: one free
account must not be able to mail-bomb an address or send thousands of
messages whose text it controls. Each declared e-mail limit is driven to its
maximum and past it (``tests/security/limit_drivers.py``); the e-mails are
counted from what moto's SES actually accepted, never from what the pages
say. ``sent_over_limit`` is how many left beyond a limit's maximum.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.domain import limits
from chalicelib.services import follow_form
from tests.figures import report
from tests.security.actors import cheap_passwords
from tests.security.limit_drivers import MAIL_LIMITS, Drive, run

DRIVES: dict[str, Drive] = {}


@pytest.fixture
def aws() -> Iterator[None]:
    """A fresh moto for every flood (see test_rate_limits: moto slows down as a table grows)."""
    from moto import mock_aws

    from tests.conftest import _provision

    with mock_aws():
        _provision()
        yield


@pytest.fixture(scope="module", autouse=True)
def _figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not any(item.name.startswith("test_no_mail_leaves") for item in request.session.items):
        return  # no drive was selected (-k): no figure to print
    drives = list(DRIVES.values())
    report(
        "mail-flood",
        mail_paths=len({d.mail_path for d in drives if d.mail_path}),
        limits=len(drives),
        attempts=sum(d.attempts for d in drives),
        sent=sum(len(d.mails) for d in drives),
        sent_over_limit=sum(d.over_limit for d in drives),
    )
    assert drives, "no e-mail path was flooded: the figure has nothing behind it"


@pytest.fixture(autouse=True)
def _fast(monkeypatch) -> Iterator[None]:
    cheap_passwords(monkeypatch)
    monkeypatch.setattr(follow_form, "FOLLOW_ANSWER_SECONDS", 0)
    yield


def test_every_mail_path_is_limited_per_company_recipient_and_ip():
    """The declaration itself: each e-mail path a staff user triggers has all three scopes."""
    staff_paths = (
        "email-code",
        "staff-invite",
        "partner-invite",
        "partner-request",
        "customer-mail",
    )
    for path in staff_paths:
        scopes = {r.scope for r in limits.rate_limits(path)}
        assert {"company", "recipient", "ip"} <= scopes, path
    assert {r.scope for r in limits.rate_limits("password-reset")} == {"ip", "recipient"}
    assert {r.scope for r in limits.rate_limits("intake")} >= {"ip", "form", "recipient"}


@pytest.mark.parametrize("name", MAIL_LIMITS)
def test_no_mail_leaves_beyond_a_limit(client, name):
    drive = run(name, client)
    DRIVES[name] = drive
    print(
        f"{name}: attempts={drive.attempts} sent={len(drive.mails)} maximum={drive.maximum} "
        f"over={drive.over_limit} refusals={drive.refusals}"
    )
    assert drive.mail_path, f"{name}: the flood counted no e-mail path"
    assert drive.attempts > drive.maximum, f"{name}: not driven past its maximum"
    assert drive.over_limit == 0, f"{name}: {drive.over_limit} e-mails beyond the limit"
    assert drive.refusals > 0, f"{name}: no refusal seen past the limit"


def test_a_bounced_complained_or_unsubscribed_address_gets_nothing_however_often_asked(client):
    """Suppression and opt-out hold under a flood: every staff action that e-mails the
    customer (new link, status changes) is tried over and over; SES never gets one."""
    from chalicelib.services import delivery
    from tests.web.factories import mails_to, sign_up
    from tests.web.test_customer_access import move, register
    from tests.web.test_mail_delivery import feed, ses_event, unsubscribe_url

    staff = sign_up(client)
    blocked: dict[str, str] = {}
    for how in ("Bounce", "Complaint", "unsubscribe"):
        order_id, address = register(staff)
        if how == "unsubscribe":
            assert client.http.post(unsubscribe_url(mails_to(address)[-1])).status_code == 200
        else:
            assert feed(client, ses_event(how, address, order_id)) == {"suppressed": 1}
        blocked[order_id] = address
    before = {address: len(mails_to(address)) for address in blocked.values()}
    attempts = 0
    for order_id in blocked:
        for _round in range(3):
            staff.get(f"/orders/{order_id}")
            staff.post(f"/orders/{order_id}/access/resend")
            move(staff, order_id, "start", "complete", "reopen")
            attempts += 4
    sent = sum(len(mails_to(address)) - before[address] for address in blocked.values())
    report("mail-flood-blocked", addresses=len(blocked), attempts=attempts, sent=sent)
    assert attempts > 0
    assert sent == 0
    for address in blocked.values():
        assert delivery.block_reason(address) or delivery.opted_out(ids_company(staff), address)


def ids_company(tab) -> str:
    from tests.web.factories import ids_of

    return ids_of(tab)[0]

"""Intake service: pending requests, e-mail confirmation, one pending per address, anti-spam."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta

import pytest
import time_machine
from pynamodb.exceptions import DoesNotExist

from chalicelib.aws.mail import MailNotSent
from chalicelib.db.accounts import Company, CustomField, User
from chalicelib.db.intake import CONFIRMED, PENDING, FormKey, IntakeRequest, PendingLock
from chalicelib.db.orders import MonthlyUsage, OrderCounter
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.tokens import token_hash
from chalicelib.services import intake, intake_codes, intake_confirmation, mailer, orders
from chalicelib.services.intake import RateLimit
from chalicelib.services.orders import Actor, OrderFilters
from chalicelib.services.sessions import now
from tests.service.factories import new_company, order_form
from tests.web.factories import last_mail_to, link_in, mails_to


def _company(**changes: object) -> Company:
    """An active company with a validated e-mail, a form code and ``changes`` saved."""
    account = new_company(f"Intake Co {secrets.token_hex(3)}")
    company = Company.get(*Company.key(account.company.company_id))
    actions = [Company.email_validated.set(True)]
    actions += [getattr(Company, name).set(value) for name, value in changes.items()]
    company.update(actions=actions)
    intake_codes.generate_code(company, company.version)
    return company


def _form(**overrides: str) -> dict[str, str]:
    form = {
        "customer_name": "Joana Prado",
        "customer_email": f"joana-{secrets.token_hex(4)}@example.com",
        "customer_phone": "+55 21 99876-5432",
        "service_type": "Washing machine",
        "brand": "Brastemp",
        "model": "BWK11",
        "problem": "Does not spin",
    }
    form.update(overrides)
    return form


def _ip() -> str:
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"


def _submit(company: Company, form: dict[str, str], **kwargs: object) -> intake.Submitted:
    return intake.submit_request(company, form, locale="en", ip=_ip(), browser=False, **kwargs)  # type: ignore[arg-type]


def _token(email: str) -> str:
    return link_in(last_mail_to(email), "/intake/confirm/").rsplit("/", 1)[1]


def _all_orders(company: Company) -> list:
    return orders.list_orders(company.company_id, OrderFilters(view="all"), page_size=50).entries


# -- pending until confirmed ------------------------------------------------------


def test_a_submission_is_pending_invisible_to_the_company_and_expires_in_48_hours(aws):
    company = _company()
    form = _form()
    before = now()
    done = _submit(company, form)
    token = _token(form["customer_email"])
    request = IntakeRequest.get(*IntakeRequest.key(token_hash(token)))
    assert request.status == PENDING
    assert request.company_id == company.company_id and request.email == form["customer_email"]
    assert request.value_map["problem"] == "Does not spin"
    # The TTL attribute DynamoDB deletes by, 48 hours out; the lock expires with it.
    assert (
        timedelta(hours=47, minutes=59)
        < request.expires_at - before
        < timedelta(hours=48, minutes=1)
    )
    lock = PendingLock.get(*PendingLock.key(company.company_id, form["customer_email"]))
    assert lock.intake_id == request.intake_id and lock.expires_at == request.expires_at
    assert done.expires_at == request.expires_at
    # Only the hash is stored; nothing reaches the company before confirmation.
    assert token not in str(request.serialize())
    assert _all_orders(company) == []
    assert orders.usage_this_month(company.company_id) == 0


def test_confirming_creates_the_order_notifies_staff_and_sends_the_access_link(aws):
    company = _company()
    form = _form()
    _submit(company, form)
    mails_before = len(mails_to(company.email))
    done = intake_confirmation.confirm_request(_token(form["customer_email"]))
    assert done.just_now and done.order_number == 1
    order = orders.order_view(company.company_id, done.order_id).order
    assert order.source == "intake" and order.customer_email == form["customer_email"]
    assert order.customer_name == "Joana Prado" and order.brand == "Brastemp"
    created = orders.order_view(company.company_id, done.order_id).events[0]
    assert (created.actor_name, created.actor_kind) == ("Joana Prado", "customer")
    assert orders.usage_this_month(company.company_id) == 1
    # Staff: in-app notification (unread count) and an e-mail to the validated address.
    admin = next(iter(orders.team(company.company_id)))
    assert User.get(*User.key(company.company_id, admin)).unread == 1
    assert len(mails_to(company.email)) == mails_before + 1
    assert "#1" in last_mail_to(company.email).subject
    # Requester: the private customer link to follow the order.
    access = last_mail_to(form["customer_email"])
    assert "private link to order #1" in access.subject
    assert link_in(access, "/o/")
    # The lock is gone with the confirmation: the address may send a new request.
    with pytest.raises(DoesNotExist):
        PendingLock.get(*PendingLock.key(company.company_id, form["customer_email"]))


def test_confirming_twice_gives_the_same_order(aws):
    company = _company()
    form = _form()
    _submit(company, form)
    token = _token(form["customer_email"])
    first = intake_confirmation.confirm_request(token)
    second = intake_confirmation.confirm_request(token)
    assert second.order_id == first.order_id and not second.just_now
    assert len(_all_orders(company)) == 1
    assert intake_confirmation.open_request(token).confirmed


def test_an_expired_request_cannot_be_confirmed(aws):
    company = _company()
    form = _form()
    _submit(company, form)
    token = _token(form["customer_email"])
    # DynamoDB's TTL deletion is lazy: the item may still be there, the code refuses it.
    with time_machine.travel(now() + timedelta(hours=48, minutes=1)):
        with pytest.raises(intake_confirmation.LinkExpired):
            intake_confirmation.open_request(token)
        with pytest.raises(intake_confirmation.LinkExpired):
            intake_confirmation.confirm_request(token)
    assert IntakeRequest.get(*IntakeRequest.key(token_hash(token))).status == PENDING
    assert _all_orders(company) == []


def test_a_link_works_until_the_second_it_expires(aws):
    company = _company()
    form = _form()
    _submit(company, form)
    token = _token(form["customer_email"])
    expires = IntakeRequest.get(*IntakeRequest.key(token_hash(token))).expires_at
    with time_machine.travel(expires - timedelta(seconds=1), tick=False):
        assert not intake_confirmation.open_request(token).confirmed
    with time_machine.travel(expires, tick=False):
        with pytest.raises(intake_confirmation.LinkExpired):
            intake_confirmation.open_request(token)
        with pytest.raises(intake_confirmation.LinkExpired):
            intake_confirmation.confirm_request(token)
    assert _all_orders(company) == []


def test_an_unknown_token_is_an_invalid_link(aws):
    with pytest.raises(intake_confirmation.LinkInvalid):
        intake_confirmation.confirm_request(secrets.token_urlsafe(32))


# -- one pending request per address --------------------------------------------------


def test_a_second_submission_while_pending_is_refused_until_confirmed(aws):
    company = _company()
    form = _form()
    _submit(company, form)
    with pytest.raises(intake.PendingExists) as refused:
        _submit(company, {**form, "problem": "Also leaks water"})
    assert refused.value.params["email"] == form["customer_email"]
    assert len(mails_to(form["customer_email"])) == 1
    intake_confirmation.confirm_request(_token(form["customer_email"]))
    _submit(company, {**form, "problem": "Another machine"})  # free again
    # The same address may have a pending request at another company.
    _submit(_company(), form)


def test_an_expired_lock_does_not_block_the_address(aws):
    company = _company()
    form = _form()
    _submit(company, form)
    with time_machine.travel(now() + timedelta(hours=49)):
        _submit(company, form)
        lock = PendingLock.get(*PendingLock.key(company.company_id, form["customer_email"]))
        assert lock.intake_id == token_hash(_token(form["customer_email"]))


def test_resending_is_limited_and_replaces_the_link(aws):
    company = _company()
    form = _form()
    email = form["customer_email"]
    _submit(company, form)
    first = _token(email)
    with pytest.raises(intake.ResendTooSoon):
        intake.resend_link(company, email, locale="en", ip=_ip())
    with time_machine.travel(now() + timedelta(minutes=3)):
        intake.resend_link(company, email.upper(), locale="en", ip=_ip())
        second = _token(email)
        assert second != first
        with pytest.raises(intake.ResendTooSoon):
            intake.resend_link(company, email, locale="en", ip=_ip())
        with pytest.raises(intake_confirmation.LinkInvalid):
            intake_confirmation.confirm_request(first)
        assert intake_confirmation.confirm_request(second).order_number == 1
    with pytest.raises(intake.NothingPending):
        intake.resend_link(company, email, locale="en", ip=_ip())


def test_a_request_whose_mail_fails_is_undone(aws, monkeypatch):
    company = _company()
    form = _form()

    def refuse(*args: object, **kwargs: object) -> str:
        raise MailNotSent("mailbox unavailable")

    monkeypatch.setattr(mailer, "send_templated", refuse)
    with pytest.raises(intake.MailFailed):
        _submit(company, form)
    monkeypatch.undo()
    with pytest.raises(DoesNotExist):
        PendingLock.get(*PendingLock.key(company.company_id, form["customer_email"]))
    _submit(company, form)  # the address is not blocked


# -- quota at confirmation --------------------------------------------------------------


def test_a_full_quota_at_confirmation_keeps_the_request_pending_for_a_retry(aws):
    company = _company(monthly_quota=1)
    orders.register_order(company, Actor(name="Rui Costa"), order_form(), {})
    form = _form()
    _submit(company, form)
    token = _token(form["customer_email"])
    with pytest.raises(intake_confirmation.IntakeQuotaReached) as refused:
        intake_confirmation.confirm_request(token)
    assert refused.value.params["company"] == company.name
    # Nothing half-created: one order, counter and usage untouched, request and lock kept.
    assert len(_all_orders(company)) == 1
    assert OrderCounter.get(*OrderCounter.key(company.company_id)).last_number == 1
    month = now().strftime("%Y-%m")
    assert MonthlyUsage.get(*MonthlyUsage.key(company.company_id, month)).count == 1
    request = IntakeRequest.get(*IntakeRequest.key(token_hash(token)))
    assert request.status == PENDING and request.claim is None
    assert PendingLock.get(*PendingLock.key(company.company_id, form["customer_email"]))
    # Next month (or a bigger plan) the same link works.
    company.update(actions=[Company.monthly_quota.set(5)])
    done = intake_confirmation.confirm_request(token)
    assert done.order_number == 2
    assert IntakeRequest.get(*IntakeRequest.key(token_hash(token))).status == CONFIRMED


def test_an_inactive_company_cannot_take_confirmations(aws):
    company = _company()
    form = _form()
    _submit(company, form)
    company.update(actions=[Company.status.set("inactive")])
    with pytest.raises(intake.FormInactive):
        intake_confirmation.confirm_request(_token(form["customer_email"]))
    assert _all_orders(company) == []


# -- the form code -----------------------------------------------------------------------


def test_rotating_the_code_closes_the_old_one_at_once(aws):
    company = _company()
    old = company.intake_code
    assert intake.form_company(old).company_id == company.company_id
    new = intake_codes.generate_code(company, company.version)
    assert new != old and len(new) >= 22  # ≥ 128 bits
    with pytest.raises(intake.FormClosed):
        intake.form_company(old)
    with pytest.raises(DoesNotExist):
        FormKey.get(*FormKey.key(old))
    assert intake.form_company(new).company_id == company.company_id
    assert Company.get(*Company.key(company.company_id)).intake_code == new


def test_rotating_from_a_stale_page_changes_nothing(aws):
    company = _company()
    code = company.intake_code
    with pytest.raises(intake_codes.IntakeSettingsChanged):
        intake_codes.generate_code(company, company.version - 1)
    stale = Company.get(*Company.key(company.company_id))
    intake_codes.generate_code(company, company.version)  # someone else rotates first
    with pytest.raises(intake_codes.IntakeSettingsChanged):
        intake_codes.generate_code(stale, stale.version)
    assert Company.get(*Company.key(company.company_id)).intake_code == company.intake_code
    assert company.intake_code != code


def test_unknown_codes_and_inactive_companies_are_closed(aws):
    with pytest.raises(intake.FormClosed):
        intake.form_company("nope")
    company = _company()
    company.update(actions=[Company.status.set("inactive")])
    with pytest.raises(intake.FormInactive) as closed:
        intake.form_company(company.intake_code)
    assert closed.value.status == 410 and closed.value.company.company_id == company.company_id


def test_allowed_origins_are_https_origins_only():
    assert intake_codes.parse_origins(
        "https://www.Example.com/\nhttps://shop.example.com:8443"
    ) == [
        "https://www.example.com",
        "https://shop.example.com:8443",
    ]
    assert intake_codes.parse_origins("http://localhost:8000") == ["http://localhost:8000"]
    for bad in ("http://example.com", "https://example.com/form", "example.com", "https://*.x.com"):
        with pytest.raises(ValidationFailed):
            intake_codes.parse_origins(bad)


# -- validation and anti-automation ------------------------------------------------------------


def test_the_order_rules_apply_with_the_e_mail_and_required_custom_fields(aws):
    field = CustomField(field_id="serial", label="Serial", kind="text", required=True)
    company = _company(custom_fields=[field])
    with pytest.raises(ValidationFailed) as refused:
        _submit(company, _form(customer_email="", problem=""))
    assert set(refused.value.errors) == {"customer_email", "problem", "cf_serial"}
    # A visitor cannot set what only staff decide.
    form = _form(cf_serial="SN-1", priority="urgent", internal_notes="x", estimated_value="9")
    _submit(company, form)
    request = IntakeRequest.get(*IntakeRequest.key(token_hash(_token(form["customer_email"]))))
    assert request.custom_map == {"serial": "SN-1"}
    assert not {"priority", "internal_notes", "estimated_value"} & set(request.value_map)


def test_honeypot_and_time_to_submit():
    form = _form()
    with pytest.raises(intake.AutomatedSubmission):
        intake.screen_browser_form({**form, intake.HONEYPOT: "http://spam"}, time.time() - 60)
    with pytest.raises(intake.TooFast):
        intake.screen_browser_form(form, time.time() - 1)
    with pytest.raises(intake.FormExpired):
        intake.screen_browser_form(form, time.time() - 3 * 3600)
    with pytest.raises(intake.FormExpired):
        intake.screen_browser_form(form, None)
    intake.screen_browser_form(form, time.time() - intake.MIN_SECONDS_TO_SUBMIT)


def test_rate_limits_per_ip_and_per_form(aws, monkeypatch):
    monkeypatch.setattr(
        intake, "RATE_LIMITS", (RateLimit("ip", "hour", 3), RateLimit("form", "hour", 5))
    )
    company = _company()
    ip = _ip()
    for _ in range(3):
        intake.count_submission(company.company_id, ip)
    with pytest.raises(intake.RateLimited):
        intake.count_submission(company.company_id, ip)
    # The refused attempt counted nowhere: the form is at 3 of 5.
    intake.count_submission(company.company_id, _ip())
    intake.count_submission(company.company_id, _ip())
    with pytest.raises(intake.RateLimited):
        intake.count_submission(company.company_id, _ip())
    with time_machine.travel(now() + timedelta(hours=1)):
        intake.count_submission(company.company_id, ip)  # a new window


def test_every_intake_message_is_translated_with_the_same_placeholders():
    import json
    import re
    from pathlib import Path

    from chalicelib.i18n import LOCALES

    path = Path(__file__).resolve().parents[2] / "chalicelib/i18n/catalog/intake.json"
    entries = json.loads(path.read_text(encoding="utf-8"))
    for key, texts in entries.items():
        assert set(texts) == set(LOCALES), key
        general = [t["other"] if isinstance(t, dict) else t for t in texts.values()]  # plurals
        placeholders = {frozenset(re.findall(r"{(\w+)}", text)) for text in general}
        assert len(placeholders) == 1, key
        assert texts["es"] != texts["en"] and texts["pt-BR"] != texts["en"], key

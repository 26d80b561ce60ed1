"""Drivers that push each declared limit (chalicelib/domain/limits.py) to its threshold and past it.

Every driver starts at the beginning of a fresh UTC day (so every hour and
quarter window starts with it too), from a client IP of its own, with new
companies and addresses: its counters start at zero. It makes exactly
``maximum`` attempts that must be accepted, then ``PAST`` more that must be
refused with the limit's translated message (and, on a form, what was typed
kept). What happened is returned as a ``Drive``; the suites turn drives into
figures: ``test_rate_limits`` (limits, driven to threshold, refusals seen) and
``test_mail_flood`` (e-mails that actually left, counted from moto's SES).
"""

from __future__ import annotations

import email
import html
import itertools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email.policy import default

import time_machine

from chalicelib.config import get_settings
from chalicelib.db.accounts import Company, Throttle
from chalicelib.domain import limits
from chalicelib.domain.logos import MAX_UPLOAD_BYTES
from chalicelib.i18n import catalog, variants
from chalicelib.services import (
    custom_fields,
    customers,
    email_codes,
    intake,
    orders,
    partners,
    password_reset,
    signin,
    users,
)
from chalicelib.services.sessions import now
from chalicelib.web.outbox import SentMail
from tests.security.actors import (
    ORDER,
    customer_token,
    intake_confirmation_token,
    intake_fields,
    open_intake_form,
    own_ip,
    register_order,
    send_intake,
)
from tests.web.company_factories import image_bytes, save_settings, upload_logo
from tests.web.factories import (
    PASSWORD,
    code_in,
    ids_of,
    last_mail_to,
    link_in,
    sign_up,
    unique_email,
)
from tests.web.session import WebSession

PAST = 2  # attempts made beyond each threshold
_days = itertools.count(30)


@dataclass
class Drive:
    limit: str
    maximum: int
    accepted: int = 0  # attempts accepted before the first refusal
    refusals: int = 0  # refusals seen (status and translated message checked)
    attempts: int = 0
    mails: list[SentMail] = field(default_factory=list)  # the path's e-mails that left
    mail_path: str = ""  # the user-triggerable e-mail counted, "" when none

    @property
    def at_threshold(self) -> bool:
        return self.accepted == self.maximum and self.refusals > 0

    @property
    def over_limit(self) -> int:
        return max(0, len(self.mails) - self.maximum) if self.mail_path else 0

    def ok(self, accepted: bool) -> None:
        """One attempt below the threshold: it must have been accepted."""
        self.attempts += 1
        if accepted and self.refusals == 0:
            self.accepted += 1

    def refused(self, seen: bool) -> None:
        """One attempt past the threshold: ``seen`` when the refusal was observed."""
        self.attempts += 1
        if seen:
            self.refusals += 1


# -- time, outbox, messages -----------------------------------------------------------------------


@contextmanager
def fresh_day() -> Iterator[time_machine.Traveller]:
    """The clock at 00:00:05 UTC of a day no other driver uses, ticking; shift() to move on."""
    start = (now() + timedelta(days=next(_days))).replace(hour=0, minute=0, second=5)
    with time_machine.travel(start, tick=True) as traveller:
        yield traveller


def outbox_mark() -> int:
    return len(_backend().sent_messages)


def mails_since(mark: int) -> list[SentMail]:
    found = []
    for index, sent in enumerate(_backend().sent_messages[mark:], start=mark):
        raw = getattr(sent, "raw_data", None)
        if raw is None:
            continue
        parsed = email.message_from_string(raw, policy=default)
        parts = {
            p.get_content_subtype(): p.get_content() for p in parsed.walk() if not p.is_multipart()
        }
        found.append(
            SentMail(
                index=index,
                to=str(parsed.get("To", "")),
                sender=str(parsed.get("From", "")),
                reply_to=str(parsed.get("Reply-To", "")),
                subject=str(parsed.get("Subject", "")),
                text=str(parts.get("plain", "")),
                html=str(parts.get("html", "")),
            )
        )
    return found


def _backend():
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    from chalicelib.config import get_settings

    return ses_backends[DEFAULT_ACCOUNT_ID][get_settings().region]


def says(page: str, locale: str, key: str) -> bool:
    """The page shows the translated message (its text up to the first placeholder), in
    any of its plural forms."""
    entry = catalog().get(key)
    texts = variants(entry.get(locale) or entry["en"]) if entry else (key,)
    heads = [text.split("{", 1)[0].strip() for text in texts]
    return any(head and html.escape(head, quote=True) in page for head in heads)


def says_limit(page: str, locale: str, key: str) -> bool:
    """A limit's message, in its minutes or hours form."""
    return says(page, locale, key) or says(page, locale, f"{key}_hours")


def kept(page: str, *values: str) -> bool:
    return all(f'value="{html.escape(v, quote=True)}"' in page for v in values)


def flashed(tab: WebSession, path: str, locale: str, key: str) -> bool:
    """After a redirect: the next page shows the flashed message."""
    tab.get(path)
    return says_limit(tab.text(), locale, key)


# -- companies ------------------------------------------------------------------------------------


def company(client, *, validate: bool = True, locale: str = "en") -> WebSession:
    """A company signed up from an address of its own (sign-ups are limited per IP)."""
    with own_ip():
        return sign_up(client, validate=validate, locale=locale)


def relogin(tab: WebSession, page: str) -> str:
    """Sign in again (after the clock moved past the session's lifetime); the page's CSRF token."""
    tab.cookies.clear()
    tab.get("/login")
    tab.post("/login", {"email": tab.email, "password": PASSWORD})  # type: ignore[attr-defined]
    tab.get(page)
    return tab.csrf()


def company_id(tab: WebSession) -> str:
    return ids_of(tab)[0]


# -- anonymous pages ------------------------------------------------------------------------------


def _signup_form(address: str) -> dict[str, str]:
    return {
        "company_name": "Limited Repairs",
        "business_type": "Repairs",
        "area": "Lisbon",
        "contact_name": "Rui",
        "phone": "+351 912 345 678",
        "email": address,
        "password": "correct horse battery",
    }


def drive_signup_ip(client) -> Drive:
    rule = limits.rate_limit("signup", "ip")
    drive = Drive(rule.name, rule.maximum, mail_path="email-code")
    with fresh_day(), own_ip():
        mark = outbox_mark()
        for n in range(rule.maximum + PAST):
            tab = WebSession(client, accept_language="pt-BR")
            tab.get("/signup")
            address = unique_email("signup")
            answer = tab.post("/signup", _signup_form(address))
            if n < rule.maximum:
                drive.ok(answer.status_code == 303)
            else:
                drive.refused(
                    answer.status_code == 429
                    and says(tab.text(), "pt-BR", rule.message)
                    and kept(tab.text(), address, "Limited Repairs")
                )
        drive.mails = [m for m in mails_since(mark) if code_like(m)]
    return drive


def code_like(mail: SentMail) -> bool:
    return re.search(r"^\s+\d{6}\s*$", mail.text, re.MULTILINE) is not None


def _forgot(tab: WebSession, address: str):
    tab.get("/password/forgot")
    return tab.post("/password/forgot", {"email": address})


def drive_reset_ip(client) -> Drive:
    rule = limits.rate_limit("password-reset", "ip")
    drive = Drive(rule.name, rule.maximum, mail_path="password-reset")
    with fresh_day():
        owners = [company(client).email for _ in range(4)]  # type: ignore[attr-defined]
        with own_ip():
            mark = outbox_mark()
            visitor = WebSession(client, accept_language="es")
            for n in range(rule.maximum + PAST):
                # Real accounts, at most 3 each: only the per-IP count can stop this.
                answer = _forgot(visitor, owners[n // 3])
                if n < rule.maximum:
                    drive.ok(answer.status_code == 200)
                else:
                    drive.refused(
                        answer.status_code == 429
                        and says(visitor.text(), "es", rule.message)
                        and kept(visitor.text(), owners[n // 3])
                    )
            drive.mails = [m for m in mails_since(mark) if "/password/reset/" in m.text]
    return drive


def drive_reset_recipient(client) -> Drive:
    rule = limits.rate_limit("password-reset", "recipient")
    drive = Drive(rule.name, rule.maximum, mail_path="password-reset")
    with fresh_day():
        owner = company(client).email  # type: ignore[attr-defined]
        mark = outbox_mark()
        for n in range(rule.maximum + PAST):
            with own_ip():  # a new address of origin every time: only the per-recipient count
                visitor = WebSession(client, accept_language="en")
                answer = _forgot(visitor, owner)
            if n < rule.maximum:
                drive.ok(answer.status_code == 200)
            else:
                drive.refused(
                    answer.status_code == 429 and says(visitor.text(), "en", rule.message)
                )
        drive.mails = [
            m for m in mails_since(mark) if "/password/reset/" in m.text and owner in m.to
        ]
    return drive


# -- e-mail codes ---------------------------------------------------------------------------------


def _unlock_mails(address: str, mark: int) -> list[SentMail]:
    return [m for m in mails_since(mark) if address in m.to and "/login/unlock/" in m.text]


def _locked_until(address: str):
    return Throttle.get(*Throttle.key("email", address.lower())).locked_until


def _fail_until_locked(client, address: str) -> bool:
    """Wrong passwords for ``address`` until the sign-in answers 429 (a new lock)."""
    visitor = WebSession(client)
    for _ in range(signin.ACCOUNT_FAILURES + 1):
        visitor.get("/login")
        if visitor.post("/login", {"email": address, "password": "wrong"}).status_code == 429:
            return True
    return False


def drive_account_unlock(client) -> Drive:
    """Anyone can lock any address by failing its sign-in: its owner gets one link an hour."""
    rule = limits.rate_limit("account-unlock", "recipient")
    drive = Drive(rule.name, rule.maximum, mail_path="account-unlock")
    with fresh_day() as clock, own_ip():
        owner = sign_up(client, locale="es")
        address = owner.email  # type: ignore[attr-defined]
        mark = outbox_mark()
        for n in range(rule.maximum + PAST):
            before = outbox_mark()
            locked = _fail_until_locked(client, address)
            new_lock = _locked_until(address)
            mailed = len(_unlock_mails(address, before))
            if n < rule.maximum:
                drive.ok(locked and mailed == 1)
            else:
                drive.refused(locked and mailed == 0)
            # Wait the lock out (it doubles each time: 1, 2, 4 minutes, well inside the hour).
            clock.shift(new_lock - now() + timedelta(seconds=1))
        drive.mails = _unlock_mails(address, mark)
    return drive


def _change_email(tab: WebSession, address: str) -> bool:
    """Type a new e-mail in the settings; True when a code was sent to it (the page says so)."""
    mark = outbox_mark()
    answer = save_settings(tab, email=address)
    assert answer.status_code == 303, tab.text()
    return any(address in m.to for m in mails_since(mark))


def _change_refused(tab: WebSession, address: str, locale: str, key: str) -> bool:
    mark = outbox_mark()
    answer = save_settings(tab, email=address)
    tab.get("/settings/company")
    return (
        answer.status_code == 303
        and says_limit(tab.text(), locale, key)
        and not any(address in m.to for m in mails_since(mark))
        and address in tab.text()  # what was typed is kept: the pending address is shown
    )


def drive_email_code_recipient(client) -> Drive:
    rule = limits.rate_limit("email-code", "recipient")
    drive = Drive(rule.name, rule.maximum, mail_path="email-code")
    with fresh_day() as clock, own_ip():
        mark = outbox_mark()
        tab = sign_up(client, validate=False, locale="es")  # the first code
        address = tab.email  # type: ignore[attr-defined]
        drive.ok(bool(mails_since(mark)))
        for n in range(1, rule.maximum + PAST):
            clock.shift(email_codes.CODE_RESEND_COOLDOWN + timedelta(seconds=1))
            before = outbox_mark()
            tab.post("/verify-email/resend", {})
            sent = bool(mails_since(before))
            if n < rule.maximum:
                drive.ok(sent)
            else:
                drive.refused(not sent and flashed(tab, "/verify-email", "es", rule.message))
        drive.mails = [m for m in mails_since(mark) if address in m.to and code_like(m)]
    return drive


def drive_email_code_company(client) -> Drive:
    rule = limits.rate_limit("email-code", "company")
    drive = Drive(rule.name, rule.maximum, mail_path="email-code")
    with fresh_day(), own_ip():
        mark = outbox_mark()
        tab = sign_up(client, validate=False, locale="pt-BR")
        drive.ok(bool(mails_since(mark)))
        for n in range(1, rule.maximum + PAST):
            address = unique_email("change")
            if n < rule.maximum:
                drive.ok(_change_email(tab, address))
            else:
                drive.refused(_change_refused(tab, address, "pt-BR", rule.message))
        drive.mails = [m for m in mails_since(mark) if code_like(m)]
    return drive


def drive_email_code_ip(client) -> Drive:
    rule = limits.rate_limit("email-code", "ip")
    company_max = limits.rate_limit("email-code", "company").maximum
    drive = Drive(rule.name, rule.maximum, mail_path="email-code")
    with fresh_day(), own_ip():
        mark = outbox_mark()
        tab, used = None, company_max
        for n in range(rule.maximum + PAST):
            if used == company_max:  # this company's allowance is used: another one, same IP
                before = outbox_mark()
                tab, used = sign_up(client, validate=False), 1
                if n < rule.maximum:
                    drive.ok(bool(mails_since(before)))  # its sign-up code
                else:  # signed up, but no code: the page says why
                    drive.refused(
                        not mails_since(before)
                        and flashed(tab, "/verify-email", "en", rule.message)
                    )
                continue
            assert tab is not None
            address, used = unique_email("change"), used + 1
            if n < rule.maximum:
                drive.ok(_change_email(tab, address))
            else:
                drive.refused(_change_refused(tab, address, "en", rule.message))
        drive.mails = [m for m in mails_since(mark) if code_like(m)]
    return drive


# -- invitations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InviteForm:
    path: str  # staff-invite | partner-invite
    page: str
    post: str
    limit_path: str

    def fields(self, address: str) -> dict[str, str]:
        if self.path == "staff-invite":
            return {"name": "Flood Person", "email": address, "role": "staff"}
        return {"email": address, "company_name": "Flood Partner Co", "relationship": "approve"}

    def link(self, mail: SentMail) -> bool:
        return ("/invite/" if self.path == "staff-invite" else "/signup?invite=") in mail.text


STAFF = InviteForm("staff-invite", "/settings/users", "/settings/users/invite", "staff-invite")
PARTNER = InviteForm("partner-invite", "/partners", "/partners/invite", "partner-invite")


def _invite(tab: WebSession, form: InviteForm, address: str, token: str):
    return tab.post(form.post, form.fields(address), csrf=token)


def _invite_refused(
    tab: WebSession, form: InviteForm, address: str, token: str, locale: str, key: str
) -> bool:
    answer = _invite(tab, form, address, token)
    return (
        answer.status_code == 429
        and says_limit(tab.text(), locale, key)
        and kept(tab.text(), address)
    )


def _revoke_all(tab: WebSession, form: InviteForm, token: str) -> None:
    """Revoke every pending invitation (revoke-then-invite must not reset any limit)."""
    cid = company_id(tab)
    if form.path == "staff-invite":
        for item in users.pending_invitations(cid):
            tab.post(f"/settings/users/invitations/{item.invite_id}/revoke", {}, csrf=token)
    else:
        for item in partners.overview(cid).invitations:
            tab.post(f"/partners/invitations/{item.invite_id}/revoke", {}, csrf=token)


def drive_invite_recipient(client, form: InviteForm) -> Drive:
    rule = limits.rate_limit(form.limit_path, "recipient")
    drive = Drive(rule.name, rule.maximum, mail_path=form.path)
    with fresh_day(), own_ip():
        tab = company(client, locale="es")
        tab.get(form.page)
        token = tab.csrf()
        address = unique_email("invited")
        mark = outbox_mark()
        for n in range(rule.maximum + PAST):
            if n:
                _revoke_all(tab, form, token)  # revoke, then invite the same address again
            if n < rule.maximum:
                drive.ok(_invite(tab, form, address, token).status_code == 303)
            else:
                drive.refused(_invite_refused(tab, form, address, token, "es", rule.message))
        drive.mails = [m for m in mails_since(mark) if address in m.to and form.link(m)]
    return drive


def drive_invite_company(client, form: InviteForm) -> Drive:
    rule = limits.rate_limit(form.limit_path, "company")
    drive = Drive(rule.name, rule.maximum, mail_path=form.path)
    with fresh_day(), own_ip():
        tab = company(client, locale="pt-BR")
        tab.get(form.page)
        token = tab.csrf()
        mark = outbox_mark()
        for n in range(rule.maximum + PAST):
            address = unique_email("invited")
            if n < rule.maximum:
                drive.ok(_invite(tab, form, address, token).status_code == 303)
            else:
                drive.refused(_invite_refused(tab, form, address, token, "pt-BR", rule.message))
        drive.mails = [m for m in mails_since(mark) if form.link(m)]
    return drive


def drive_invite_ip(client, form: InviteForm) -> Drive:
    rule = limits.rate_limit(form.limit_path, "ip")
    company_max = limits.rate_limit(form.limit_path, "company").maximum
    drive = Drive(rule.name, rule.maximum, mail_path=form.path)
    with fresh_day(), own_ip():
        mark = outbox_mark()
        used = company_max
        tab, token = None, ""
        for n in range(rule.maximum + PAST):
            if used == company_max:  # this company's allowance is used: another one, same IP
                tab = company(client)
                tab.get(form.page)
                token, used = tab.csrf(), 0
            assert tab is not None
            address = unique_email("invited")
            used += 1
            if n < rule.maximum:
                drive.ok(_invite(tab, form, address, token).status_code == 303)
            else:
                drive.refused(_invite_refused(tab, form, address, token, "en", rule.message))
        drive.mails = [m for m in mails_since(mark) if form.link(m)]
    return drive


# -- partnership requests -------------------------------------------------------------------------


def _propose(tab: WebSession, target: str, token: str):
    return tab.post("/partners/propose", {"to": target, "relationship": "approve"}, csrf=token)


def _propose_refused(tab: WebSession, target: str, token: str) -> bool:
    """Past the limit the proposal is saved (the partner sees it in the app); no e-mail leaves."""
    mark = outbox_mark()
    answer = _propose(tab, target, token)
    return answer.status_code == 303 and not any(_request_mail(m) for m in mails_since(mark))


def _request_mail(mail: SentMail) -> bool:
    return "/partners/" in mail.text and "/signup?invite=" not in mail.text


def _proposals(
    client, drive: Drive, rule: limits.RateLimit, per_target: int, per_company: int, locale: str
) -> None:
    """Proposal, deletion, proposal…: to a new target every ``per_target``, from a new company
    every ``per_company``; attempts past ``rule.maximum`` must be refused."""
    tab, token, target = None, "", ""
    for n in range(rule.maximum + PAST):
        if n % per_company == 0:
            tab = company(client, locale=locale)
            tab.get("/partners")
            token = tab.csrf()
        assert tab is not None
        if n % per_target == 0:
            target = company_id(company(client))
        elif n < rule.maximum:
            tab.post(f"/partners/{target}/delete", {}, csrf=token)
        if n < rule.maximum:
            drive.ok(_propose(tab, target, token).status_code == 303)
        else:
            if n % per_target:
                tab.post(f"/partners/{target}/delete", {}, csrf=token)
            drive.refused(_propose_refused(tab, target, token))


def drive_partner_request(client, scope: str) -> Drive:
    rule = limits.rate_limit("partner-request", scope)
    per_target = limits.rate_limit("partner-request", "recipient").maximum
    per_company = limits.rate_limit("partner-request", "company").maximum
    drive = Drive(rule.name, rule.maximum, mail_path="partner-request")
    with fresh_day(), own_ip():
        mark = outbox_mark()
        if scope == "recipient":
            _proposals(client, drive, rule, 10**6, 10**6, "es")
        elif scope == "company":
            _proposals(client, drive, rule, per_target, 10**6, "pt-BR")
        else:
            _proposals(client, drive, rule, per_target, per_company, "en")
        drive.mails = [m for m in mails_since(mark) if _request_mail(m)]
    return drive


# -- customer e-mails -----------------------------------------------------------------------------


def _resend(tab: WebSession, order_id: str, token: str) -> bool:
    mark = outbox_mark()
    tab.post(f"/orders/{order_id}/access/resend", {}, csrf=token)
    return any("/o/" in m.text for m in mails_since(mark))


def _customer_mails(client, drive: Drive, rule: limits.RateLimit, locale: str) -> None:
    """Orders (each e-mails its link) and link resends: a new order (customer address) every
    ``recipient`` maximum and, for the per-IP limit, a new company every ``company`` maximum."""
    per_recipient = limits.rate_limit("customer-mail", "recipient").maximum
    per_company = limits.rate_limit("customer-mail", "company").maximum
    tab, token, order_id = None, "", ""
    for n in range(rule.maximum + PAST):
        if tab is None or (rule.scope == "ip" and n % per_company == 0):
            tab = company(client, locale=locale)
            tab.get("/orders")
            token = tab.csrf()
        past = n >= rule.maximum
        if n % per_recipient == 0 and (rule.scope != "recipient" or n == 0):
            mark = outbox_mark()
            order_id, _address = register_order(tab)
            sent = any("/o/" in m.text for m in mails_since(mark))
        else:
            sent = _resend(tab, order_id, token)
        if not past:
            drive.ok(sent)
        else:
            # The order is saved either way; the refused e-mail is named on its page.
            drive.refused(not sent and flashed(tab, f"/orders/{order_id}", locale, rule.message))


def drive_customer_mail(client, scope: str) -> Drive:
    rule = limits.rate_limit("customer-mail", scope)
    drive = Drive(rule.name, rule.maximum, mail_path="customer-mail")
    with fresh_day(), own_ip():
        mark = outbox_mark()
        _customer_mails(
            client, drive, rule, {"recipient": "es", "company": "pt-BR"}.get(scope, "en")
        )
        drive.mails = [m for m in mails_since(mark) if "/o/" in m.text]
    return drive


# -- the follow form ------------------------------------------------------------------------------


def _follow(visitor: WebSession, slug: str, number: str, address: str):
    return visitor.post(f"/follow/{slug}", {"number": number, "email": address}, csrf=None)


def drive_follow(client, scope: str) -> Drive:
    rule = limits.rate_limit("follow", scope)
    drive = Drive(rule.name, rule.maximum, mail_path="customer-mail" if scope == "order" else "")
    with fresh_day():
        staff = company(client)
        order_id, address = register_order(staff)
        number = str(orders.order_view(company_id(staff), order_id).order.number)
        slug = Company.get(*Company.key(company_id(staff))).slug
        mark = outbox_mark()
        per_ip = limits.rate_limit("follow", "ip").maximum
        visitor = None
        ip = None
        for n in range(rule.maximum + PAST):
            if scope != "ip" and n % per_ip == 0:  # spread over addresses of origin
                if ip is not None:
                    ip.__exit__(None, None, None)
                ip = own_ip()
                ip.__enter__()
            elif scope == "ip" and ip is None:
                ip = own_ip()
                ip.__enter__()
            visitor = WebSession(client, accept_language="es")
            before = outbox_mark()
            answer = _follow(visitor, slug, number if scope == "order" else "999999", address)
            sent = any("/o/" in m.text for m in mails_since(before))
            if scope == "order":
                # The same answer whether or not a link left: only the outbox tells.
                if n < rule.maximum:
                    drive.ok(answer.status_code == 200 and sent)
                else:
                    drive.refused(answer.status_code == 200 and not sent)
            elif n < rule.maximum:
                drive.ok(answer.status_code == 200)
            else:
                drive.refused(
                    answer.status_code == 429
                    and says(visitor.text(), "es", rule.message)
                    and kept(visitor.text(), address)
                )
        if ip is not None:
            ip.__exit__(None, None, None)
        drive.mails = [m for m in mails_since(mark) if "/o/" in m.text]
    return drive


# -- the customer's chat (anyone holding the link can write) --------------------------------------


def drive_customer_chat(client, scope: str) -> Drive:
    """Per order: one link writes past its limit. Per IP: three links share one address
    (each stays under its own order's limit), so only the per-IP count can refuse."""
    rule = limits.rate_limit("customer-chat", scope)
    drive = Drive(rule.name, rule.maximum)
    with fresh_day(), own_ip():
        staff = company(client)
        links = [f"/o/{customer_token(register_order(staff)[1])}" for _ in range(3)]
        if scope == "order":
            links = links[:1]
        else:  # every link stays under its own order's limit
            per_link = (rule.maximum + PAST) // len(links) + 1
            assert per_link <= limits.rate_limit("customer-chat", "order").maximum
        customer = WebSession(client, accept_language="es")
        customer.get(links[0])
        for n in range(rule.maximum + PAST):
            link = links[n % len(links)]
            typed = f"¿Pueden venir el jueves? ({n})"
            answer = customer.post(f"{link}/messages", {"text": typed})
            if n < rule.maximum:
                drive.ok(answer.status_code == 303)
            else:
                drive.refused(
                    answer.status_code == 429
                    and says(customer.text(), "es", rule.message)
                    # Still in the message box (a textarea) to send again later.
                    and html.escape(typed, quote=False) in customer.text()
                )
    return drive


# -- the intake form ------------------------------------------------------------------------------


def _intake_refused(visitor: WebSession, code: str, locale: str) -> bool:
    fields = intake_fields()
    answer = send_intake(visitor, code, fields)
    return (
        answer.status_code == 429
        and says(visitor.text(), locale, "intake.rate_limited")
        and kept(visitor.text(), fields["customer_email"])
    )


def _confirmations(mark: int) -> list[SentMail]:
    return [m for m in mails_since(mark) if "/intake/confirm/" in m.text]


def drive_intake(client, scope: str, window: timedelta) -> Drive:
    rule = limits.rate_limit("intake", scope, window)
    drive = Drive(rule.name, rule.maximum, mail_path="intake-confirm")
    per_hour = limits.rate_limit("intake", "ip", limits.HOUR).maximum
    with fresh_day() as clock:
        admin = company(client)
        code = open_intake_form(admin)
        mark = outbox_mark()
        ip = own_ip()
        ip.__enter__()
        try:
            for n in range(rule.maximum + PAST):
                if n and n % per_hour == 0:
                    if scope == "ip" and window == limits.DAY:
                        clock.shift(timedelta(hours=1))  # the hourly allowance again, same day
                    elif scope == "form":
                        ip.__exit__(None, None, None)
                        ip = own_ip()
                        ip.__enter__()
                visitor = WebSession(client, accept_language="es")
                if n < rule.maximum:
                    # Every submission is counted before the form is read: all but the last
                    # few leave the problem out (422, beside the field) to keep the run short.
                    real = n >= rule.maximum - 2
                    fields = intake_fields() if real else intake_fields(problem="")
                    answer = send_intake(visitor, code, fields)
                    drive.ok(answer.status_code == (200 if real else 422))
                else:
                    drive.refused(_intake_refused(visitor, code, "es"))
        finally:
            ip.__exit__(None, None, None)
        drive.mails = _confirmations(mark)
    return drive


def _resend_intake(visitor: WebSession, code: str, address: str):
    fields = {**intake_fields(customer_email=address), "action": "resend"}
    return send_intake(visitor, code, fields)


def drive_intake_recipient(client) -> Drive:
    rule = limits.rate_limit("intake", "recipient")
    drive = Drive(rule.name, rule.maximum, mail_path="intake-confirm")
    with fresh_day() as clock, own_ip():
        admin = company(client)
        code = open_intake_form(admin)
        address = unique_email("requester")
        mark = outbox_mark()
        visitor = WebSession(client, accept_language="pt-BR")
        drive.ok(
            send_intake(visitor, code, intake_fields(customer_email=address)).status_code == 200
        )
        for n in range(1, rule.maximum + PAST):
            clock.shift(intake.RESEND_INTERVAL + timedelta(seconds=1))
            answer = _resend_intake(visitor, code, address)
            if n < rule.maximum:
                drive.ok(answer.status_code == 200)
            else:
                drive.refused(
                    answer.status_code == 429
                    and says(visitor.text(), "pt-BR", rule.message)
                    and kept(visitor.text(), address)
                )
        drive.mails = [m for m in _confirmations(mark) if address in m.to]
    return drive


# -- caps (quotas, sizes, counts, tries) ----------------------------------------------------------


def drive_monthly_orders(client) -> Drive:
    quota = 3  # the company's own quota (the free plan's default is the same attribute's fallback)
    drive = Drive("monthly-orders", quota)
    with fresh_day():
        tab = company(client, locale="es")
        Company(*Company.key(company_id(tab))).update(
            actions=[Company.monthly_quota.set(quota)], add_version_condition=False
        )
        tab.get("/orders/new")
        for n in range(quota + PAST):
            name = f"Quota Customer {n}"
            answer = tab.post("/orders/new", {**ORDER, "customer_name": name})
            if n < quota:
                drive.ok(answer.status_code == 303)
            else:
                drive.refused(
                    answer.status_code in (409, 422, 429)
                    and says(tab.text(), "es", "order.quota_exceeded")
                    and kept(tab.text(), name)
                )
    return drive


def drive_logo_upload_bytes(client) -> Drive:
    drive = Drive("logo-upload-bytes", 1)
    with fresh_day():
        tab = company(client, locale="pt-BR")
        drive.ok(upload_logo(tab, image_bytes()).status_code == 303)  # an image within the cap
        oversized = image_bytes() + b"\0" * MAX_UPLOAD_BYTES
        for _ in range(PAST):
            answer = upload_logo(tab, oversized)
            drive.refused(
                answer.status_code == 422 and says(tab.text(), "pt-BR", "profile.logo.too_large")
            )
    return drive


def drive_intake_json_bytes(client) -> Drive:
    drive = Drive("intake-json-bytes", 1)
    with fresh_day(), own_ip():
        code = open_intake_form(company(client))
        headers = {"Content-Type": "application/json", "Accept-Language": "es"}
        fields = {k: v for k, v in intake_fields().items() if k != "website"}
        body = json.dumps(fields)
        drive.ok(
            client.http.post(f"/api/v1/intake/{code}", headers=headers, body=body).status_code < 300
        )
        padded = json.dumps({**fields, "problem": "x" * intake.MAX_JSON_BYTES})
        for _ in range(PAST):
            answer = client.http.post(f"/api/v1/intake/{code}", headers=headers, body=padded)
            drive.refused(
                answer.status_code in (400, 413)
                and answer.json_body.get("error") == "body_too_large"
            )
    return drive


def drive_pending_invitations(client, form: InviteForm) -> Drive:
    cap = (
        users.MAX_PENDING_INVITATIONS
        if form.path == "staff-invite"
        else partners.MAX_PENDING_INVITES
    )
    key = (
        "users.too_many_invitations" if form.path == "staff-invite" else "partners.too_many_invites"
    )
    drive = Drive(
        f"pending-{'staff' if form.path == 'staff-invite' else 'partner'}-invitations", cap
    )
    per_day = limits.rate_limit(form.limit_path, "company").maximum
    with fresh_day() as clock, own_ip():
        tab = company(client, locale="es")
        tab.get(form.page)
        token = tab.csrf()
        for n in range(cap + PAST):
            if n and n % per_day == 0:
                clock.shift(timedelta(days=1))  # the daily sending allowance again
                token = relogin(tab, form.page)
            address = unique_email("pending")
            answer = _invite(tab, form, address, token)
            if n < cap:
                drive.ok(answer.status_code == 303)
            else:
                drive.refused(
                    answer.status_code == 422
                    and says(tab.text(), "es", key)
                    and kept(tab.text(), address)
                )
    return drive


def drive_email_code_tries(client) -> Drive:
    drive = Drive("email-code-tries", email_codes.CODE_MAX_TRIES)
    with fresh_day(), own_ip():
        tab = sign_up(client, validate=False, locale="pt-BR")
        right = code_in(last_mail_to(tab.email))  # type: ignore[attr-defined]
        wrong = f"{(int(right) + 1) % 1_000_000:06d}"
        tab.get("/verify-email")
        for n in range(email_codes.CODE_MAX_TRIES):
            answer = tab.post("/verify-email", {"code": wrong})
            # Each wrong try is evaluated: "wrong code" while tries are left, then "too many".
            last = n == email_codes.CODE_MAX_TRIES - 1
            key = "verify.too_many_tries" if last else "verify.wrong_code"
            drive.ok(answer.status_code == 400 and says(tab.text(), "pt-BR", key))
        for _ in range(PAST):
            answer = tab.post("/verify-email", {"code": right})  # even the right code now
            drive.refused(
                answer.status_code == 400 and says(tab.text(), "pt-BR", "verify.too_many_tries")
            )
    return drive


def drive_email_code_cooldown(client) -> Drive:
    drive = Drive("email-code-resend-cooldown", 1)
    with fresh_day(), own_ip():
        mark = outbox_mark()
        tab = sign_up(client, validate=False, locale="es")
        address = tab.email  # type: ignore[attr-defined]
        drive.ok(len([m for m in mails_since(mark) if address in m.to]) == 1)
        for _ in range(PAST):
            before = outbox_mark()
            tab.post("/verify-email/resend", {})
            drive.refused(
                not mails_since(before)
                and flashed(tab, "/verify-email", "es", "verify.resend_wait")
            )
    return drive


def drive_intake_resend_interval(client) -> Drive:
    drive = Drive("intake-resend-interval", 1)
    with fresh_day(), own_ip():
        code = open_intake_form(company(client))
        address = unique_email("requester")
        visitor = WebSession(client, accept_language="en")
        drive.ok(
            send_intake(visitor, code, intake_fields(customer_email=address)).status_code == 200
        )
        for _ in range(PAST):
            answer = _resend_intake(visitor, code, address)
            drive.refused(
                answer.status_code == 429 and says(visitor.text(), "en", "intake.resend_too_soon")
            )
    return drive


# -- lifetimes: usable one second before the edge, refused at it and a day after ----------------

SECOND = timedelta(seconds=1)


@contextmanager
def stopped_day() -> Iterator[time_machine.Traveller]:
    """A stopped clock on a day no other driver uses: a lifetime is seen to the second."""
    start = (now() + timedelta(days=next(_days))).replace(hour=0, minute=0, second=5, microsecond=0)
    with time_machine.travel(start, tick=False) as traveller:
        yield traveller


def _lifetime(
    name: str,
    span: timedelta,
    make: Callable[[], object],
    works: Callable[[object], bool],
    refused: Callable[[object], bool],
) -> Drive:
    """One new item per attempt: used at ``span - 1 s`` (must work), at ``span`` and a minute
    later (must be refused, with the reason where the page gives one)."""
    drive = Drive(name, 1)
    for late in (span - SECOND, span, span + timedelta(minutes=1)):
        with stopped_day() as clock, own_ip():
            thing = make()
            clock.shift(late)
            if late < span:
                drive.ok(works(thing))
            else:
                drive.refused(refused(thing))
    return drive


def drive_email_code_lifetime(client) -> Drive:
    def make():
        tab = sign_up(client, validate=False, locale="es")
        return tab, code_in(last_mail_to(tab.email))  # type: ignore[attr-defined]

    def verify(thing):
        tab, code = thing
        tab.get("/verify-email")
        return tab.post("/verify-email", {"code": code})

    return _lifetime(
        "email-code-lifetime",
        email_codes.CODE_LIFETIME,
        make,
        lambda t: verify(t).status_code == 303,
        lambda t: verify(t).status_code == 400 and says(t[0].text(), "es", "verify.expired"),
    )


def _signed_out_account(client, locale: str = "en") -> str:
    owner = sign_up(client, locale=locale)
    owner.post("/logout", {})
    return owner.email  # type: ignore[attr-defined]


def drive_reset_link_lifetime(client) -> Drive:
    def make():
        address = _signed_out_account(client)
        visitor = WebSession(client)
        visitor.get("/password/forgot")
        visitor.post("/password/forgot", {"email": address})
        return visitor, link_in(last_mail_to(address), "/password/reset/")

    def refused(thing) -> bool:
        visitor, link = thing
        shown = visitor.get(link).status_code
        return (
            shown == 404
            and visitor.post(link, {"password": "brand new secret 1"}).status_code == 404
        )

    return _lifetime(
        "password-reset-lifetime",
        password_reset.RESET_LIFETIME,
        make,
        lambda t: t[0].get(t[1]).status_code == 200,
        refused,
    )


def drive_unlock_link_lifetime(client) -> Drive:
    def make():
        address = _signed_out_account(client)
        assert _fail_until_locked(client, address)
        link = link_in(last_mail_to(address), "/login/unlock/")
        return WebSession(client), link

    def use(thing) -> int:
        reader, link = thing
        if reader.get(link).status_code != 200:
            return 404
        return reader.post(link, {}).status_code

    return _lifetime(
        "unlock-link-lifetime",
        signin.UNLOCK_LIFETIME,
        make,
        lambda t: use(t) == 303,
        lambda t: (
            t[0].get(t[1]).status_code == 404 and t[0].post(t[1], {}).status_code in (403, 404)
        ),
    )


def drive_staff_invitation_lifetime(client) -> Drive:
    def make():
        admin = company(client)
        address = unique_email("invitee")
        admin.get("/settings/users")
        admin.post("/settings/users/invite", {"name": "Invitee", "email": address, "role": "staff"})
        return WebSession(client, accept_language="es"), link_in(last_mail_to(address), "/invite/")

    def refused(thing) -> bool:
        guest, link = thing
        return guest.get(link).status_code == 404 and says(guest.text(), "es", "invite.invalid")

    return _lifetime(
        "staff-invitation-lifetime",
        users.INVITE_LIFETIME,
        make,
        lambda t: t[0].get(t[1]).status_code == 200,
        refused,
    )


def _join(client, invite: str) -> WebSession:
    """A new company signs up through a partner invitation."""
    tab = WebSession(client, accept_language="pt-BR")
    tab.get(f"/signup?invite={invite}")
    tab.post("/signup", {**_signup_form(unique_email("joiner")), "invite": invite})
    return tab


def drive_partner_invitation_lifetime(client) -> Drive:
    def make():
        inviter = company(client)
        address = unique_email("partner-invitee")
        inviter.get("/partners")
        inviter.post("/partners/invite", {"email": address, "relationship": "approve"})
        link = link_in(last_mail_to(address), "/signup?invite=")
        return inviter, link.split("invite=", 1)[1]

    def partners_after_joining(thing) -> tuple[int, WebSession]:
        inviter, invite = thing
        joiner = _join(client, invite)
        return len(partners.overview(company_id(inviter)).partnerships), joiner

    def refused(thing) -> bool:
        _inviter, invite = thing
        visitor = WebSession(client, accept_language="pt-BR")
        visitor.get(f"/signup?invite={invite}")
        told = says(visitor.text(), "pt-BR", "partners.invite_invalid")
        return told and partners_after_joining(thing)[0] == 0

    return _lifetime(
        "partner-invitation-lifetime",
        partners.INVITE_LIFETIME,
        make,
        lambda t: partners_after_joining(t)[0] == 1,
        refused,
    )


def drive_intake_confirmation_lifetime(client) -> Drive:
    def make():
        visitor = WebSession(client, accept_language="es")
        _address, token = intake_confirmation_token(visitor, open_intake_form(company(client)))
        return visitor, token

    def confirm(thing):
        visitor, token = thing
        return visitor.post(f"/intake/confirm/{token}", {}, csrf=None)

    return _lifetime(
        "intake-confirmation-lifetime",
        intake.PENDING_LIFETIME,
        make,
        lambda t: confirm(t).status_code == 200,
        lambda t: confirm(t).status_code == 410 and says(t[0].text(), "es", "intake.link_expired"),
    )


def _signed_in(tab: WebSession) -> bool:
    return tab.get("/orders").status_code == 200


def _sent_to_sign_in(tab: WebSession) -> bool:
    answer = tab.get("/orders")
    return answer.status_code == 303 and answer.headers["Location"].startswith("/login")


def drive_session_idle(client) -> Drive:
    return _lifetime(
        "session-idle",
        timedelta(minutes=get_settings().session_idle_minutes),
        lambda: company(client),
        _signed_in,
        _sent_to_sign_in,
    )


def drive_session_lifetime(client) -> Drive:
    """A session in constant use (a request every 15 minutes) still ends at its lifetime."""
    lifetime = timedelta(hours=get_settings().session_ttl_hours)
    busy_every = timedelta(minutes=15)
    drive = Drive("session-lifetime", 1)
    for late in (lifetime - SECOND, lifetime, lifetime + timedelta(minutes=5)):
        with stopped_day() as clock, own_ip():
            started = now()
            tab = company(client)
            busy = True
            while now() + busy_every < started + lifetime:
                clock.shift(busy_every)
                busy = busy and _signed_in(tab)
            clock.move_to(started + late)
            if late < lifetime:
                drive.ok(busy and _signed_in(tab))
            else:
                drive.refused(busy and _sent_to_sign_in(tab))
    return drive


def drive_customer_link_lifetime(client) -> Drive:
    def make():
        _order_id, address = register_order(company(client))
        return WebSession(client), customer_token(address)

    return _lifetime(
        "customer-link-lifetime",
        timedelta(days=customers.LINK_DAYS_OPEN),
        make,
        lambda t: t[0].get(f"/o/{t[1]}").status_code == 200,
        lambda t: t[0].get(f"/o/{t[1]}").status_code == 404,
    )


# -- sizes and counts on forms --------------------------------------------------------------------


def drive_chat_message_chars(client) -> Drive:
    drive = Drive("chat-message-chars", 1)
    with fresh_day():
        tab = company(client, locale="pt-BR")
        order_id, _address = register_order(tab)
        tab.get(f"/orders/{order_id}")
        token = tab.csrf()
        longest = "a" * orders.MAX_MESSAGE
        answer = tab.post(f"/orders/{order_id}/messages", {"text": longest}, csrf=token)
        drive.ok(answer.status_code == 303)
        for extra in range(1, PAST + 1):
            text = "b" * (orders.MAX_MESSAGE + extra)
            answer = tab.post(f"/orders/{order_id}/messages", {"text": text}, csrf=token)
            drive.refused(
                answer.status_code == 422
                and says(tab.text(), "pt-BR", "form.too_long")
                and text in tab.text()
            )
    return drive


def drive_custom_fields(client) -> Drive:
    drive = Drive("custom-fields", custom_fields.MAX_FIELDS)
    with fresh_day():
        admin = company(client, locale="es")
        admin.get("/settings/fields")
        for n in range(custom_fields.MAX_FIELDS + PAST):
            label = f"Campo {n}"
            answer = admin.post("/settings/fields", {"label": label, "kind": "text"})
            if n < custom_fields.MAX_FIELDS:
                drive.ok(answer.status_code == 303)
            else:
                drive.refused(
                    answer.status_code == 422
                    and says(admin.text(), "es", "fields.too_many")
                    and kept(admin.text(), label)
                )
    return drive


def drive_intake_origins(client) -> Drive:
    drive = Drive("intake-origins", 1)
    with fresh_day():
        admin = company(client, locale="en")
        open_intake_form(admin)  # the websites are asked for once the form has its code
        sites = [f"https://shop{n}.example.com" for n in range(intake.MAX_ORIGINS + PAST)]

        def save(count: int):
            admin.get("/settings/intake")
            version = re.search(r'name="version" value="(\d+)"', admin.text())
            form = {"action": "origins", "origins": "\n".join(sites[:count])}
            return admin.post(
                "/settings/intake", {**form, "version": version.group(1) if version else ""}
            )

        drive.ok(save(intake.MAX_ORIGINS).status_code == 303)
        for extra in range(1, PAST + 1):
            answer = save(intake.MAX_ORIGINS + extra)
            drive.refused(
                answer.status_code == 422
                and says(admin.text(), "en", "intake.too_many_origins")
                and sites[-1 if extra == PAST else intake.MAX_ORIGINS] in admin.text()
            )
    return drive


# -- the table: every declared limit -> its driver ------------------------------------------------

DRIVERS: dict[str, Callable[..., Drive]] = {
    "signup:ip:1h": drive_signup_ip,
    "password-reset:ip:1h": drive_reset_ip,
    "password-reset:recipient:1h": drive_reset_recipient,
    "account-unlock:recipient:1h": drive_account_unlock,
    "email-code:company:1d": drive_email_code_company,
    "email-code:recipient:1d": drive_email_code_recipient,
    "email-code:ip:1d": drive_email_code_ip,
    "staff-invite:company:1d": lambda c: drive_invite_company(c, STAFF),
    "staff-invite:recipient:1d": lambda c: drive_invite_recipient(c, STAFF),
    "staff-invite:ip:1d": lambda c: drive_invite_ip(c, STAFF),
    "partner-invite:company:1d": lambda c: drive_invite_company(c, PARTNER),
    "partner-invite:recipient:1d": lambda c: drive_invite_recipient(c, PARTNER),
    "partner-invite:ip:1d": lambda c: drive_invite_ip(c, PARTNER),
    "partner-request:company:1d": lambda c: drive_partner_request(c, "company"),
    "partner-request:recipient:1d": lambda c: drive_partner_request(c, "recipient"),
    "partner-request:ip:1d": lambda c: drive_partner_request(c, "ip"),
    "customer-mail:company:1d": lambda c: drive_customer_mail(c, "company"),
    "customer-mail:recipient:1d": lambda c: drive_customer_mail(c, "recipient"),
    "customer-mail:ip:1d": lambda c: drive_customer_mail(c, "ip"),
    "follow:ip:15m": lambda c: drive_follow(c, "ip"),
    "follow:company:15m": lambda c: drive_follow(c, "company"),
    "follow:order:15m": lambda c: drive_follow(c, "order"),
    "customer-chat:order:15m": lambda c: drive_customer_chat(c, "order"),
    "customer-chat:ip:15m": lambda c: drive_customer_chat(c, "ip"),
    "intake:ip:1h": lambda c: drive_intake(c, "ip", limits.HOUR),
    "intake:ip:1d": lambda c: drive_intake(c, "ip", limits.DAY),
    "intake:form:1h": lambda c: drive_intake(c, "form", limits.HOUR),
    "intake:recipient:1d": drive_intake_recipient,
    "monthly-orders": drive_monthly_orders,
    "logo-upload-bytes": drive_logo_upload_bytes,
    "intake-json-bytes": drive_intake_json_bytes,
    "pending-staff-invitations": lambda c: drive_pending_invitations(c, STAFF),
    "pending-partner-invitations": lambda c: drive_pending_invitations(c, PARTNER),
    "email-code-tries": drive_email_code_tries,
    "email-code-resend-cooldown": drive_email_code_cooldown,
    "intake-resend-interval": drive_intake_resend_interval,
    "email-code-lifetime": drive_email_code_lifetime,
    "password-reset-lifetime": drive_reset_link_lifetime,
    "unlock-link-lifetime": drive_unlock_link_lifetime,
    "staff-invitation-lifetime": drive_staff_invitation_lifetime,
    "partner-invitation-lifetime": drive_partner_invitation_lifetime,
    "intake-confirmation-lifetime": drive_intake_confirmation_lifetime,
    "session-idle": drive_session_idle,
    "session-lifetime": drive_session_lifetime,
    "customer-link-lifetime": drive_customer_link_lifetime,
    "chat-message-chars": drive_chat_message_chars,
    "custom-fields": drive_custom_fields,
    "intake-origins": drive_intake_origins,
}

# Drives made in this pytest process: the rate-limit and mail-flood suites read the
# same drive instead of making it twice (each runs it itself when run alone).
_DONE: dict[str, Drive] = {}


def run(name: str, client) -> Drive:
    if name not in _DONE:
        _DONE[name] = DRIVERS[name](client)
    return _DONE[name]


# The limits whose drives make a user-triggerable e-mail go out (or be refused).
# Limits on paths that send e-mail (the customer chat sends none: staff are told in the app).
MAIL_LIMITS = [
    r.name
    for r in limits.RATE_LIMITS
    if not (r.path == "follow" and r.scope != "order") and r.path != "customer-chat"
]

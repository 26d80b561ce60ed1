"""Mail header injection: CR/LF payloads in every value that reaches a header; none gets through.

Values reach headers two ways: the company name (From display name and
subjects), the order/intake customer name (the intake subject), the inviter
and invited company names (partner subjects), and the addresses (To,
Reply-To). Each payload goes through the real services that send those
mails; then every raw message moto's SES accepted is parsed: one sender, the
intended recipient only, no Cc/Bcc or unknown header, and the MIME structure
intact (an injected blank line would have ended the headers early). The
mail adapter's own guard is also hit directly with the raw, unnormalised
payloads, since a future caller may skip the form cleaning.
"""

from __future__ import annotations

import email
from email.message import Message
from email.policy import default

import pytest

from chalicelib.aws import mail
from chalicelib.config import get_settings
from chalicelib.db.accounts import Company
from chalicelib.domain.errors import ValidationFailed
from chalicelib.services import customers, mailer, orders, partners, signup, users
from chalicelib.services.orders import Actor
from chalicelib.services.sessions import Principal
from tests.figures import report
from tests.security.payloads import EVIL_ADDRESS, HEADERS
from tests.web.factories import PASSWORD, unique_email

ALLOWED_HEADERS = {
    "from",
    "to",
    "reply-to",
    "subject",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "message-id",
    "date",
    "content-language",
    "auto-submitted",
    "list-unsubscribe",
    "list-unsubscribe-post",
}
FIELDS = (
    "company_name (From, subjects)",
    "contact_name (inviter)",
    "invited name",
    "partner invite company_name",
    "order customer_name (intake subject)",
    "customer_email (To)",
    "invite email (To)",
    "company email (Reply-To)",
    "adapter subject",
    "adapter from_name",
)


def _raw_messages(since: int) -> list[tuple[str, list[str]]]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    backend = ses_backends[DEFAULT_ACCOUNT_ID][get_settings().region]
    found = []
    for sent in backend.sent_messages[since:]:
        raw = getattr(sent, "raw_data", None)
        if raw is not None:
            found.append((raw, list(getattr(sent, "destinations", []) or [])))
    return found


def _sent_count() -> int:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return len(ses_backends[DEFAULT_ACCOUNT_ID][get_settings().region].sent_messages)


def injected(raw: str, destinations: list[str], expected_to: set[str]) -> list[str]:
    """What in this raw message an attacker's value added: headers, recipients, lost structure."""
    problems: list[str] = []
    head = raw.replace("\r\n", "\n").split("\n\n", 1)[0]
    for line in head.split("\n"):
        if line[:1] in (" ", "\t"):
            continue  # a folded continuation of the header above
        name = line.split(":", 1)[0].strip().lower()
        if name not in ALLOWED_HEADERS:
            problems.append(f"unexpected header line {line[:80]!r}")
    parsed: Message = email.message_from_string(raw, policy=default)
    for name in ("cc", "bcc"):
        if parsed.get(name) is not None:
            problems.append(f"{name} header present")
    senders = [a.addr_spec for a in parsed["From"].addresses]
    if senders != [get_settings().mail_sender]:
        problems.append(f"From addresses {senders}")
    recipients = {a.addr_spec.lower() for a in parsed["To"].addresses}
    if recipients - expected_to or len(recipients) != 1:
        problems.append(f"To addresses {recipients}")
    if parsed["Reply-To"] is not None:
        replies = [a.addr_spec for a in parsed["Reply-To"].addresses]
        if len(replies) != 1 or EVIL_ADDRESS in replies:
            problems.append(f"Reply-To addresses {replies}")
    if any(EVIL_ADDRESS in d for d in destinations):
        problems.append(f"SES destinations {destinations}")
    if parsed.get_content_type() != "multipart/alternative":
        problems.append(f"MIME structure lost: {parsed.get_content_type()}")
    return problems


def _company(payload: str) -> tuple[Company, Principal, Actor]:
    account = signup.sign_up(
        {
            "company_name": payload,
            "business_type": "Repairs",
            "area": "Lisbon",
            "contact_name": payload,
            "phone": "+351 912 345 678",
            "email": unique_email("headers"),
            "password": PASSWORD,
        },
        "en",
    )
    company = account.company
    company.update(actions=[Company.email_validated.set(True)])
    company = Company.get(*Company.key(company.company_id), consistent_read=True)
    principal = Principal(user=account.user, company=company)
    actor = Actor(
        name=account.user.name, user_id=account.user.user_id, company_id=company.company_id
    )
    return company, principal, actor


def _address_refused(send) -> bool:
    try:
        send()
    except (ValidationFailed, mail.MailNotSent):
        return True
    return False


@pytest.mark.parametrize("name", list(HEADERS))
def test_no_header_or_recipient_can_be_injected(aws, name: str) -> None:
    _FIGURES["runs"] += 1
    payload = HEADERS[name]
    since = _sent_count()
    expected: set[str] = set()
    company, principal, actor = _company(payload)
    # users: invitation (From company name, subject with company, name in the body)
    invitee = unique_email("invitee")
    expected.add(invitee)
    users.invite(principal, {"name": payload, "email": invitee, "role": "staff"}, "en")
    # partners: invitation (From and subject with the inviter, the invited company's name)
    partner = unique_email("partner")
    expected.add(partner)
    partners.invite(
        principal, {"email": partner, "company_name": payload, "relationship": "both"}, "en"
    )
    # orders: the customer's private link (From company, subject company + number, Reply-To)
    customer = unique_email("customer")
    expected.add(customer)
    form = {"customer_name": payload, "problem": payload, "customer_email": customer}
    order = orders.register_order(company, actor, form, {})
    customers.send_access_link(company, order, "en")
    # intake: the company's "new order" mail has the requester's name in its subject
    expected.add(company.email)
    mailer.send_templated(
        company.email,
        "intake_new_order",
        "en",
        from_name="CheckOS",
        company=company,
        order=order,
        link="http://testserver/orders/x",
        subject_params={"number": order.number, "name": payload},
    )
    # the adapter itself, fed the raw payload (no form cleaning before it)
    target = unique_email("raw")
    expected.add(target)
    mail.send(mail.Mail(to=target, subject=payload, text="t", html="<p>h</p>", from_name=payload))
    # addresses: a payload glued to an address is refused, never sent
    refused = [
        _address_refused(
            lambda: orders.register_order(
                company, actor, {**form, "customer_email": f"a@example.com{payload}"}, {}
            )
        ),
        _address_refused(
            lambda: users.invite(
                principal, {"name": "x", "email": f"b@example.com{payload}", "role": "staff"}, "en"
            )
        ),
        _address_refused(
            lambda: mail.send(
                mail.Mail(to=f"c@example.com{payload}", subject="s", text="t", html="h")
            )
        ),
        _address_refused(
            lambda: mail.send(
                mail.Mail(
                    to=target, subject="s", text="t", html="h", reply_to=f"d@example.com{payload}"
                )
            )
        ),
    ]
    messages = _raw_messages(since)
    problems = [
        p
        for raw, destinations in messages
        for p in injected(raw, destinations, {a.lower() for a in expected})
    ]
    _FIGURES["payloads"].add(name)
    _FIGURES["messages"] += len(messages)
    _FIGURES["injected"] += len(problems) + refused.count(False)
    assert len(messages) >= 5, f"only {len(messages)} mails were sent"
    assert all(refused), f"an address carrying the payload was accepted: {refused}"
    assert not problems, problems[:5]


def test_the_check_above_can_fail() -> None:
    """A message built by naive string concatenation is caught."""
    sender = get_settings().mail_sender
    raw = (
        f"From: Acme <{sender}>\r\nTo: x@example.com\r\nSubject: Hi\r\nBcc: {EVIL_ADDRESS}\r\n"
        "Content-Type: text/plain\r\n\r\nbody"
    )
    assert injected(raw, [], {"x@example.com"})


_FIGURES: dict = {"runs": 0, "payloads": set(), "messages": 0, "injected": 0}


@pytest.fixture(scope="module", autouse=True)
def _figure_line():
    yield
    if _FIGURES["runs"]:  # a payload test ran: it must have sent and parsed messages
        report(
            "mail_headers",
            require=("payloads", "messages"),
            payloads=len(_FIGURES["payloads"]),
            fields=len(FIELDS),
            messages=_FIGURES["messages"],
            injected=_FIGURES["injected"],
        )

"""SES adapter: one MIME message (text + HTML), safe headers, raw send."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr

from chalicelib.aws.clients import client
from chalicelib.config import get_settings

MAX_SUBJECT = 150
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")  # with Unicode line breaks


class MailNotSent(Exception):
    """SES refused or failed; the caller records it and carries on."""


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str
    reply_to: str | None = None
    from_name: str | None = None


def header_text(value: str, limit: int = MAX_SUBJECT) -> str:
    """One line of header text: control characters (CR/LF) folded to spaces, capped.

    "=?" is split by a word joiner (invisible): the email package decodes RFC 2047
    encoded words in header values it is given, so a name such as
    "=?utf-8?q?x=0D=0ABcc:_y?=" would otherwise come out as a raw CR LF and a new header.
    """
    flat = _CONTROL.sub(" ", value).strip().replace("=?", "=\u2060?")
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def build_message(mail: Mail, sender: str) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = formataddr((header_text(mail.from_name or "CheckOS", 70), sender))
    msg["To"] = Address(addr_spec=mail.to)
    if mail.reply_to:
        msg["Reply-To"] = Address(addr_spec=mail.reply_to)
    msg["Subject"] = header_text(mail.subject)
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    return msg


def send(mail: Mail) -> str:
    """Send through SES; returns the message id or raises MailNotSent."""
    sender = get_settings().mail_sender
    try:
        message = build_message(mail, sender)
        raw = message.as_bytes()
    except (ValueError, TypeError) as problem:  # bad address or header
        raise MailNotSent(str(problem)) from problem
    try:
        answer = client("sesv2").send_email(
            FromEmailAddress=sender,
            Destination={"ToAddresses": [mail.to]},
            Content={"Raw": {"Data": raw}},
        )
    except Exception as problem:
        raise MailNotSent(str(problem)) from problem
    return str(answer.get("MessageId", ""))

"""SES adapter: one MIME message (text + HTML), headers built from parts, raw send."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, Policy
from email.utils import formatdate, make_msgid
from typing import Any

from chalicelib.aws.clients import client
from chalicelib.config import get_settings
from chalicelib.domain.validation import wire_email

MAX_SUBJECT = 150
MAX_NAME = 70
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")  # with Unicode line breaks
_TAG = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# A display name never shows or adds an address: the characters that make one
# are replaced by look-alikes that no mail program reads as address syntax.
_NEUTRAL = str.maketrans({"<": "‹", ">": "›", "@": " at "})


class MailNotSent(Exception):
    """SES refused or failed; the caller records it and carries on."""


class MailSuppressed(MailNotSent):
    """The address bounced, complained or opted out: nothing was attempted."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"{address}: {reason}")
        self.address = address
        self.reason = reason


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str
    reply_to: str | None = None
    from_name: str | None = None
    to_name: str | None = None
    reply_to_name: str | None = None
    # BCP 47 language of the message (Content-Language), e.g. "pt-BR".
    language: str = "en"
    # RFC 3834: every message CheckOS writes itself is auto-generated.
    automatic: bool = True
    # RFC 8058 one-click unsubscribe (an HTTPS URL answering POST), when the mail has one.
    unsubscribe_url: str | None = None
    # SES message tags (name -> value, [A-Za-z0-9_-]), returned in bounce/complaint events.
    tags: Mapping[str, str] = field(default_factory=dict)


def header_text(value: str, limit: int = MAX_SUBJECT) -> str:
    """One line of header text: control characters (CR/LF) folded to spaces, capped.

    "=?" is split by a word joiner (invisible): the email package decodes RFC 2047
    encoded words in header values it is given, so a name such as
    "=?utf-8?q?x=0D=0ABcc:_y?=" would otherwise come out as a raw CR LF and a new header.
    """
    flat = _CONTROL.sub(" ", value).strip().replace("=?", "=\u2060?")
    flat = _SURROGATE.sub("\ufffd", " ".join(flat.split()))
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def display_name(value: str | None, limit: int = MAX_NAME) -> str:
    """The display name as the recipient will read it: one line, no address syntax."""
    return header_text((value or "").translate(_NEUTRAL), limit)


class _Prebuilt(str):
    """A header value already in wire form: the policy folds it as is, never re-parses it.

    Assigning a plain string makes the email package parse it again (and its
    folder loses spaces between encoded words, CPython gh-92081, and splits
    display names badly): these headers are written here, once, from parts.
    """

    name: str
    addresses: tuple[Address, ...]
    _wire: str

    def __new__(
        cls, name: str, wire: str, shown: str, addresses: tuple[Address, ...] = ()
    ) -> _Prebuilt:
        self = super().__new__(cls, shown)
        self.name = name
        self.addresses = addresses
        self._wire = wire
        return self

    def fold(self, *, policy: Policy) -> str:
        wire = self._wire.replace("\r\n", policy.linesep)
        return f"{self.name}: {wire}{policy.linesep}"


def _encoded_words(text: str) -> str:
    """Text as RFC 2047 encoded words: ASCII stays plain, otherwise one Header encoding."""
    if text.isascii():
        return Header(text, "us-ascii", header_name="Subject").encode(linesep="\r\n")
    return Header(text, "utf-8", header_name="Subject").encode(linesep="\r\n")


def _address_header(name: str, addresses: list[Address]) -> _Prebuilt:
    """From / To / Reply-To from Address objects.

    An ASCII display name is quoted by the Address object itself; any other is
    one encoded word (quotes, semicolons and brackets inside it are text, not
    syntax). One word, because two adjacent words are read back with a space
    between them by CPython's parser and without one by other parsers.
    """
    parts = []
    for address in addresses:
        if not address.display_name or address.display_name.isascii():
            parts.append(str(address))
            continue
        word = Header(address.display_name, "utf-8", maxlinelen=10_000).encode()
        parts.append(f"{word}\r\n <{address.addr_spec}>")
    shown = ", ".join(str(a) for a in addresses)
    return _Prebuilt(name, ", ".join(parts), shown, tuple(addresses))


def mail_address(address: str, name: str | None = None) -> Address:
    """An Address with an IDNA (punycode) domain and a neutralised display name.

    Raises ValueError for an address the sending path cannot carry.
    """
    local, _, domain = wire_email(address).rpartition("@")
    return Address(display_name=display_name(name), username=local, domain=domain)


def build_message(mail: Mail, sender: str) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    sender_address = mail_address(sender, display_name(mail.from_name) or "CheckOS")
    msg["From"] = _address_header("From", [sender_address])
    msg["To"] = _address_header("To", [mail_address(mail.to, mail.to_name)])
    if mail.reply_to:
        msg["Reply-To"] = _address_header(
            "Reply-To", [mail_address(mail.reply_to, mail.reply_to_name)]
        )
    subject = header_text(mail.subject)
    msg["Subject"] = _Prebuilt("Subject", _encoded_words(subject), subject)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender_address.domain)
    if mail.automatic:
        msg["Auto-Submitted"] = "auto-generated"
    if mail.unsubscribe_url:
        url = mail.unsubscribe_url
        if not url.isascii() or any(c in url for c in "<>\r\n \t,"):
            raise ValueError("unsubscribe URL must be a plain ASCII URL")
        msg["List-Unsubscribe"] = _Prebuilt("List-Unsubscribe", f"<{url}>", f"<{url}>")
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # Quoted-printable: 7-bit on the wire whatever the language (8-bit parts
    # were shown garbled by readers that took them for Latin-1).
    msg.set_content(mail.text, cte="quoted-printable")
    msg.add_alternative(mail.html, subtype="html", cte="quoted-printable")
    msg["Content-Language"] = mail.language  # after the parts: set_content drops Content-*
    return msg


def send(mail: Mail) -> str:
    """Send through SES with the configuration set; the message id, or raises MailNotSent."""
    settings = get_settings()
    sender = settings.mail_sender
    try:
        message = build_message(mail, sender)
        raw = message.as_bytes()
        to = wire_email(mail.to)
    except (ValueError, TypeError) as problem:  # bad address or header
        raise MailNotSent(str(problem)) from problem
    extra: dict[str, Any] = {}
    if settings.mail_configuration_set:
        extra["ConfigurationSetName"] = settings.mail_configuration_set
    tags = [{"Name": k, "Value": v} for k, v in mail.tags.items() if _TAG.match(k + v)]
    if tags:
        extra["EmailTags"] = tags
    try:
        answer = client("sesv2").send_email(
            FromEmailAddress=wire_email(sender),
            Destination={"ToAddresses": [to]},
            Content={"Raw": {"Data": raw}},
            **extra,
        )
    except Exception as problem:
        raise MailNotSent(str(problem)) from problem
    return str(answer.get("MessageId", ""))

"""Local outbox: every e-mail the local (moto) SES accepted, rendered with live links.

Only the local and test stages have it (and there only with OUTBOX_ENABLED);
every deployed stage answers 404, whatever else is set. moto is imported here
lazily: Lambda has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.config import get_settings
from chalicelib.domain.errors import NotFound
from chalicelib.web.context import PUBLIC, Ctx, route

if TYPE_CHECKING:
    from email.message import EmailMessage, Message

bp = Blueprint(__name__)


@dataclass(frozen=True)
class SentMail:
    index: int
    to: str
    sender: str
    reply_to: str
    subject: str
    text: str
    html: str
    # The message as SES got it: headers and MIME source, exactly as sent.
    raw: str = ""


def sent_mails() -> list[SentMail]:
    """What the in-process moto SES recorded, oldest first."""
    import email  # here, like moto: only the local run reads mail back
    from email.policy import default

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    region = get_settings().region
    backend = ses_backends[DEFAULT_ACCOUNT_ID][region]
    result = []
    for index, sent in enumerate(backend.sent_messages):
        raw = getattr(sent, "raw_data", None)
        if raw is None:
            continue
        parsed: EmailMessage = email.message_from_string(raw, policy=default)
        result.append(
            SentMail(
                index=index,
                to=_header(parsed, "To"),
                sender=_header(parsed, "From"),
                reply_to=_header(parsed, "Reply-To"),
                subject=_header(parsed, "Subject"),
                text=_part(parsed, "plain"),
                html=_part(parsed, "html"),
                raw=raw,
            )
        )
    return result


def _header(message: Message, name: str) -> str:
    """A header as text; an address whose encoded display name the stdlib's parser trips on
    (a company named ``<scr\u200bipt>…``, valid RFC 2047) is decoded word by word instead."""
    from email.errors import HeaderParseError  # here, like sent_mails: the local run only

    try:
        return str(message.get(name, ""))
    except (IndexError, ValueError, HeaderParseError):
        from email.header import decode_header, make_header

        raw = next((v for k, v in message.raw_items() if k.lower() == name.lower()), "")
        return str(make_header(decode_header(str(raw))))


def _part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,))
    return body.get_content() if body is not None else ""


def _require_enabled() -> None:
    settings = get_settings()
    # The stage decides first: a deployed stage has no outbox whatever else is set.
    if not (settings.is_local and settings.outbox_enabled):
        raise NotFound()


@route(bp, "/dev/outbox", auth=PUBLIC)
def outbox(ctx: Ctx) -> Response:
    _require_enabled()
    return ctx.render("pages/outbox.html", mails=list(reversed(sent_mails())))


@route(bp, "/dev/outbox/{index}", auth=PUBLIC)
def outbox_message(ctx: Ctx, index: str) -> Response:
    _require_enabled()
    mails = sent_mails()
    if not index.isdigit() or int(index) >= len(mails):
        raise NotFound()
    return ctx.render("pages/outbox_message.html", mail=mails[int(index)])


@route(bp, "/dev/outbox/{index}/html", auth=PUBLIC)
def outbox_message_html(ctx: Ctx, index: str) -> Response:
    """The HTML part as the recipient's mail program would show it."""
    _require_enabled()
    mails = sent_mails()
    if not index.isdigit() or int(index) >= len(mails):
        raise NotFound()
    return Response(
        body=mails[int(index)].html,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            # E-mail HTML carries inline styles; it runs no script.
            "Content-Security-Policy": (
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https: http:"
                # Framed beside the raw source on the outbox page, nowhere else.
                "; frame-ancestors 'self'"
            ),
        },
    )

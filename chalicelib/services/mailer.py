"""Render an e-mail (subject, text, HTML) in the recipient's language and send it."""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.aws import mail
from chalicelib.config import get_settings
from chalicelib.i18n import translate
from chalicelib.services import delivery
from chalicelib.templating import render

log = logging.getLogger("checkos.mail")


# Names in a subject (company, partner, requester) are cut to this many characters:
# a phone shows ~40 characters of a subject, and the order number must be among them.
SUBJECT_NAME_MAX = 40


def short_name(value: str, limit: int = SUBJECT_NAME_MAX) -> str:
    flat = " ".join(value.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def subject_for(template: str, locale: str, params: dict[str, Any]) -> str:
    """The subject: names shortened, numbers and dates never."""
    fitted = {k: short_name(v) if isinstance(v, str) else v for k, v in params.items()}
    return translate(locale, f"email.{template}.subject", **fitted)


def compose(template: str, locale: str, **context: Any) -> tuple[str, str, str]:
    context.setdefault("base_url", get_settings().base_url)
    # Times in a company's e-mail are in the company's zone (customers included).
    company = context.get("company")
    context.setdefault("zone", getattr(company, "time_zone", None))
    subject = subject_for(template, locale, context.get("subject_params", {}))
    text = render(f"emails/{template}.txt", locale, **context)
    html = render(f"emails/{template}.html", locale, **context)
    return subject, text, html


def send_templated(
    to: str,
    template: str,
    locale: str,
    *,
    reply_to: str | None = None,
    from_name: str | None = None,
    to_name: str | None = None,
    reply_to_name: str | None = None,
    opt_out_company: str | None = None,
    unsubscribe_url: str | None = None,
    order_id: str | None = None,
    **context: Any,
) -> str:
    """Send one e-mail; raises mail.MailNotSent (MailSuppressed: not attempted) to record.

    This is the one place every send path passes: an address SES reported as
    bounced or complaining, or (with ``opt_out_company``) a customer who
    unsubscribed from that company's order e-mails, is never mailed.
    """
    try:
        reason = delivery.block_reason(to, opt_out_company)
    except Exception as problem:  # the list cannot be read: never mail blind
        log.warning("suppression list unavailable", extra={"template": template})
        raise mail.MailNotSent("suppression list unavailable") from problem
    if reason:
        log.info("mail not attempted", extra={"template": template, "reason": reason})
        raise mail.MailSuppressed(to, reason)
    if unsubscribe_url:
        context.setdefault("unsubscribe_url", unsubscribe_url)
    subject, text, html = compose(template, locale, **context)
    message_id = mail.send(
        mail.Mail(
            to=to,
            subject=subject,
            text=text,
            html=html,
            reply_to=reply_to,
            from_name=from_name,
            to_name=to_name,
            reply_to_name=reply_to_name,
            language=locale,
            unsubscribe_url=unsubscribe_url,
            # SES hands the tags back with a bounce: the order's history shows it.
            tags={"order": order_id} if order_id else {},
        )
    )
    log.info("mail sent", extra={"template": template, "message_id": message_id})
    return message_id

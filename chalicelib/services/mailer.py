"""Render an e-mail (subject, text, HTML) in the recipient's language and send it."""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.aws import mail
from chalicelib.config import get_settings
from chalicelib.i18n import translate
from chalicelib.templating import render

log = logging.getLogger("checkos.mail")


def compose(template: str, locale: str, **context: Any) -> tuple[str, str, str]:
    context.setdefault("base_url", get_settings().base_url)
    subject = translate(locale, f"email.{template}.subject", **context.get("subject_params", {}))
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
    **context: Any,
) -> str:
    """Send one e-mail; raises mail.MailNotSent for the caller to record."""
    subject, text, html = compose(template, locale, **context)
    message_id = mail.send(
        mail.Mail(
            to=to, subject=subject, text=text, html=html, reply_to=reply_to, from_name=from_name
        )
    )
    log.info("mail sent", extra={"template": template, "message_id": message_id})
    return message_id

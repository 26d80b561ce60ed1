"""Who may be mailed: SES bounce/complaint suppression and customers' one-click opt-out.

The send path asks ``block_reason`` before every message (mailer.send_templated);
SES's bounce and complaint events arrive through SNS at ``handle_sns_event``.
Opt-out links are HMAC-signed and expiring (nothing stored until used): they
name the company, the order and the address, so a POST alone unsubscribes
(RFC 8058 one-click: no session, no CSRF token).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from pynamodb.exceptions import DeleteError, PutError

from chalicelib import signing_keys
from chalicelib.config import get_settings
from chalicelib.db.base import Item
from chalicelib.db.mail import BOUNCE, COMPLAINT, OptOut, Suppression
from chalicelib.db.orders import Order
from chalicelib.domain.validation import wire_email
from chalicelib.services import orders
from chalicelib.services.sessions import now

log = logging.getLogger("checkos.delivery")

# Catalogue keys: why an address gets no mail (shown to staff on the order page).
BOUNCED = "mail.off.bounced"
COMPLAINED = "mail.off.complained"
UNSUBSCRIBED = "mail.off.unsubscribed"
# An unsubscribe link works for a year after the e-mail that carried it.
OPT_OUT_LINK_SECONDS = 365 * 24 * 3600


def address_key(address: str) -> str:
    """The form an address is keyed by: its wire form (ASCII, punycode domain), lower-cased."""
    try:
        return wire_email(address).lower()
    except ValueError:
        return address.strip().lower()


def block_reason(address: str, company_id: str | None = None) -> str | None:
    """Why ``address`` must not be mailed (a catalogue key), or None. One BatchGetItem.

    Suppression (hard bounce, complaint) stops all mail; an opt-out stops the
    order e-mails of the one company (``company_id``) it was given to.
    """
    wanted = [Suppression.key(address_key(address))]
    if company_id:
        wanted.append(OptOut.key(company_id, address_key(address)))
    found = list(Item.batch_get(wanted))
    for item in found:
        if isinstance(item, Suppression):
            return COMPLAINED if item.reason == COMPLAINT else BOUNCED
    if any(isinstance(item, OptOut) for item in found):
        return UNSUBSCRIBED
    return None


# -- SES events ------------------------------------------------------------------------


def suppress(address: str, reason: str, detail: str = "") -> None:
    Suppression(
        *Suppression.key(address_key(address)),
        address=address_key(address),
        reason=reason,
        detail=detail[:200],
        at=now(),
    ).save()


def record_ses_notification(notification: Mapping[str, Any]) -> list[str]:
    """Apply one SES notification (event publishing or identity feedback); the suppressed.

    A permanent bounce or any complaint suppresses the address; a transient or
    undetermined bounce (mailbox full, out of office) does not.
    """
    kind = str(notification.get("eventType") or notification.get("notificationType") or "")
    suppressed: list[str] = []
    if kind == "Bounce":
        bounce = notification.get("bounce") or {}
        if bounce.get("bounceType") != "Permanent":
            return []
        reason, detail = BOUNCE, str(bounce.get("bounceSubType", ""))
        addresses = _recipients(bounce.get("bouncedRecipients"))
    elif kind == "Complaint":
        complaint = notification.get("complaint") or {}
        reason, detail = COMPLAINT, str(complaint.get("complaintFeedbackType", ""))
        addresses = _recipients(complaint.get("complainedRecipients"))
    else:
        return []
    for address in addresses:
        suppress(address, reason, detail)
        suppressed.append(address_key(address))
    if suppressed:
        _tell_order(notification, COMPLAINED if reason == COMPLAINT else BOUNCED)
    return suppressed


def _tell_order(notification: Mapping[str, Any], why: str) -> None:
    """The order the mail was about (its SES tag) shows staff the bounce in its history."""
    tags = (notification.get("mail") or {}).get("tags") or {}
    order_ids = tags.get("order") or []
    if not order_ids:
        return
    try:
        Order.get(*Order.key(str(order_ids[0])))
    except Order.DoesNotExist:
        return
    orders.record_event(
        str(order_ids[0]), orders.Actor(name="CheckOS", kind="system"), "mail_bounced", why
    )


def _recipients(entries: Iterable[Mapping[str, Any]] | None) -> list[str]:
    found = []
    for entry in entries or []:
        _, address = parseaddr(str(entry.get("emailAddress", "")))
        if "@" in address:
            found.append(address)
    return found


def handle_sns_event(event: Mapping[str, Any]) -> dict[str, int]:
    """The Lambda entry point for the SNS topic SES publishes bounces and complaints to."""
    suppressed = 0
    for record in event.get("Records") or []:
        body = (record.get("Sns") or {}).get("Message") or "{}"
        try:
            notification = json.loads(body)
        except ValueError:
            log.warning("SNS message is not SES JSON")
            continue
        if not isinstance(notification, dict):
            continue
        suppressed += len(record_ses_notification(notification))
    return {"suppressed": suppressed}


# -- customers' opt-out ------------------------------------------------------------------


@dataclass(frozen=True)
class OptOutLink:
    company_id: str
    order_id: str
    address: str


def _signature(payload: bytes, secret: str | None = None) -> bytes:
    secret = secret if secret is not None else signing_keys.current()
    key = hashlib.sha256(b"unsubscribe:" + secret.encode()).digest()
    return hmac.new(key, payload, hashlib.sha256).digest()  # 256 bits


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def opt_out_token(company_id: str, order_id: str, address: str) -> str:
    """A signed, expiring token naming who opts out of which company's order e-mails."""
    expires = int(time.time()) + OPT_OUT_LINK_SECONDS
    payload = json.dumps(
        [company_id, order_id, address_key(address), expires], separators=(",", ":")
    ).encode()
    return f"{_b64(payload)}.{_b64(_signature(payload))}"


def opt_out_url(company_id: str, order_id: str, address: str) -> str:
    return f"{get_settings().base_url}/unsubscribe/{opt_out_token(company_id, order_id, address)}"


def read_opt_out_token(token: str) -> OptOutLink | None:
    """The link's contents, or None when forged, altered or expired."""
    try:
        payload_text, signature_text = token.split(".", 1)
        payload = _unb64(payload_text)
        if not any(
            hmac.compare_digest(_unb64(signature_text), _signature(payload, key))
            for key in signing_keys.accepted()
        ):
            return None
        company_id, order_id, address, expires = json.loads(payload)
    except (ValueError, TypeError):
        return None
    if not isinstance(expires, int) or expires < time.time():
        return None
    return OptOutLink(str(company_id), str(order_id), str(address))


def opt_out(company_id: str, address: str, order_id: str = "") -> bool:
    """Stop that company's order e-mails to ``address``; False if it had already stopped."""
    item = OptOut(
        *OptOut.key(company_id, address_key(address)),
        company_id=company_id,
        address=address_key(address),
        order_id=order_id,
        at=now(),
    )
    try:
        item.save(condition=OptOut.pk.does_not_exist())
    except PutError:
        return False
    return True


def opt_in(company_id: str, address: str) -> bool:
    """Undo an opt-out; False if there was none."""
    item = OptOut(*OptOut.key(company_id, address_key(address)))
    try:
        item.delete(condition=OptOut.pk.exists())
    except DeleteError:
        return False
    return True


def opted_out(company_id: str, address: str) -> bool:
    with contextlib.suppress(OptOut.DoesNotExist):
        OptOut.get(*OptOut.key(company_id, address_key(address)))
        return True
    return False

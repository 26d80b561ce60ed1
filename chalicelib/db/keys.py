"""Key prefixes: the one place that spells how items are addressed."""

from __future__ import annotations


def company(company_id: str) -> str:
    return f"CO#{company_id}"


def login(email: str) -> str:
    return f"LOGIN#{email.strip().lower()}"


def slug(value: str) -> str:
    return f"SLUG#{value}"


def session(token_hash: str) -> str:
    return f"SESSION#{token_hash}"


def throttle(kind: str, value: str) -> str:
    return f"THROTTLE#{kind}#{value}"


def link_token(kind: str, token_hash: str) -> str:
    return f"{kind}#{token_hash}"


def order(order_id: str) -> str:
    return f"ORDER#{order_id}"


def access(token_hash: str) -> str:
    """A customer's e-mailed order link, by the SHA-256 of its token."""
    return f"ACCESS#{token_hash}"


def order_entries(company_id: str, dimension: str) -> str:
    """Partition of one company's list entries for one dimension (ALL, OPEN, PHONE#…)."""
    return f"CO#{company_id}#IX#{dimension}"


def suppress(address: str) -> str:
    """An address SES reported as hard-bounced or complaining: never mailed again."""
    return f"SUPPRESS#{address.strip().lower()}"


def opt_out(company_id: str, address: str) -> str:
    """A customer who unsubscribed from one company's order e-mails."""
    return f"OPTOUT#{company_id}#{address.strip().lower()}"

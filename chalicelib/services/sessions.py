"""Server-side sessions: start, authenticate in one BatchGetItem, end."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chalicelib.config import get_settings
from chalicelib.db.accounts import DELETING, Company, Session, User
from chalicelib.db.base import Item
from chalicelib.domain.tokens import new_token, token_hash


@dataclass(frozen=True)
class Principal:
    """Who is acting: the signed-in user and their company."""

    user: User
    company: Company

    @property
    def company_id(self) -> str:
        return self.company.company_id

    @property
    def user_id(self) -> str:
        return self.user.user_id

    @property
    def is_admin(self) -> bool:
        return self.user.is_admin


def now() -> datetime:
    return datetime.now(UTC)


def start_session(user_id: str, company_id: str) -> str:
    """Create a session; the caller sets the returned token in a cookie."""
    token = new_token()
    created = now()
    pk, sk = Session.key(token_hash(token))
    Session(
        pk,
        sk,
        user_id=user_id,
        company_id=company_id,
        created_at=created,
        expires_at=created + timedelta(hours=get_settings().session_ttl_hours),
    ).save(condition=Session.pk.does_not_exist())
    return token


def authenticate(token: str, user_id: str, company_id: str) -> Principal | None:
    """Session, user and company in one request; None when any is gone or void."""
    wanted = [
        Session.key(token_hash(token)),
        User.key(company_id, user_id),
        Company.key(company_id),
    ]
    found = {(item.pk, item.sk): item for item in Item.batch_get(wanted)}
    session, user, company = (found.get(key) for key in wanted)
    if not isinstance(session, Session) or not isinstance(user, User):
        return None
    if not isinstance(company, Company) or company.status == DELETING:
        return None  # a company being deleted refuses every session at once
    if session.user_id != user_id or session.company_id != company_id:
        return None
    if session.expires_at is not None and session.expires_at <= now():
        return None
    if user.sessions_valid_after and session.created_at < user.sessions_valid_after:
        return None
    return Principal(user=user, company=company)


def end_session(token: str) -> None:
    pk, sk = Session.key(token_hash(token))
    Session(pk, sk).delete()

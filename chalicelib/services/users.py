"""Staff users of a company: language, roles, invitations, removal."""

from __future__ import annotations

from chalicelib.db.accounts import User


def set_user_locale(user: User, locale: str) -> None:
    user.update(actions=[User.locale.set(locale)])

"""Which language an account's own e-mails (validation codes, password resets) use."""

from __future__ import annotations

from chalicelib.db.accounts import Company, Login, User
from chalicelib.db.base import Item


def account_locale(
    *, login: Login | None = None, company: Company | None = None, fallback: str
) -> str:
    """The language an account's own e-mails (resets, codes) are written in.

    The user's chosen language, else the company's; never the language of
    whichever browser asked (anyone can ask for a reset of any address).
    """
    if company is not None:
        return company.locale or fallback
    if login is None:
        return fallback
    wanted = [User.key(login.company_id, login.user_id), Company.key(login.company_id)]
    found = {type(item): item for item in Item.batch_get(wanted)}
    user, owner = found.get(User), found.get(Company)
    if isinstance(user, User) and user.locale:
        return str(user.locale)
    if isinstance(owner, Company) and owner.locale:
        return str(owner.locale)
    return fallback

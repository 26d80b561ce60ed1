"""domain/sharing.executor_guard: what the company executing a shared order may do.

The rule is pure (no table), so its refusals are checked here directly, each with the
name its message carries; the web suites (tests/web/test_partnership_guards.py) drive
the same refusals through the pages.
"""

from __future__ import annotations

import pytest

from chalicelib.domain.sharing import (
    ACTIVE,
    ExecutorLink,
    OwnerDecides,
    PartnershipNotActive,
    QuoteNotApproved,
    executor_guard,
)

OWNER = "Acme Repairs"
LINK = ExecutorLink(state=ACTIVE, we_execute=True, partner_name="Acme Repairs Ltd")


def _guard(
    action: str, link: ExecutorLink | None = LINK, required: bool = False, state: str | None = None
) -> None:
    executor_guard(action, owner_name=OWNER, quote_required=required, quote_state=state, link=link)


def test_without_a_partnership_the_refusal_names_the_orders_owner():
    # The link vanished between reading the order and the write (a deletion racing it).
    with pytest.raises(PartnershipNotActive) as refused:
        _guard("start", link=None)
    assert refused.value.params == {"partner": OWNER}


def test_a_suspended_link_is_refused_naming_the_partner_as_the_link_knows_it():
    suspended = ExecutorLink(state="suspended", we_execute=True, partner_name="Acme Ltd")
    with pytest.raises(PartnershipNotActive) as refused:
        _guard("start", link=suspended)
    assert refused.value.params == {"partner": "Acme Ltd"}


def test_only_the_owner_cancels_and_a_quote_must_be_approved_before_starting():
    with pytest.raises(OwnerDecides) as refused:
        _guard("cancel")
    assert refused.value.params == {"owner": OWNER}
    with pytest.raises(QuoteNotApproved):
        _guard("start", required=True, state="sent")
    _guard("start", required=True, state="approved")  # approved: allowed
    _guard("schedule", required=True, state=None)  # scheduling needs no quote

"""Parallel partnership decisions on the serialised moto server: the two sides never disagree."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial
from threading import Barrier

import pytest

from chalicelib.db.accounts import User
from chalicelib.db.partners import Partnership
from chalicelib.services import orders, partners
from chalicelib.services.orders import changes as order_changes
from chalicelib.services.partners import PartnershipChanged, PartnershipNotActive, proposals
from chalicelib.services.sessions import Principal, now
from tests.service.factories import new_company, order_form, staff_actor


def _admin(account) -> Principal:
    return Principal(user=account.user, company=account.company)


def _second_admin(account) -> Principal:
    user = User(
        *User.key(account.company.company_id, "second"),
        user_id="second",
        company_id=account.company.company_id,
        email="second-admin@example.com",
        name="Second Admin",
        role="admin",
        created_at=now(),
    )
    user.save()
    return Principal(user=user, company=account.company)


def _sides(a: str, b: str) -> tuple[Partnership, Partnership]:
    return (
        Partnership.get(*Partnership.key(a, b), consistent_read=True),
        Partnership.get(*Partnership.key(b, a), consistent_read=True),
    )


def _consistent(a: str, b: str) -> Partnership:
    mine, theirs = _sides(a, b)
    assert (mine.state, mine.awaiting, mine.rev, mine.config_version) == (
        theirs.state,
        theirs.awaiting,
        theirs.rev,
        theirs.config_version,
    )
    assert (mine.we_approve, mine.we_execute) == (theirs.we_execute, theirs.we_approve)
    assert len(mine.history) == len(theirs.history)
    return mine


def _race(*calls) -> list[str]:
    """Run the calls at the same moment; each returns "ok" or the conflict it met."""
    start = Barrier(len(calls))

    def run(call) -> str:
        start.wait()
        try:
            call()
            return "ok"
        except PartnershipChanged:
            return "conflict"

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_accept_racing_a_change_one_wins_and_both_sides_agree(aws):
    a, b = new_company("Racing Approver"), new_company("Racing Executor")
    a_id, b_id = a.company.company_id, b.company.company_id
    partners.propose(_admin(a), b_id, {"relationship": "approve", "quote_required": "1"})
    relations = ["both", "execute", "approve", "both", "execute", "approve"]
    for round_, relation in enumerate(relations):
        current = _consistent(a_id, b_id)
        assert current.awaiting == b_id, round_
        outcomes = _race(
            partial(partners.accept, _admin(b), a_id, current.rev),
            partial(
                partners.change,
                _admin(a),
                b_id,
                {"relationship": relation, "rev": str(current.rev)},
            ),
        )
        assert sorted(outcomes) == ["conflict", "ok"], (round_, outcomes)
        after = _consistent(a_id, b_id)
        assert after.rev == current.rev + 1
        if outcomes[0] == "ok":  # the acceptance won: active, terms unchanged
            assert after.state == "active" and after.config_version == current.config_version
            partners.change(_admin(a), b_id, {"relationship": relation, "rev": str(after.rev)})
        else:  # the change won: still waiting for B, with the new terms
            assert after.state in ("proposed", "suspended")
            assert partners.relation_of(after) == relation


def test_two_admins_accepting_at_once_accept_once(aws):
    a, b = new_company("Proposer"), new_company("Two Admins")
    a_id, b_id = a.company.company_id, b.company.company_id
    partners.propose(_admin(a), b_id, {"relationship": "both"})
    rev = _consistent(a_id, b_id).rev
    outcomes = _race(
        lambda: partners.accept(_admin(b), a_id, rev),
        lambda: partners.accept(_second_admin(b), a_id, rev),
    )
    assert sorted(outcomes) == ["conflict", "ok"]
    final = _consistent(a_id, b_id)
    assert final.state == "active"
    assert [h.kind for h in final.history] == ["proposed", "accepted"]


def test_proposals_crossing_each_other_create_one_partnership(aws, monkeypatch):
    # Both proposals have read "no partnership yet" before either writes: the race is
    # decided by the two transactions themselves, not by which thread started first.
    real_commit = proposals.commit_both

    def both_read_first(*args, **kwargs):
        at_the_write.wait(timeout=30)
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(proposals, "commit_both", both_read_first)
    for _round in range(3):
        at_the_write = Barrier(2)
        a, b = new_company("Left"), new_company("Right")
        a_id, b_id = a.company.company_id, b.company.company_id
        outcomes = _race(
            partial(partners.propose, _admin(a), b_id, {"relationship": "approve"}),
            partial(partners.propose, _admin(b), a_id, {"relationship": "approve"}),
        )
        assert sorted(outcomes) == ["conflict", "ok"]
        final = _consistent(a_id, b_id)
        assert final.state == "proposed" and len(final.history) == 1
        winner = a_id if outcomes[0] == "ok" else b_id
        assert final.proposed_by == winner


def test_a_deletion_always_wins_against_a_concurrent_change(aws):
    for relation in ("both", "execute", "approve"):
        a, b = new_company("Deleter"), new_company("Changer")
        a_id, b_id = a.company.company_id, b.company.company_id
        partners.propose(_admin(a), b_id, {"relationship": "approve"})
        partners.accept(_admin(b), a_id, _consistent(a_id, b_id).rev)
        rev = _consistent(a_id, b_id).rev
        outcomes = _race(
            partial(partners.delete, _admin(a), b_id),
            partial(partners.change, _admin(b), a_id, {"relationship": relation, "rev": str(rev)}),
        )
        assert outcomes[0] == "ok"
        final = _consistent(a_id, b_id)
        assert (final.state, final.awaiting) == ("disabled", None)


def test_an_executor_write_fails_if_the_link_is_suspended_between_its_check_and_its_write(
    aws, monkeypatch
):
    """The transaction re-checks the link: a suspension right after the read still wins."""
    a, b = new_company("Owner Co"), new_company("Executor Co")
    a_id, b_id = a.company.company_id, b.company.company_id
    partners.propose(_admin(a), b_id, {"relationship": "approve"})  # no quote needed
    partners.accept(_admin(b), a_id, _consistent(a_id, b_id).rev)
    order = orders.register_order(a.company, staff_actor(a), order_form(), {})
    shared = partners.assign_executor(_admin(a), order.order_id, b_id, order.version)
    real_guard = order_changes.partner_guard

    def guard_then_suspend(*args, **kwargs):
        answer = real_guard(*args, **kwargs)  # reads the link: active
        current = _consistent(a_id, b_id)
        partners.change(_admin(a), b_id, {"relationship": "both", "rev": str(current.rev)})
        return answer

    monkeypatch.setattr(order_changes, "partner_guard", guard_then_suspend)
    with pytest.raises(PartnershipNotActive):
        orders.change_status(b_id, order.order_id, staff_actor(b), "start")
    stored = orders.order_view(a_id, order.order_id).order
    assert (stored.status, stored.version) == ("registered", shared.version)

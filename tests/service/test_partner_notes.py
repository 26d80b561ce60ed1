"""The other company of a shared order hears of its sharing, quotes and withdrawal (in-app)."""

from __future__ import annotations

from chalicelib.db.orders import Notification, Order
from chalicelib.services import orders, partners
from chalicelib.services.sessions import Principal
from tests.service.factories import new_company, order_form, staff_actor


def _admin(account) -> Principal:
    return Principal(user=account.user, company=account.company)


class Inbox:
    """The notifications one user got since the last look."""

    def __init__(self, account) -> None:
        self.partition = Notification.partition(account.company.company_id, account.user.user_id)
        self.seen: set[str] = {n.sk for n in self._all()}

    def _all(self) -> list[Notification]:
        found = Notification.query(self.partition, consistent_read=True)
        return [n for n in found if isinstance(n, Notification)]

    def new(self) -> list[tuple]:
        fresh = [n for n in self._all() if n.sk not in self.seen]
        self.seen |= {n.sk for n in fresh}
        return [
            (
                n.kind,
                n.order_id,
                int(n.order_number) if n.order_number else None,
                n.params.as_dict(),
            )
            for n in fresh
        ]


def _version(order_id: str) -> str:
    return str(Order.get(*Order.key(order_id), consistent_read=True).version)


def test_sharing_quotes_and_withdrawal_notify_the_other_company(aws):
    a, b = new_company("Owner Co"), new_company("Executor Co")
    a_id, b_id = a.company.company_id, b.company.company_id
    partners.propose(_admin(a), b_id, {"relationship": "approve", "quote_required": "1"})
    partners.accept(_admin(b), a_id, partners.own_side(b_id, a_id).rev)
    order = orders.register_order(a.company, staff_actor(a), order_form(), {})
    number = int(order.number)
    owner, executor = Inbox(a), Inbox(b)

    partners.assign_executor(_admin(a), order.order_id, b_id, order.version)
    shared = ("partnership", order.order_id, number, {"partner": "Owner Co"})
    assert (executor.new(), owner.new()) == ([shared], [])

    quote = {"quote_value": "120", "quote_text": "New screen", "version": _version(order.order_id)}
    partners.send_quote(_admin(b), order.order_id, quote)
    quoted = ("partnership", order.order_id, number, {"partner": "Executor Co"})
    assert (owner.new(), executor.new()) == ([quoted], [])

    decision = {"decision": "approve", "version": _version(order.order_id)}
    partners.decide_quote(_admin(a), order.order_id, decision)
    assert (executor.new(), owner.new()) == ([shared], [])

    partners.withdraw_executor(_admin(a), order.order_id, _version(order.order_id))
    withdrawn = ("partnership", None, None, {"partner": "Owner Co"})
    assert (executor.new(), owner.new()) == ([withdrawn], [])

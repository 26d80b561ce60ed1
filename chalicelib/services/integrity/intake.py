"""Invariants of intake: pending requests hold their address lock, confirmed ones their order."""

from __future__ import annotations

from chalicelib.db import keys
from chalicelib.db.accounts import Company
from chalicelib.db.intake import CONFIRMED, CONFIRMING, PENDING, IntakeRequest, PendingLock
from chalicelib.services.integrity.state import CheckState, expired


class IntakeChecks(CheckState):
    """The company's intake requests and the address locks they hold."""

    def check_intake(self, company: Company) -> None:
        found = self.r.index("gsi1", f"{keys.company(self.cid)}#INTAKE")
        requests = {i.intake_id: i for i in found if isinstance(i, IntakeRequest)}
        locks = {
            i.pk.removeprefix(f"PENDING#{self.cid}#"): i
            for i in found
            if isinstance(i, PendingLock) and not expired(i, self.at)
        }
        for email, lock in locks.items():
            request = requests.get(lock.intake_id) or self.r.get(IntakeRequest.key(lock.intake_id))
            if not isinstance(request, IntakeRequest):
                self.fail(f"intake lock {email} of {self.cid}: its request is gone")
            elif (request.company_id, request.email) != (self.cid, email):
                self.fail(f"intake lock {email} of {self.cid}: points to another address's request")
            elif request.status not in (PENDING, CONFIRMING):
                self.fail(f"intake lock {email} of {self.cid}: its request is {request.status}")
        for request in requests.values():
            held = locks.get(request.email)
            live = request.status in (PENDING, CONFIRMING) and not expired(request, self.at)
            if live and (held is None or held.intake_id != request.intake_id):
                self.fail(
                    f"intake request {request.intake_id[:12]}… of {self.cid}: "
                    f"{request.status} without its lock"
                )
            if request.status == CONFIRMED:
                order = self.load_order(str(request.order_id)) if request.order_id else None
                if order is None or order.company_id != self.cid:
                    self.fail(
                        f"intake request {request.intake_id[:12]}… of {self.cid}: "
                        "confirmed without its order"
                    )
                elif int(order.number) != int(request.order_number or 0):
                    self.fail(
                        f"intake request {request.intake_id[:12]}… of {self.cid}: "
                        f"order number {request.order_number}, the order says {order.number}"
                    )
                if held is not None and held.intake_id == request.intake_id:
                    self.fail(
                        f"intake request {request.intake_id[:12]}… of {self.cid}: "
                        "confirmed but still locks its address"
                    )

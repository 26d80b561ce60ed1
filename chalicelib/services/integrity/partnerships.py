"""Invariants of partnerships: both sides agree, erased partners, partner invitations."""

from __future__ import annotations

from chalicelib.db.accounts import Company
from chalicelib.db.base import Item
from chalicelib.db.partners import PartnerInvite, Partnership
from chalicelib.services.integrity.state import CheckState, differences, expired
from chalicelib.services.partners import DISABLED

# Both sides of a partnership state these facts identically.
PARTNER_SHARED: tuple[str, ...] = (
    "state",
    "awaiting",
    "proposed_by",
    "config_version",
    "rev",
    "quote_required",
)


class PartnershipChecks(CheckState):
    """Both sides of each partnership, and the company's partner invitations."""

    def check_partnerships(self, items: list[Item]) -> None:
        sides = [i for i in items if isinstance(i, Partnership)]
        mirrors = self.r.batch(Partnership.key(p.partner_id, self.cid) for p in sides)
        companies = self.r.batch(Company.key(p.partner_id) for p in sides)
        for mine in sides:
            label = f"partnership {self.cid}→{mine.partner_id}"
            if (mine.company_id, mine.sk) != (
                self.cid,
                f"{Partnership.SK_PREFIX}{mine.partner_id}",
            ):
                self.fail(f"{label}: ids do not match its key ({mine.company_id})")
            theirs = mirrors.get(Partnership.key(mine.partner_id, self.cid))
            if Company.key(mine.partner_id) not in companies:
                self._partner_erased(label, mine, theirs)
                continue
            if not isinstance(theirs, Partnership):
                self.fail(f"{label}: the other side is missing")
                continue
            differ = differences(mine, theirs, PARTNER_SHARED)
            if bool(mine.we_approve) != bool(theirs.we_execute):
                differ.append("we_approve/we_execute")
            if bool(mine.we_execute) != bool(theirs.we_approve):
                differ.append("we_execute/we_approve")
            if theirs.partner_id != self.cid:
                differ.append("partner_id")
            if differ:
                # Same text from both sides: audit() keeps one line per pair.
                pair = "↔".join(sorted((self.cid, mine.partner_id)))
                self.fail(f"partnership {pair}: the two sides disagree on {', '.join(differ)}")
        self._partner_invites([i for i in items if isinstance(i, PartnerInvite)])

    def _partner_erased(self, label: str, mine: Partnership, theirs: Item | None) -> None:
        """The partner company was erased: its side is gone and ours was disabled for good.

        Erasure deletes the erased company's side and disables ours with a "deleted"
        history line (unless it was disabled already, by the same kind of change), so
        only a disabled side with nothing on the other end is consistent.
        """
        history = list(mine.history or [])
        if mine.state != DISABLED or mine.awaiting:
            self.fail(f"{label}: the partner company does not exist but the link is {mine.state}")
        elif not history or history[-1].kind != "deleted":
            self.fail(f"{label}: the partner company does not exist, no 'deleted' history line")
        if theirs is not None:
            self.fail(f"{label}: the partner company does not exist but its side remains")

    def _partner_invites(self, listings: list[PartnerInvite]) -> None:
        links = self.r.batch(PartnerInvite.link_key(i.invite_id) for i in listings)
        for listing in listings:
            if expired(listing, self.at):
                continue
            link = links.get(PartnerInvite.link_key(listing.invite_id))
            if not isinstance(link, PartnerInvite) or link.inviter_id != self.cid:
                self.fail(f"company {self.cid}: partner invitation {listing.invite_id} has no link")

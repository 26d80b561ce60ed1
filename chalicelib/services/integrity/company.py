"""Invariants of a company's own items: profile, logins, slug, directory, invitations, inbox."""

from __future__ import annotations

from chalicelib.db.accounts import Company, Invitation, LinkToken, Login, Slug, User
from chalicelib.db.intake import FormKey
from chalicelib.db.orders import Notification
from chalicelib.db.partners import DirectoryEntry
from chalicelib.services import directory
from chalicelib.services.integrity.state import CheckState, differences, expired

DIRECTORY_FIELDS: tuple[str, ...] = (
    "company_id",
    *directory.CARD_FIELDS,
    "f_name",
    "f_contact",
    "f_type",
    "f_area",
)


class CompanyChecks(CheckState):
    """The company's profile and users, its directory cards, invitations and notifications."""

    def check_profile(self, company: Company, users: list[User]) -> None:
        cid = self.cid
        if (company.gsi2pk, company.gsi2sk) != (Company.registry_partition(cid), cid):
            self.fail(f"company {cid}: not in the company registry (gsi2 COMPANIES#…)")
        activity = company.gsi3pk or ""
        if company.active and not (
            activity.startswith(Company.ACTIVITY_PREFIX) and company.gsi3sk == cid
        ):
            self.fail(f"company {cid}: active but not in the activity index (gsi3 {activity!r})")
        if not company.active and activity.startswith(Company.ACTIVITY_PREFIX):
            self.fail(f"company {cid}: {company.status} but still in the activity index")
        slug = self.r.get(Slug.key(company.slug))
        if not isinstance(slug, Slug) or slug.company_id != cid:
            owner = getattr(slug, "company_id", None)
            self.fail(f"company {cid}: slug {company.slug!r} points to {owner or 'nothing'}")
        admins = sum(1 for u in users if u.is_admin)
        if int(company.admin_count or 0) != admins:
            self.fail(f"company {cid}: admin_count {company.admin_count} but {admins} admin users")
        if admins < 1:
            self.fail(f"company {cid}: no administrator")
        logins = self.r.batch(Login.key(u.email) for u in users)
        for user in users:
            login = logins.get(Login.key(user.email))
            if user.company_id != cid:
                self.fail(f"user {user.user_id}: stored under {cid} but says {user.company_id}")
            if not isinstance(login, Login):
                self.fail(f"user {user.user_id} of {cid}: no login for {user.email}")
            elif (login.user_id, login.company_id) != (user.user_id, cid):
                self.fail(
                    f"user {user.user_id} of {cid}: login {user.email} points to "
                    f"user {login.user_id} of {login.company_id}"
                )
        if company.intake_code:
            key = self.r.get(FormKey.key(company.intake_code))
            if not isinstance(key, FormKey) or key.company_id != cid:
                self.fail(f"company {cid}: its intake code has no FORMKEY item pointing back")

    def check_directory(self, company: Company) -> None:
        """Active: every card present and current. Inactive: none of them left."""
        shown = directory.snapshot(company)
        shown.status = "active"
        expected = directory.entries_for(shown)
        found = self.r.batch(expected)
        for key, entry in expected.items():
            actual = found.get(key)
            if not company.active:
                if actual is not None:
                    self.fail(f"company {self.cid}: inactive but listed in the directory at {key}")
            elif not isinstance(actual, DirectoryEntry):
                self.fail(f"company {self.cid}: directory entry {key} missing")
            elif stale := differences(actual, entry, DIRECTORY_FIELDS):
                self.fail(f"company {self.cid}: directory entry {key} stale ({', '.join(stale)})")

    def check_invitations(self, invitations: list[Invitation]) -> None:
        links = self.r.batch(LinkToken.key("INVITE", i.invite_id) for i in invitations)
        for invitation in invitations:
            if expired(invitation, self.at):
                continue  # TTL deletes the two items independently
            link = links.get(LinkToken.key("INVITE", invitation.invite_id))
            if not isinstance(link, LinkToken) or link.company_id != self.cid:
                self.fail(f"company {self.cid}: invitation {invitation.invite_id} has no link")

    def check_notifications(self, users: list[User]) -> None:
        for user in users:
            notes = [
                n
                for n in self.r.query(Notification.partition(self.cid, user.user_id))
                if isinstance(n, Notification)
            ]
            read_at = user.notes_read_at
            unread = sum(1 for n in notes if not n.read and (read_at is None or n.at > read_at))
            if int(user.unread or 0) != unread:
                self.fail(
                    f"user {user.user_id} of {self.cid}: unread count {user.unread}, "
                    f"{unread} unread notifications"
                )
            for note in notes:
                if note.order_id and self.load_order(note.order_id) is None:
                    self.fail(f"notification {note.sk} of {user.user_id}: its order is gone")

"""Companies, users, logins, sessions and one-time secrets."""

from __future__ import annotations

import hashlib

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)

from chalicelib.db import keys
from chalicelib.db.base import Item


class CustomField(MapAttribute):
    """A company-defined order field (kept on the Company item, read with every page)."""

    field_id = UnicodeAttribute()
    label = UnicodeAttribute()
    kind = UnicodeAttribute()  # text | number | date | choice
    options = ListAttribute(of=UnicodeAttribute, default=list)
    required = BooleanAttribute(default=False)


# Company.status while its deletion runs: not "active", so the public page,
# the intake form and the directory treat it as gone; sessions refuse it.
DELETING = "deleting"


class Company(Item, discriminator="Company"):
    """``CO#<id>`` / ``PROFILE``: the tenant; holds the order counter."""

    SK = "PROFILE"

    company_id = UnicodeAttribute()
    name = UnicodeAttribute()
    slug = UnicodeAttribute()
    business_type = UnicodeAttribute(default="")
    area = UnicodeAttribute(default="")
    contact_name = UnicodeAttribute(default="")
    phone = UnicodeAttribute(default="")
    email = UnicodeAttribute()
    email_validated = BooleanAttribute(default=False)
    pending_email = UnicodeAttribute(null=True)
    website = UnicodeAttribute(default="")
    description = UnicodeAttribute(default="")
    city = UnicodeAttribute(default="")
    state = UnicodeAttribute(default="")
    country = UnicodeAttribute(default="")
    locale = UnicodeAttribute(default="en")
    # IANA zone every time shown to its people and customers is written in
    # (stored times stay UTC). Companies created before it existed read UTC.
    time_zone = UnicodeAttribute(default="UTC")
    status = UnicodeAttribute(default="active")  # active | inactive | DELETING
    logo_key = UnicodeAttribute(null=True)
    # How many User items of this company have role admin. Every role change
    # and removal updates it in the same transaction as the User, with the
    # condition ``admin_count > 1`` when an admin goes: never zero admins.
    # Sign-up creates the company with its first admin, hence the default.
    admin_count = NumberAttribute(default=1)
    plan = UnicodeAttribute(default="free")
    custom_fields = ListAttribute(of=CustomField, default=list)
    monthly_quota = NumberAttribute(null=True)  # None: the free plan's default
    # Embeddable intake form: the current public code (FORMKEY#<code> maps it back;
    # rotation swaps both in one transaction) and the website origins allowed to
    # embed the form and call its JSON API (empty: any site may embed, no CORS).
    intake_code = UnicodeAttribute(null=True)
    # pynamodb types ListAttribute(of=UnicodeAttribute) as a list of attribute
    # objects; the values it loads and saves are plain strings.
    intake_origins: ListAttribute[str] = ListAttribute(
        of=UnicodeAttribute,  # type: ignore[arg-type]
        default=list,
    )
    # "Follow your order" snippet for the company's website (None: defaults).
    follow_button = UnicodeAttribute(null=True)
    follow_intro = UnicodeAttribute(null=True)
    follow_accent = UnicodeAttribute(null=True)
    follow_width = NumberAttribute(null=True)
    follow_height = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    # UTC day (yyyy-mm-dd) of the latest signed-in request by any of its users.
    last_active_day = UnicodeAttribute(null=True)
    # The activity-index day an inactivity warning was sent for: warn once per day.
    inactivity_warned_for = UnicodeAttribute(null=True)
    version = VersionAttribute()

    # Sparse activity index on gsi3, only while active: gsi3pk = ACTIVE#<day>,
    # gsi3sk = company id. The nightly job reads one day's partition.
    ACTIVITY_PREFIX = "ACTIVE#"

    @classmethod
    def key(cls, company_id: str) -> tuple[str, str]:
        return keys.company(company_id), cls.SK

    @classmethod
    def activity_partition(cls, day: str) -> str:
        return f"{cls.ACTIVITY_PREFIX}{day}"

    # Registry of every company, whatever its status, on gsi2 (written at
    # sign-up): ``COMPANIES#<shard>`` / ``<company id>``. Maintenance tools
    # (the invariant checker) list companies with 16 Queries, never a table-wide read;
    # the shards spread the index writes of Company updates.
    REGISTRY_SHARDS = 16

    @classmethod
    def registry_partition(cls, company_id: str) -> str:
        shard = hashlib.sha256(company_id.encode()).digest()[0] % cls.REGISTRY_SHARDS
        return f"COMPANIES#{shard:02d}"

    @property
    def active(self) -> bool:
        return self.status == "active"


class Slug(Item, discriminator="Slug"):
    """``SLUG#<slug>`` / ``SLUG``: makes public addresses unique."""

    SK = "SLUG"
    company_id = UnicodeAttribute()

    @classmethod
    def key(cls, slug: str) -> tuple[str, str]:
        return keys.slug(slug), cls.SK


class Login(Item, discriminator="Login"):
    """``LOGIN#<email>`` / ``LOGIN``: global e-mail uniqueness and the password hash."""

    SK = "LOGIN"
    user_id = UnicodeAttribute()
    company_id = UnicodeAttribute()
    password_hash = UnicodeAttribute()

    @classmethod
    def key(cls, email: str) -> tuple[str, str]:
        return keys.login(email), cls.SK


class User(Item, discriminator="User"):
    """``CO#<company>`` / ``USER#<id>``: a staff member of one company."""

    user_id = UnicodeAttribute()
    company_id = UnicodeAttribute()
    email = UnicodeAttribute()
    name = UnicodeAttribute()
    role = UnicodeAttribute(default="staff")
    locale = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    # Sessions created before this instant are void (password reset).
    sessions_valid_after = UTCDateTimeAttribute(null=True)
    unread = NumberAttribute(default=0)
    notes_read_at = UTCDateTimeAttribute(null=True)
    last_active_day = UnicodeAttribute(null=True)

    SK_PREFIX = "USER#"

    @classmethod
    def key(cls, company_id: str, user_id: str) -> tuple[str, str]:
        return keys.company(company_id), f"{cls.SK_PREFIX}{user_id}"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class Session(Item, discriminator="Session"):
    """``SESSION#<sha256(token)>``: server-side session, absolute expiry by TTL."""

    SK = "SESSION"
    user_id = UnicodeAttribute()
    company_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()

    @classmethod
    def key(cls, token_hash: str) -> tuple[str, str]:
        return keys.session(token_hash), cls.SK


class EmailCode(Item, discriminator="EmailCode"):
    """``CO#<company>`` / ``EMAILCODE``: the 6-digit code validating an address."""

    SK = "EMAILCODE"
    email = UnicodeAttribute()
    code_hash = UnicodeAttribute()
    tries = NumberAttribute(default=0)
    # Tries carry over to a resent code until then (the first code's expiry).
    tries_window_ends = UTCDateTimeAttribute(null=True)
    sent_at = UTCDateTimeAttribute()

    @classmethod
    def key(cls, company_id: str) -> tuple[str, str]:
        return keys.company(company_id), cls.SK


class Throttle(Item, discriminator="Throttle"):
    """``THROTTLE#<kind>#<value>``: failed attempts and the lock they earned."""

    SK = "THROTTLE"
    # Attempts reserved in the current window (before each is evaluated); a
    # reservation is refused at the limit, so parallel guesses gain nothing.
    failures = NumberAttribute(default=0)
    locked_until = UTCDateTimeAttribute(null=True)
    lock_seconds = NumberAttribute(default=0)
    # The latest reservation: a full window whose lock was never written (the
    # evaluating request died) frees itself a while after it.
    attempted_at = UTCDateTimeAttribute(null=True)

    @classmethod
    def key(cls, kind: str, value: str) -> tuple[str, str]:
        return keys.throttle(kind, value), cls.SK


class LinkToken(Item, discriminator="LinkToken"):
    """``<KIND>#<sha256(token)>``: single-use e-mailed secrets (reset, invite)."""

    SK = "TOKEN"
    kind = UnicodeAttribute()
    company_id = UnicodeAttribute()
    user_id = UnicodeAttribute(null=True)
    email = UnicodeAttribute()
    role = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    created_by = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, kind: str, token_hash: str) -> tuple[str, str]:
        return keys.link_token(kind, token_hash), cls.SK


class Invitation(Item, discriminator="Invitation"):
    """``CO#<company>`` / ``INVITE#<sha256(token)>``: a pending invitation, listed and revoked.

    Written in one transaction with the ``INVITE#<sha256(token)>`` LinkToken
    the e-mailed link resolves; both carry the same TTL. The id is the token's
    hash, so revoking needs no read and the secret itself is never stored.
    """

    SK_PREFIX = "INVITE#"
    invite_id = UnicodeAttribute()
    email = UnicodeAttribute()
    name = UnicodeAttribute()
    role = UnicodeAttribute(default="staff")
    invited_by = UnicodeAttribute(default="")
    created_at = UTCDateTimeAttribute()

    @classmethod
    def key(cls, company_id: str, invite_id: str) -> tuple[str, str]:
        return keys.company(company_id), f"{cls.SK_PREFIX}{invite_id}"

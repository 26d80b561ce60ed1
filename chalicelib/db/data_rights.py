"""Data rights items: the company's data archive (download) and its erasure marker (delete).

``CO#<id>`` / ``ARCHIVE#<archive id>`` tracks one "download all our data"
archive, like the XLSX export's item, and expires with its S3 object (2 days).
``ERASE#<id>`` / ``ERASE`` exists while a company is being deleted: it sits
in the sparse ``gsi1`` partition ``ERASING``, which the scheduled sweep reads
(one Query, never a table-wide read) to resume deletions a crash or a timeout cut short.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute

from chalicelib.db import keys
from chalicelib.db.base import Item

# gsi1 partition of the unfinished deletions (sparse: only ErasureJob items carry it).
ERASING = "ERASING"


class DataArchive(Item, discriminator="DataArchive"):
    """``CO#<id>`` / ``ARCHIVE#<archive id>``: one archive of everything, gone after two days."""

    SK_PREFIX = "ARCHIVE#"

    archive_id = UnicodeAttribute()
    company_id = UnicodeAttribute()
    user_id = UnicodeAttribute()  # who asked
    locale = UnicodeAttribute(default="en")  # XLSX column titles
    status = UnicodeAttribute(default="queued")  # queued | running | done | failed
    orders = NumberAttribute(default=0)  # orders written so far (progress)
    size = NumberAttribute(default=0)  # bytes of the finished zip
    s3_key = UnicodeAttribute(null=True)
    filename = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()

    @classmethod
    def key(cls, company_id: str, archive_id: str) -> tuple[str, str]:
        return keys.company(company_id), f"{cls.SK_PREFIX}{archive_id}"


class ErasureJob(Item, discriminator="ErasureJob"):
    """``ERASE#<company>`` / ``ERASE``: a deletion in progress; deleted with the Company, last.

    ``gsi1pk = ERASING``, ``gsi1sk = <requested iso>#<company id>``. ``updated_at``
    is a heartbeat written after every batch: the sweep resumes only jobs whose
    heartbeat is older than a Lambda can run, so two runners rarely overlap
    (and when they do, every step is idempotent).
    """

    SK = "ERASE"

    company_id = UnicodeAttribute()
    requested_at = UTCDateTimeAttribute()
    requested_by = UnicodeAttribute(default="")  # user id of the admin
    updated_at = UTCDateTimeAttribute()
    runs = NumberAttribute(default=0)  # how many runs started (first + resumptions)
    deleted = NumberAttribute(default=0)  # items deleted so far (all runs)
    stage = UnicodeAttribute(default="marked")  # the last stage a run reached
    last_error = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, company_id: str) -> tuple[str, str]:
        return f"ERASE#{company_id}", cls.SK

    @classmethod
    def index_fields(cls, company_id: str, requested_iso: str) -> dict[str, str]:
        return {"gsi1pk": ERASING, "gsi1sk": f"{requested_iso}#{company_id}"}

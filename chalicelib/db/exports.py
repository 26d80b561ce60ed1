"""XLSX export jobs: ``CO#<id>`` / ``EXPORT#<export id>``, gone after two days (TTL).

The item tracks one export from the button to the file: status, rows written
so far, the S3 key and the download file name. It lives under the company, so
another company's export id is simply absent.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute

from chalicelib.db import keys
from chalicelib.db.base import Item

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATUSES: tuple[str, ...] = (QUEUED, RUNNING, DONE, FAILED)


class ExportJob(Item, discriminator="ExportJob"):
    export_id = UnicodeAttribute()
    company_id = UnicodeAttribute()
    user_id = UnicodeAttribute()  # who asked: notified when a background export is ready
    locale = UnicodeAttribute(default="en")  # column titles and status names
    filters = UnicodeAttribute(default="{}")  # JSON of the list's active filters
    status = UnicodeAttribute(default=QUEUED)
    rows = NumberAttribute(default=0)
    s3_key = UnicodeAttribute(null=True)
    filename = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()

    @classmethod
    def key(cls, company_id: str, export_id: str) -> tuple[str, str]:
        return keys.company(company_id), f"EXPORT#{export_id}"

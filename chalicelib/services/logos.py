"""Company logos: replace (re-encode, store in S3, point the company at it) and read back."""

from __future__ import annotations

import logging
import re

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import files
from chalicelib.db.accounts import Company
from chalicelib.db.base import transaction
from chalicelib.domain.logos import EncodedLogo, reencode_logo
from chalicelib.services import directory

log = logging.getLogger("checkos.logos")

# S3 layout: logos/<company_id>/<sha256 prefix of the stored bytes>.<ext>.
# Content-addressed, so a URL never changes meaning and can be cached for a year.
PREFIX = "logos"
CACHE_CONTROL = "public, max-age=31536000, immutable"
_COMPANY_ID = re.compile(r"^[0-9a-f]{8,32}$")
_NAME = re.compile(r"^[0-9a-f]{16,64}\.(webp|png|jpg)$")
TYPES = {"webp": "image/webp", "png": "image/png", "jpg": "image/jpeg"}


def object_key(company_id: str, name: str) -> str:
    return f"{PREFIX}/{company_id}/{name}"


def logo_url(company: Company) -> str | None:
    """Path the app serves the company's logo at (the header uses the same shape)."""
    if not company.logo_key:
        return None
    return f"/logo/{company.company_id}/{company.logo_key.rsplit('/', 1)[-1]}"


def replace_logo(company: Company, upload: bytes) -> EncodedLogo:
    """Store a cleaned copy of ``upload`` and make it the company's logo.

    Raises LogoRejected before anything is written, so a refused file leaves the
    old logo in place.
    """
    encoded = reencode_logo(upload)
    old_key = company.logo_key
    key = object_key(company.company_id, f"{encoded.digest}.{encoded.extension}")
    files.put_bytes(key, encoded.data, encoded.content_type, cache_control=CACHE_CONTROL)
    # Only this attribute changes, so no lost update is possible: no version check,
    # but the version still moves on so open settings forms notice the change.
    # The partner directory cards carry the logo too: same transaction.
    before, after = directory.snapshot(company), directory.snapshot(company)
    after.logo_key = key
    with transaction() as tx:
        tx.update(
            company,
            actions=[Company.logo_key.set(key)],
            condition=Company.pk.exists(),
            add_version_condition=False,
        )
        directory.write_changes(tx, before, after)
    company.logo_key = key
    if old_key and old_key != key:
        try:
            files.delete(old_key)
        except (BotoCoreError, ClientError):
            log.warning("old logo not deleted", extra={"key": old_key})
    return encoded


def read_logo(company_id: str, name: str) -> files.StoredFile | None:
    """The stored logo bytes for ``/logo/<company_id>/<name>``, or None."""
    if not _COMPANY_ID.match(company_id) or not _NAME.match(name):
        return None
    found = files.get_bytes(object_key(company_id, name))
    if found is None:
        return None
    extension = name.rsplit(".", 1)[-1]
    return files.StoredFile(data=found.data, content_type=TYPES[extension])

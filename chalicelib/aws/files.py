"""S3 adapter: put, get and delete small objects in the app's one bucket."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import quote

from botocore.exceptions import ClientError

from chalicelib.aws.clients import client
from chalicelib.config import get_settings

_MISSING = {"NoSuchKey", "404", "NotFound"}


@dataclass(frozen=True)
class StoredFile:
    data: bytes
    content_type: str


def put_bytes(key: str, data: bytes, content_type: str, *, cache_control: str = "") -> None:
    extra = {"CacheControl": cache_control} if cache_control else {}
    client("s3").put_object(
        Bucket=get_settings().bucket_name, Key=key, Body=data, ContentType=content_type, **extra
    )


def get_bytes(key: str) -> StoredFile | None:
    """The object's bytes and content type, or None when there is no such object."""
    try:
        answer = client("s3").get_object(Bucket=get_settings().bucket_name, Key=key)
    except ClientError as problem:
        if problem.response.get("Error", {}).get("Code") in _MISSING:
            return None
        raise
    return StoredFile(
        data=answer["Body"].read(),
        content_type=answer.get("ContentType") or "application/octet-stream",
    )


def delete(key: str) -> None:
    client("s3").delete_object(Bucket=get_settings().bucket_name, Key=key)


def put_file(key: str, body: BinaryIO, content_type: str) -> None:
    """Stream a file to the bucket (multipart above 8 MB): memory stays flat with its size."""
    # boto3's managed transfer, imported here only (background exports): see aws/clients.py.
    from boto3.s3.inject import upload_fileobj

    upload_fileobj(
        client("s3"), body, get_settings().bucket_name, key, ExtraArgs={"ContentType": content_type}
    )


def presigned_get(key: str, seconds: int, filename: str) -> str:
    """A short-lived download link to a private object, saved by the browser as ``filename``."""
    ascii_name = filename.encode("ascii", "ignore").decode().replace('"', "") or "download"
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    # SigV4 links carry X-Amz-Expires (the legacy default does not, and newer regions refuse it).
    url: str = client("s3", "s3v4").generate_presigned_url(
        "get_object",
        Params={
            "Bucket": get_settings().bucket_name,
            "Key": key,
            "ResponseContentDisposition": disposition,
        },
        ExpiresIn=seconds,
    )
    return url

"""S3 adapter: put, get and delete small objects in the app's one bucket."""

from __future__ import annotations

from dataclasses import dataclass

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

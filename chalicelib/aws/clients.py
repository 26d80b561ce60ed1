"""AWS clients, created once per process (endpoint from AWS_ENDPOINT_URL locally).

Plain botocore, not boto3: boto3 pulls in s3transfer and its resource layer,
which a cold start of the web Lambda would pay for on every import; only
``files.put_file`` (streamed multipart uploads, background exports) loads it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalicelib.config import get_settings


@lru_cache(maxsize=8)
def client(service: str, signature_version: str | None = None) -> Any:
    from botocore.config import Config
    from botocore.session import Session

    config = Config(signature_version=signature_version) if signature_version else None
    return Session().create_client(service, region_name=get_settings().region, config=config)

"""boto3 clients, created once per process (endpoint from AWS_ENDPOINT_URL locally)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3

from chalicelib.config import get_settings


@lru_cache(maxsize=8)
def client(service: str) -> Any:
    return boto3.session.Session().client(service, region_name=get_settings().region)

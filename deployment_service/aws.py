"""The one place boto3 clients are made.

Every client honours ``AWS_ENDPOINT_URL`` (a local emulator such as moto server) and uses the
``standard`` retry mode, which retries throttling and transient errors with backoff.
"""

from __future__ import annotations

from functools import lru_cache
import threading

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from django.conf import settings

_local = threading.local()

# CloudFront and Route53 are global services homed in us-east-1.
_GLOBAL_SERVICES = {"cloudfront", "cloudfront-keyvaluestore", "route53", "acm"}


@lru_cache(maxsize=1)
def _config() -> Config:
    return Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=64)


def client(service: str, *, region: str | None = None):
    """A boto3 client for ``service``; cached per thread (boto3 clients are thread-safe, but
    sessions are not, and the cache keeps connection pools warm). ``region`` overrides
    ``AWS_REGION`` for a resource that lives elsewhere (an SNS topic in another region)."""
    region = region or ("us-east-1" if service in _GLOBAL_SERVICES else settings.AWS_REGION)
    key = (service, settings.AWS_ENDPOINT_URL, region)
    cache = getattr(_local, "clients", None)
    if cache is None:
        cache = _local.clients = {}
    if key not in cache:
        session = boto3.session.Session()
        cache[key] = session.client(
            service,
            region_name=region,
            endpoint_url=settings.AWS_ENDPOINT_URL or None,
            config=_config(),
        )
    return cache[key]


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints and mocks between cases)."""
    _local.clients = {}


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def error_message(exc: Exception) -> str:
    """A short, human text for an AWS error, kept on the pipeline or build."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        op = getattr(exc, "operation_name", "")
        return f"{op}: {err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"

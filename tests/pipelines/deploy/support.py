"""Shared by the deploy tests: every S3 request the deploy makes, recorded."""

from __future__ import annotations

from dataclasses import dataclass
import threading

from django.conf import settings

from deployment_service import aws

PAGE = "<!doctype html><html><body>{}</body></html>"
# Operations that change the bucket; anything else the deploy sends is a read.
WRITES = {
    "PutObject",
    "CopyObject",
    "DeleteObject",
    "DeleteObjects",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
}


@dataclass(frozen=True)
class Request:
    operation: str
    bucket: str
    key: str

    @property
    def relative(self) -> str:
        """The key below the pipeline's prefix (``blobs/…``, ``builds/….json``)."""
        return self.key.split("/", 1)[1] if "/" in self.key else self.key


class S3Requests:
    """Every S3 request of the test thread's client (the one the deploy shares with its threads),
    recorded with botocore's ``before-call`` hook."""

    def __init__(self) -> None:
        self.all: list[Request] = []
        self._lock = threading.Lock()

    def record(self, model, params, context, **kwargs) -> None:
        bucket = context.get("input_params", {}).get("Bucket", "")
        key = context.get("input_params", {}).get("Key", "")
        with self._lock:
            self.all.append(Request(model.name, bucket, key))

    def clear(self) -> None:
        with self._lock:
            self.all.clear()

    def live(self) -> list[Request]:
        return [r for r in self.all if r.bucket == settings.TROY_LIVE_BUCKET]

    def writes(self) -> list[Request]:
        """Writes to the live bucket (the release zip going to the artifact bucket is not one)."""
        return [r for r in self.live() if r.operation in WRITES]

    def blob_puts(self) -> list[str]:
        return sorted(r.relative for r in self.writes() if r.operation == "PutObject" and "/blobs/" in r.key)

    def manifest_puts(self) -> list[str]:
        return sorted(r.relative for r in self.writes() if r.operation == "PutObject" and "/builds/" in r.key)

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.live():
            counts[r.operation] = counts.get(r.operation, 0) + 1
        return counts


def keep_params(params, context, **kwargs) -> None:
    """before-parameter-build: keep the caller's parameters for the before-call hook."""
    context["input_params"] = dict(params)


def aws_events():
    return aws.client("s3").meta.events

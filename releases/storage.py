"""Worker side of an upload: the spooled zip → the artifact bucket (``releases/{id}.zip``)."""

from __future__ import annotations

import logging
import uuid

from boto3.s3.transfer import TransferConfig
from django.conf import settings

from deployment_service import aws
from releases import services
from releases.choices import ReleaseStatus
from releases.models import Release

logger = logging.getLogger(__name__)

STORE_ATTEMPTS = 5
_TRANSFER = TransferConfig(
    multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024, max_concurrency=4
)


def release_store_run(*, release_id: uuid.UUID | str, attempt: int = 0) -> float | None:
    """Store a pending release. Returns seconds to wait before trying again, or None when done
    (stored, failed for good, or nothing to do: a duplicate message)."""
    release = Release.objects.filter(pk=release_id).first()
    if release is None or release.status != ReleaseStatus.PENDING:
        logger.info("release %s is %s: nothing to store", release_id, release and release.status)
        return None
    path = release.spool_path
    if not path.exists():
        services.release_mark_failed(release_id=release.id, error=f"The upload is missing from the spool ({path}).")
        return None
    try:
        if services.file_sha256(path) != release.sha256:
            services.release_mark_failed(
                release_id=release.id, error="The spooled upload does not match the sha256 taken at upload."
            )
            return None
        aws.client("s3").upload_file(
            str(path),
            settings.TROY_ARTIFACT_BUCKET,
            release.artifact_key,
            ExtraArgs={"ContentType": "application/zip", "Metadata": {"sha256": release.sha256}},
            Config=_TRANSFER,
        )
    except Exception as exc:
        if attempt + 1 >= STORE_ATTEMPTS:
            logger.exception("release %s could not be stored", release_id)
            services.release_mark_failed(release_id=release.id, error=aws.error_message(exc))
            return None
        logger.warning("storing release %s failed (attempt %d), retrying: %s", release_id, attempt + 1, exc)
        return min(60.0, 2.0 ** (attempt + 1))
    if services.release_mark_stored(release_id=release.id):
        path.unlink(missing_ok=True)
    return None

"""Every write to releases.

Upload design (web requests never call AWS): the request streams the zip to a temporary file
(:mod:`releases.uploads`), validates it completely (:mod:`releases.archive`, pure Python), moves
it into the upload spool (``TROY_UPLOAD_SPOOL_DIR``) and records the release as ``pending`` —
with, when asked, its queued build — in one transaction. On commit the ``store_release`` actor
puts the zip in the artifact bucket (``releases/{id}.zip``) and marks it ``stored``; in the same
transaction the builds deploying it get its key, and a running one (its deploy step returned
without a key) is sent again. So storing starts the waiting build at once; nothing polls.
A rejected upload leaves nothing: no row, no spool file, no object, no status change.
"""

from __future__ import annotations

from datetime import datetime, timedelta
import hashlib
import logging
import os
from pathlib import Path
import shutil
import tempfile
import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from deployment_service import artifact_keys
from deployment_service.archives import archive_validate
from deployment_service.transactions import send_on_commit
from pipelines.choices import ACCEPTS_DEPLOYMENT, BuildKind, BuildTrigger
from pipelines.choices import PipelineStatus as S
from pipelines.models import Build, Pipeline
from pipelines.services import (
    build_request,
    preview_build_request,
    preview_label_clean,
    refuse,
    release_builds_stored,
    release_builds_unstorable,
)
from releases.choices import ReleaseStatus
from releases.exceptions import PipelineNotAcceptingReleases, ReleaseNotDeployable, ReleaseNotFound
from releases.models import Release

logger = logging.getLogger(__name__)

NOT_ACCEPTING = (S.SCHEDULED_FOR_DELETION, S.DELETING)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _upload_on_disk(upload: UploadedFile, spool_dir: Path) -> tuple[str, bool]:
    """A path to the uploaded bytes, and whether it is a copy this function made."""
    if hasattr(upload, "temporary_file_path"):
        return upload.temporary_file_path(), False
    fd, path = tempfile.mkstemp(dir=spool_dir, suffix=".upload")
    with os.fdopen(fd, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return path, True


def _check_can_deploy(pipeline: Pipeline) -> None:
    if pipeline.status not in ACCEPTS_DEPLOYMENT:
        raise refuse(pipeline, "queue_deployment")


def release_upload(
    *,
    pipeline: Pipeline,
    upload: UploadedFile,
    version: str = "",
    deploy: bool = False,
    preview: str = "",
    uploaded_by: AbstractBaseUser | None = None,
    actor: str,
) -> tuple[Release, Build | None]:
    """Validate an uploaded zip and record it as a pending release (and queue its build: for
    production, or, with ``preview`` (a label), for that preview, created on first use)."""
    if pipeline.status in NOT_ACCEPTING:
        raise PipelineNotAcceptingReleases(
            f"The pipeline is {S(pipeline.status).label.lower()}; it takes no new releases.",
            extra={"status": pipeline.status},
        )
    if preview:
        preview = preview_label_clean(preview)  # 400 before anything is read or stored
        deploy = True
    if deploy:
        _check_can_deploy(pipeline)  # 409 before anything is read or stored
    spool_dir = Path(settings.TROY_UPLOAD_SPOOL_DIR)
    spool_dir.mkdir(parents=True, exist_ok=True)
    source, copied = _upload_on_disk(upload, spool_dir)
    try:
        summary = archive_validate(source)
        sha256 = getattr(upload, "sha256", None) or file_sha256(source)
        release = Release(
            id=uuid.uuid4(),
            pipeline=pipeline,
            version=version,
            sha256=sha256,
            size=os.path.getsize(source),
            file_count=summary.file_count,
            uncompressed_size=summary.uncompressed_size,
            files={f.path: [f.sha256, f.size] for f in summary.files},
            uploaded_by=uploaded_by if getattr(uploaded_by, "is_authenticated", False) else None,
        )
        release.artifact_key = artifact_keys.release_key(release.id)
        shutil.move(source, release.spool_path)
    except BaseException:
        if copied:
            Path(source).unlink(missing_ok=True)
        raise
    try:
        with transaction.atomic():
            release.save(force_insert=True)
            build = None
            if preview:
                build = preview_build_request(
                    pipeline_id=pipeline.id,
                    label=preview,
                    kind=BuildKind.RELEASE,
                    trigger=BuildTrigger.CLI,
                    actor=actor,
                    requested_by=uploaded_by,
                    release=release,
                )
            elif deploy:
                build = build_request(
                    pipeline_id=pipeline.id,
                    kind=BuildKind.RELEASE,
                    trigger=BuildTrigger.CLI,
                    actor=actor,
                    requested_by=uploaded_by,
                    release=release,
                )
            send_on_commit("store_release", str(release.id))
    except BaseException:
        release.spool_path.unlink(missing_ok=True)
        raise
    logger.info(
        "release %s of %s uploaded (%d files, %d bytes)", release.id, pipeline.name, release.file_count, release.size
    )
    return release, build


def release_deploy(*, release_id: uuid.UUID | str, actor: str, requested_by: AbstractBaseUser | None = None) -> Build:
    """Queue a build that deploys this release (it waits for the zip to be stored if need be)."""
    try:
        release = Release.objects.select_related("pipeline").get(pk=release_id)
    except (Release.DoesNotExist, ValueError) as exc:
        raise ReleaseNotFound(f"Release {release_id} does not exist.") from exc
    if release.status == ReleaseStatus.FAILED:
        raise ReleaseNotDeployable(
            f"Release {release.version or release.id} could not be stored ({release.error}); upload it again.",
            extra={"release_status": release.status},
        )
    return build_request(
        pipeline_id=release.pipeline_id,
        kind=BuildKind.RELEASE,
        trigger=BuildTrigger.CLI,
        actor=actor,
        requested_by=requested_by,
        release=release,
        # A pending release's key reaches the build when the zip is stored (release_mark_stored).
        artifact_key=release.artifact_key if release.status == ReleaseStatus.STORED else "",
    )


def release_mark_stored(*, release_id: uuid.UUID | str) -> bool:
    """Worker: the zip is in the artifact bucket. False when the release was not pending."""
    with transaction.atomic():
        release = Release.objects.select_for_update().filter(pk=release_id).first()
        if release is None or release.status != ReleaseStatus.PENDING:
            return False
        release.mark_stored()
        release.save(update_fields=["status", "stored_at", "error"])
        release_builds_stored(release_id=release.id, artifact_key=release.artifact_key)
    return True


def release_mark_failed(*, release_id: uuid.UUID | str, error: str) -> bool:
    """Worker: the zip cannot be stored. A build deploying it fails (a queued one when it starts)."""
    with transaction.atomic():
        release = Release.objects.select_for_update().filter(pk=release_id).first()
        if release is None or release.status != ReleaseStatus.PENDING:
            return False
        release.mark_failed(error=error)
        release.save(update_fields=["status", "error"])
        release_builds_unstorable(release_id=release.id, error=error)
    Path(release.spool_path).unlink(missing_ok=True)
    return True


# --- periodic care ------------------------------------------------------------------------------


def releases_resend_pending(*, now: datetime | None = None) -> list[str]:
    """Send ``store_release`` again for releases pending longer than
    ``TROY_RESEND_WAITING_AFTER_SECONDS`` (its message may have been lost; the actor ignores a
    release that is no longer pending). Returns their ids."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.TROY_RESEND_WAITING_AFTER_SECONDS)
    ids = [
        str(pk)
        for pk in Release.objects.filter(status=ReleaseStatus.PENDING, created_at__lt=cutoff).values_list(
            "id", flat=True
        )
    ]
    for release_id in ids:
        send_on_commit("store_release", release_id)
    return ids


def release_spool_sweep(*, older_than_seconds: int = 24 * 60 * 60) -> list[str]:
    """Remove spool files that no pending release will ever read: left by a process killed between
    moving an upload into the spool and committing its row. Returns the names removed."""
    spool_dir = Path(settings.TROY_UPLOAD_SPOOL_DIR)
    if not spool_dir.is_dir():
        return []
    cutoff = timezone.now().timestamp() - older_than_seconds
    pending = {str(pk) for pk in Release.objects.filter(status=ReleaseStatus.PENDING).values_list("id", flat=True)}
    removed = []
    for path in spool_dir.iterdir():
        if not path.is_file() or path.stat().st_mtime >= cutoff or path.stem in pending:
            continue
        path.unlink(missing_ok=True)
        removed.append(path.name)
    if removed:
        logger.warning("removed %d orphaned upload(s) from the spool: %s", len(removed), ", ".join(removed))
    return removed

"""Retention: a pipeline keeps the manifests (and blobs) of its retained builds at the edge and
lets the rest go (docs/edge.md, "Retention").

Kept (``services.build_ids_retained``): the served build of each of the newest
``TROY_RETAINED_BUILDS`` builds that went live, the live build's, every pointer's (and the build its
last published value names, which the KeyValueStore serves until it is updated), and whatever a
queued or running build needs (its own manifest, its source and the source's served build). One
run, ``retention_run``:

1. **Forget** (database, one short locked transaction, ``services.builds_mark_unstored``): every
   other build with ``stored_at`` set gets it cleared. No status changes, so no event.
2. **Manifests**: delete the manifests of the builds just forgotten, and any other manifest of the
   pipeline that no kept or stored build owns and that is older than ``TROY_BLOB_GRACE_SECONDS``
   (left by a run that crashed between 1 and 2, or by a deploy that failed after writing it).
3. **Blobs**: list ``{pipeline}/blobs/``, read the manifests of the stored and kept builds (each
   once: manifests are immutable) and delete, in batches of 1000, the blobs none of them names
   whose LastModified is older than ``TROY_BLOB_GRACE_SECONDS``.

Why this is safe beside a deploy:

* Deploys are serialized per pipeline by the status machine (one running build, ``deploying``
  entered under the pipeline's lock). A deploy trusts the blobs of every build stored when it
  starts (it uploads nothing they name) and a rollback trusts its source's manifest. So
  retention never changes anything while a deploy is in progress: step 1 takes the same lock and
  does nothing when the pipeline is deploying or a build is running (the actor tries again a few
  minutes later), and a deploy that starts after it sees the forgotten builds as not stored (it
  stores their content again) — which is why step 1 clears ``stored_at`` *before* step 2 deletes
  the manifests, not after: ``stored_at`` set must always mean "the manifest is there".
* Queued builds are waited for rather than raced: their sources are kept, so a rollback queued
  before the run still writes only the pointer.
* Before each batch of blob deletes the run checks again that no deploy is in progress and that
  no build became stored since it read the manifests; if one did it stops (the next run goes
  on). A deploy that starts after that check needs its artifact downloaded before its first
  write, so its puts land after the batch's delete. The grace covers the rest: blobs a deploy
  just put (or, run again after a crash, found younger than half the grace and trusts) are
  never deleted while that deploy can still name them in its manifest.
* A stored build whose manifest is missing or unreadable stops the blob step (logged): what it
  names is unknown, so nothing is deleted.

Idempotent: a second run finds nothing stored outside the kept set and no unnamed blob left.
A pipeline still in the old in-place layout (``edge_router`` empty and nothing stored) has
nothing here: its files are not blobs. Only keys retention recognises are ever deleted
(``builds/{build id}.json`` and ``blobs/{64 hex}``), so files of the old layout under the same
prefix are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import logging
import re
import uuid

from botocore.exceptions import ClientError
from django.conf import settings
from django.utils import timezone

from deployment_service import aws
from deployment_service.integrations import s3_cleanup
from edge.manifest import ManifestError, loads, manifest_key
from pipelines import services
from pipelines.choices import PipelineStatus as S
from pipelines.models import Pipeline

logger = logging.getLogger(__name__)

_BLOB_NAME = re.compile(r"[0-9a-f]{64}")
_MANIFEST_NAME = re.compile(r"([A-Za-z0-9][A-Za-z0-9_-]{0,63})\.json")
_MISSING = {"404", "NoSuchKey", "NotFound"}
# Deletion removes everything under the pipeline's prefix anyway.
_BEING_DELETED = (S.SCHEDULED_FOR_DELETION, S.DELETING)


@dataclass
class RetentionReport:
    """What one run did. ``skipped``: why it did nothing (or stopped before the blobs); ``busy``:
    a deploy was in progress, so trying again soon is worth it."""

    pipeline_id: str
    skipped: str = ""
    busy: bool = False
    kept: list[str] = field(default_factory=list)
    unstored: list[str] = field(default_factory=list)
    manifests_deleted: int = 0
    blobs_deleted: int = 0
    blobs_named: int = 0
    blobs_young: int = 0


class _StopBlobs(Exception):
    """The blob step cannot go on safely now (the reason is the message)."""

    def __init__(self, reason: str, *, busy: bool = False) -> None:
        super().__init__(reason)
        self.busy = busy


def retention_run(*, pipeline_id: uuid.UUID | str) -> RetentionReport:
    """One retention pass over a pipeline (see the module docstring). Safe to repeat."""
    report = RetentionReport(pipeline_id=str(pipeline_id))
    pipeline = Pipeline.objects.filter(pk=pipeline_id).first()
    if pipeline is None:
        report.skipped = "the pipeline no longer exists"
        return report
    if pipeline.status in _BEING_DELETED:
        report.skipped = "the pipeline is being deleted (everything under its prefix goes)"
        return report
    retained = settings.TROY_RETAINED_BUILDS
    stored = services.build_ids_stored(pipeline_id=pipeline.id)
    if not stored and not pipeline.edge_router:
        report.skipped = "the pipeline is still in the old in-place layout: nothing is stored as blobs"
        return report
    if services.deploy_in_progress(pipeline_id=pipeline.id):
        return _busy(report)

    # 1. Forget the builds no longer retained (under the pipeline's lock; no S3 call yet).
    candidates = stored - services.build_ids_retained(pipeline_id=pipeline.id, retained=retained)
    unstored = services.builds_mark_unstored(pipeline_id=pipeline.id, build_ids=candidates, retained=retained)
    if unstored is None:
        return _busy(report)
    report.unstored = sorted(str(build_id) for build_id in unstored)

    # 2. Their manifests, then manifests nobody owns.
    kept = services.build_ids_retained(pipeline_id=pipeline.id, retained=retained)
    stored = services.build_ids_stored(pipeline_id=pipeline.id)
    report.kept = sorted(str(build_id) for build_id in kept)
    cutoff = timezone.now() - timedelta(seconds=settings.TROY_BLOB_GRACE_SECONDS)
    report.manifests_deleted = _delete_manifests(pipeline, unstored=unstored, owned=kept | stored, cutoff=cutoff)

    # 3. Blobs no stored or kept manifest names.
    try:
        _delete_blobs(pipeline, report, readable=kept | stored, stored=stored, cutoff=cutoff)
    except _StopBlobs as stop:
        report.skipped, report.busy = str(stop), stop.busy
        logger.info("%s: retention stopped before the blobs: %s", pipeline.name, stop)
    logger.info(
        "%s: retention kept %d build(s), let %d go; deleted %d manifest(s) and %d blob(s)",
        pipeline.name,
        len(report.kept),
        len(report.unstored),
        report.manifests_deleted,
        report.blobs_deleted,
    )
    return report


def _busy(report: RetentionReport) -> RetentionReport:
    report.skipped, report.busy = "a deploy of the pipeline is in progress", True
    return report


def _delete_manifests(
    pipeline: Pipeline, *, unstored: Iterable[uuid.UUID], owned: set[uuid.UUID], cutoff: datetime
) -> int:
    bucket = settings.TROY_LIVE_BUCKET
    doomed = {manifest_key(str(pipeline.id), str(build_id)) for build_id in unstored}
    owned_names = {str(build_id) for build_id in owned}
    prefix = f"{pipeline.id}/builds/"
    for item in s3_cleanup.objects_under(bucket=bucket, prefix=prefix):
        name = _MANIFEST_NAME.fullmatch(item.key[len(prefix) :])
        if name and name[1] not in owned_names and item.last_modified < cutoff:
            doomed.add(item.key)
    return s3_cleanup.keys_delete(bucket=bucket, keys=doomed) if doomed else 0


def _delete_blobs(
    pipeline: Pipeline, report: RetentionReport, *, readable: set[uuid.UUID], stored: set[uuid.UUID], cutoff: datetime
) -> None:
    named = _named_blobs(pipeline, readable=readable, stored=stored)
    prefix = f"{pipeline.id}/blobs/"
    batch: list[str] = []
    for item in s3_cleanup.objects_under(bucket=settings.TROY_LIVE_BUCKET, prefix=prefix):
        name = item.key[len(prefix) :]
        if not _BLOB_NAME.fullmatch(name):
            continue  # not a blob of this layout (a file of the old one): not ours to delete
        if name in named:
            report.blobs_named += 1
        elif item.last_modified >= cutoff:
            report.blobs_young += 1
        else:
            batch.append(item.key)
            if len(batch) == s3_cleanup.DELETE_BATCH:
                report.blobs_deleted += _delete_blob_batch(pipeline, batch, stored=stored)
                batch = []
    if batch:
        report.blobs_deleted += _delete_blob_batch(pipeline, batch, stored=stored)


def _named_blobs(pipeline: Pipeline, *, readable: set[uuid.UUID], stored: set[uuid.UUID]) -> set[str]:
    """Every content key a stored or kept build's manifest names. A stored build's manifest must
    be readable (else nothing is deleted); a kept build that is not stored may have none."""
    named: set[str] = set()
    for build_id in sorted(readable, key=str):
        key = manifest_key(str(pipeline.id), str(build_id))
        try:
            raw = aws.client("s3").get_object(Bucket=settings.TROY_LIVE_BUCKET, Key=key)["Body"].read()
        except ClientError as exc:
            if aws.error_code(exc) not in _MISSING:
                raise
            if build_id in stored:
                logger.error("%s: build %s is stored but its manifest %s is missing", pipeline.name, build_id, key)
                raise _StopBlobs(f"the manifest of stored build {build_id} is missing; no blob was deleted") from exc
            continue
        try:
            manifest = loads(raw)
        except ManifestError as exc:
            logger.error("%s: the manifest %s cannot be read: %s", pipeline.name, key, exc)
            raise _StopBlobs(f"the manifest of build {build_id} cannot be read ({exc}); no blob was deleted") from exc
        named.update(entry.key for entry in manifest.files.values())
    return named


def _delete_blob_batch(pipeline: Pipeline, keys: list[str], *, stored: set[uuid.UUID]) -> int:
    if services.deploy_in_progress(pipeline_id=pipeline.id):
        raise _StopBlobs("a deploy of the pipeline started; the remaining blobs wait for the next run", busy=True)
    if services.build_ids_stored(pipeline_id=pipeline.id) != stored:
        raise _StopBlobs("a build was stored or let go since the manifests were read; the next run goes on")
    return s3_cleanup.keys_delete(bucket=settings.TROY_LIVE_BUCKET, keys=keys)

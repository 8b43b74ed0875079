"""The deploy step, shared by release and automated builds.

Contract (called by the actor ``pipelines.tasks.deploy_build``): ``deploy_build_run(build_id=…)``

* acts only when the build is ``running`` and its pipeline ``deploying`` (a preview build: when
  the build is ``running``, whatever the pipeline does); otherwise (a duplicate or stale message)
  it logs and returns; a preview build finishes with ``preview_deployment_finish`` (its preview's
  pointer and its permalink; production is not touched);
* a release build whose zip is still in the upload spool has no ``artifact_key`` yet: the step
  returns, and storing the zip sends it again (``pipelines.services.release_builds_stored``); a
  release that could not be stored fails the build; one never stored is failed by the reaper;
* a rollback whose source build's stored manifest is still retained writes nothing at all: it
  finishes with ``content_build_id`` = that build, and the pointer names it;
* any other build is stored at the edge from its artifact (``build.artifact_key``, or
  ``artifacts/{build id}.zip`` for an automated build that has none recorded):
  :func:`pipelines.flows.deploy.store.build_store` writes the blobs not stored yet and the
  build's manifest, then ``pipelines.services.deployment_finish`` records the stats and points
  the host at the build. A transient AWS error raises ``TransientFailure`` (the message is
  retried and resumes); any other error ``deployment_fail``\\s the build with the message
  (→ failed_to_deploy, the site keeps serving what was live, the next queued build runs).
"""

from __future__ import annotations

import logging
import time
import uuid

from deployment_service import artifact_keys, aws
from deployment_service.exceptions import ApplicationError
from deployment_service.observability.metrics import deploy_observe
from deployment_service.retries import TransientFailure, is_transient
from deployment_service.test_pauses import pause_at
from pipelines import services
from pipelines.choices import BuildKind, BuildStatus, PipelineStatus
from pipelines.flows.deploy.store import (
    ArtifactMismatch,
    ArtifactMissing,
    RetainedBuild,
    StoreResult,
    build_store,
    manifest_exists,
)
from pipelines.models import Build

logger = logging.getLogger(__name__)


def build_artifact_key(build: Build) -> str:
    if build.artifact_key:
        return build.artifact_key
    if build.kind == BuildKind.AUTOMATED:
        return artifact_keys.build_artifact_key(build.id)
    return ""


def _artifact_ready(build: Build) -> bool:
    """True when the build may go on. A release build gets its key when its zip is stored; until
    then it waits for the message that storing sends (``release_builds_stored``), without polling."""
    if build.artifact_key or build.release_id is None:
        return True
    if build.error:  # its release could not be stored (``release_builds_unstorable``)
        services.deployment_fail(build_id=build.id, error=build.error)
        return False
    logger.info("build %s waits for its release zip to be stored (storing it sends the deploy)", build.id)
    return False


def _release_hashes(build: Build) -> tuple[dict[str, list] | None, str | None]:
    """The per-file hashes taken when the build's release was uploaded, and the zip's sha256
    (None for a build without a release). Read as plain values: the release row is not kept
    for the whole deploy (100,000 files' hashes are tens of MB as Python objects)."""
    if build.release_id is None:
        return None, None
    row = Build.objects.filter(pk=build.pk).values_list("release__files", "release__sha256").first()
    if row is None or not row[0]:
        return None, None
    return row[0], row[1]


def _describe(exc: Exception) -> str:
    if isinstance(exc, ApplicationError):
        return f"The artifact was refused ({exc.code}): {exc.detail}"
    if isinstance(exc, (ArtifactMissing, ArtifactMismatch)):
        return str(exc)
    return aws.error_message(exc)


def _fail_or_retry(build: Build, exc: Exception) -> None:
    """A permanent failure is the build's, kept on it (the next build runs); a transient one
    leaves the build running and raises, so Dramatiq retries the message, which resumes."""
    if is_transient(exc):
        logger.warning("deploy of build %s, retrying later: %s", build.id, _describe(exc))
        raise TransientFailure(_describe(exc)) from exc
    logger.exception("deploy of build %s failed", build.id)
    services.deployment_fail(build_id=build.id, error=_describe(exc))


def retained_builds(build: Build) -> list[RetainedBuild]:
    """The pipeline's other builds whose manifests are stored, newest first (at most
    ``TROY_RETAINED_BUILDS`` and the live one, plus any retention has not reached yet)."""
    rows = (
        Build.objects.filter(pipeline_id=build.pipeline_id, stored_at__isnull=False)
        .exclude(pk=build.pk)
        .order_by("-number")
        .values_list("id", "number")
    )
    return [RetainedBuild(id=str(build_id), number=number) for build_id, number in rows]


def rollback_target(build: Build) -> Build | None:
    """For a rollback: the build whose stored manifest it can serve as it is (the source's served
    build, when its manifest is still retained: ``stored_at`` set and the object there, one HEAD).
    None when the build is no rollback or its content is past retention (then it is stored again)."""
    if not build.is_rollback or build.source_build_id is None:
        return None
    source = Build.objects.select_related("content_build").get(pk=build.source_build_id)
    served = source.content_build or source
    if served.pipeline_id != build.pipeline_id or served.stored_at is None:
        return None
    if not manifest_exists(pipeline_id=str(served.pipeline_id), build_id=str(served.id)):
        logger.warning("build %s: the manifest of build %s is gone, storing the build again", build.id, served.id)
        return None
    return served


def _finish_pointer_only(build: Build, served: Build, *, seconds: float) -> None:
    services.deployment_finish(
        build_id=build.id,
        stats={
            "files_total": served.files_total,
            "files_uploaded": 0,
            "files_unchanged": served.files_total,
            "bytes_uploaded": 0,
        },
        content_build_id=served.id,
    )
    deploy_observe(StoreResult(files_total=served.files_total, timings={"rollback check": seconds}))
    logger.info("build %s live: rolled back to the stored build %s (pointer only)", build.id, served.id)


def deploy_build_run(*, build_id: uuid.UUID | str) -> None:
    build = Build.objects.select_related("pipeline").filter(pk=build_id).first()
    if build is None:
        logger.info("build %s no longer exists: nothing to deploy", build_id)
        return
    pipeline = build.pipeline
    # A preview build runs beside production: only its own status counts (docs/edge.md, "Previews").
    production_ready = build.preview_id is not None or pipeline.status == PipelineStatus.DEPLOYING
    if build.status != BuildStatus.RUNNING or not production_ready:
        logger.info("build %s is %s (pipeline %s): not deploying", build_id, build.status, pipeline.status)
        return
    started = time.perf_counter()
    try:
        served = rollback_target(build)
    except Exception as exc:
        _fail_or_retry(build, exc)
        return
    if served is not None:
        _finish_pointer_only(build, served, seconds=time.perf_counter() - started)
        return
    if not _artifact_ready(build):
        return
    key = build_artifact_key(build)
    if not key:
        services.deployment_fail(build_id=build.id, error="The build has no artifact to deploy.")
        return
    try:
        pause_at("deploy.started")
        known_files, artifact_sha256 = _release_hashes(build)
        result = build_store(
            pipeline_id=str(pipeline.id),
            build_id=str(build.id),
            artifact_key=key,
            retained=retained_builds(build),
            known_files=known_files,
            artifact_sha256=artifact_sha256,
        )
    except Exception as exc:
        _fail_or_retry(build, exc)
        return
    if build.preview_id is not None:
        services.preview_deployment_finish(build_id=build.id, stats=result.stats())
    else:
        services.deployment_finish(build_id=build.id, stats=result.stats())
    deploy_observe(result)
    logger.info(
        "build %s stored and live: %d files, %d blobs uploaded (%d bytes), %d already stored (%s)",
        build_id,
        result.files_total,
        result.files_uploaded,
        result.bytes_uploaded,
        result.files_unchanged,
        ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items()),
    )

"""The deploy step, shared by release and automated builds.

Contract (called by the actor ``pipelines.tasks.deploy_build``): ``deploy_build_run(build_id=…)``

* acts only when the build is ``running`` and its pipeline ``deploying``; otherwise (a duplicate
  or stale message) it logs and returns;
* a release build whose zip is still in the upload spool (release ``pending``) is not ready: the
  actor is sent again with a delay, never sleeping; a release that could not be stored, or that
  stays pending past ``RELEASE_WAIT_SECONDS``, fails the build;
* reads the artifact from ``build.artifact_key`` (``artifacts/{build id}.zip`` for an automated
  build that has none recorded), puts it live (:func:`pipelines.flows.deploy.sync.deploy_artifact`) and
  calls ``pipelines.services.deployment_finish`` with the stats and manifest; on any error,
  ``deployment_fail`` with the message (→ failed_to_deploy, the next queued build runs).
"""

from __future__ import annotations

from datetime import timedelta
import logging
import uuid

from django.utils import timezone
import dramatiq

from deployment_service import artifact_keys, aws
from deployment_service.exceptions import ApplicationError
from deployment_service.observability.metrics import deploy_observe
from deployment_service.retries import TransientFailure, is_transient
from deployment_service.test_pauses import pause_at
from pipelines import services
from pipelines.choices import BuildKind, BuildStatus, PipelineStatus
from pipelines.flows.deploy.sync import ArtifactMismatch, ArtifactMissing, deploy_artifact
from pipelines.models import Build
from releases.choices import ReleaseStatus

logger = logging.getLogger(__name__)

RELEASE_WAIT_SECONDS = 30 * 60
RELEASE_POLL_MS = 2_000


def build_artifact_key(build: Build) -> str:
    if build.artifact_key:
        return build.artifact_key
    if build.kind == BuildKind.AUTOMATED:
        return artifact_keys.build_artifact_key(build.id)
    return ""


def _wait_for_release(build: Build) -> bool:
    """True when the build may go on; otherwise it was re-sent for later or failed."""
    release = build.release
    if release is None or release.status == ReleaseStatus.STORED:
        return True
    if release.status == ReleaseStatus.FAILED:
        services.deployment_fail(build_id=build.id, error=f"The release upload could not be stored: {release.error}")
        return False
    if timezone.now() - release.created_at > timedelta(seconds=RELEASE_WAIT_SECONDS):
        services.deployment_fail(build_id=build.id, error="The release upload was never stored (no worker stored it).")
        return False
    logger.info("build %s waits for release %s to be stored", build.id, release.id)
    dramatiq.get_broker().get_actor("deploy_build").send_with_options(args=(str(build.id),), delay=RELEASE_POLL_MS)
    return False


def _failed_since(build: Build, live: Build) -> bool:
    """Whether a deploy may have failed halfway since the live build went live (then the bucket
    is listed rather than taken to match the live build's manifest)."""
    since = live.started_at or live.created_at
    return (
        Build.objects.filter(pipeline_id=build.pipeline_id, status=BuildStatus.FAILED, created_at__gte=since)
        .exclude(pk=build.pk)
        .exists()
    )


def _describe(exc: Exception) -> str:
    if isinstance(exc, ApplicationError):
        return f"The artifact was refused ({exc.code}): {exc.detail}"
    if isinstance(exc, (ArtifactMissing, ArtifactMismatch)):
        return str(exc)
    return aws.error_message(exc)


def deploy_build_run(*, build_id: uuid.UUID | str) -> None:
    build = Build.objects.select_related("pipeline", "pipeline__live_build", "release").filter(pk=build_id).first()
    if build is None:
        logger.info("build %s no longer exists: nothing to deploy", build_id)
        return
    pipeline = build.pipeline
    if build.status != BuildStatus.RUNNING or pipeline.status != PipelineStatus.DEPLOYING:
        logger.info("build %s is %s (pipeline %s): not deploying", build_id, build.status, pipeline.status)
        return
    if not _wait_for_release(build):
        return
    key = build_artifact_key(build)
    if not key:
        services.deployment_fail(build_id=build.id, error="The build has no artifact to deploy.")
        return
    live = pipeline.live_build if pipeline.live_build_id and pipeline.live_build_id != build.id else None
    release = build.release if build.release_id and build.release.files else None
    try:
        pause_at("deploy.started")
        result = deploy_artifact(
            pipeline_id=str(pipeline.id),
            distribution_id=pipeline.distribution_id,
            artifact_key=key,
            live_manifest=live.manifest if live is not None else None,
            caller_reference=str(build.id),
            trust_live_manifest=live is not None and not _failed_since(build, live),
            known_files=release.files if release is not None else None,
            artifact_sha256=release.sha256 if release is not None else None,
        )
    except Exception as exc:  # a permanent failure is the build's, kept on it; the next build runs
        if is_transient(exc):  # the build stays running: Dramatiq retries the message, which resumes
            logger.warning("deploy of build %s, retrying later: %s", build_id, _describe(exc))
            raise TransientFailure(_describe(exc)) from exc
        logger.exception("deploy of build %s failed", build_id)
        services.deployment_fail(build_id=build.id, error=_describe(exc))
        return
    services.deployment_finish(build_id=build.id, stats=result.stats(), manifest=result.manifest)
    deploy_observe(result)
    logger.info(
        "build %s live: %d uploaded, %d unchanged, %d deleted, %d kept, invalidation %s (%s)",
        build_id,
        len(result.uploaded),
        len(result.unchanged),
        len(result.deleted),
        len(result.kept),
        result.invalidation_id or "none",
        ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items()),
    )

"""The deploy step, shared by release and automated builds.

Contract (called by the actor ``pipelines.tasks.deploy_build``): ``deploy_build_run(build_id=…)``

* acts only when the build is ``running`` and its pipeline ``deploying``; otherwise (a duplicate
  or stale message) it logs and returns;
* a release build whose zip is still in the upload spool has no ``artifact_key`` yet: the step
  returns, and storing the zip sends it again (``pipelines.services.release_builds_stored``); a
  release that could not be stored fails the build; one never stored is failed by the reaper;
* reads the artifact from ``build.artifact_key`` (``artifacts/{build id}.zip`` for an automated
  build that has none recorded), puts it live (:func:`pipelines.flows.deploy.sync.deploy_artifact`) and
  calls ``pipelines.services.deployment_finish`` with the stats and manifest; on any error,
  ``deployment_fail`` with the message (→ failed_to_deploy, the next queued build runs).
"""

from __future__ import annotations

import logging
import uuid

from deployment_service import artifact_keys, aws
from deployment_service.exceptions import ApplicationError
from deployment_service.observability.metrics import deploy_observe
from deployment_service.retries import TransientFailure, is_transient
from deployment_service.test_pauses import pause_at
from pipelines import services
from pipelines.choices import BuildKind, BuildStatus, PipelineStatus
from pipelines.flows.deploy.sync import ArtifactMismatch, ArtifactMissing, deploy_artifact
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
    if not _artifact_ready(build):
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
            live_build_id=str(live.id) if live is not None else "",
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

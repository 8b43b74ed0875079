"""Builds and the deployment queue.

Rules (DESIGN.md): one running build per pipeline; a deployment asked for while one is queued or
running queues a build and leaves the status alone; when a deployment ends the newest queued build
runs next and older queued ones are superseded; cancelling the last queued build withdraws the
pipeline to the status it was queued from.
"""

from __future__ import annotations

import logging
from typing import Any
import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from deployment_service.integrations.local_git import is_local_source
from deployment_service.transactions import send_on_commit
from pipelines.choices import ACCEPTS_DEPLOYMENT, DEPLOYABLE, BuildKind, BuildStatus, BuildTrigger
from pipelines.choices import PipelineStatus as S
from pipelines.exceptions import (
    BuildNotCancellable,
    BuildNotFound,
    InstallationMissing,
    NoRepository,
    NothingToRedeploy,
)
from pipelines.grants import owner_installation_id
from pipelines.models import Build, Pipeline
from pipelines.services.pointers import pointer_set, pointer_set_permalink
from pipelines.services.transitions import SYSTEM_WORKER, apply_transition, lock_pipeline, refuse

logger = logging.getLogger(__name__)

STAT_FIELDS = (
    "files_total",
    "files_uploaded",
    "files_unchanged",
    "files_deleted",
    "bytes_uploaded",
    "invalidation_id",
    "visitor_credentials",  # troy.json basic_auth, hashed (docs/edge.md, "Visitor passwords")
)


def next_build_number(pipeline: Pipeline) -> int:
    """Builds count up per pipeline, production and previews alike (call under the pipeline's lock)."""
    return (Build.objects.filter(pipeline=pipeline).aggregate(n=Max("number"))["n"] or 0) + 1


def signed_in(user: AbstractBaseUser | None) -> AbstractBaseUser | None:
    """Who asked for a build, when a signed-in user did (None for workers, hooks, anonymous)."""
    return user if getattr(user, "is_authenticated", False) else None


def build_lock(build_id: uuid.UUID | str) -> tuple[Pipeline, Build]:
    """Lock the build's pipeline, then the build (always in that order: no deadlocks)."""
    try:
        pipeline_id = Build.objects.values_list("pipeline_id", flat=True).get(pk=build_id)
    except (Build.DoesNotExist, ValueError) as exc:
        raise BuildNotFound(f"Build {build_id} does not exist.") from exc
    pipeline = lock_pipeline(pipeline_id)
    return pipeline, Build.objects.select_for_update().get(pk=build_id)


def build_needs_codebuild(build: Build) -> bool:
    """An automated build runs CodeBuild, unless it redeploys an artifact that already exists."""
    return build.kind == BuildKind.AUTOMATED and build.source_build_id is None


def automated_source_check(pipeline: Pipeline) -> None:
    """A build from GitHub needs a repository and an active installation of the owner covering it
    (production and preview builds alike); a local git source needs no GitHub App."""
    if not pipeline.repository:
        raise NoRepository(f"Pipeline {pipeline.name} has no repository to build from; set one, or upload a release.")
    if is_local_source(pipeline.repository):
        return
    if owner_installation_id(owner_id=pipeline.owner_id, repository=pipeline.repository) is None:
        raise InstallationMissing(
            f"Pipeline {pipeline.name}'s owner holds no active GitHub App installation covering "
            f"{pipeline.repository} (uninstalled or suspended on GitHub?): install the App on it again."
        )


def build_request(
    *,
    pipeline_id: uuid.UUID | str,
    kind: str,
    trigger: str,
    actor: str,
    requested_by: AbstractBaseUser | None = None,
    ref: str = "",
    commit_sha: str = "",
    release: Any = None,
    source_build: Build | None = None,
    artifact_key: str = "",
) -> Build:
    """Queue a build. A pipeline at rest moves to ``queued``; one already queued or deploying keeps
    its status and the build waits its turn."""
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        if pipeline.status not in ACCEPTS_DEPLOYMENT:
            raise refuse(pipeline, "queue_deployment")
        if kind == BuildKind.AUTOMATED and source_build is None:
            automated_source_check(pipeline)
        number = next_build_number(pipeline)
        build = Build.objects.create(
            pipeline=pipeline,
            number=number,
            kind=kind,
            trigger=trigger,
            ref=ref,
            commit_sha=commit_sha,
            release=release,
            source_build=source_build,
            # A release build's key is set by its caller once the zip is stored (see
            # ``release_builds_stored``): until then the deploy step has nothing to read.
            artifact_key=artifact_key,
            requested_by=signed_in(requested_by),
        )
        what = f"Build #{number} queued ({BuildTrigger(trigger).label.lower()})."
        if pipeline.status in DEPLOYABLE:
            apply_transition(pipeline, "queue_deployment", actor=actor, build=build, message=what)
            send_on_commit("run_deployment", str(pipeline.id))
        else:
            logger.info("%s: %s behind the current deployment", pipeline.name, what)
    return build


def deployment_start(*, pipeline_id: uuid.UUID | str) -> Build | None:
    """Worker: take the newest queued build, supersede older queued ones, → deploying.

    Returns None (and changes nothing) when the pipeline is not ``queued``: a duplicate or stale
    message. On commit, enqueues the build's work: CodeBuild, or the deploy step directly.
    """
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        if pipeline.status != S.QUEUED:
            logger.info("%s is %s, not queued: nothing to start", pipeline.name, pipeline.status)
            return None
        queued = list(
            Build.objects.select_for_update()
            .filter(pipeline=pipeline, preview__isnull=True, status=BuildStatus.QUEUED)
            .order_by("-number")
        )
        if not queued:
            apply_transition(pipeline, "withdraw_deployment", actor=SYSTEM_WORKER, message="No queued build left.")
            return None
        build, older = queued[0], queued[1:]
        for stale in older:
            stale.supersede(by=build)
            stale.save()
        build.start()
        build.save()
        apply_transition(
            pipeline, "start_deployment", actor=SYSTEM_WORKER, build=build, message=f"Build #{build.number} started."
        )
        send_on_commit("run_codebuild" if build_needs_codebuild(build) else "deploy_build", str(build.id))
    return build


def _advance_queue(pipeline: Pipeline) -> None:
    """After a deployment ends: if builds are waiting, queue the pipeline again."""
    queued = Build.objects.filter(pipeline=pipeline, preview__isnull=True, status=BuildStatus.QUEUED)
    if queued.exists():
        newest = queued.order_by("-number").first()
        apply_transition(
            pipeline,
            "queue_deployment",
            actor=SYSTEM_WORKER,
            build=newest,
            message=f"Build #{newest.number} runs next.",
        )
        send_on_commit("run_deployment", str(pipeline.id))


def _report_commit_status(build: Build) -> None:
    """An automated build's end goes back to its commit as a GitHub status (in a worker)."""
    if build.kind == BuildKind.AUTOMATED and build.commit_sha:
        send_on_commit("report_commit_status", str(build.id))


def deployment_finish(
    *,
    build_id: uuid.UUID | str,
    stats: dict[str, Any] | None = None,
    content_build_id: uuid.UUID | str | None = None,
) -> Build | None:
    """Worker: the build is stored at the edge (its manifest and blobs). → deployed, the build
    becomes the live build and the pipeline's pointer names it, in the same transaction; the
    KeyValueStore follows on commit (``publish_edge_pointers``).

    ``content_build_id``: the retained build whose stored manifest this build serves (a
    rollback that wrote nothing); None when the deploy stored this build's own manifest.

    Returns None when the build is not running (a duplicate: it already finished)."""
    with transaction.atomic():
        pipeline, build = build_lock(build_id)
        if build.status != BuildStatus.RUNNING or pipeline.status != S.DEPLOYING or build.preview_id is not None:
            # (a preview build finishes with preview_deployment_finish: it never touches production)
            logger.info("build %s is %s (pipeline %s): not finishing again", build_id, build.status, pipeline.status)
            return None
        for field, value in (stats or {}).items():
            if field not in STAT_FIELDS:
                raise TypeError(f"unknown build stat {field!r}")
            setattr(build, field, value)
        if content_build_id is not None and str(content_build_id) != str(build.id):
            content = Build.objects.get(pk=content_build_id, pipeline=pipeline)
            build.content_build = content
        else:
            build.stored_at = timezone.now()
        build.succeed()
        build.save()
        pointer_set(pipeline=pipeline, build=build)
        if build.stored_at is not None:
            pointer_set_permalink(pipeline=pipeline, build=build)
        if pipeline.edge_router == "" and settings.TROY_EDGE_POINTERS == "kvs":
            # An old-layout pipeline: its build is now stored in the new layout, so its
            # distribution can move onto the router once the pointer is published (docs/edge.md).
            send_on_commit("edge_attach_router", str(pipeline.id))
        apply_transition(
            pipeline,
            "finish_deployment",
            actor=SYSTEM_WORKER,
            message=_live_message(build),
            build=build,
            live_build=build,
        )
        _report_commit_status(build)
        _advance_queue(pipeline)
    return build


def _live_message(build: Build) -> str:
    if build.trigger == BuildTrigger.PROMOTE and build.source_build is not None:
        source = build.source_build
        label = source.preview.label if source.preview is not None else "(deleted)"
        how = "pointer only, nothing uploaded" if build.content_build is not None else "stored again"
        return f"Build #{build.number} is live: promoted preview {label}'s build #{source.number} ({how})."
    if build.content_build is not None:
        source = build.content_build
        return f"Build #{build.number} is live: rolled back to build #{source.number} (pointer only, nothing uploaded)."
    if build.is_rollback and build.source_build is not None:
        return f"Build #{build.number} is live: rolled back to build #{build.source_build.number} (stored again)."
    return f"Build #{build.number} is live."


def deployment_fail(*, build_id: uuid.UUID | str, error: str, actor: str = SYSTEM_WORKER) -> Build | None:
    """Worker, CodeBuild handler or reaper: the build failed. → failed_to_deploy (the site keeps
    serving what was live), and the next queued build runs. None when the build already ended."""
    with transaction.atomic():
        pipeline, build = build_lock(build_id)
        if build.status != BuildStatus.RUNNING:
            logger.info("build %s is %s: not failing it", build_id, build.status)
            return None
        if build.preview_id is not None:
            from pipelines.services.previews import preview_deployment_fail  # previews builds on this module

            preview_deployment_fail(pipeline=pipeline, build=build, error=error, actor=actor)
            return build
        build.fail(error=error)
        build.save()
        _report_commit_status(build)
        if pipeline.status == S.DEPLOYING:
            apply_transition(
                pipeline,
                "fail_deployment",
                actor=actor,
                build=build,
                message=f"Build #{build.number} failed: {error}",
                error=error,
            )
            _advance_queue(pipeline)
    return build


def release_builds_stored(*, release_id: uuid.UUID | str, artifact_key: str) -> list[str]:
    """Releases, once a release's zip is in the artifact bucket: record its key on the builds that
    deploy it and have none yet, and send the deploy step of a running one (it was waiting for
    this message rather than polling). Safe to repeat. Returns the ids of the builds sent."""
    sent = []
    with transaction.atomic():
        waiting = Build.objects.select_for_update().filter(
            release_id=release_id, artifact_key="", status__in=(BuildStatus.QUEUED, BuildStatus.RUNNING)
        )
        for build in waiting:
            build.artifact_key = artifact_key
            build.save(update_fields=["artifact_key"])
            if build.status == BuildStatus.RUNNING:
                send_on_commit("deploy_build", str(build.id))
                sent.append(str(build.id))
    return sent


def release_builds_unstorable(*, release_id: uuid.UUID | str, error: str) -> None:
    """Releases, when a release's zip can never be stored: a running build deploying it fails now;
    a queued one keeps the reason and fails when it starts (the deploy step reads it)."""
    message = f"The release upload could not be stored: {error}"
    running = Build.objects.filter(release_id=release_id, artifact_key="", status=BuildStatus.RUNNING)
    for build_id in running.values_list("id", flat=True):
        deployment_fail(build_id=build_id, error=message)
    Build.objects.filter(release_id=release_id, artifact_key="", status=BuildStatus.QUEUED).update(error=message)


def build_cancel(*, build_id: uuid.UUID | str, actor: str) -> Build:
    """Cancel a queued build; withdraw the pipeline when it was the last one queued.

    A running automated build is stopped in CodeBuild by a worker; its STOPPED event then fails it.
    A running release deploy cannot be cancelled (it is short and stopping it halfway would leave a
    half-updated site)."""
    with transaction.atomic():
        pipeline, build = build_lock(build_id)
        if build.status == BuildStatus.QUEUED:
            build.cancel(reason=f"Cancelled by {actor}.")
            build.save()
            others = Build.objects.filter(pipeline=pipeline, preview__isnull=True, status=BuildStatus.QUEUED).exists()
            if pipeline.status == S.QUEUED and not others:
                apply_transition(
                    pipeline,
                    "withdraw_deployment",
                    actor=actor,
                    build=build,
                    message=f"Build #{build.number} cancelled; nothing left to deploy.",
                )
        elif build.status == BuildStatus.RUNNING and build_needs_codebuild(build):
            if not build.cancel_requested:
                build.cancel_requested = True
                build.cancel_requested_by = actor
                build.save(update_fields=["cancel_requested", "cancel_requested_by", "updated_at"])
                send_on_commit("stop_codebuild", str(build.id))
        else:
            raise BuildNotCancellable(
                f"Build #{build.number} is {build.status}; only queued builds and running automated builds "
                "can be cancelled.",
                extra={"status": build.status},
            )
    return build


def build_redeploy(*, build_id: uuid.UUID | str, actor: str, requested_by: AbstractBaseUser | None = None) -> Build:
    """Rollback: deploy an earlier build's artifact again, as a new build (only what differs is uploaded)."""
    try:
        source = Build.objects.select_related("pipeline").get(pk=build_id)
    except (Build.DoesNotExist, ValueError) as exc:
        raise BuildNotFound(f"Build {build_id} does not exist.") from exc
    if source.status != BuildStatus.SUCCEEDED or not source.artifact_key:
        raise NothingToRedeploy(
            f"Build #{source.number} is {source.status}; only a build that went live can be deployed again.",
            extra={"status": source.status},
        )
    return build_request_again(source, trigger=BuildTrigger.ROLLBACK, actor=actor, requested_by=requested_by)


def build_request_again(
    source: Build, *, trigger: str, actor: str, requested_by: AbstractBaseUser | None = None
) -> Build:
    """A new production build of ``source``'s artifact (a rollback or a promote): pointer-only
    when ``source``'s manifest is still stored (the deploy step decides), else stored again."""
    return build_request(
        pipeline_id=source.pipeline_id,
        kind=source.kind,
        trigger=trigger,
        actor=actor,
        requested_by=requested_by,
        ref=source.ref,
        commit_sha=source.commit_sha,
        release=source.release,
        source_build=source,
        artifact_key=source.artifact_key,
    )

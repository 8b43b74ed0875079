"""Previews: `{label}--{name}.{TROY_BASE_DOMAIN}` serving a build beside production.

A preview build never changes the pipeline's status machine and never touches production: it has
its own newest-wins queue per preview (queued → running → succeeded / failed / superseded,
through the Build FSM), its own EdgePointer (kind ``preview``), and goes live by pointing that
host at its stored manifest. Each change writes an event whose ``from_status`` and ``to_status``
are both the pipeline's (unchanged) status, with a ``preview_*`` transition name and a message
naming the preview: the log shows what happened to the pipeline's sites, and nothing reading
statuses from it sees a change that did not happen.

Locking: the pipeline row, then the preview / builds (as everywhere: no deadlocks).
"""

from __future__ import annotations

import logging
from typing import Any
import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from deployment_service.exceptions import Conflict
from deployment_service.transactions import send_on_commit
from pipelines.choices import ACCEPTS_DEPLOYMENT, BuildKind, BuildStatus, BuildTrigger, PointerKind, PreviewSource
from pipelines.exceptions import NothingToPromote, PreviewNotFound
from pipelines.models import Build, EdgePointer, Pipeline, Preview, preview_host
from pipelines.services.builds import (
    STAT_FIELDS,
    build_lock,
    build_needs_codebuild,
    build_request_again,
    next_build_number,
    signed_in,
)
from pipelines.services.pointers import pointer_set_permalink, pointer_write, pointers_delete
from pipelines.services.transitions import SYSTEM_WORKER, lock_pipeline, note_record, refuse
from pipelines.validators import validate_preview_label

logger = logging.getLogger(__name__)


def _event(pipeline: Pipeline, transition: str, *, actor: str, message: str, build: Build | None = None) -> None:
    note_record(pipeline, transition=transition, actor=actor, message=message, build=build)


def preview_label_clean(label: str) -> str:
    """The label as stored (lowercased, stripped); raises a field ValidationError ``preview``."""
    label = (label or "").strip().lower()
    try:
        validate_preview_label(label)
    except ValidationError as exc:
        raise ValidationError({"preview": exc.error_list}) from exc
    return label


def preview_lock_or_create(pipeline: Pipeline, label: str, *, source: str = PreviewSource.RELEASE) -> Preview:
    """The pipeline's preview ``label``, locked; made (with its pointer) on first use. Call under
    the pipeline's lock."""
    preview, created = Preview.objects.select_for_update().get_or_create(
        pipeline=pipeline,
        label=label,
        defaults={"host": preview_host(label=label, name=pipeline.name), "source": source},
    )
    if created:
        # Known at the edge at once ("nothing deployed yet" until its first build is live).
        pointer_write(pipeline=pipeline, host=preview.host, kind=PointerKind.PREVIEW, build_id=None)
    return preview


def preview_build_request(
    *,
    pipeline_id: uuid.UUID | str,
    label: str,
    kind: str,
    trigger: str,
    actor: str,
    requested_by: AbstractBaseUser | None = None,
    release: Any = None,
    artifact_key: str = "",
) -> Build:
    """Queue a build for the preview ``label`` (created on first use); the preview's queue runs it
    (``run_preview_deployment``). The pipeline must be able to take a deployment (it has a
    distribution); its status does not change."""
    label = preview_label_clean(label)
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        if pipeline.status not in ACCEPTS_DEPLOYMENT:
            raise refuse(pipeline, "queue_deployment")
        preview = preview_lock_or_create(pipeline, label)
        number = next_build_number(pipeline)
        build = Build.objects.create(
            pipeline=pipeline,
            preview=preview,
            preview_label=preview.label,
            number=number,
            kind=kind,
            trigger=trigger,
            release=release,
            artifact_key=artifact_key,
            requested_by=signed_in(requested_by),
        )
        _event(
            pipeline, "preview_queue", actor=actor, build=build, message=f"Build #{number} queued for preview {label}."
        )
        send_on_commit("run_preview_deployment", str(preview.id))
    return build


def preview_deployment_start(*, preview_id: int | str) -> Build | None:
    """Worker: the preview's newest queued build starts (older queued ones are superseded), unless
    one of its builds is running (its end sends this again). A build awaiting approval (a fork's
    pull request) is not queued for this yet. None when nothing starts. An automated build goes
    on to CodeBuild, a release build to the deploy step."""
    pipeline_id = Preview.objects.filter(pk=preview_id).values_list("pipeline_id", flat=True).first()
    if pipeline_id is None:
        logger.info("preview %s no longer exists: nothing to start", preview_id)
        return None
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        preview = Preview.objects.select_for_update().filter(pk=preview_id).first()
        if preview is None:
            return None
        if Build.objects.filter(preview=preview, status=BuildStatus.RUNNING).exists():
            logger.info("preview %s of %s has a running build: the next starts after it", preview.label, pipeline.name)
            return None
        queued = list(
            Build.objects.select_for_update()
            .filter(preview=preview, status=BuildStatus.QUEUED, awaiting_approval=False)
            .order_by("-number")
        )
        if not queued:
            return None
        build, older = queued[0], queued[1:]
        for stale in older:
            stale.supersede(by=build)
            stale.save()
        build.start()
        build.save()
        _event(
            pipeline,
            "preview_start",
            actor=SYSTEM_WORKER,
            build=build,
            message=f"Build #{build.number} started for preview {preview.label}.",
        )
        send_on_commit("run_codebuild" if build_needs_codebuild(build) else "deploy_build", str(build.id))
    return build


def _advance_preview_queue(preview_id: int | None) -> None:
    waiting = Build.objects.filter(preview_id=preview_id, status=BuildStatus.QUEUED, awaiting_approval=False)
    if preview_id is not None and waiting.exists():
        send_on_commit("run_preview_deployment", str(preview_id))


def _report_to_github(build: Build) -> None:
    """An automated preview build's end goes back to its commit: a status with the preview's URL
    and a GitHub deployment (pipelines.flows.preview_reports, in a worker)."""
    if build.kind == BuildKind.AUTOMATED and build.commit_sha:
        send_on_commit("report_commit_status", str(build.id))


def preview_deployment_finish(*, build_id: uuid.UUID | str, stats: dict[str, Any] | None = None) -> Build | None:
    """Worker: the preview build is stored (its manifest and blobs): it succeeds, the preview
    serves it (``Preview.build``, its pointer) and its permalink points at it, in one transaction.
    None when the build is not a running preview build (a duplicate)."""
    with transaction.atomic():
        pipeline, build = build_lock(build_id)
        if build.status != BuildStatus.RUNNING or build.preview_id is None:
            logger.info("build %s is %s: not finishing it as a preview build", build_id, build.status)
            return None
        preview = Preview.objects.select_for_update().get(pk=build.preview_id)
        for field, value in (stats or {}).items():
            if field not in STAT_FIELDS:
                raise TypeError(f"unknown build stat {field!r}")
            setattr(build, field, value)
        build.stored_at = timezone.now()
        build.succeed()
        build.save()
        preview.build = build
        preview.last_deployed_at = build.finished_at
        preview.save(update_fields=["build", "last_deployed_at", "updated_at"])
        pointer_write(pipeline=pipeline, host=preview.host, kind=PointerKind.PREVIEW, build_id=build.id)
        pointer_set_permalink(pipeline=pipeline, build=build)
        _event(
            pipeline,
            "preview_finish",
            actor=SYSTEM_WORKER,
            build=build,
            message=f"Build #{build.number} is live on preview {preview.label} ({preview.url}).",
        )
        _report_to_github(build)
        _advance_preview_queue(preview.id)
    return build


def preview_deployment_fail(*, pipeline: Pipeline, build: Build, error: str, actor: str) -> None:
    """A running preview build failed (called by ``deployment_fail`` under its locks): the preview
    keeps serving what it served; its next queued build runs."""
    build.fail(error=error)
    build.save()
    preview = Preview.objects.filter(builds=build).only("label").first()
    label = preview.label if preview is not None else "(deleted)"
    _event(
        pipeline,
        "preview_fail",
        actor=actor,
        build=build,
        message=f"Build #{build.number} failed for preview {label}: {error}",
    )
    _report_to_github(build)
    _advance_preview_queue(build.preview_id)


def preview_get(*, pipeline_id: uuid.UUID | str, label: str) -> Preview:
    preview = Preview.objects.select_related("pipeline", "build").filter(pipeline_id=pipeline_id, label=label).first()
    if preview is None:
        raise PreviewNotFound(f"No preview {label!r} on this pipeline.")
    return preview


def preview_delete(*, pipeline_id: uuid.UUID | str, label: str, actor: str) -> str:
    """Remove a preview and its pointer (its host answers 404; in the kvs mode its key goes on
    commit). Its queued builds are cancelled; its builds stay until retention. Refused (409)
    while one of its builds is running. Returns the host removed."""
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        preview = Preview.objects.select_for_update().filter(pipeline=pipeline, label=label).first()
        if preview is None:
            raise PreviewNotFound(f"No preview {label!r} on this pipeline.")
        if Build.objects.filter(preview=preview, status=BuildStatus.RUNNING).exists():
            raise Conflict(f"Preview {label} is deploying a build; delete it once that build ended.")
        for queued in Build.objects.select_for_update().filter(preview=preview, status=BuildStatus.QUEUED):
            queued.cancel(reason=f"Preview {label} deleted by {actor}.")
            queued.save()
        host = preview.host
        served = Build.objects.filter(pk=preview.build_id, github_deployment_id__isnull=False).first()
        if served is not None:  # its GitHub deployment goes inactive (the environment is gone)
            send_on_commit("deactivate_preview_deployment", str(served.id))
        pointers_delete(pointers=list(EdgePointer.objects.filter(host=host, pipeline=pipeline)))
        preview.delete()
        _event(pipeline, "preview_delete", actor=actor, message=f"Preview {label} deleted ({host}).")
    return host


def preview_promote(
    *, pipeline_id: uuid.UUID | str, label: str, actor: str, requested_by: AbstractBaseUser | None = None
) -> Build:
    """Make the preview's build live in production: a pointer-only build queued in the normal
    production queue (like a rollback, ``content_build`` = the preview's build when it runs)."""
    preview = preview_get(pipeline_id=pipeline_id, label=label)
    source = preview.build
    if source is None or source.status != BuildStatus.SUCCEEDED:
        raise NothingToPromote(f"Preview {label} serves no build yet: nothing to promote.")
    return build_request_again(source, trigger=BuildTrigger.PROMOTE, actor=actor, requested_by=requested_by)

"""Pipeline lifecycle: create, change settings, provision, delete, reap."""

from __future__ import annotations

from datetime import datetime, timedelta
import logging
from typing import Any
import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from deployment_service.error_codes import ErrorCode
from deployment_service.transactions import send_on_commit
from pipelines.choices import IN_FLIGHT, NAME_EDITABLE, WAITING, BuildStatus
from pipelines.choices import PipelineStatus as S
from pipelines.exceptions import NameLocked
from pipelines.models import Build, Pipeline
from pipelines.services.builds import deployment_fail
from pipelines.services.pointers import pointer_ensure
from pipelines.services.preview_sources import preview_branches_check
from pipelines.services.pushes import local_source_check
from pipelines.services.transitions import SYSTEM_REAPER, SYSTEM_WORKER, apply_transition, lock_pipeline
from pipelines.services.watch_paths import watch_paths_check
from pipelines.validators import normalize_relative_path, validate_new_pipeline_name

logger = logging.getLogger(__name__)

# Settings a user may change; ``name`` only while nothing exists on AWS.
EDITABLE_FIELDS = (
    "name",
    "repository",
    "branch",
    "build_install",
    "build_command",
    "build_test",
    "build_output_dir",
    "auto_deploy",
    "base_dir",
    "watch_paths",
    "preview_branches",
    "pull_request_previews",
)


def _clean_and_save(pipeline: Pipeline, *, source_changed: bool = False) -> None:
    """Validate and save. ``source_changed``: the repository or branch was set, so a local
    source is checked (git) and its branch head recorded as the last one seen."""
    pipeline.build_output_dir = normalize_relative_path(pipeline.build_output_dir)
    base_dir = normalize_relative_path(pipeline.base_dir or ".")
    pipeline.base_dir = "" if base_dir == "." else base_dir
    try:
        pipeline.watch_paths = watch_paths_check(pipeline.watch_paths)
    except ValueError as exc:
        raise ValidationError({"watch_paths": [ValidationError(str(exc), code=ErrorCode.INVALID)]}) from exc
    try:
        pipeline.preview_branches = preview_branches_check(pipeline.preview_branches)
    except ValueError as exc:
        raise ValidationError({"preview_branches": [ValidationError(str(exc), code=ErrorCode.INVALID)]}) from exc
    pipeline.full_clean(exclude=["owner", "status", "live_build"])
    if source_changed:
        local_source_check(pipeline)
    try:
        with transaction.atomic():
            pipeline.save()
    except IntegrityError as exc:
        # Two creates of one name racing past full_clean's unique check: the constraint wins.
        duplicate = ValidationError("A pipeline with this name already exists.", code=ErrorCode.UNIQUE)
        raise ValidationError({"name": [duplicate]}) from exc


def _check_new_name(name: str) -> None:
    """`--` is reserved for preview hosts: a new (or renamed) pipeline may not use it."""
    try:
        validate_new_pipeline_name(name)
    except ValidationError as exc:
        raise ValidationError({"name": exc.error_list}) from exc


def pipeline_create(
    *, owner: AbstractBaseUser, name: str, provision: bool = False, actor: str, **fields: Any
) -> Pipeline:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"pipeline_create got unknown fields {sorted(unknown)}")
    _check_new_name(name)
    with transaction.atomic():
        pipeline = Pipeline(owner=owner, name=name, **fields)
        _clean_and_save(pipeline, source_changed=True)
        if provision:
            apply_transition(
                pipeline, "request_provisioning", actor=actor, message="Provisioning requested at creation."
            )
            send_on_commit("provision_pipeline", str(pipeline.id))
    return pipeline


def pipeline_update(*, pipeline_id: uuid.UUID | str, actor: str, **changes: Any) -> Pipeline:
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"pipeline_update got unknown fields {sorted(unknown)}")
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        if "name" in changes and changes["name"] != pipeline.name and pipeline.status not in NAME_EDITABLE:
            raise NameLocked(
                "The name cannot change once the pipeline is provisioned: its domain and distribution use it.",
                extra={"status": pipeline.status},
            )
        if "name" in changes and changes["name"] != pipeline.name:
            _check_new_name(changes["name"])
        source_changed = any(
            field in changes and changes[field] != getattr(pipeline, field) for field in ("repository", "branch")
        )
        for field, value in changes.items():
            setattr(pipeline, field, value)
        _clean_and_save(pipeline, source_changed=source_changed)
    logger.info("pipeline %s settings changed by %s: %s", pipeline.name, actor, sorted(changes))
    return pipeline


# --- provisioning -------------------------------------------------------------------------------


def pipeline_request_provisioning(*, pipeline_id: uuid.UUID | str, actor: str) -> Pipeline:
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        retry = pipeline.status == S.FAILED_TO_PROVISION
        apply_transition(
            pipeline,
            "request_provisioning",
            actor=actor,
            message="Provisioning retried." if retry else "Provisioning requested.",
        )
        send_on_commit("provision_pipeline", str(pipeline.id))
    return pipeline


def pipeline_start_provisioning(*, pipeline_id: uuid.UUID | str) -> Pipeline:
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        apply_transition(pipeline, "start_provisioning", actor=SYSTEM_WORKER)
    return pipeline


def pipeline_finish_provisioning(
    *, pipeline_id: uuid.UUID | str, distribution_id: str, distribution_domain: str, edge_router: str = ""
) -> Pipeline:
    """``edge_router``: the router version the new distribution runs (docs/edge.md)."""
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        if edge_router:
            pipeline.edge_router = edge_router
        pointer_ensure(pipeline=pipeline)
        apply_transition(
            pipeline,
            "finish_provisioning",
            actor=SYSTEM_WORKER,
            message=f"Distribution {distribution_id} ({distribution_domain}) serves {pipeline.domain}.",
            distribution_id=distribution_id,
            distribution_domain=distribution_domain,
        )
    return pipeline


def pipeline_record_distribution(
    *, pipeline_id: uuid.UUID | str, distribution_id: str, distribution_domain: str
) -> None:
    """Keep the distribution's id as soon as it exists, so deletion can find it even when
    provisioning fails later (no status change, no event)."""
    Pipeline.objects.filter(pk=pipeline_id).update(
        distribution_id=distribution_id, distribution_domain=distribution_domain, updated_at=timezone.now()
    )


def pipeline_record_edge_router(*, pipeline_id: uuid.UUID | str, edge_router: str) -> bool:
    """The pipeline's distribution now runs router version ``edge_router`` (docs/edge.md): set by
    a rollout and by the move of an old-layout pipeline. No status change and no event; locked so
    it cannot interleave with a deploy or a deletion of the row. False when the row is gone."""
    with transaction.atomic():
        pipeline = Pipeline.objects.select_for_update().filter(pk=pipeline_id).first()
        if pipeline is None:
            return False
        if pipeline.edge_router != edge_router:
            pipeline.edge_router = edge_router
            pipeline.save(update_fields=["edge_router", "updated_at"])
    return True


def pipeline_fail_provisioning(*, pipeline_id: uuid.UUID | str, error: str, actor: str = SYSTEM_WORKER) -> Pipeline:
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        apply_transition(pipeline, "fail_provisioning", actor=actor, message=error, error=error)
    return pipeline


# --- deletion -----------------------------------------------------------------------------------


def pipeline_schedule_deletion(*, pipeline_id: uuid.UUID | str, actor: str) -> Pipeline:
    """Ask for deletion; builds still queued are cancelled (they could never run)."""
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        apply_transition(pipeline, "schedule_deletion", actor=actor, message="Deletion requested.")
        for build in Build.objects.select_for_update().filter(pipeline=pipeline, status=BuildStatus.QUEUED):
            build.cancel(reason="Cancelled: the pipeline is being deleted.")
            build.save()
        send_on_commit("delete_pipeline", str(pipeline.id))
    return pipeline


def pipeline_start_deletion(*, pipeline_id: uuid.UUID | str) -> Pipeline:
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        apply_transition(pipeline, "start_deletion", actor=SYSTEM_WORKER)
    return pipeline


def pipeline_finish_deletion(*, pipeline_id: uuid.UUID | str) -> None:
    """Write the ``deleted`` event and remove the row (builds and releases go with it)."""
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        apply_transition(
            pipeline,
            "finish_deletion",
            actor=SYSTEM_WORKER,
            save=False,
            message="Route53 records, distribution and files removed.",
        )
        Pipeline.objects.filter(pk=pipeline.pk).update(live_build=None)
        pipeline.delete()


def pipeline_fail_deletion(*, pipeline_id: uuid.UUID | str, error: str, actor: str = SYSTEM_WORKER) -> Pipeline:
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        apply_transition(pipeline, "fail_deletion", actor=actor, message=error, error=error)
    return pipeline


# --- waiting too long: send the worker message again -----------------------------------------

# The actor that moves a pipeline out of each waiting status (all of them guard on the status, so a
# message sent twice does the work once).
WAITING_ACTORS = dict(zip(WAITING, ("provision_pipeline", "run_deployment", "delete_pipeline"), strict=True))


def pipelines_resend_waiting(*, now: datetime | None = None) -> list[str]:
    """Send the worker message again for pipelines waiting longer than
    ``TROY_RESEND_WAITING_AFTER_SECONDS`` (no status change). Returns their names."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.TROY_RESEND_WAITING_AFTER_SECONDS)
    waiting = Pipeline.objects.filter(status__in=list(WAITING_ACTORS), status_changed_at__lt=cutoff)
    resent = []
    for pipeline_id, name, status in waiting.values_list("id", "name", "status"):
        send_on_commit(WAITING_ACTORS[status], str(pipeline_id))
        resent.append(name)
    return resent


# --- the reaper ---------------------------------------------------------------------------------


def _deadlines() -> dict[str, int]:
    seconds = (
        settings.TROY_STUCK_PROVISIONING_SECONDS,
        settings.TROY_STUCK_DEPLOYING_SECONDS,
        settings.TROY_STUCK_DELETING_SECONDS,
    )
    return dict(zip(IN_FLIGHT, seconds, strict=True))


def pipelines_reap_stuck(*, now: datetime | None = None) -> list[str]:
    """Fail every pipeline that has been in an in-flight status past its deadline.

    Returns the names of the pipelines failed. Each is handled in its own transaction and re-checked
    under the lock, so a worker finishing at the same moment wins cleanly.
    """
    now = now or timezone.now()
    reaped: list[str] = []
    for status, seconds in _deadlines().items():
        cutoff = now - timedelta(seconds=seconds)
        stale_ids = list(
            Pipeline.objects.filter(status=status, status_changed_at__lt=cutoff).values_list("id", flat=True)
        )
        for pipeline_id in stale_ids:
            error = f"Stuck in {S(status).label.lower()} for more than {seconds // 60} minutes; failed by the reaper."
            try:
                with transaction.atomic():
                    pipeline = lock_pipeline(pipeline_id)
                    if pipeline.status != status or pipeline.status_changed_at >= cutoff:
                        continue  # moved on meanwhile
                    if status == S.PROVISIONING:
                        apply_transition(pipeline, "fail_provisioning", actor=SYSTEM_REAPER, message=error, error=error)
                    elif status == S.DELETING:
                        apply_transition(pipeline, "fail_deletion", actor=SYSTEM_REAPER, message=error, error=error)
                    else:
                        running = pipeline.builds.filter(status=BuildStatus.RUNNING, preview__isnull=True).first()
                        if running is not None:
                            deployment_fail(build_id=running.id, error=error, actor=SYSTEM_REAPER)
                        else:
                            apply_transition(
                                pipeline, "fail_deployment", actor=SYSTEM_REAPER, message=error, error=error
                            )
                reaped.append(pipeline.name)
            except Exception:  # one bad row must not stop the sweep
                logger.exception("reaper could not fail pipeline %s", pipeline_id)
    return reaped

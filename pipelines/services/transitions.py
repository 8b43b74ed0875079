"""The mechanics shared by every status change: lock, check, transition, save, event."""

from __future__ import annotations

from typing import Any
import uuid

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django_fsm import can_proceed

from deployment_service.exceptions import InvalidTransition
from events.services import event_record
from pipelines.choices import DEPLOYMENT_IN_PROGRESS, PipelineStatus
from pipelines.exceptions import PipelineNotFound
from pipelines.models import Build, Pipeline

SYSTEM_WORKER = "system:worker"
SYSTEM_REAPER = "system:reaper"


def actor_of(user: AbstractBaseUser | AnonymousUser | None) -> str:
    """The name an event records for a person (or 'system:worker' for none)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return SYSTEM_WORKER
    return user.get_username()


def allowed_actions(pipeline: Pipeline) -> list[str]:
    """Transitions a person may ask for now: what the API's ``allowed`` lists and the admin shows.

    A deployment asked for while one is queued or running is accepted (it queues a build behind),
    so ``queue_deployment`` is offered there too.
    """
    names = [t.name for t in pipeline.get_available_status_transitions() if t.custom.get("user")]
    if pipeline.status in DEPLOYMENT_IN_PROGRESS and "queue_deployment" not in names:
        names.append("queue_deployment")
    return sorted(names)


def lock_pipeline(pipeline_id: uuid.UUID | str) -> Pipeline:
    """The pipeline row, locked until the surrounding transaction ends."""
    assert transaction.get_connection().in_atomic_block, "lock_pipeline needs a transaction"
    try:
        return Pipeline.objects.select_for_update().get(pk=pipeline_id)
    except (Pipeline.DoesNotExist, ValueError) as exc:
        raise PipelineNotFound(f"Pipeline {pipeline_id} does not exist.") from exc


def refuse(pipeline: Pipeline, action: str) -> InvalidTransition:
    status = pipeline.status
    return InvalidTransition(
        f"Cannot {action.replace('_', ' ')} while the pipeline is {PipelineStatus(status).label.lower()} ({status}).",
        status=status,
        allowed=allowed_actions(pipeline),
    )


def apply_transition(
    pipeline: Pipeline,
    name: str,
    *,
    actor: str,
    message: str = "",
    build: Build | None = None,
    save: bool = True,
    **kwargs: Any,
) -> str:
    """Apply transition ``name`` to a locked pipeline, save it and write its event.

    Raises :class:`InvalidTransition` (nothing changed) when the transition is not legal from the
    current status. Returns the status the pipeline left.
    """
    method = getattr(pipeline, name)
    if not can_proceed(method):
        raise refuse(pipeline, name)
    from_status = pipeline.status
    method(**kwargs)
    if save:
        pipeline.save()
    event_record(
        pipeline=pipeline,
        from_status=from_status,
        to_status=pipeline.status,
        transition=name,
        actor=actor,
        message=message,
        build=build,
    )
    return from_status


def note_record(pipeline: Pipeline, *, transition: str, actor: str, message: str, build: Build | None = None) -> None:
    """An event that changes no status (previews, variables, skipped pushes): ``from_status`` and
    ``to_status`` are both the pipeline's current one, so nothing reading statuses sees a change."""
    event_record(
        pipeline=pipeline,
        from_status=pipeline.status,
        to_status=pipeline.status,
        transition=transition,
        actor=actor,
        message=message,
        build=build,
    )

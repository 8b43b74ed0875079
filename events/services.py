from __future__ import annotations

from typing import TYPE_CHECKING

from events.models import Event

if TYPE_CHECKING:
    from pipelines.models import Build, Pipeline


def event_record(
    *,
    pipeline: Pipeline,
    from_status: str,
    to_status: str,
    transition: str,
    actor: str,
    message: str = "",
    build: Build | None = None,
) -> Event:
    """Write one event. Called by the pipeline services inside the transition's transaction."""
    return Event.objects.create(
        pipeline_id=pipeline.id,
        pipeline_name=pipeline.name,
        owner_id=pipeline.owner_id,
        build_id=build.id if build else None,
        build_number=build.number if build else None,
        from_status=from_status,
        to_status=to_status,
        transition=transition,
        actor=actor,
        message=message,
    )

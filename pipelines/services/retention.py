"""Which stored builds a pipeline keeps at the edge, and forgetting the others (retention).

A build with ``stored_at`` set is a promise to the deploy step and the pointers: its manifest
`{pipeline}/builds/{build}.json` is in the live bucket, and so is every blob it names. Retention
(``pipelines/flows/retention.py``) withdraws that promise here, under the pipeline's lock, before
it deletes anything in S3; see that module for why the order and the lock make it safe beside
a deploy.
"""

from __future__ import annotations

from collections.abc import Iterable
import logging
import uuid

from django.db import transaction
from django.utils import timezone

from pipelines.choices import BuildStatus, PointerKind
from pipelines.choices import PipelineStatus as S
from pipelines.models import Build, EdgePointer, Pipeline, Preview, pointer_value_build
from pipelines.services.pointers import pointers_delete
from pipelines.services.transitions import lock_pipeline

logger = logging.getLogger(__name__)


def build_ids_retained(*, pipeline_id: uuid.UUID | str, retained: int) -> set[uuid.UUID]:
    """The builds whose manifests (and the blobs they name) stay stored:

    * the served build (``content_build`` or itself) of each of the newest ``retained`` production
      builds that went live (succeeded), by number (a preview's builds are kept by its pointer);
    * the live build's served build;
    * the build each preview serves (``Preview.build``, also what its pointer names);
    * every build a live or preview edge pointer names (a pointer always names a served build;
      permalinks do not count: they go with their build), and the one
      its ``published`` value names: the KeyValueStore serves that until the projection
      catches up;
    * each queued or running build itself, its source build and that one's served build: a
      rollback about to be deployed must still find its manifest (then it writes only the
      pointer), and a running deploy's own manifest may be written before it finishes.
    """
    kept: set[uuid.UUID] = set()
    went_live = (
        # preview_label, not the preview: a deleted preview's builds are still not production's.
        Build.objects.filter(pipeline_id=pipeline_id, status=BuildStatus.SUCCEEDED, preview_label="")
        .order_by("-number")
        .values_list("id", "content_build_id")[:retained]
    )
    kept.update(content or own for own, content in went_live)
    live = Pipeline.objects.filter(pk=pipeline_id).values_list("live_build_id", "live_build__content_build_id").first()
    if live is not None and live[0] is not None:
        kept.add(live[1] or live[0])
    kept.update(Preview.objects.filter(pipeline_id=pipeline_id, build__isnull=False).values_list("build_id", flat=True))
    pointers = EdgePointer.objects.filter(pipeline_id=pipeline_id).exclude(kind=PointerKind.PERMALINK)
    for pointed, published in pointers.values_list("build_id", "published"):
        if pointed is not None:
            kept.add(pointed)
        published_build = _published_build_id(published)
        if published_build is not None:
            kept.add(published_build)
    waiting = Build.objects.filter(
        pipeline_id=pipeline_id, status__in=(BuildStatus.QUEUED, BuildStatus.RUNNING)
    ).values_list("id", "source_build_id", "source_build__content_build_id")
    for own, source, source_content in waiting:
        kept.update(build_id for build_id in (own, source, source_content) if build_id is not None)
    return kept


def _published_build_id(value: str) -> uuid.UUID | None:
    """The build of a published pointer value (either form of ``pointer_value``; "" for nothing)."""
    build = pointer_value_build(value)
    if not build:
        return None
    try:
        return uuid.UUID(build)
    except ValueError:
        return None


def deploy_in_progress(*, pipeline_id: uuid.UUID | str) -> bool:
    """A deploy of the pipeline runs now (or is about to): it trusts the blobs of every build
    that was stored when it started, so retention must not forget or delete any of them."""
    return (
        Pipeline.objects.filter(pk=pipeline_id, status=S.DEPLOYING).exists()
        or Build.objects.filter(pipeline_id=pipeline_id, status=BuildStatus.RUNNING).exists()
    )


def builds_mark_unstored(
    *, pipeline_id: uuid.UUID | str, build_ids: Iterable[uuid.UUID | str], retained: int
) -> list[uuid.UUID] | None:
    """Retention: clear ``stored_at`` of those of ``build_ids`` that are stored and not retained
    (``build_ids_retained``, recomputed here under the pipeline's lock, so a build that became
    live, pointed-at or the source of a queued rollback since the caller looked is kept).

    Returns the ids cleared (their manifests may now be deleted: nothing trusts them any more;
    their permalink pointers are deleted here),
    or None, changing nothing, while a deploy of the pipeline is in progress: the deploy trusts
    every build stored when it started (the next retention run tries again).

    No status changes, so no event is written: a build's status and history stay as they were;
    only the edge forgets its stored copy (a redeploy stores it again from its artifact).
    Locking: the pipeline row, then the builds, in one short transaction (no network)."""
    wanted = {str(build_id) for build_id in build_ids}
    if not wanted:
        return []
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        if deploy_in_progress(pipeline_id=pipeline.id):
            logger.info("%s: a deploy is in progress; retention leaves its builds stored", pipeline.name)
            return None
        kept = build_ids_retained(pipeline_id=pipeline.id, retained=retained)
        cleared = list(
            Build.objects.select_for_update()
            .filter(pipeline=pipeline, pk__in=wanted, stored_at__isnull=False)
            .exclude(pk__in=kept)
            .order_by("number")
            .values_list("id", flat=True)
        )
        if cleared:
            Build.objects.filter(pk__in=cleared).update(stored_at=None, updated_at=timezone.now())
            # Their permalinks go with them (the KeyValueStore keys on commit, in the kvs mode).
            permalinks = EdgePointer.objects.filter(pipeline=pipeline, kind=PointerKind.PERMALINK, build_id__in=cleared)
            pointers_delete(pointers=list(permalinks))
            logger.info("%s: %d build(s) no longer retained at the edge", pipeline.name, len(cleared))
    return cleared


def build_ids_stored(*, pipeline_id: uuid.UUID | str) -> set[uuid.UUID]:
    """The pipeline's builds whose manifest the edge promises (``stored_at`` set)."""
    return set(Build.objects.filter(pipeline_id=pipeline_id, stored_at__isnull=False).values_list("id", flat=True))

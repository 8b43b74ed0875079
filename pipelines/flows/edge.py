"""The edge flows (docs/edge.md): publishing a pipeline's pointers to the CloudFront
KeyValueStore, and moving a pipeline of the old in-place layout onto the router.

Both only run with ``TROY_EDGE_POINTERS=kvs``; with ``local`` a pointer counts as published when
written (the local edge reads the database) and distributions never get the AWS router.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError

from deployment_service.integrations import cloudfront, edge_router, edge_store, s3_cleanup
from deployment_service.transactions import send_on_commit
from pipelines import selectors, services
from pipelines.choices import PipelineStatus as S
from pipelines.models import Pipeline

logger = logging.getLogger(__name__)

# A publish re-reads the rows after writing and writes again when they changed meanwhile (a
# newer deploy): the last write to the store is then always of the rows' latest value.
PUBLISH_ROUNDS = 5

# The move of an old-layout pipeline waits for its pointer to be published, then for CloudFront
# to deploy the new config (typically minutes), by re-enqueueing itself.
ATTACH_MAX_ATTEMPTS = 60
ATTACH_WAIT_FIRST_SECONDS = 5
ATTACH_WAIT_MAX_SECONDS = 120
# Pipeline.edge_router of a distribution made without the AWS router (the local mode).
LOCAL_ROUTER_VERSION = "local"
# What the new layout keeps under {pipeline id}/; everything else there is the old in-place copy.
NEW_LAYOUT_FOLDERS = ("blobs/", "builds/")


def _kvs_mode() -> bool:
    return settings.TROY_EDGE_POINTERS == "kvs"


def _load(pipeline_id: uuid.UUID | str) -> Pipeline | None:
    try:
        return Pipeline.objects.filter(pk=pipeline_id).first()
    except (ValueError, TypeError, ValidationError):  # not a UUID: nothing to do
        return None


# --- publishing pointers ------------------------------------------------------------------------


def publish_pointers_run(*, pipeline_id: uuid.UUID | str) -> int:
    """Write every pointer of the pipeline that the store has not confirmed, then mark each
    published (only if the row still holds what was written). Idempotent: a pointer already
    confirmed is not written again. Returns the number of pointers written."""
    if not _kvs_mode():
        return 0
    pipeline = _load(pipeline_id)
    if pipeline is None:
        logger.info("publish: pipeline %s no longer exists; dropping the message", pipeline_id)
        return 0
    if pipeline.status == S.DELETING:
        # The deletion removes the pipeline's keys; writing them again would leave them behind.
        logger.info("publish: pipeline %s is being deleted; not publishing", pipeline.name)
        return 0
    written = 0
    for _round in range(PUBLISH_ROUNDS):
        pending = [p for p in selectors.edge_pointers_of(pipeline.id) if not p.is_published]
        if not pending:
            return written
        edge_store.keys_update(puts={p.host: p.value for p in pending})
        written += len(pending)
        for pointer in pending:
            if services.pointer_mark_published(pointer_id=pointer.id, value=pointer.value):
                logger.info("publish: %s → %s", pointer.host, pointer.value)
    # Still changing after several rounds: the message that changed it publishes it.
    logger.warning("publish: pointers of %s kept changing while being published", pipeline.name)
    return written


def unpublish_hosts_run(*, hosts: list[str]) -> list[str]:
    """Remove from the store the hosts whose pointer rows were deleted (a deleted preview, the
    permalinks of builds retention let go). A host that has a row again (a preview made again
    with the same label) is left alone: its own publish message writes it. Idempotent."""
    if not _kvs_mode():
        return []
    gone = sorted(set(hosts) - set(selectors.edge_pointer_hosts(hosts)))
    try:
        removed = edge_store.keys_delete(gone)
    except edge_store.KeyValueStoreNotFound:
        return []
    if removed:
        logger.info("unpublish: removed %s from the KeyValueStore", ", ".join(removed))
    return removed


def delete_pointers(pipeline: Pipeline) -> list[str]:
    """Remove the pipeline's hosts from the store (kvs mode), before its rows go."""
    if not _kvs_mode():
        return []
    hosts = [pointer.host for pointer in selectors.edge_pointers_of(pipeline.id)]
    try:
        removed = edge_store.keys_delete(hosts)
    except edge_store.KeyValueStoreNotFound:
        return []  # no store, so no keys to remove
    if removed:
        logger.info("delete: removed %s from the KeyValueStore", ", ".join(removed))
    return removed


# --- moving an old-layout pipeline onto the router ----------------------------------------------


def attach_wait_seconds(attempt: int) -> float:
    return float(min(ATTACH_WAIT_FIRST_SECONDS * 2 ** min(attempt, 16), ATTACH_WAIT_MAX_SECONDS))


def attach_router_run(*, pipeline_id: uuid.UUID | str, attempt: int = 0) -> float | None:
    """One pass of the move (docs/edge.md, "Moving old-layout pipelines"). Returns the seconds to
    wait before the next pass, or None when done (or nothing to do).

    1. edge_router == "": wait until the pointer names a stored build and is published; then
       point the distribution at the router and record its version. Until this update the old
       in-place files keep serving the old build, so the site is never broken.
    2. once the distribution reports Deployed, delete the old in-place objects under
       ``{pipeline id}/`` (everything but ``blobs/`` and ``builds/``)."""
    if not _kvs_mode():
        return None
    pipeline = _load(pipeline_id)
    if pipeline is None or not pipeline.distribution_id:
        return None
    if pipeline.status in (S.SCHEDULED_FOR_DELETION, S.DELETING, S.FAILED_TO_DELETE):
        logger.info("edge move: pipeline %s is being deleted; stopping", pipeline.name)
        return None
    if attempt > ATTACH_MAX_ATTEMPTS:
        logger.error(
            "edge move: gave up on pipeline %s after %d checks (router %r); its next deploy tries again",
            pipeline.name,
            attempt,
            pipeline.edge_router,
        )
        return None

    if pipeline.edge_router == "":
        pointers = selectors.edge_pointers_of(pipeline.id)
        if not pointers or not all(p.build_id and p.is_published for p in pointers):
            logger.info("edge move: pointer of %s not published yet; waiting", pipeline.name)
            return attach_wait_seconds(attempt)
        try:
            router = edge_router.router_find()
        except edge_router.RouterNotPublished as exc:
            logger.error("edge move: pipeline %s stays on the old layout: %s", pipeline.name, exc)
            return None
        changed = cloudfront.distribution_attach_router(pipeline.distribution_id, router.associations)
        if changed is None:
            logger.warning("edge move: distribution %s of %s is gone", pipeline.distribution_id, pipeline.name)
            return None
        services.pipeline_record_edge_router(pipeline_id=pipeline.id, edge_router=router.version)
        logger.info(
            "edge move: distribution %s of %s now runs %s", pipeline.distribution_id, pipeline.name, router.version
        )
        return attach_wait_seconds(0)

    if pipeline.edge_router == LOCAL_ROUTER_VERSION:
        return None
    distribution = cloudfront.distribution_get(pipeline.distribution_id)
    if distribution is None:
        return None
    if not distribution.deployed:
        return attach_wait_seconds(attempt)
    removed = old_layout_delete(pipeline)
    if removed:
        logger.info("edge move: removed %d old in-place objects of %s", removed, pipeline.name)
    return None


def old_layout_delete(pipeline: Pipeline) -> int:
    """Delete what the old in-place layout left under ``{pipeline id}/``: every object outside
    ``blobs/`` and ``builds/``. Listed one level at a time, so the (many) blobs are never listed."""
    prefix = f"{pipeline.live_prefix}/"
    bucket = settings.TROY_LIVE_BUCKET
    files, folders = s3_cleanup.level_list(bucket=bucket, prefix=prefix)
    removed = s3_cleanup.keys_delete(bucket=bucket, keys=set(files))
    for folder in folders:
        if folder[len(prefix) :] in NEW_LAYOUT_FOLDERS:
            continue
        removed += s3_cleanup.prefix_delete(bucket=bucket, prefix=folder)
    return removed


# --- rolling a router version out -------------------------------------------------------------


def _stored_in_new_layout(pipeline: Pipeline) -> bool:
    """Its pointer names a build: only a deploy in the new layout sets one."""
    return any(pointer.build_id for pointer in selectors.edge_pointers_of(pipeline.id))


def rollout_run(*, dry_run: bool = False) -> list[str]:
    """Publish this checkout's router (function + Lambda version) and update every distribution
    Troy keeps to it, recording ``edge_router`` per pipeline. Idempotent: what already runs the
    router is left alone. ``dry_run``: publish and update nothing, list what would change.

    Old-layout pipelines (edge_router "") are not switched here: their live build may have no
    manifest yet, so they move after their next deploy (``edge_attach_router``); one already
    deployed in the new layout whose move did not finish gets that move sent again. Pipelines
    made in the local mode ("local") have no pointer in the store and are left alone too."""
    lines: list[str] = []
    if dry_run:
        plan = edge_router.router_plan()
        if plan.published is None:
            lines.append(f"would make the router: {plan.missing}")
        else:
            lines.append("function " + ("current" if plan.function_current else "would be published (code changed)"))
            lines.append("lambda   " + ("current" if plan.lambda_current else "would get a new version (code changed)"))
        target = plan.published.associations if plan.current and plan.published else None
        router = None
    else:
        router = edge_router.router_ensure(lambda kind, what: lines.append(f"{kind:<7} {what}"))
        target = router.associations
        lines.append(f"router  {router.version}")

    for pipeline in selectors.pipelines_with_distribution():
        if pipeline.edge_router == "" and _stored_in_new_layout(pipeline):
            # Deployed in the new layout but not moved yet (its move gave up, or was lost): send it
            # again, since only the move knows to wait for the pointer and to remove the old files.
            if router is not None:
                send_on_commit("edge_attach_router", str(pipeline.id))
            lines.append(f"{'would move' if router is None else 'moving'} {pipeline.name} (old layout, build stored)")
            continue
        if pipeline.edge_router in ("", LOCAL_ROUTER_VERSION):
            why = (
                "old layout: moves onto the router after its next deploy" if not pipeline.edge_router else "local mode"
            )
            lines.append(f"skip    {pipeline.name} ({why})")
            continue
        if router is None:
            runs = cloudfront.distribution_runs_router(pipeline.distribution_id, target) if target else False
            changed = None if runs is None else not runs
        else:
            changed = cloudfront.distribution_attach_router(pipeline.distribution_id, router.associations)
            if changed is not None:
                services.pipeline_record_edge_router(pipeline_id=pipeline.id, edge_router=router.version)
        if changed is None:
            state = "gone"
        elif changed:
            state = "would update" if router is None else "updated"
        else:
            state = "current"
        lines.append(f"{state:<7} {pipeline.name} ({pipeline.distribution_id or 'no distribution'})")
    lines.extend(_rollout_wildcard(router, target))
    return lines


def _rollout_wildcard(router: edge_router.Router | None, target: cloudfront.EdgeAssociations | None) -> list[str]:
    """The shared distribution of previews and permalinks gets the router like every pipeline's
    (``router`` None: a dry run against ``target``)."""
    if not settings.TROY_WILDCARD_DISTRIBUTION:
        return []
    alias = cloudfront.wildcard_alias()
    found = cloudfront.wildcard_distribution_find()
    if found is None:
        return [f"missing {alias} distribution (previews and permalinks): run `manage.py bootstrap_aws`"]
    if router is None:
        runs = cloudfront.distribution_runs_router(found.id, target) if target else False
        state = "gone" if runs is None else ("current" if runs else "would update")
    else:
        changed = cloudfront.distribution_attach_router(found.id, router.associations)
        state = "gone" if changed is None else ("updated" if changed else "current")
    return [f"{state:<7} {alias} ({found.id}, previews and permalinks)"]

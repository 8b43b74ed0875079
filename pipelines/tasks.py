"""Dramatiq actors for pipelines and builds.

Actors are thin: ids in, re-read the row, guard on its status (a duplicate or stale message logs
and returns), call the flow, which calls services and integrations. Every actor takes the one
retry policy of ``deployment_service.retries``: transient errors (throttling, 5xx, timeouts, broken
connections) are retried with backoff, permanent ones are not, and an actor that owns a row names
an ``on_retry_exhausted`` actor that fails the row with the last error. Time limits are explicit:
Dramatiq's defaults (20 retries over a month, 10 minutes) are wrong for deployments. Nothing here
sleeps waiting for AWS; waits re-enqueue with a delay.
"""

from __future__ import annotations

import logging

from django.conf import settings
import dramatiq

from deployment_service.retries import RetryPolicy, last_error, message_arg
from deployment_service.transactions import MINUTE
from pipelines import selectors, services
from pipelines.flows.build_logs import build_log_copy_give_up, build_log_copy_run
from pipelines.flows.codebuild import (
    build_give_up,
    codebuild_reconcile,
    codebuild_report_commit_status,
    codebuild_start_run,
    codebuild_stop_run,
)
from pipelines.flows.deploy import deploy_build_run
from pipelines.flows.edge import attach_router_run, publish_pointers_run, unpublish_hosts_run
from pipelines.flows.environment import secret_sync_give_up, secret_sync_run
from pipelines.flows.local_builds import local_build_run
from pipelines.flows.local_sources import local_sources_poll
from pipelines.flows.preview_reports import preview_deployment_deactivate
from pipelines.flows.provisioning import deletion_give_up, deletion_run, provision_give_up, provision_run
from pipelines.flows.retention import retention_run

logger = logging.getLogger(__name__)


# Provisioning and deletion: a few tries spread over minutes (throttling passes; a 5xx outage that
# lasts longer fails the row, which the user can retry). The deploy step reads and writes the most,
# so it waits longer between tries. Commit statuses are best effort: long waits, no row to fail.
RETRY = RetryPolicy(max_retries=4)
RETRY_DEPLOY = RetryPolicy(max_retries=3)
RETRY_GIVE_UP = RetryPolicy(max_retries=3)  # the exhausted-retries actors themselves (a database blip)
# Retention has no row to fail: a few tries, then the next periodic tick starts over.
RETRY_RETENTION = RetryPolicy(max_retries=3)
# A retention run that met a deploy in progress tries again this much later, this many times
# (then the next tick): most deploys take minutes.
RETENTION_BUSY_DELAY_MS = 5 * MINUTE
RETENTION_BUSY_ATTEMPTS = 6


@dramatiq.actor(
    queue_name="troy",
    time_limit=10 * MINUTE,
    **RETRY.actor_options(min_backoff=5_000, max_backoff=60_000, on_retry_exhausted="provision_retries_exhausted"),
)
def provision_pipeline(pipeline_id: str) -> None:
    """provision_request → provisioning → ready_for_deployment (or failed_to_provision)."""
    provision_run(pipeline_id=pipeline_id)


@dramatiq.actor(queue_name="troy", time_limit=1 * MINUTE, **RETRY_GIVE_UP.actor_options(min_backoff=1_000))
def provision_retries_exhausted(message_data: dict, retry_info: dict) -> None:
    """provisioning → failed_to_provision with the last error, once provision_pipeline's retries are used up."""
    provision_give_up(pipeline_id=message_arg(message_data), error=last_error(message_data))


@dramatiq.actor(
    queue_name="troy",
    time_limit=10 * MINUTE,
    **RETRY.actor_options(min_backoff=5_000, max_backoff=60_000, on_retry_exhausted="deletion_retries_exhausted"),
)
def delete_pipeline(pipeline_id: str, attempt: int = 0) -> None:
    """scheduled_for_deletion → deleting → (row removed) or failed_to_delete.

    Disabling a CloudFront distribution takes minutes: the flow answers how long to wait, and the
    actor sends itself again with that delay instead of sleeping."""
    wait_seconds = deletion_run(pipeline_id=pipeline_id, attempt=attempt)
    if wait_seconds is not None:
        delete_pipeline.send_with_options(args=(pipeline_id, attempt + 1), delay=int(wait_seconds * 1000))


@dramatiq.actor(queue_name="troy", time_limit=1 * MINUTE, **RETRY_GIVE_UP.actor_options(min_backoff=1_000))
def deletion_retries_exhausted(message_data: dict, retry_info: dict) -> None:
    """deleting → failed_to_delete with the last error, once delete_pipeline's retries are used up."""
    deletion_give_up(pipeline_id=message_arg(message_data), error=last_error(message_data))


@dramatiq.actor(queue_name="troy", time_limit=1 * MINUTE, **RETRY.actor_options(min_backoff=1_000, max_backoff=30_000))
def run_deployment(pipeline_id: str) -> None:
    """queued → deploying with the newest queued build; enqueues its CodeBuild run or deploy step.

    No exhausted-retries actor: a pipeline left queued is sent again by the periodic care."""
    services.deployment_start(pipeline_id=pipeline_id)


@dramatiq.actor(queue_name="troy", time_limit=1 * MINUTE, **RETRY.actor_options(min_backoff=1_000, max_backoff=30_000))
def run_preview_deployment(preview_id: str) -> None:
    """A preview's newest queued build starts (older queued ones superseded) unless one of its
    builds runs; enqueues the deploy step. The pipeline's status is not touched."""
    services.preview_deployment_start(preview_id=preview_id)


@dramatiq.actor(
    queue_name="troy-deploy",
    time_limit=60 * MINUTE,
    **RETRY_DEPLOY.actor_options(min_backoff=10_000, max_backoff=60_000, on_retry_exhausted="build_retries_exhausted"),
)
def deploy_build(build_id: str) -> None:
    """The deploy step: the build's artifact zip → live bucket, invalidation → deployed."""
    deploy_build_run(build_id=build_id)


@dramatiq.actor(
    queue_name="troy",
    time_limit=15 * MINUTE,
    **RETRY.actor_options(min_backoff=5_000, max_backoff=60_000, on_retry_exhausted="build_retries_exhausted"),
)
def run_codebuild(build_id: str) -> None:
    """Download Source from GitHub into the artifact bucket, then StartBuild on CodeBuild."""
    codebuild_start_run(build_id=build_id)


# A local build runs its phases once: a retry would run them again over a half-finished build (a
# build whose worker died is failed by the reaper). Its limit covers every phase at its limit.
@dramatiq.actor(
    queue_name="troy-deploy",
    time_limit=(6 * settings.TROY_LOCAL_BUILD_PHASE_SECONDS + 5 * 60) * 1000,
    **RetryPolicy(max_retries=0).actor_options(on_retry_exhausted="build_retries_exhausted"),
)
def run_local_build(build_id: str) -> None:
    """TROY_BUILDER=local: the buildspec's phases on this machine, reported as CodeBuild's events."""
    local_build_run(build_id=build_id)


@dramatiq.actor(queue_name="troy", time_limit=1 * MINUTE, **RETRY_GIVE_UP.actor_options(min_backoff=1_000))
def build_retries_exhausted(message_data: dict, retry_info: dict) -> None:
    """The build (still running) fails with the last error once deploy_build's or run_codebuild's
    retries are used up; its pipeline → failed_to_deploy and the next queued build runs."""
    build_give_up(build_id=message_arg(message_data), error=last_error(message_data))


@dramatiq.actor(
    queue_name="troy",
    time_limit=1 * MINUTE,
    **RETRY.actor_options(min_backoff=2_000, max_backoff=60_000, on_retry_exhausted="secret_sync_retries_exhausted"),
)
def sync_pipeline_secret(pipeline_id: str, name: str) -> None:
    """Make SSM Parameter Store's copy of secret ``name`` match its row (write or delete)."""
    secret_sync_run(pipeline_id=pipeline_id, name=name)


@dramatiq.actor(queue_name="troy", time_limit=1 * MINUTE, **RETRY_GIVE_UP.actor_options(min_backoff=1_000))
def secret_sync_retries_exhausted(message_data: dict, retry_info: dict) -> None:
    """The row of a secret whose SSM copy failed keeps the last error (shown in the API and admin)."""
    secret_sync_give_up(
        pipeline_id=message_arg(message_data), name=message_arg(message_data, 1), error=last_error(message_data)
    )


@dramatiq.actor(queue_name="troy", time_limit=1 * MINUTE, **RETRY.actor_options(min_backoff=5_000, max_backoff=60_000))
def stop_codebuild(build_id: str) -> None:
    """StopBuild for a cancelled running build; its STOPPED event then fails the build.

    No exhausted-retries actor: the reconciler asks CodeBuild about builds that stay running."""
    codebuild_stop_run(build_id=build_id)


@dramatiq.actor(
    queue_name="troy", time_limit=2 * MINUTE, **RETRY.actor_options(min_backoff=10_000, max_backoff=120_000)
)
def report_commit_status(build_id: str) -> None:
    """The build's current state as a GitHub commit status (pending, success, failure)."""
    codebuild_report_commit_status(build_id=build_id)


# Build logs: a copy reads CloudWatch and writes rows, so a few quick tries; the final copy's
# exhausted-retries actor finishes the log with a note, so that no follower waits forever.
RETRY_LOGS = RetryPolicy(max_retries=5)


@dramatiq.actor(
    queue_name="troy",
    time_limit=5 * MINUTE,
    **RETRY_LOGS.actor_options(
        min_backoff=2_000, max_backoff=60_000, on_retry_exhausted="build_logs_retries_exhausted"
    ),
)
def copy_build_logs(build_id: str, final: bool = False, attempt: int = 0) -> None:
    """Copy the new part of a CodeBuild build's CloudWatch Logs stream into its log (idempotent:
    the cursor is stored with the text); ``final`` finishes the log once the stream has settled."""
    result = build_log_copy_run(build_id=build_id, final=final, attempt=attempt)
    if result.again_in is not None:
        copy_build_logs.send_with_options(
            args=(build_id, result.final, result.attempt), delay=int(result.again_in * 1000)
        )


@dramatiq.actor(queue_name="troy", time_limit=1 * MINUTE, **RETRY_GIVE_UP.actor_options(min_backoff=1_000))
def build_logs_retries_exhausted(message_data: dict, retry_info: dict) -> None:
    """A final copy that kept failing: the log ends with a note saying so and is finished."""
    args = message_data.get("args") or []
    build_log_copy_give_up(
        build_id=message_arg(message_data), final=bool(len(args) > 1 and args[1]), error=last_error(message_data)
    )


@dramatiq.actor(
    queue_name="troy", time_limit=2 * MINUTE, **RETRY.actor_options(min_backoff=10_000, max_backoff=120_000)
)
def deactivate_preview_deployment(build_id: str) -> None:
    """A removed preview's GitHub deployment (of the build it served) → inactive."""
    preview_deployment_deactivate(build_id=build_id)


# The edge (kvs mode). A publish is what makes a deploy visible, so it retries soon and often;
# no exhausted-retries actor: the periodic care sends every unconfirmed pointer again.
RETRY_EDGE = RetryPolicy(max_retries=6)


@dramatiq.actor(
    queue_name="troy", time_limit=2 * MINUTE, **RETRY_EDGE.actor_options(min_backoff=1_000, max_backoff=30_000)
)
def publish_edge_pointers(pipeline_id: str) -> None:
    """Write the pipeline's unconfirmed pointers to the CloudFront KeyValueStore."""
    publish_pointers_run(pipeline_id=pipeline_id)


@dramatiq.actor(
    queue_name="troy", time_limit=2 * MINUTE, **RETRY_EDGE.actor_options(min_backoff=1_000, max_backoff=30_000)
)
def unpublish_edge_hosts(hosts: list[str]) -> None:
    """Remove the hosts of deleted pointer rows (a preview, expired permalinks) from the store."""
    unpublish_hosts_run(hosts=hosts)


@dramatiq.actor(queue_name="troy", time_limit=5 * MINUTE, **RETRY.actor_options(min_backoff=5_000, max_backoff=60_000))
def edge_attach_router(pipeline_id: str, attempt: int = 0) -> None:
    """Move an old-layout pipeline onto the router after its deploy: wait for its pointer, update
    the distribution, then (once deployed) delete the old in-place files. Waits re-enqueue."""
    wait_seconds = attach_router_run(pipeline_id=pipeline_id, attempt=attempt)
    if wait_seconds is not None:
        edge_attach_router.send_with_options(args=(pipeline_id, attempt + 1), delay=int(wait_seconds * 1000))


# Periodic sweeps: the next run is the retry.
@dramatiq.actor(queue_name="troy", time_limit=5 * MINUTE, **RetryPolicy(max_retries=0).actor_options())
def reap_stuck_pipelines() -> None:
    """Fail pipelines stuck in an in-flight status past their deadline (run periodically)."""
    reaped = services.pipelines_reap_stuck()
    if reaped:
        logger.warning("reaper failed stuck pipelines: %s", ", ".join(reaped))
    resent = services.pipelines_resend_waiting()
    if resent:
        logger.warning("worker messages sent again for pipelines waiting too long: %s", ", ".join(resent))
    unpublished = services.pointers_resend_unpublished()
    if unpublished:
        logger.warning("edge pointers sent again for publishing: %s", ", ".join(unpublished))
    reaped_previews = services.previews_reap_stuck()
    if reaped_previews:
        logger.warning("reaper failed stuck preview builds: %s", ", ".join(reaped_previews))
    resent_previews = services.previews_resend_waiting()
    if resent_previews:
        logger.warning("start messages sent again for previews waiting too long: %s", ", ".join(resent_previews))


@dramatiq.actor(queue_name="troy", time_limit=5 * MINUTE, **RetryPolicy(max_retries=0).actor_options())
def remove_closed_previews() -> None:
    """Periodic: remove previews whose branch was deleted or whose pull request closed more than
    ``TROY_PREVIEW_CLOSED_GRACE_SECONDS`` ago (one still deploying waits for the next tick)."""
    removed = services.previews_remove_closed()
    if removed:
        logger.info("closed previews removed: %s", ", ".join(removed))


@dramatiq.actor(queue_name="troy", time_limit=5 * MINUTE, **RetryPolicy(max_retries=0).actor_options())
def reconcile_codebuild_builds() -> None:
    """Ask BatchGetBuilds about builds that stay running; apply each answer as the report an event gives."""
    codebuild_reconcile()


@dramatiq.actor(queue_name="troy", time_limit=1 * MINUTE, **RetryPolicy(max_retries=0).actor_options())
def poll_local_sources() -> None:
    """Periodic (every ``TROY_LOCAL_SOURCES_POLL_SECONDS``, with TROY_LOCAL_SOURCES): a new head on a
    local source's branch starts a build as a push would."""
    local_sources_poll()


@dramatiq.actor(
    queue_name="troy", time_limit=15 * MINUTE, **RETRY_RETENTION.actor_options(min_backoff=30_000, max_backoff=300_000)
)
def prune_pipeline(pipeline_id: str, attempt: int = 0) -> None:
    """Retention for one pipeline: forget the builds past ``TROY_RETAINED_BUILDS`` (not live, not
    pointed at, not needed by a queued build), delete their manifests, then the blobs no kept
    manifest names. While a deploy of the pipeline runs it changes nothing and sends itself again
    a few minutes later. Idempotent."""
    report = retention_run(pipeline_id=pipeline_id)
    if report.busy and attempt < RETENTION_BUSY_ATTEMPTS:
        prune_pipeline.send_with_options(args=(pipeline_id, attempt + 1), delay=RETENTION_BUSY_DELAY_MS)


@dramatiq.actor(queue_name="troy", time_limit=1 * MINUTE, **RetryPolicy(max_retries=0).actor_options())
def prune_builds() -> None:
    """Periodic (every ``TROY_RETENTION_INTERVAL_SECONDS``): a retention run for each pipeline
    holding more stored builds than it retains."""
    over = selectors.pipelines_over_retention(retained=settings.TROY_RETAINED_BUILDS)
    for pipeline_id in over:
        prune_pipeline.send(pipeline_id)
    if over:
        logger.info("retention runs sent for %d pipeline(s)", len(over))

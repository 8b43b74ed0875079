"""Dramatiq actors for pipelines and builds.

Actors are thin: ids in, re-read the row, guard on its status (a duplicate or stale message logs
and returns), call the flow, which calls services and integrations. Retries, time limits and
``throws`` are set on every actor: Dramatiq's defaults (20 retries over a month, 10 minutes) are
wrong for deployments. Nothing here sleeps waiting for AWS; waits re-enqueue with a delay.
"""

from __future__ import annotations

import logging

import dramatiq

from deployment_service.exceptions import ApplicationError
from deployment_service.transactions import MINUTE
from pipelines import services
from pipelines.flows.codebuild import (
    codebuild_reconcile,
    codebuild_report_commit_status,
    codebuild_start_run,
    codebuild_stop_run,
)
from pipelines.flows.deploy import deploy_build_run
from pipelines.flows.provisioning import deletion_run, provision_run

logger = logging.getLogger(__name__)


@dramatiq.actor(
    queue_name="troy",
    max_retries=3,
    min_backoff=5_000,
    max_backoff=60_000,
    time_limit=10 * MINUTE,
    throws=(ApplicationError,),
)
def provision_pipeline(pipeline_id: str) -> None:
    """provision_request → provisioning → ready_for_deployment (or failed_to_provision)."""
    provision_run(pipeline_id=pipeline_id)


@dramatiq.actor(
    queue_name="troy",
    max_retries=3,
    min_backoff=5_000,
    max_backoff=60_000,
    time_limit=10 * MINUTE,
    throws=(ApplicationError,),
)
def delete_pipeline(pipeline_id: str, attempt: int = 0) -> None:
    """scheduled_for_deletion → deleting → (row removed) or failed_to_delete.

    Disabling a CloudFront distribution takes minutes: the flow answers how long to wait, and the
    actor sends itself again with that delay instead of sleeping."""
    wait_seconds = deletion_run(pipeline_id=pipeline_id, attempt=attempt)
    if wait_seconds is not None:
        delete_pipeline.send_with_options(args=(pipeline_id, attempt + 1), delay=int(wait_seconds * 1000))


@dramatiq.actor(
    queue_name="troy",
    max_retries=3,
    min_backoff=1_000,
    max_backoff=30_000,
    time_limit=1 * MINUTE,
    throws=(ApplicationError,),
)
def run_deployment(pipeline_id: str) -> None:
    """queued → deploying with the newest queued build; enqueues its CodeBuild run or deploy step."""
    services.deployment_start(pipeline_id=pipeline_id)


@dramatiq.actor(
    queue_name="troy-deploy",
    max_retries=2,
    min_backoff=10_000,
    max_backoff=60_000,
    time_limit=60 * MINUTE,
    throws=(ApplicationError,),
)
def deploy_build(build_id: str) -> None:
    """The deploy step: the build's artifact zip → live bucket, invalidation → deployed."""
    deploy_build_run(build_id=build_id)


@dramatiq.actor(
    queue_name="troy",
    max_retries=3,
    min_backoff=5_000,
    max_backoff=60_000,
    time_limit=15 * MINUTE,
    throws=(ApplicationError,),
)
def run_codebuild(build_id: str) -> None:
    """Download Source from GitHub into the artifact bucket, then StartBuild on CodeBuild."""
    codebuild_start_run(build_id=build_id)


@dramatiq.actor(
    queue_name="troy",
    max_retries=3,
    min_backoff=5_000,
    max_backoff=60_000,
    time_limit=1 * MINUTE,
    throws=(ApplicationError,),
)
def stop_codebuild(build_id: str) -> None:
    """StopBuild for a cancelled running build; its STOPPED event then fails the build."""
    codebuild_stop_run(build_id=build_id)


@dramatiq.actor(
    queue_name="troy",
    max_retries=3,
    min_backoff=10_000,
    max_backoff=120_000,
    time_limit=2 * MINUTE,
    throws=(ApplicationError,),
)
def report_commit_status(build_id: str) -> None:
    """The build's current state as a GitHub commit status (pending, success, failure)."""
    codebuild_report_commit_status(build_id=build_id)


@dramatiq.actor(queue_name="troy", max_retries=0, time_limit=5 * MINUTE, throws=(ApplicationError,))
def reap_stuck_pipelines() -> None:
    """Fail pipelines stuck in an in-flight status past their deadline (run periodically)."""
    reaped = services.pipelines_reap_stuck()
    if reaped:
        logger.warning("reaper failed stuck pipelines: %s", ", ".join(reaped))
    resent = services.pipelines_resend_waiting()
    if resent:
        logger.warning("worker messages sent again for pipelines waiting too long: %s", ", ".join(resent))


@dramatiq.actor(queue_name="troy", max_retries=0, time_limit=5 * MINUTE, throws=(ApplicationError,))
def reconcile_codebuild_builds() -> None:
    """Ask BatchGetBuilds about builds that stay running; apply each answer as the report an event gives."""
    codebuild_reconcile()

"""Dramatiq actors of the releases app (thin: ids in, the flow decides; see pipelines/tasks.py)."""

from __future__ import annotations

import logging

import dramatiq

from deployment_service.retries import RetryPolicy
from deployment_service.transactions import MINUTE
from pipelines.flows.deploy.workdirs import stale_workdirs_sweep
from releases import services
from releases.storage import release_store_run

logger = logging.getLogger(__name__)


# Storing counts its own attempts (release_store_run answers when to try again and marks the
# release failed after the last), so Dramatiq does not retry it on top.
@dramatiq.actor(queue_name="troy", time_limit=30 * MINUTE, **RetryPolicy(max_retries=0).actor_options())
def store_release(release_id: str, attempt: int = 0) -> None:
    """A validated upload waiting in the spool → the artifact bucket. Retries re-send the actor
    with a delay (counted in ``attempt``); after the last one the release is marked failed."""
    wait_seconds = release_store_run(release_id=release_id, attempt=attempt)
    if wait_seconds is not None:
        store_release.send_with_options(args=(release_id, attempt + 1), delay=int(wait_seconds * 1000))


@dramatiq.actor(queue_name="troy", time_limit=5 * MINUTE, **RetryPolicy(max_retries=0).actor_options())
def care_for_releases() -> None:
    """Periodic: re-send lost store messages; clear orphaned spool files and the temp dirs of
    deploys whose worker was killed."""
    services.releases_resend_pending()
    services.release_spool_sweep()
    removed = stale_workdirs_sweep()
    if removed:
        logger.warning("removed %d deploy temp dir(s) left by killed workers: %s", len(removed), ", ".join(removed))

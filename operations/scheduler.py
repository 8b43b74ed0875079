"""The periodic sender: every ``TROY_REAPER_INTERVAL_SECONDS`` it enqueues the stuck-pipeline
reaper (preview builds too), the CodeBuild reconciler, the releases' care and the removal of
closed previews, and every ``TROY_RETENTION_INTERVAL_SECONDS`` the retention care (what celery
beat would do, for five jobs); with ``TROY_LOCAL_SOURCES`` a thread beside it asks the local git
sources for new commits every ``TROY_LOCAL_SOURCES_POLL_SECONDS`` (``run_local_source_poller``).

It only sends messages; workers do the work, so it is cheap and safe to run as one small
process (``manage.py scheduler``) or as a thread of the dev server (``run_scheduler``, operations/devserver.py). Running
two by mistake only sends each message twice, and every periodic actor is idempotent.
"""

from __future__ import annotations

import logging
import threading
from time import monotonic

from django.conf import settings

from pipelines import tasks
from releases.tasks import care_for_releases

logger = logging.getLogger(__name__)


def enqueue_periodic_jobs(*, retention: bool = True) -> list[str]:
    """Send one message to each periodic actor (``retention``: the retention care too); returns
    the actor names sent."""
    actors = [
        tasks.reap_stuck_pipelines,
        tasks.reconcile_codebuild_builds,
        care_for_releases,
        tasks.remove_closed_previews,
    ]
    if retention:
        actors.append(tasks.prune_builds)
    sent = []
    for actor in actors:
        try:
            actor.send()
            sent.append(actor.actor_name)
        except Exception:  # a broker hiccup must not end the loop; the next tick sends again
            logger.exception("scheduler could not enqueue %s", actor.actor_name)
    return sent


def run_scheduler(
    stop_event: threading.Event,
    *,
    interval: float | None = None,
    once: bool = False,
    retention_interval: float | None = None,
) -> int:
    """Enqueue the periodic jobs now and then every ``interval`` seconds (default
    ``TROY_REAPER_INTERVAL_SECONDS``) until ``stop_event`` is set; the retention care goes with the
    first tick and then with the first tick at least ``retention_interval`` seconds (default
    ``TROY_RETENTION_INTERVAL_SECONDS``) after it was last sent. Returns the number of ticks."""
    interval = float(interval if interval is not None else settings.TROY_REAPER_INTERVAL_SECONDS)
    retention_interval = float(
        retention_interval if retention_interval is not None else settings.TROY_RETENTION_INTERVAL_SECONDS
    )
    if interval <= 0 or retention_interval <= 0:
        raise ValueError("the scheduler intervals must be positive")
    ticks = 0
    retention_due = monotonic()
    logger.info(
        "scheduler: reaper and CodeBuild reconciler every %.0f s, retention every %.0f s", interval, retention_interval
    )
    while not stop_event.is_set():
        now = monotonic()
        retention = now >= retention_due
        enqueue_periodic_jobs(retention=retention)
        if retention:
            retention_due = now + retention_interval
        ticks += 1
        if once:
            break
        stop_event.wait(interval)
    logger.info("scheduler stopped after %d tick(s)", ticks)
    return ticks


def run_local_source_poller(stop_event: threading.Event, *, interval: float | None = None) -> int:
    """With ``TROY_LOCAL_SOURCES``: send ``poll_local_sources`` now and every ``interval`` seconds
    (default ``TROY_LOCAL_SOURCES_POLL_SECONDS``) until ``stop_event`` is set: a commit on a local
    source's branch builds within seconds, as a push webhook would. Returns the number of polls
    sent (0, at once, without the setting)."""
    if not settings.TROY_LOCAL_SOURCES:
        return 0
    interval = float(interval if interval is not None else settings.TROY_LOCAL_SOURCES_POLL_SECONDS)
    sent = 0
    while not stop_event.is_set():
        try:
            tasks.poll_local_sources.send()
            sent += 1
        except Exception:  # as above: the next poll sends again
            logger.exception("scheduler could not enqueue poll_local_sources")
        stop_event.wait(interval)
    return sent


def start_local_source_poller(stop_event: threading.Event) -> threading.Thread | None:
    """The poller in a daemon thread beside the scheduler (None without ``TROY_LOCAL_SOURCES``)."""
    if not settings.TROY_LOCAL_SOURCES:
        return None
    thread = threading.Thread(
        target=run_local_source_poller, args=(stop_event,), name="troy-local-sources", daemon=True
    )
    thread.start()
    return thread

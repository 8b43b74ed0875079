"""The periodic sender: every ``TROY_REAPER_INTERVAL_SECONDS`` it enqueues the stuck-pipeline
reaper and the CodeBuild reconciler (what celery beat would do, for two jobs).

It only sends messages; workers do the work, so it is cheap and safe to run as one small
process (``manage.py scheduler``) or as a thread of the dev server (``run_scheduler``, operations/devserver.py). Running
two by mistake only sends each message twice, and both actors are idempotent.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings

from pipelines import tasks
from releases.tasks import care_for_releases

logger = logging.getLogger(__name__)


def enqueue_periodic_jobs() -> list[str]:
    """Send one message to each periodic actor; returns the actor names sent."""
    sent = []
    for actor in (tasks.reap_stuck_pipelines, tasks.reconcile_codebuild_builds, care_for_releases):
        try:
            actor.send()
            sent.append(actor.actor_name)
        except Exception:  # a broker hiccup must not end the loop; the next tick sends again
            logger.exception("scheduler could not enqueue %s", actor.actor_name)
    return sent


def run_scheduler(stop_event: threading.Event, *, interval: float | None = None, once: bool = False) -> int:
    """Enqueue the periodic jobs now and then every ``interval`` seconds (default
    ``TROY_REAPER_INTERVAL_SECONDS``) until ``stop_event`` is set. Returns the number of ticks."""
    interval = float(interval if interval is not None else settings.TROY_REAPER_INTERVAL_SECONDS)
    if interval <= 0:
        raise ValueError("the scheduler interval must be positive")
    ticks = 0
    logger.info("scheduler: reaper and CodeBuild reconciler every %.0f s", interval)
    while not stop_event.is_set():
        enqueue_periodic_jobs()
        ticks += 1
        if once:
            break
        stop_event.wait(interval)
    logger.info("scheduler stopped after %d tick(s)", ticks)
    return ticks

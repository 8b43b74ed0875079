"""The periodic care of previews (sent by the scheduler's ticks, see operations/scheduler.py):

* ``previews_remove_closed``: previews whose branch was deleted or whose pull request closed more
  than ``TROY_PREVIEW_CLOSED_GRACE_SECONDS`` ago are removed (preview_delete);
* ``previews_reap_stuck``: preview builds running longer than ``TROY_STUCK_DEPLOYING_SECONDS``
  fail (the preview keeps serving what it served; its next queued build runs);
* ``previews_resend_waiting``: a preview with a queued build (not awaiting approval) and none
  running for longer than ``TROY_RESEND_WAITING_AFTER_SECONDS`` gets its start message again.

Each preview or build is handled in its own transaction and re-checked under the locks, so a
worker finishing at the same moment wins cleanly; one bad row never stops a sweep.
"""

from __future__ import annotations

from datetime import datetime, timedelta
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deployment_service.exceptions import Conflict
from deployment_service.transactions import send_on_commit
from pipelines.choices import BuildStatus
from pipelines.exceptions import PreviewNotFound
from pipelines.models import Build, Preview
from pipelines.services.builds import deployment_fail
from pipelines.services.previews import preview_delete
from pipelines.services.transitions import SYSTEM_REAPER, lock_pipeline

logger = logging.getLogger(__name__)

SYSTEM_CARE = "system:care"


def previews_remove_closed(*, now: datetime | None = None) -> list[str]:
    """Remove the previews closed before the grace period; returns "{pipeline}/{label}" of each.
    A preview reopened meanwhile (its mark cleared) stays; one with a running build waits for the
    next tick."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.TROY_PREVIEW_CLOSED_GRACE_SECONDS)
    due = Preview.objects.filter(closed_at__lt=cutoff).values_list("pipeline_id", "label", "pipeline__name")
    removed = []
    for pipeline_id, label, name in list(due):
        try:
            with transaction.atomic():
                lock_pipeline(pipeline_id)
                still_due = Preview.objects.filter(pipeline_id=pipeline_id, label=label, closed_at__lt=cutoff)
                if not still_due.exists():
                    continue  # reopened or removed meanwhile
                preview_delete(pipeline_id=pipeline_id, label=label, actor=SYSTEM_CARE)
            removed.append(f"{name}/{label}")
        except (Conflict, PreviewNotFound) as exc:
            logger.info("closed preview %s of %s not removed yet: %s", label, name, exc)
        except Exception:  # one bad row must not stop the sweep
            logger.exception("could not remove closed preview %s of %s", label, name)
    return removed


def previews_reap_stuck(*, now: datetime | None = None) -> list[str]:
    """Fail preview builds running past the deploying deadline; returns "{pipeline} #{number}"."""
    seconds = settings.TROY_STUCK_DEPLOYING_SECONDS
    cutoff = (now or timezone.now()) - timedelta(seconds=seconds)
    stuck = Build.objects.filter(status=BuildStatus.RUNNING, preview__isnull=False, started_at__lt=cutoff)
    reaped = []
    error = f"Stuck running for more than {seconds // 60} minutes; failed by the reaper."
    for build_id, number, name in list(stuck.values_list("id", "number", "pipeline__name")):
        try:
            if deployment_fail(build_id=build_id, error=error, actor=SYSTEM_REAPER) is not None:
                reaped.append(f"{name} #{number}")
        except Exception:  # one bad row must not stop the sweep
            logger.exception("reaper could not fail preview build %s", build_id)
    return reaped


def previews_resend_waiting(*, now: datetime | None = None) -> list[str]:
    """Send the start message again for previews whose queued builds wait too long with none of
    theirs running (a message lost between commit and broker); returns "{pipeline}/{label}"."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.TROY_RESEND_WAITING_AFTER_SECONDS)
    waiting = set(
        Build.objects.filter(
            status=BuildStatus.QUEUED, awaiting_approval=False, preview__isnull=False, created_at__lt=cutoff
        ).values_list("preview_id", flat=True)
    )
    running = set(
        Build.objects.filter(status=BuildStatus.RUNNING, preview_id__in=waiting).values_list("preview_id", flat=True)
    )
    resent = []
    for preview_id, label, name in Preview.objects.filter(pk__in=waiting - running).values_list(
        "id", "label", "pipeline__name"
    ):
        send_on_commit("run_preview_deployment", str(preview_id))
        resent.append(f"{name}/{label}")
    return sorted(resent)

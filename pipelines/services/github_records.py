"""What GitHub tells us about a pipeline, remembered on its row (no status change, no event)."""

from __future__ import annotations

import uuid

from django.db import transaction

from pipelines.models import Build
from pipelines.services.transitions import lock_pipeline


def pipeline_record_installation(*, pipeline_id: uuid.UUID | str, installation_id: int) -> bool:
    """Remember the GitHub App installation that covers the pipeline's repository (a push
    delivery names it), so Download Source and commit statuses need not look it up.
    Returns True when the stored id changed."""
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        if pipeline.github_installation_id == int(installation_id):
            return False
        pipeline.github_installation_id = int(installation_id)
        pipeline.save(update_fields=["github_installation_id", "updated_at"])
    return True


def build_record_github_deployment(*, build_id: uuid.UUID | str, deployment_id: int) -> int:
    """Remember the GitHub deployment made for a preview build (once: the first recorded wins, so
    a report repeated at the same moment reuses it). Returns the build's deployment id."""
    Build.objects.filter(pk=build_id, github_deployment_id__isnull=True).update(github_deployment_id=deployment_id)
    recorded = Build.objects.filter(pk=build_id).values_list("github_deployment_id", flat=True).first()
    return recorded if recorded is not None else deployment_id

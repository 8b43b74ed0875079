"""What GitHub tells us about a pipeline, remembered on its row (no status change, no event)."""

from __future__ import annotations

import uuid

from django.db import transaction

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

"""The event log: one row per pipeline status change, kept after the pipeline is deleted."""

from django.db import models


class Event(models.Model):
    # Not foreign keys: the log outlives the pipeline and build rows it describes.
    pipeline_id = models.UUIDField(db_index=True)
    pipeline_name = models.CharField(max_length=63)
    # Who owned the pipeline when the event was written: scopes the log to its owner after the
    # pipeline row (and so the foreign key to its owner) is gone.
    owner_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    build_id = models.UUIDField(null=True, blank=True)
    build_number = models.PositiveIntegerField(null=True, blank=True)
    # Pipeline status values (pipelines.choices.PipelineStatus). No field choices: the log sits
    # below pipelines and imports nothing of it; the API's filter validates the values.
    from_status = models.CharField(max_length=32)
    to_status = models.CharField(max_length=32, db_index=True)
    transition = models.CharField(max_length=64)
    actor = models.CharField(max_length=150, help_text="Username, or 'system:<worker|reaper|…>'.")
    message = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["pipeline_id", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.pipeline_name}: {self.from_status} → {self.to_status}"

"""Releases: pre-built zips uploaded by the CLI, stored in the artifact bucket.

An upload is validated in the web request and lands in the upload spool (``pending``); a worker
puts it in the artifact bucket (``stored``) or gives up (``failed``). Only releases/services.py
calls its transitions (the field is protected).
"""

from pathlib import Path
import uuid

from django.conf import settings
from django.db import models
from django.dispatch import receiver
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition

from deployment_service import artifact_keys
from pipelines.models import Pipeline
from pipelines.signals import pipeline_artifact_keys
from releases.choices import ReleaseStatus


class Release(FSMModelMixin, models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pipeline = models.ForeignKey("pipelines.Pipeline", on_delete=models.CASCADE, related_name="releases")
    version = models.CharField(max_length=128, blank=True, default="")
    artifact_key = models.CharField(max_length=1024, help_text="Key in the artifact bucket.")
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField(help_text="Bytes of the zip as uploaded.")
    file_count = models.PositiveIntegerField()
    uncompressed_size = models.BigIntegerField(default=0)
    # {path: [sha256, size]} of every file, taken while validating the upload: the deploy step
    # checks the zip's own sha256 and then need not inflate files it does not upload.
    files = models.JSONField(default=dict, blank=True, editable=False)
    status = FSMField(
        max_length=16, choices=ReleaseStatus.choices, default=ReleaseStatus.PENDING, db_index=True, protected=True
    )
    error = models.TextField(blank=True, default="")
    stored_at = models.DateTimeField(null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.pipeline.name} release {self.version or self.id}"

    # --- transitions (state only) ---------------------------------------------------------------

    @transition(field=status, source=ReleaseStatus.PENDING, target=ReleaseStatus.STORED)
    def mark_stored(self) -> None:
        self.stored_at = timezone.now()
        self.error = ""

    @transition(field=status, source=ReleaseStatus.PENDING, target=ReleaseStatus.FAILED)
    def mark_failed(self, *, error: str) -> None:
        self.error = error

    @property
    def spool_path(self) -> Path:
        """Where the validated upload waits until a worker stores it."""
        return Path(settings.TROY_UPLOAD_SPOOL_DIR) / f"{self.id}.zip"


@receiver(pipeline_artifact_keys, dispatch_uid="releases.release_artifact_keys")
def release_artifact_keys(*, pipeline: Pipeline, **_: object) -> set[str]:
    """The uploaded zips of a pipeline being deleted (pipelines deletes them, not knowing releases)."""
    keys: set[str] = set()
    for release_id, key in Release.objects.filter(pipeline=pipeline).values_list("id", "artifact_key"):
        keys.update({artifact_keys.release_key(release_id), key})
    return keys

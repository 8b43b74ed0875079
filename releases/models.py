"""Releases: pre-built zips uploaded by the CLI, stored in the artifact bucket."""

import uuid

from django.conf import settings
from django.db import models


class Release(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pipeline = models.ForeignKey("pipelines.Pipeline", on_delete=models.CASCADE, related_name="releases")
    version = models.CharField(max_length=128, blank=True, default="")
    artifact_key = models.CharField(max_length=1024, help_text="Key in the artifact bucket.")
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField(help_text="Bytes of the zip as uploaded.")
    file_count = models.PositiveIntegerField()
    uncompressed_size = models.BigIntegerField(default=0)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.pipeline.name} release {self.version or self.id}"

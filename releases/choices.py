"""Release statuses. No status string is written anywhere else."""

from django.db import models


class ReleaseStatus(models.TextChoices):
    # Validated and waiting in the upload spool for a worker to put it in the artifact bucket.
    PENDING = "pending", "Pending (waiting to be stored)"
    STORED = "stored", "Stored in the artifact bucket"
    FAILED = "failed", "Failed to store"

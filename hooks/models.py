"""Inbound deliveries, stored once each, and the GitHub App's cached installation tokens."""

from django.db import models


class SnsDelivery(models.Model):
    """One SNS delivery (unique on MessageId: SNS keeps it across retries and may deliver twice)."""

    message_id = models.CharField(max_length=128, unique=True)
    message_type = models.CharField(max_length=64)
    topic_arn = models.CharField(max_length=512)
    subject = models.CharField(max_length=512, blank=True, default="")
    body = models.JSONField(help_text="The delivery as received (signature verified).")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    result = models.TextField(blank=True, default="", help_text="What handling did, or why it did nothing.")

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "SNS deliveries"

    def __str__(self) -> str:
        return f"{self.message_type} {self.message_id}"


class GithubDelivery(models.Model):
    """One GitHub webhook delivery (unique on X-GitHub-Delivery)."""

    delivery_id = models.CharField(max_length=128, unique=True)
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    result = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "GitHub deliveries"

    def __str__(self) -> str:
        return f"{self.event} {self.delivery_id}"


class GithubInstallationToken(models.Model):
    """An installation access token, reused until shortly before it expires. Tokens can be longer
    than 40 characters, so the column is text."""

    installation_id = models.BigIntegerField(unique=True)
    token = models.TextField()
    expires_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"installation {self.installation_id} (until {self.expires_at:%Y-%m-%d %H:%M})"

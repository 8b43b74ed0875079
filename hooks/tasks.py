"""Dramatiq actors for SNS deliveries (CodeBuild events and subscription confirmations)."""

from __future__ import annotations

import dramatiq

from deployment_service.retries import RetryPolicy
from deployment_service.transactions import MINUTE
from hooks.sns import sns_delivery_handle


# Transient errors only (AWS throttling or 5xx, a broken connection): a delivery that cannot be
# applied is not retried.
@dramatiq.actor(
    queue_name="troy",
    time_limit=2 * MINUTE,
    **RetryPolicy(max_retries=5).actor_options(min_backoff=2_000, max_backoff=60_000),
)
def handle_sns_delivery(delivery_id: int) -> None:
    """Apply a stored SNS delivery (once: a repeated message does nothing)."""
    sns_delivery_handle(delivery_pk=delivery_id)

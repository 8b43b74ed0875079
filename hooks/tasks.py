"""Dramatiq actors for SNS deliveries (CodeBuild events and subscription confirmations)."""

from __future__ import annotations

import dramatiq

from deployment_service.exceptions import ApplicationError
from deployment_service.transactions import MINUTE
from hooks.sns import sns_delivery_handle


@dramatiq.actor(
    queue_name="troy",
    max_retries=5,
    min_backoff=2_000,
    max_backoff=60_000,
    time_limit=2 * MINUTE,
    throws=(ApplicationError,),
)
def handle_sns_delivery(delivery_id: int) -> None:
    """Apply a stored SNS delivery (once: a repeated message does nothing)."""
    sns_delivery_handle(delivery_pk=delivery_id)

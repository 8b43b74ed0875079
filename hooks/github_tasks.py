"""Dramatiq actor for GitHub deliveries. Registered through ``DRAMATIQ_AUTODISCOVER_MODULES``
(django_dramatiq imports ``<app>.github_tasks`` beside ``<app>.tasks``)."""

from __future__ import annotations

import dramatiq

from deployment_service.retries import RetryPolicy
from deployment_service.transactions import MINUTE
from hooks.github import github_delivery_handle
from hooks.github_installations import installation_refresh
from hooks.github_push_paths import delivery_changed_files


# The one retry policy (deployment_service/retries.py): transient errors (a GitHub 5xx or rate
# limit, a broken connection) are retried with backoff; a delivery that cannot be applied is a
# permanent error and is not.
@dramatiq.actor(
    queue_name="troy",
    time_limit=2 * MINUTE,
    **RetryPolicy(max_retries=5).actor_options(min_backoff=2_000, max_backoff=60_000),
)
def handle_github_delivery(delivery_pk: int) -> None:
    """Start the builds a stored push or pull_request delivery asks for (once: repeated messages
    do nothing). The files it changed are worked out first, outside the delivery's transaction
    (it may ask GitHub's compare API)."""
    github_delivery_handle(delivery_pk=delivery_pk, changed_files=delivery_changed_files(delivery_pk))


@dramatiq.actor(
    queue_name="troy",
    time_limit=5 * MINUTE,
    **RetryPolicy(max_retries=5).actor_options(min_backoff=2_000, max_backoff=60_000),
)
def refresh_github_installation(installation_id: int) -> None:
    """Fetch an installation's repositories from GitHub (after the setup flow links it, or when
    it is created). Idempotent: the list is replaced with what GitHub answers."""
    installation_refresh(installation_id=installation_id)

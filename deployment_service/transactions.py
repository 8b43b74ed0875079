"""Sending Dramatiq messages once the surrounding transaction commits.

A message sent before commit may reach a worker that cannot see the row yet, or describe a row
that is rolled back. Services sit below the actors that call them (tasks.py → flows → services),
so they address an actor by its registered name instead of importing it: the broker resolves the
name when the transaction commits (every app's actors are declared in ``operations.apps``).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
import dramatiq

MINUTE = 60_000  # Dramatiq's time limits and delays are in milliseconds


def send_on_commit(actor_name: str, *args: Any) -> None:
    """Send ``actor_name(*args)`` when the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: dramatiq.get_broker().get_actor(actor_name).send(*args))

"""Liveness and readiness probes (outside the API: no auth, no pagination)."""

import logging

from django.db import connection
from django.http import JsonResponse
import dramatiq

logger = logging.getLogger(__name__)


def healthz(request):
    """The process is up and serving requests."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # reported, not raised: this is the probe's answer
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_broker() -> str | None:
    broker = dramatiq.get_broker()
    try:
        name = type(broker).__name__
        if name == "RabbitmqBroker":
            # Opening a channel proves the connection and credentials work.
            broker.channel  # noqa: B018
        elif name == "RedisBroker":
            broker.client.ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def readyz(request):
    """The database and the broker are reachable: this process can do its work. Callers learn
    only up or down; what failed (hosts, ports, users in the exception text) goes to the log, and
    staff see it too."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    ok = all(error is None for error in checks.values())
    if not ok:
        logger.warning("readiness check failed: %s", {name: error for name, error in checks.items() if error})
    body: dict[str, object] = {"status": "ok" if ok else "unavailable"}
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        body["checks"] = {name: ("ok" if error is None else error) for name, error in checks.items()}
    return JsonResponse(body, status=200 if ok else 503)

"""The Dramatiq broker, chosen by the scheme of ``DRAMATIQ_BROKER_URL``: the one place that maps a URL to
django_dramatiq's ``DRAMATIQ_BROKER`` setting (the test settings use it too)."""

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from deployment_service.settings.env import env_str

DRAMATIQ_MIDDLEWARE = [
    "dramatiq.middleware.AgeLimit",
    "dramatiq.middleware.TimeLimit",
    "dramatiq.middleware.Callbacks",
    "dramatiq.middleware.Retries",
    # After Retries, so it runs before it: keeps the error text for the exhausted-retries actors.
    "deployment_service.retries.LastErrorText",
    "django_dramatiq.middleware.DbConnectionsMiddleware",
    # Log records carry the pipeline_id/build_id of the message being handled (TROY_LOG_FORMAT=json).
    "deployment_service.observability.middleware.ActorLogContext",
    # A stopping worker kills the process groups of its local builds (TROY_BUILDER=local).
    "deployment_service.integrations.local_builder.LocalBuildsShutdown",
]


def dramatiq_broker(url: str, *, redis_namespace: str = "troy") -> dict[str, Any]:
    """RabbitMQ for ``amqp(s)://``, Redis for ``redis(s)://``, the in-process StubBroker for an empty URL."""
    if url.startswith(("amqp://", "amqps://")):
        broker, options = "dramatiq.brokers.rabbitmq.RabbitmqBroker", {"url": url}
    elif url.startswith(("redis://", "rediss://")):
        broker, options = "dramatiq.brokers.redis.RedisBroker", {"url": url, "namespace": redis_namespace}
    elif url == "":
        # In-process broker: `manage.py devserver` runs a worker thread beside the web server.
        broker, options = "dramatiq.brokers.stub.StubBroker", {}
    else:
        raise ImproperlyConfigured("DRAMATIQ_BROKER_URL must start with amqp://, amqps://, redis:// or rediss://")
    return {"BROKER": broker, "OPTIONS": options, "MIDDLEWARE": list(DRAMATIQ_MIDDLEWARE)}


DRAMATIQ_BROKER_URL = env_str("DRAMATIQ_BROKER_URL")
DRAMATIQ_BROKER = dramatiq_broker(DRAMATIQ_BROKER_URL, redis_namespace=env_str("TROY_REDIS_NAMESPACE", "troy"))
DRAMATIQ_TASKS_DATABASE = "default"
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks", "github_tasks"]  # hooks.github_tasks: GitHub deliveries

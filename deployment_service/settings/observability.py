"""Metrics and logging (deployment_service/observability/).

TROY_METRICS=1 serves GET /metrics (django-prometheus request metrics, Troy's own series and the
database gauges); TROY_METRICS_TOKEN, when set, must come as "Authorization: Bearer <token>".
It extends the apps, middleware, broker and logging of the modules it imports (the same objects).
"""

import os
import tempfile

from django.core.exceptions import ImproperlyConfigured

from deployment_service.settings.broker import DRAMATIQ_BROKER
from deployment_service.settings.django import INSTALLED_APPS, LOGGING, MIDDLEWARE
from deployment_service.settings.env import env_bool, env_str

TROY_METRICS = env_bool("TROY_METRICS", False)
TROY_METRICS_TOKEN = env_str("TROY_METRICS_TOKEN")
if TROY_METRICS:
    INSTALLED_APPS.append("django_prometheus")
    MIDDLEWARE.insert(0, "django_prometheus.middleware.PrometheusBeforeMiddleware")
    MIDDLEWARE.append("django_prometheus.middleware.PrometheusAfterMiddleware")

# Workers (set TROY_WORKER_METRICS=1 in the worker's environment only): Dramatiq's Prometheus
# middleware serves every worker process's metrics on dramatiq_prom_host:dramatiq_prom_port
# (default 0.0.0.0:9191), summed from the folder dramatiq_prom_db. Troy's own deploy metrics are
# created at import, before Dramatiq's middleware would switch prometheus_client to that folder,
# so the folder is set here, before anything imports prometheus_client.
TROY_WORKER_METRICS = env_bool("TROY_WORKER_METRICS", False)
if TROY_WORKER_METRICS:
    if DRAMATIQ_BROKER["BROKER"] == "dramatiq.brokers.stub.StubBroker":
        raise ImproperlyConfigured("TROY_WORKER_METRICS=1 needs a worker broker (DRAMATIQ_BROKER_URL)")
    _prom_dir = os.environ.setdefault("dramatiq_prom_db", os.path.join(tempfile.gettempdir(), "dramatiq-prometheus"))
    if os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", _prom_dir) != _prom_dir:
        raise ImproperlyConfigured("With TROY_WORKER_METRICS=1, PROMETHEUS_MULTIPROC_DIR must equal dramatiq_prom_db")
    DRAMATIQ_BROKER["MIDDLEWARE"].append("dramatiq.middleware.prometheus.Prometheus")

# TROY_LOG_FORMAT=json: one JSON object per line, with pipeline_id/build_id when known.
TROY_LOG_FORMAT = env_str("TROY_LOG_FORMAT", "text")
if TROY_LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"TROY_LOG_FORMAT={TROY_LOG_FORMAT!r}: use text or json")
LOGGING["formatters"]["json"] = {"()": "deployment_service.observability.logs.JsonFormatter"}
if TROY_LOG_FORMAT == "json":
    LOGGING["handlers"]["console"]["formatter"] = "json"

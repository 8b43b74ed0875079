"""GET /metrics: off by default, token-protected when configured, database gauges and deploy series."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import REGISTRY
import pytest

from deployment_service.observability.metrics import deploy_observe
from pipelines.choices import BuildStatus, PipelineStatus
from pipelines.models import Build
from tests.factories import PipelineFactory

pytestmark = pytest.mark.django_db


def _sample(text: str, series: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_are_not_served_when_disabled(client, settings):
    settings.TROY_METRICS = False
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_metrics_count_pipelines_by_status_and_active_builds(client, settings):
    settings.TROY_METRICS = True
    settings.TROY_METRICS_TOKEN = ""
    PipelineFactory.create_batch(2, status=PipelineStatus.DEPLOYED)
    deploying = PipelineFactory(status=PipelineStatus.DEPLOYING)
    for number, status in enumerate([BuildStatus.RUNNING, BuildStatus.QUEUED, BuildStatus.QUEUED, BuildStatus.FAILED]):
        Build.objects.create(pipeline=deploying, number=number + 1, kind="release", trigger="cli", status=status)

    response = client.get("/metrics")

    assert response.status_code == 200
    text = response.content.decode()
    assert _sample(text, 'troy_pipelines{status="deployed"}') == 2
    assert _sample(text, 'troy_pipelines{status="deploying"}') == 1
    assert _sample(text, 'troy_pipelines{status="failed_to_delete"}') == 0
    assert _sample(text, 'troy_builds{status="running"}') == 1
    assert _sample(text, 'troy_builds{status="queued"}') == 2


def test_metrics_token_is_required_when_set(client, settings):
    settings.TROY_METRICS = True
    settings.TROY_METRICS_TOKEN = "scrape-secret"

    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "metrics_token_invalid"
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200


def test_a_finished_deploy_is_observed():
    def value(name, labels=None):
        return REGISTRY.get_sample_value(name, labels or {}) or 0.0

    before = {
        "count": value("troy_deploy_duration_seconds_count"),
        "sum": value("troy_deploy_duration_seconds_sum"),
        "uploaded": value("troy_deploy_files_total", {"action": "uploaded"}),
        "unchanged": value("troy_deploy_files_total", {"action": "unchanged"}),
    }
    deploy_observe(
        SimpleNamespace(files_uploaded=2, files_unchanged=1, timings={"download": 1.5, "blobs": 2.0, "manifest": 0.5})
    )
    assert value("troy_deploy_duration_seconds_count") == before["count"] + 1
    assert value("troy_deploy_duration_seconds_sum") == pytest.approx(before["sum"] + 4.0)
    assert value("troy_deploy_files_total", {"action": "uploaded"}) == before["uploaded"] + 2
    assert value("troy_deploy_files_total", {"action": "unchanged"}) == before["unchanged"] + 1

"""Scrape-time gauges from the database: pipelines by status, builds queued and running.

Counted at scrape time (one GROUP BY each) rather than kept in memory, so every web process
answers the same and nothing drifts when a worker moves a row. Registered by
``PipelinesConfig.ready()`` with the core's :func:`scrape_collector_register`.
"""

from __future__ import annotations

from collections.abc import Iterator
import logging

from django.db import DatabaseError
from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from pipelines.choices import ROW_STATUSES, BuildStatus
from pipelines.models import Build, Pipeline

logger = logging.getLogger(__name__)

BUILD_ACTIVE = (BuildStatus.QUEUED, BuildStatus.RUNNING)


def _counts(queryset) -> dict[str, int]:
    return {row["status"]: row["n"] for row in queryset.values("status").annotate(n=Count("pk")).order_by()}


class PipelineMetricsCollector:
    def collect(self) -> Iterator[Metric]:
        try:
            pipelines = _counts(Pipeline.objects.all())
            builds = _counts(Build.objects.filter(status__in=BUILD_ACTIVE))
        except DatabaseError:
            # The scrape still answers the process metrics; the gap in these series shows the outage.
            logger.exception("metrics: could not count pipelines and builds")
            return
        by_status = GaugeMetricFamily("troy_pipelines", "Pipelines by status.", labels=["status"])
        for status, _label in ROW_STATUSES:
            by_status.add_metric([status], pipelines.get(status, 0))
        yield by_status
        active = GaugeMetricFamily("troy_builds", "Builds waiting for or holding a deploy slot.", labels=["status"])
        for status in BUILD_ACTIVE:
            active.add_metric([status.value], builds.get(status, 0))
        yield active

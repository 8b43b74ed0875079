"""Troy's own Prometheus metrics and the registry a scrape reads.

Counters and histograms here are observed where the work happens (a deploy finishing in a
worker). Gauges that need the database (pipelines by status, builds queued/running) are not kept
in memory: an app registers a collector with :func:`scrape_collector_register` and it runs one
query per scrape, so every web process answers the same numbers.

With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn's several processes; workers with
``TROY_WORKER_METRICS``), prometheus_client writes each process's values to files in that folder
and a scrape sums them; the folder must be set before prometheus_client is first imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
import os
from typing import Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

# Deploys take from under a second (a few changed files) to many minutes (a large first deploy).
DEPLOY_DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, float("inf"))

deploy_duration_seconds = Histogram(
    "troy_deploy_duration_seconds",
    "Time the deploy step spent putting a build's files live (download, compare, upload, delete, invalidate).",
    buckets=DEPLOY_DURATION_BUCKETS,
)
deploy_files = Counter(
    "troy_deploy_files",
    "Files handled by finished deploys, by what the deploy did with them.",
    ["action"],
)
invalidation_paths = Counter(
    "troy_invalidation_paths",
    "Paths sent to CloudFront invalidations by finished deploys (after collapsing to the path limit).",
)
invalidations = Counter("troy_invalidations", "CloudFront invalidations created or reused by finished deploys.")

DEPLOY_FILE_ACTIONS = ("uploaded", "unchanged", "deleted", "kept")
for _action in DEPLOY_FILE_ACTIONS:  # every series exists from the start: rate() needs a zero to begin with
    deploy_files.labels(action=_action)


class DeployOutcome(Protocol):
    """What a finished deploy reports (``pipelines.flows.deploy.sync.DeployResult`` has this shape)."""

    # Read-only properties: a protocol's plain attributes would be invariant (list ≠ Sequence).
    @property
    def uploaded(self) -> Sequence[str]: ...
    @property
    def unchanged(self) -> Sequence[str]: ...
    @property
    def deleted(self) -> Sequence[str]: ...
    @property
    def kept(self) -> Sequence[str]: ...
    @property
    def invalidation_paths(self) -> Sequence[str]: ...
    @property
    def invalidation_id(self) -> str: ...
    @property
    def timings(self) -> Mapping[str, float]: ...


def deploy_observe(outcome: DeployOutcome) -> None:
    """Record a deploy that went live. Its timings are consecutive laps of the whole step, so
    their sum is the step's duration."""
    deploy_duration_seconds.observe(sum(outcome.timings.values()))
    for action in DEPLOY_FILE_ACTIONS:
        deploy_files.labels(action=action).inc(len(getattr(outcome, action)))
    invalidation_paths.inc(len(outcome.invalidation_paths))
    if outcome.invalidation_id:
        invalidations.inc()


# --- scrape-time collectors ---------------------------------------------------------------------

_scrape_collectors: list[Collector] = []


def scrape_collector_register(collector: Collector) -> None:
    """Add a collector that runs on every ``/metrics`` scrape of a web process (registered from
    an app's ``AppConfig.ready()``; registering the same object twice is a no-op)."""
    if collector not in _scrape_collectors:
        _scrape_collectors.append(collector)


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")  # prometheus_client's own switch


class _ProcessRegistry:
    """The default registry as one collector (this process's metrics, single-process mode)."""

    def collect(self) -> Iterator:
        yield from REGISTRY.collect()


def scrape_registry(extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """A registry for one scrape: every process's metrics (summed from the multiprocess folder
    when there is one, else this process's) plus the registered scrape-time collectors."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        registry.register(_ProcessRegistry())
    for collector in [*_scrape_collectors, *extra]:
        registry.register(collector)
    return registry

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

from collections.abc import Iterable, Iterator, Mapping
import os
from typing import Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

# Deploys take from under a second (a few changed files) to many minutes (a large first deploy).
DEPLOY_DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, float("inf"))

deploy_duration_seconds = Histogram(
    "troy_deploy_duration_seconds",
    "Time the deploy step spent putting a build's files live (download, hash, read the retained manifests, upload the new blobs, write the manifest).",
    buckets=DEPLOY_DURATION_BUCKETS,
)
deploy_files = Counter(
    "troy_deploy_files",
    "Files handled by finished deploys, by what the deploy did with them.",
    ["action"],
)

DEPLOY_FILE_ACTIONS = ("uploaded", "unchanged")
for _action in DEPLOY_FILE_ACTIONS:  # every series exists from the start: rate() needs a zero to begin with
    deploy_files.labels(action=_action)


class DeployOutcome(Protocol):
    """What a finished deploy reports (``pipelines.flows.deploy.store.StoreResult`` has this shape):
    files whose blob it uploaded, files already stored (nothing is deleted or invalidated)."""

    # Read-only properties: a protocol's plain attributes would be invariant.
    @property
    def files_uploaded(self) -> int: ...
    @property
    def files_unchanged(self) -> int: ...
    @property
    def timings(self) -> Mapping[str, float]: ...


def deploy_observe(outcome: DeployOutcome) -> None:
    """Record a deploy that went live. Its timings are consecutive laps of the whole step, so
    their sum is the step's duration."""
    deploy_duration_seconds.observe(sum(outcome.timings.values()))
    deploy_files.labels(action="uploaded").inc(outcome.files_uploaded)
    deploy_files.labels(action="unchanged").inc(outcome.files_unchanged)


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

"""What ties the apps together at start-up, imported once from ``OperationsConfig.ready()``.

Importing this module declares every app's actors on the broker (services send them by their
registered name, because tasks.py sits above the services), gives the GitHub client the token
store that hooks provides, and registers pipelines' database gauges with the core's /metrics.
It must not be imported before the app registry is ready: it imports models.
"""

from deployment_service.integrations import github
from deployment_service.observability.metrics import scrape_collector_register
from hooks import github_tasks, tasks  # noqa: F401  (declares the actors)
from hooks.github_tokens import InstallationTokenStore
from pipelines import tasks as pipeline_tasks  # noqa: F401  (declares the actors)
from pipelines.metrics import PipelineMetricsCollector
from releases import tasks as release_tasks  # noqa: F401  (declares the actors)


def connect() -> None:
    # The GitHub client caches installation tokens in hooks' table; it imports no models itself.
    github.use_token_store(InstallationTokenStore())
    # /metrics reads pipelines' gauges from the database at scrape time; the core never imports apps.
    scrape_collector_register(PipelineMetricsCollector())

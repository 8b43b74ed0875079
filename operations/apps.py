from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """The top layer: what spans apps (URL wiring, the dev run, the scheduler, cross-app commands)."""

    name = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        # Services send actors by their registered name (deployment_service.transactions), because
        # tasks.py sits above them; the actors must be declared on the broker before the first send,
        # in every process (web, worker, tests). AppConfig.ready is the first moment models can be
        # imported, so these are the function-level imports left (one place).
        from deployment_service.integrations import github
        from deployment_service.observability.metrics import scrape_collector_register
        from hooks import github_tasks, tasks  # noqa: F401
        from hooks.github_tokens import InstallationTokenStore
        from pipelines import tasks as pipeline_tasks  # noqa: F401
        from pipelines.metrics import PipelineMetricsCollector
        from releases import tasks as release_tasks  # noqa: F401

        # The GitHub client caches installation tokens in hooks' table; it imports no models itself.
        github.use_token_store(InstallationTokenStore())
        # /metrics reads pipelines' gauges from the database at scrape time; the core never imports apps.
        scrape_collector_register(PipelineMetricsCollector())

from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "pipelines"
    verbose_name = "Pipelines"

    def ready(self) -> None:
        from deployment_service.observability.metrics import scrape_collector_register
        from pipelines.metrics import PipelineMetricsCollector

        scrape_collector_register(PipelineMetricsCollector())

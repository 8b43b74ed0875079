from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """The top layer: what spans apps (URL wiring, the dev run, the scheduler, cross-app commands)."""

    name = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        # The one function-level import of start-up: AppConfig.ready is the first moment models can
        # be imported, and the wiring (actors, token store, metrics collector) needs them.
        from operations import wiring

        wiring.connect()

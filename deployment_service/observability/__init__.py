"""Metrics and structured logs for web and worker processes.

``metrics``: Troy's own Prometheus series and the registry the ``/metrics`` view serves;
``views``: that view (off unless ``TROY_METRICS=1``); ``logs``: the log context (pipeline and
build ids) and the JSON formatter; ``middleware``: the Dramatiq middleware that sets the log
context from an actor's ``pipeline_id``/``build_id`` arguments. The core never imports the apps:
app data reaches the scrape through collectors the apps register (``pipelines.metrics``).
"""

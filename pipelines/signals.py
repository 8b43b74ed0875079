"""Signals pipelines sends to the apps above it, which it does not import."""

from django.dispatch import Signal

# Sent by the deletion flow (``sender=Pipeline``, ``pipeline=…``) before the pipeline's zips are
# removed from the artifact bucket. A receiver returns the keys of the zips its own rows keep for
# that pipeline (releases: the uploaded zips); the flow deletes them with the builds' own.
pipeline_artifact_keys = Signal()

"""The event log over REST. Scoped by the selector; readable after the pipeline is deleted."""

from __future__ import annotations

from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, viewsets
from rest_framework.exceptions import NotFound

from events.models import Event
from pipelines.api.event_serializers import EventSerializer
from pipelines.api.views import MultiChoiceFilter, Pagination
from pipelines.choices import PipelineStatus
from pipelines.selectors import event_list_for, pipeline_list_for


class EventFilter(filters.FilterSet):
    pipeline = filters.UUIDFilter(field_name="pipeline_id", help_text="A pipeline's id (also of a deleted one).")
    status = MultiChoiceFilter(
        field_name="to_status",
        choices=PipelineStatus.choices,
        help_text="Status the pipeline moved to; several comma-separated or repeated.",
    )
    transition = filters.CharFilter(field_name="transition")
    build = filters.UUIDFilter(field_name="build_id")

    class Meta:
        model = Event
        fields = ["pipeline", "status", "transition", "build"]


@extend_schema_view(
    list=extend_schema(summary="The event log (newest first), also of deleted pipelines"),
    retrieve=extend_schema(summary="An event"),
)
class EventViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = EventSerializer
    pagination_class = Pagination
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = EventFilter

    def get_queryset(self) -> QuerySet[Event]:
        return event_list_for(self.request.user)


@extend_schema(summary="A pipeline's events (newest first), also after it was deleted")
class PipelineEventList(generics.ListAPIView):
    serializer_class = EventSerializer
    pagination_class = Pagination
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = EventFilter

    def get_queryset(self) -> QuerySet[Event]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request, no kwargs
            return Event.objects.none()
        pipeline_id = self.kwargs["pipeline_id"]
        events = event_list_for(self.request.user).filter(pipeline_id=pipeline_id)
        # Someone else's pipeline answers 404, like one that never existed; a deleted pipeline of
        # yours still shows its log.
        if not pipeline_list_for(self.request.user).filter(pk=pipeline_id).exists() and not events.exists():
            raise NotFound("No such pipeline.")
        return events

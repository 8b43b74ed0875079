from django.urls import path
from rest_framework.routers import SimpleRouter

from pipelines.api.event_views import EventViewSet, PipelineEventList

router = SimpleRouter()
router.register("events", EventViewSet, basename="event")

urlpatterns = [
    path("pipelines/<uuid:pipeline_id>/events/", PipelineEventList.as_view(), name="pipeline-events"),
    *router.urls,
]

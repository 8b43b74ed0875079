from django.urls import path
from rest_framework.routers import SimpleRouter

from releases.api.views import PipelineReleaseListView, ReleaseViewSet

router = SimpleRouter()
router.register("releases", ReleaseViewSet, basename="release")

urlpatterns = [
    path("pipelines/<str:pipeline_id>/releases/", PipelineReleaseListView.as_view(), name="pipeline-releases"),
    *router.urls,
]

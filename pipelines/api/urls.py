from django.urls import path
from rest_framework.routers import SimpleRouter

from pipelines.api.github_views import GithubInstallView
from pipelines.api.views import BuildViewSet, PipelineViewSet

router = SimpleRouter()
router.register("pipelines", PipelineViewSet, basename="pipeline")
router.register("builds", BuildViewSet, basename="build")

urlpatterns = [
    *router.urls,
    path("github/install/", GithubInstallView.as_view(), name="github-install"),
]

from django.urls import path
from rest_framework.routers import SimpleRouter

from pipelines.api.github_views import GithubInstallView
from pipelines.api.preview_password_views import PreviewPasswordView
from pipelines.api.views import BuildViewSet, PipelineViewSet

router = SimpleRouter()
router.register("pipelines", PipelineViewSet, basename="pipeline")
router.register("builds", BuildViewSet, basename="build")

urlpatterns = [
    path(
        "pipelines/<uuid:pk>/previews/<slug:label>/password/",
        PreviewPasswordView.as_view(),
        name="pipeline-preview-password",
    ),
    *router.urls,
    path("github/install/", GithubInstallView.as_view(), name="github-install"),
]

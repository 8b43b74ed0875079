from django.urls import path
from rest_framework.routers import SimpleRouter

from pipelines.api.build_log_views import BuildLogView
from pipelines.api.env_views import PipelineVariableDetail, PipelineVariableList
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
    path("pipelines/<uuid:pipeline_id>/env/", PipelineVariableList.as_view(), name="pipeline-env"),
    path("pipelines/<uuid:pipeline_id>/env/<str:name>/", PipelineVariableDetail.as_view(), name="pipeline-env-detail"),
    path("builds/<uuid:pk>/logs/", BuildLogView.as_view(), name="build-logs"),
    *router.urls,
    path("github/install/", GithubInstallView.as_view(), name="github-install"),
]

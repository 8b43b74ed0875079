from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from deployment_service.health import healthz, readyz
from deployment_service.observability.views import metrics
from operations.views import ApiRootView, home

api_v1: list[URLPattern | URLResolver] = [
    path("", ApiRootView.as_view(), name="api-root"),
    path("", include("pipelines.api.urls")),
    path("", include("releases.api.urls")),
    path("", include("pipelines.api.event_urls")),
]

urlpatterns = [
    path("", home, name="home"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("hooks/", include("hooks.urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
]

handler400 = "deployment_service.error_views.bad_request"
handler404 = "deployment_service.error_views.not_found"
handler500 = "deployment_service.error_views.server_error"

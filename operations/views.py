"""The service's own front door: ``/`` (a small page for a person: the API docs, the admin and the
sites) and ``/api/v1/`` (the API root a client discovers the resources from)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pipelines.selectors import local_site_url, pipeline_list_for

HOME_SITES_SHOWN = 200

# name in the API root → URL name of its list (or page).
API_RESOURCES = {
    "pipelines": "pipeline-list",
    "builds": "build-list",
    "events": "event-list",
    "github_install": "github-install",
    "schema": "schema",
    "docs": "swagger-ui",
}


def home(request: HttpRequest) -> HttpResponse:
    """The sites of whoever is logged in (the admin's session; staff see all), each at the address
    a person can open: the local edge's when this service runs one, else its https address."""
    pipelines = list(pipeline_list_for(request.user).order_by("name")[: HOME_SITES_SHOWN + 1])
    sites = [
        {"pipeline": pipeline, "url": local_site_url(pipeline) or pipeline.site_url}
        for pipeline in pipelines[:HOME_SITES_SHOWN]
    ]
    return render(
        request,
        "operations/home.html",
        {
            "sites": sites,
            "more_sites": len(pipelines) > HOME_SITES_SHOWN,
            "local_edge_port": settings.TROY_LOCAL_EDGE_PORT,
            "base_domain": settings.TROY_BASE_DOMAIN,
        },
    )


class ApiRootSerializer(serializers.Serializer):
    pipelines = serializers.URLField()
    builds = serializers.URLField()
    releases = serializers.CharField(help_text="A URI template: a pipeline's releases (upload one with POST).")
    events = serializers.URLField()
    github_install = serializers.URLField(help_text="Where to install the GitHub App on your repositories.")
    schema = serializers.URLField(help_text="This API's OpenAPI schema.")
    docs = serializers.URLField(help_text="This API's documentation (Swagger UI).")


class ApiRootView(APIView):
    """The resources of API v1. Open to anyone: it names endpoints, not data (each of them asks
    for a token)."""

    permission_classes = [AllowAny]

    @extend_schema(responses=ApiRootSerializer, summary="The API's resources", tags=["api"])
    def get(self, request: Request) -> Response:
        root = {name: request.build_absolute_uri(reverse(url)) for name, url in API_RESOURCES.items()}
        # Releases are listed per pipeline; their URL is a template rather than a link.
        root["releases"] = root["pipelines"] + "{pipeline_id}/releases/"
        return Response(root)

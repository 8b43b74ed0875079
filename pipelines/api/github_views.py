"""``GET /api/v1/github/install/``: the link that installs Troy's GitHub App for the logged-in user.
The link carries a signed, expiring ``state`` naming the user; GitHub hands it back to the setup
callback (``/hooks/github/setup/``), which links the new installation to that user."""

from __future__ import annotations

from typing import cast

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployment_service.integrations.github import GithubNotConfigured
from pipelines.grants import install_url


class GithubInstallView(APIView):
    @extend_schema(
        summary="The GitHub App install link for the current user",
        tags=["github"],
        responses={
            200: inline_serializer("GithubInstallLink", {"url": serializers.URLField()}),
            503: OpenApiResponse(description="`github_not_configured`: TROY_GITHUB_APP_SLUG is not set."),
        },
    )
    def get(self, request: Request) -> Response:
        if not settings.TROY_GITHUB_APP_SLUG:
            raise GithubNotConfigured("The GitHub App's install link is unknown: set TROY_GITHUB_APP_SLUG.")
        return Response({"url": install_url(cast(int, request.user.pk))})

"""Releases over REST: upload a zip to a pipeline, list and read releases, deploy one.

Scoping comes from the selectors: someone else's pipeline or release is a 404. The upload is
streamed to disk by :class:`releases.uploads.ReleaseUploadHandler` (413 past the limit, before
the rest is read), installed before authentication so a session login's CSRF check cannot read
the body with Django's unbounded default handlers first.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from pipelines.api.serializers import BuildSerializer
from pipelines.api.views import Pagination
from pipelines.services import actor_of
from releases import services
from releases.api.serializers import ReleaseSerializer, ReleaseUploadResultSerializer, ReleaseUploadSerializer
from releases.models import Release
from releases.selectors import pipeline_get_for, release_list_for
from releases.uploads import ReleaseUploadHandler

_REJECTED = OpenApiResponse(description="Unsafe or over-limit archive: `{code, detail, entry}`.")
_TOO_LARGE = OpenApiResponse(description="The upload is over TROY_UPLOAD_MAX_BYTES: `{code: upload_too_large}`.")
_NOT_ZIP = OpenApiResponse(description="Not a zip (or not multipart): `{code: not_a_zip}`.")
_CONFLICT = OpenApiResponse(
    description="`deploy` asked for while the pipeline cannot deploy: `{code, status, allowed}`."
)


class PipelineReleaseListView(generics.ListCreateAPIView):
    serializer_class = ReleaseSerializer
    pagination_class = Pagination
    parser_classes = [MultiPartParser]

    def initialize_request(self, request, *args, **kwargs):
        if request.method == "POST":
            request.upload_handlers = [ReleaseUploadHandler(request)]
        return super().initialize_request(request, *args, **kwargs)

    def get_pipeline(self):
        pipeline = pipeline_get_for(self.request.user, self.kwargs["pipeline_id"])
        if pipeline is None:
            raise Http404
        return pipeline

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no pipeline in the URL
            return Release.objects.none()
        return release_list_for(self.request.user).filter(pipeline=self.get_pipeline())

    @extend_schema(summary="List a pipeline's releases")
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Upload a release (a zip of the built site)",
        request={"multipart/form-data": ReleaseUploadSerializer},
        responses={201: ReleaseUploadResultSerializer, 400: _REJECTED, 409: _CONFLICT, 413: _TOO_LARGE, 415: _NOT_ZIP},
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        pipeline = self.get_pipeline()
        form = ReleaseUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        release, build = services.release_upload(
            pipeline=pipeline,
            upload=form.validated_data["file"],
            version=form.validated_data["version"],
            deploy=form.validated_data["deploy"],
            preview=form.validated_data["preview"],
            uploaded_by=request.user,
            actor=actor_of(request.user),
        )
        body = ReleaseUploadResultSerializer(release, context={"build": build, "request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)


class ReleaseViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ReleaseSerializer

    def get_queryset(self):
        return release_list_for(self.request.user)

    @extend_schema(summary="A release")
    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(summary="Deploy a release", request=None, responses={202: BuildSerializer, 409: _CONFLICT})
    @action(detail=True, methods=["post"])
    def deploy(self, request: Request, pk=None) -> Response:
        release = self.get_object()
        build = services.release_deploy(release_id=release.id, actor=actor_of(request.user), requested_by=request.user)
        return Response(BuildSerializer(build).data, status=status.HTTP_202_ACCEPTED)

"""`PUT/DELETE /api/v1/pipelines/{id}/previews/{label}/password/`: a preview's visitor password
(docs/edge.md, "Visitor passwords"). Write-only: the answer is the preview, which shows only
``password_protected``. Its own view because the pipeline viewset takes no PUT."""

from __future__ import annotations

import uuid

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pipelines import services
from pipelines.api.serializers import PreviewPasswordSerializer, PreviewSerializer
from pipelines.selectors import pipeline_list_for

_NOT_FOUND = OpenApiResponse(description="No such pipeline or preview (or not yours): `{code: not_found}`.")


class PreviewPasswordView(APIView):
    def _pipeline_id(self, request: Request, pk: object) -> uuid.UUID:
        return get_object_or_404(pipeline_list_for(request.user), pk=pk).pk

    @extend_schema(
        summary="Set a preview's visitor password (stored hashed, never shown again)",
        request=PreviewPasswordSerializer,
        responses={
            200: PreviewSerializer,
            400: OpenApiResponse(description="A password that cannot be used."),
            404: _NOT_FOUND,
        },
    )
    def put(self, request: Request, pk: object, label: str) -> Response:
        pipeline_id = self._pipeline_id(request, pk)
        given = PreviewPasswordSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        preview = services.preview_password_set(
            pipeline_id=pipeline_id, label=label, actor=services.actor_of(request.user), **given.validated_data
        )
        return Response(PreviewSerializer(preview).data)

    @extend_schema(
        summary="Remove a preview's visitor password", request=None, responses={200: PreviewSerializer, 404: _NOT_FOUND}
    )
    def delete(self, request: Request, pk: object, label: str) -> Response:
        pipeline_id = self._pipeline_id(request, pk)
        preview = services.preview_password_clear(
            pipeline_id=pipeline_id, label=label, actor=services.actor_of(request.user)
        )
        return Response(PreviewSerializer(preview).data)

"""``/pipelines/{id}/env/`` and ``/pipelines/{id}/env/{NAME}/``: a pipeline's build variables.

Scoped like the pipeline endpoints (owner or staff; anyone else gets 404). PUT and DELETE call
the environment service, which copies secrets to SSM through a worker after commit.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pipelines import services
from pipelines.api.env_serializers import VariableSerializer, VariableWriteSerializer
from pipelines.models import Pipeline, PipelineVariable
from pipelines.selectors import pipeline_list_for, variable_list_for

_NOT_FOUND = OpenApiResponse(description="No such pipeline or variable (or not yours): `{code: not_found}`.")
_INVALID = OpenApiResponse(
    description="Bad name, value, scope or too many variables: `{code, detail}` with code env_name_invalid, "
    "env_name_reserved, env_value_too_large, env_value_invalid, env_limit_reached or env_scope_invalid; "
    "or `{code: invalid, errors, error_codes}` for a malformed body (docs/errors.md)."
)
_CONFLICT = OpenApiResponse(description="The pipeline is being deleted: `{code, detail, status, allowed}`.")


class _PipelineScoped(APIView):
    def pipeline(self) -> Pipeline:
        pipeline = pipeline_list_for(self.request.user).filter(pk=self.kwargs["pipeline_id"]).first()
        if pipeline is None:
            raise Http404
        return pipeline


class PipelineVariableList(_PipelineScoped):
    @extend_schema(
        summary="A pipeline's build variables and secrets (secret values are never shown)",
        responses={200: VariableSerializer(many=True), 404: _NOT_FOUND},
    )
    def get(self, request: Request, pipeline_id: str) -> Response:
        variables = variable_list_for(self.pipeline().pk)
        return Response(VariableSerializer(variables, many=True).data)


class PipelineVariableDetail(_PipelineScoped):
    def variable(self, pipeline: Pipeline, name: str) -> PipelineVariable:
        variable = variable_list_for(pipeline.pk).filter(name=name).first()
        if variable is None:
            raise Http404
        return variable

    @extend_schema(summary="One build variable", responses={200: VariableSerializer, 404: _NOT_FOUND})
    def get(self, request: Request, pipeline_id: str, name: str) -> Response:
        return Response(VariableSerializer(self.variable(self.pipeline(), name)).data)

    @extend_schema(
        summary="Set a build variable or secret (created or replaced)",
        request=VariableWriteSerializer,
        responses={200: VariableSerializer, 400: _INVALID, 404: _NOT_FOUND, 409: _CONFLICT},
    )
    def put(self, request: Request, pipeline_id: str, name: str) -> Response:
        pipeline = self.pipeline()
        data = VariableWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        variable = services.env_variable_set(
            pipeline_id=pipeline.pk, name=name, actor=services.actor_of(request.user), **data.validated_data
        )
        return Response(VariableSerializer(variable).data)

    @extend_schema(
        summary="Unset a build variable or secret",
        request=None,
        responses={204: None, 404: _NOT_FOUND, 409: _CONFLICT},
    )
    def delete(self, request: Request, pipeline_id: str, name: str) -> Response:
        services.env_variable_unset(pipeline_id=self.pipeline().pk, name=name, actor=services.actor_of(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)

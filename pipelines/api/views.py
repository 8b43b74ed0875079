"""Pipelines and builds over REST. Each handler: input serializer → service → output serializer.

Querysets come from the selectors (owner scoping in one place): someone else's pipeline or build
is a 404, exactly like one that does not exist. State changes answer 202: the work is queued.
"""

from __future__ import annotations

from django import forms
from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from pipelines import services
from pipelines.api.serializers import (
    BuildSerializer,
    DeployRequestSerializer,
    PipelineCreateSerializer,
    PipelineSerializer,
    PipelineWriteSerializer,
    PreviewSerializer,
)
from pipelines.choices import ROW_STATUSES, BuildKind, BuildStatus, BuildTrigger
from pipelines.models import Build, Pipeline
from pipelines.selectors import build_list_for, pipeline_list_for, preview_get_for, preview_list_for


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


class CommaSeparatedSelectMultiple(forms.SelectMultiple):
    """``?status=a,b`` and ``?status=a&status=b`` (and both mixed) mean the same."""

    def value_from_datadict(self, data, files, name):
        getlist = getattr(data, "getlist", None)
        raw = getlist(name) if getlist else ([data[name]] if name in data else [])
        return [value.strip() for item in raw for value in str(item).split(",") if value.strip()]


class MultiChoiceFilter(filters.MultipleChoiceFilter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", CommaSeparatedSelectMultiple)
        super().__init__(*args, **kwargs)


class PipelineFilter(filters.FilterSet):
    status = MultiChoiceFilter(choices=ROW_STATUSES, help_text="One or more statuses, comma-separated or repeated.")

    class Meta:
        model = Pipeline
        fields = ["status", "auto_deploy"]


class BuildFilter(filters.FilterSet):
    status = MultiChoiceFilter(
        choices=BuildStatus.choices, help_text="One or more statuses, comma-separated or repeated."
    )
    kind = filters.ChoiceFilter(choices=BuildKind.choices)
    # A plain id filter, not a choice of every pipeline: someone else's pipeline id must answer
    # exactly like an id that does not exist (an empty list), not "valid choice" vs "invalid".
    pipeline = filters.UUIDFilter(field_name="pipeline_id", help_text="A pipeline's id.")

    class Meta:
        model = Build
        fields = ["pipeline", "status", "kind"]


_CONFLICT = OpenApiResponse(description="Not allowed from the current status: `{code, detail, status, allowed}`.")
_INVALID = OpenApiResponse(description="Invalid input: `{code, detail, errors, error_codes}` (docs/errors.md).")
_NOTHING_TO_APPROVE = OpenApiResponse(description="No build waits for approval: `{code: nothing_to_approve}`.")
_NOT_FOUND = OpenApiResponse(description="No such preview on this pipeline (or not yours): `{code: not_found}`.")


@extend_schema_view(
    list=extend_schema(summary="List pipelines"),
    retrieve=extend_schema(summary="A pipeline"),
    create=extend_schema(
        summary="Create a pipeline",
        request=PipelineCreateSerializer,
        responses={201: PipelineSerializer, 400: _INVALID},
    ),
    partial_update=extend_schema(
        summary="Change a pipeline's settings",
        request=PipelineWriteSerializer,
        responses={200: PipelineSerializer, 400: _INVALID},
    ),
    destroy=extend_schema(
        summary="Schedule the pipeline's deletion", responses={202: PipelineSerializer, 409: _CONFLICT}
    ),
)
class PipelineViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PipelineSerializer
    pagination_class = Pagination
    filter_backends = [filters.DjangoFilterBackend, SearchFilter, OrderingFilter]
    filterset_class = PipelineFilter
    search_fields = ["name", "repository"]
    ordering_fields = ["name", "status", "created_at", "updated_at"]
    ordering = ["name"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Pipeline]:
        return pipeline_list_for(self.request.user)

    def _answer(self, pipeline: Pipeline, code: int = status.HTTP_200_OK) -> Response:
        pipeline = self.get_queryset().get(pk=pipeline.pk)  # fresh, with live_build
        return Response(PipelineSerializer(pipeline, context=self.get_serializer_context()).data, status=code)

    def create(self, request: Request) -> Response:
        data = PipelineCreateSerializer(data=request.data, context={"owner": request.user})
        data.is_valid(raise_exception=True)
        pipeline = services.pipeline_create(
            owner=request.user, actor=services.actor_of(request.user), **data.validated_data
        )
        return self._answer(pipeline, status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        pipeline = self.get_object()
        data = PipelineWriteSerializer(pipeline, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        pipeline = services.pipeline_update(
            pipeline_id=pipeline.pk, actor=services.actor_of(request.user), **data.validated_data
        )
        return self._answer(pipeline)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        pipeline = services.pipeline_schedule_deletion(
            pipeline_id=self.get_object().pk, actor=services.actor_of(request.user)
        )
        return self._answer(pipeline, status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Request provisioning", request=None, responses={202: PipelineSerializer, 409: _CONFLICT})
    @action(detail=True, methods=["post"])
    def provision(self, request: Request, pk: str | None = None) -> Response:
        pipeline = services.pipeline_request_provisioning(
            pipeline_id=self.get_object().pk, actor=services.actor_of(request.user)
        )
        return self._answer(pipeline, status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Deploy: an automated build of a ref (default: the pipeline's branch)",
        request=DeployRequestSerializer,
        responses={202: BuildSerializer, 400: _INVALID, 409: _CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def deploy(self, request: Request, pk: str | None = None) -> Response:
        pipeline = self.get_object()
        data = DeployRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        build = services.build_request(
            pipeline_id=pipeline.pk,
            kind=BuildKind.AUTOMATED,
            trigger=BuildTrigger.MANUAL,
            ref=data.validated_data.get("ref") or pipeline.branch,
            actor=services.actor_of(request.user),
            requested_by=request.user,
        )
        return Response(BuildSerializer(build).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="The pipeline's builds, newest first", filters=False, responses={200: BuildSerializer(many=True)}
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=Pagination)
    def builds(self, request: Request, pk: str | None = None) -> Response:
        pipeline = self.get_object()
        builds = build_list_for(request.user).filter(pipeline=pipeline).order_by("-number")
        page = self.paginate_queryset(builds)
        return self.get_paginated_response(BuildSerializer(page, many=True).data)

    @extend_schema(summary="The pipeline's previews", filters=False, responses={200: PreviewSerializer(many=True)})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=Pagination)
    def previews(self, request: Request, pk: str | None = None) -> Response:
        pipeline = self.get_object()
        page = self.paginate_queryset(preview_list_for(pipeline.pk))
        return self.get_paginated_response(PreviewSerializer(page, many=True).data)

    @extend_schema(
        methods=["GET"], summary="One preview", request=None, responses={200: PreviewSerializer, 404: _NOT_FOUND}
    )
    @extend_schema(
        methods=["DELETE"],
        summary="Delete a preview (its host answers 404; its builds stay until retention)",
        request=None,
        responses={204: None, 404: _NOT_FOUND, 409: _CONFLICT},
    )
    @action(detail=True, methods=["get", "delete"], url_path=r"previews/(?P<label>[a-z0-9-]+)", filter_backends=[])
    def preview(self, request: Request, pk: str | None = None, label: str = "") -> Response:
        pipeline = self.get_object()
        if request.method == "GET":
            return Response(PreviewSerializer(preview_get_for(pipeline.pk, label)).data)
        services.preview_delete(pipeline_id=pipeline.pk, label=label, actor=services.actor_of(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Approve the waiting build of a fork's pull request (it builds without the pipeline's secrets)",
        request=None,
        responses={202: BuildSerializer, 404: _NOT_FOUND, 409: _NOTHING_TO_APPROVE},
    )
    @action(detail=True, methods=["post"], url_path=r"previews/(?P<label>[a-z0-9-]+)/approve", filter_backends=[])
    def approve(self, request: Request, pk: str | None = None, label: str = "") -> Response:
        build = services.preview_approve(
            pipeline_id=self.get_object().pk, label=label, actor=services.actor_of(request.user)
        )
        return Response(BuildSerializer(build).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Promote a preview: its build goes live in production (a pointer-only build, queued)",
        request=None,
        responses={202: BuildSerializer, 404: _NOT_FOUND, 409: _CONFLICT},
    )
    @action(detail=True, methods=["post"], url_path=r"previews/(?P<label>[a-z0-9-]+)/promote", filter_backends=[])
    def promote(self, request: Request, pk: str | None = None, label: str = "") -> Response:
        build = services.preview_promote(
            pipeline_id=self.get_object().pk,
            label=label,
            actor=services.actor_of(request.user),
            requested_by=request.user,
        )
        return Response(BuildSerializer(build).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(summary="List builds (of pipelines you can see)"),
    retrieve=extend_schema(summary="A build"),
)
class BuildViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = BuildSerializer
    pagination_class = Pagination
    filter_backends = [filters.DjangoFilterBackend, OrderingFilter]
    filterset_class = BuildFilter
    ordering_fields = ["created_at", "number"]
    ordering = ["-created_at"]

    def get_queryset(self) -> QuerySet[Build]:
        return build_list_for(self.request.user)

    @extend_schema(
        summary="Cancel a queued build, or stop a running automated build",
        request=None,
        responses={202: BuildSerializer, 409: _CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        build = services.build_cancel(build_id=self.get_object().pk, actor=services.actor_of(request.user))
        return Response(BuildSerializer(build).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Deploy this build's artifact again (rollback); answers the new build",
        request=None,
        responses={202: BuildSerializer, 409: _CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def redeploy(self, request: Request, pk: str | None = None) -> Response:
        build = services.build_redeploy(
            build_id=self.get_object().pk, actor=services.actor_of(request.user), requested_by=request.user
        )
        return Response(BuildSerializer(build).data, status=status.HTTP_202_ACCEPTED)

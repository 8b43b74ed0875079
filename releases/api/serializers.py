"""Release serializers: the upload form in, the release (and its queued build) out."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from pipelines.api.serializers import BuildSerializer
from releases.models import Release


class ReleaseUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The site as a zip; a single top-level folder is stripped.")
    version = serializers.CharField(required=False, allow_blank=True, max_length=128, default="")
    deploy = serializers.BooleanField(
        required=False, default=False, help_text="Queue a build that deploys this release."
    )
    preview = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        default="",
        help_text="A preview label: deploy to `{label}--{name}` (created on first use) instead of production.",
    )


class ReleaseSerializer(serializers.ModelSerializer):
    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Release
        fields = [
            "id",
            "pipeline",
            "version",
            "status",
            "error",
            "artifact_key",
            "sha256",
            "size",
            "file_count",
            "uncompressed_size",
            "uploaded_by",
            "created_at",
            "stored_at",
        ]
        read_only_fields = fields


class ReleaseUploadResultSerializer(ReleaseSerializer):
    build = serializers.SerializerMethodField(help_text="The queued build, when `deploy` was asked for.")

    class Meta(ReleaseSerializer.Meta):
        fields = [*ReleaseSerializer.Meta.fields, "build"]
        read_only_fields = fields

    @extend_schema_field(BuildSerializer(allow_null=True))
    def get_build(self, release) -> dict | None:
        build = self.context.get("build")
        return BuildSerializer(build).data if build is not None else None

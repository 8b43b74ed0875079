"""A pipeline's build variables over REST. A secret's value is write-only: answers carry
``value: null`` for it, whatever the caller's rights."""

from __future__ import annotations

from rest_framework import serializers

from pipelines.choices import EnvScope
from pipelines.models import PipelineVariable


class VariableSerializer(serializers.ModelSerializer):
    value = serializers.SerializerMethodField(
        method_name="plain_value", help_text="The plain value; always null for a secret."
    )
    synced_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="A secret: when its SSM Parameter Store copy (what CodeBuild reads) last matched; null until "
        "a worker copied it. Null for plain variables.",
    )
    sync_error = serializers.CharField(read_only=True, help_text="Why the last copy to SSM failed; empty when none.")

    class Meta:
        model = PipelineVariable
        fields = ["name", "secret", "value", "scope", "set_at", "set_by", "synced_at", "sync_error"]
        read_only_fields = fields

    def plain_value(self, variable: PipelineVariable) -> str | None:
        return None if variable.secret else variable.value


class StrictCharField(serializers.CharField):
    """A JSON string only: 5 or true is refused rather than stored as "5" or "True"."""

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class VariableWriteSerializer(serializers.Serializer):
    # Whitespace is kept: a secret's trailing newline or spaces may be part of it.
    value = StrictCharField(allow_blank=True, trim_whitespace=False, help_text="The value (UTF-8, at most 4096 bytes).")
    secret = serializers.BooleanField(
        default=False, help_text="Write-only: stored encrypted, never shown again, read by builds through SSM."
    )
    scope = serializers.ChoiceField(
        choices=EnvScope.choices, default=EnvScope.ALL, help_text="Which builds get it: production, previews or all."
    )

from rest_framework import serializers

from events.models import Event


class EventSerializer(serializers.ModelSerializer):
    pipeline = serializers.UUIDField(
        source="pipeline_id", read_only=True, help_text="The pipeline's id; kept after the pipeline is deleted."
    )
    build = serializers.UUIDField(source="build_id", read_only=True, allow_null=True)

    class Meta:
        model = Event
        fields = [
            "id",
            "pipeline",
            "pipeline_name",
            "build",
            "build_number",
            "from_status",
            "to_status",
            "transition",
            "actor",
            "message",
            "created_at",
        ]
        read_only_fields = fields

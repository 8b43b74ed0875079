"""The event log in the admin: read-only. Events are written only by the pipeline services."""

from django.contrib import admin

from deployment_service.admin import ReadOnlyAdminMixin
from events.models import Event


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "pipeline_name",
        "transition",
        "from_status",
        "to_status",
        "build_number",
        "actor",
        "short_message",
    ]
    list_filter = ["to_status", "transition"]
    search_fields = ["pipeline_name", "actor", "message", "=pipeline_id"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "pipeline_id",
        "pipeline_name",
        "owner_id",
        "build_id",
        "build_number",
        "transition",
        "from_status",
        "to_status",
        "actor",
        "message",
    ]
    readonly_fields = fields

    @admin.display(description="Message")
    def short_message(self, event: Event) -> str:
        return event.message if len(event.message) <= 80 else event.message[:79] + "…"

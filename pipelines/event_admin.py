"""The event log in the admin: read-only. Events are written only by the pipeline services.

Here rather than in events/: it shows pipeline status labels, and events sit below pipelines.
Registered by importing this module from pipelines/admin.py."""

from django.contrib import admin
from django.http import HttpRequest

from deployment_service.admin import ReadOnlyAdminMixin
from events.models import Event
from pipelines.choices import PipelineStatus


def _label(status: str) -> str:
    return PipelineStatus(status).label if status in PipelineStatus.values else status


class StatusFilter(admin.SimpleListFilter):
    title = "to status"
    parameter_name = "to_status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(PipelineStatus.choices)

    def queryset(self, request: HttpRequest, queryset):
        return queryset.filter(to_status=self.value()) if self.value() else queryset


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "pipeline_name",
        "transition",
        "from_status_label",
        "to_status_label",
        "build_number",
        "actor",
        "short_message",
    ]
    list_filter = [StatusFilter, "transition"]
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

    @admin.display(description="From status", ordering="from_status")
    def from_status_label(self, event: Event) -> str:
        return _label(event.from_status)

    @admin.display(description="To status", ordering="to_status")
    def to_status_label(self, event: Event) -> str:
        return _label(event.to_status)

    @admin.display(description="Message")
    def short_message(self, event: Event) -> str:
        return event.message if len(event.message) <= 80 else event.message[:79] + "…"

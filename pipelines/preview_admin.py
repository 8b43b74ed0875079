"""The previews' admin (registered when ``pipelines.admin`` imports this module): the list with
each preview's source, build, address, approval and closing; the inline on a pipeline's page;
deleting previews and approving a fork's waiting build, both through the services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from deployment_service.admin import ReadOnlyAdminMixin
from deployment_service.exceptions import ApplicationError
from pipelines import services
from pipelines.choices import BuildStatus
from pipelines.models import Build, Preview
from pipelines.preview_password_admin import PreviewPasswordAdminMixin, preview_password_link
from pipelines.selectors import local_preview_url


def _with_approval(queryset: QuerySet[Preview]) -> QuerySet[Preview]:
    waiting = Build.objects.filter(preview=OuterRef("pk"), status=BuildStatus.QUEUED, awaiting_approval=True)
    return queryset.annotate(awaiting_approval=Exists(waiting))


def _address(preview: Preview) -> str:
    href = local_preview_url(preview) or preview.url
    return format_html('<a href="{}">{}</a>', href, href)


def _awaiting(preview: Preview) -> bool:
    return bool(getattr(preview, "awaiting_approval", False))


class PreviewInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Preview
    fk_name = "pipeline"
    fields = [
        "preview_link",
        "source",
        "address",
        "build",
        "created_at",
        "last_deployed_at",
        "waits_for_approval",
        "closed_at",
        "password",
    ]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Preview]:
        return _with_approval(super().get_queryset(request).select_related("pipeline", "build__pipeline"))

    @admin.display(description="Preview")
    def preview_link(self, preview: Preview) -> str:
        url = reverse("admin:pipelines_preview_change", args=[preview.pk])
        return format_html('<a href="{}">{}</a>', url, preview.label)

    @admin.display(description="Address")
    def address(self, preview: Preview) -> str:
        return _address(preview)

    @admin.display(description="Visitor password")
    def password(self, preview: Preview) -> str:
        return preview_password_link(preview)

    @admin.display(description="Awaiting approval", boolean=True)
    def waits_for_approval(self, preview: Preview) -> bool:
        return _awaiting(preview)


@admin.register(Preview)
class PreviewAdmin(PreviewPasswordAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-mostly: previews are made by releases to a label, pushes to preview branches and pull
    requests; deleting one and approving a fork's waiting build go through the services (a
    deleted preview's pointer goes too; its builds stay until retention)."""

    list_display = [
        "label",
        "pipeline",
        "source",
        "address",
        "build",
        "last_deployed_at",
        "created_at",
        "waits_for_approval",
        "closed_at",
        "password_link",
    ]
    list_filter = ["source"]
    list_select_related = ["pipeline", "build__pipeline"]
    search_fields = ["label", "pipeline__name", "host", "branch"]
    readonly_fields = ["address", "waits_for_approval", "password_link"]
    exclude = ["password_credential"]
    actions = ["delete_previews", "approve_previews"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Preview]:
        return _with_approval(super().get_queryset(request))

    @admin.display(description="Address")
    def address(self, preview: Preview) -> str:
        return _address(preview)

    @admin.display(description="Awaiting approval", boolean=True)
    def waits_for_approval(self, preview: Preview) -> bool:
        return _awaiting(preview)

    @admin.action(description="Approve the waiting build of a fork's pull request (built without secrets)")
    def approve_previews(self, request: HttpRequest, queryset: QuerySet[Preview]) -> None:
        self._each(request, queryset, services.preview_approve, "Preview {label}: build #{done.number} approved.")

    @admin.action(description="Delete selected previews (their builds stay until retention)")
    def delete_previews(self, request: HttpRequest, queryset: QuerySet[Preview]) -> None:
        self._each(request, queryset, services.preview_delete, "Preview {label} deleted ({done}).")

    def _each(self, request: HttpRequest, queryset: QuerySet[Preview], service, success: str) -> None:
        """Call ``service`` for each selected preview, in order; one message per preview
        (``success`` formatted with its label and what the service returned)."""
        actor = services.actor_of(request.user)
        for pipeline_id, label in queryset.order_by("pipeline__name", "label").values_list("pipeline_id", "label"):
            try:
                done = service(pipeline_id=pipeline_id, label=label, actor=actor)
            except ApplicationError as exc:
                self.message_user(request, f"{label}: {exc.detail}", messages.ERROR)
            else:
                self.message_user(request, success.format(label=label, done=done), messages.SUCCESS)

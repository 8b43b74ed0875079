from django.contrib import admin

from releases.models import Release


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    """Read-only: releases come from uploads; deploying one is an API call (or the CLI)."""

    list_display = ["__str__", "pipeline", "version", "status", "file_count", "size", "uploaded_by", "created_at"]
    list_filter = ["status"]
    search_fields = ["version", "pipeline__name", "sha256"]
    list_select_related = ["pipeline", "uploaded_by"]
    readonly_fields = [f.name for f in Release._meta.fields]

    def get_queryset(self, request):
        # Every file of the release (up to TROY_ARCHIVE_MAX_ENTRIES): shown on its change page only,
        # which loads it with one more query; the changelist never does.
        return super().get_queryset(request).defer("files")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

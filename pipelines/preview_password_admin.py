"""The Preview admin's visitor password page (set or clear; the password input is never filled
in and the stored hash is never shown). Mixed into ``pipelines.admin.PreviewAdmin``; it calls
the services, as every admin change does."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from deployment_service.exceptions import ApplicationError
from pipelines import services
from pipelines.models import Preview


class PreviewPasswordForm(forms.Form):
    username = forms.CharField(
        required=False, max_length=128, help_text="Leave empty to accept any username.", strip=False
    )
    password = forms.CharField(
        required=False, max_length=128, strip=False, widget=forms.PasswordInput(render_value=False)
    )


def preview_password_link(preview: Preview) -> str:
    """A link to the preview's password page, saying whether visitors must give one."""
    url = reverse("admin:pipelines_preview_password", args=[preview.pk])
    return format_html('<a href="{}">{}</a>', url, "protected (change)" if preview.password_protected else "set")


class PreviewPasswordAdminMixin:
    """Adds `<id>/password/` to a ModelAdmin of Preview and a link to it on each row."""

    admin_site: admin.AdminSite

    @admin.display(description="Password")
    def password_link(self, preview: Preview) -> str:
        return preview_password_link(preview)

    def get_urls(self) -> list[Any]:
        own = [
            path(
                "<path:object_id>/password/",
                self.admin_site.admin_view(self.password_view),
                name="pipelines_preview_password",
            )
        ]
        return own + super().get_urls()  # type: ignore[misc]

    def password_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not request.user.has_perm("pipelines.change_preview") and not request.user.is_superuser:
            raise PermissionDenied
        preview = get_object_or_404(Preview.objects.select_related("pipeline"), pk=object_id)
        form = PreviewPasswordForm(request.POST or None)
        back = reverse("admin:pipelines_preview_changelist")
        if request.method == "POST":
            actor = services.actor_of(request.user)
            try:
                if "_clear" in request.POST:
                    services.preview_password_clear(pipeline_id=preview.pipeline_id, label=preview.label, actor=actor)
                    self.message_user(request, f"Preview {preview.label} no longer asks for a password.")  # type: ignore[attr-defined]
                    return HttpResponseRedirect(back)
                if form.is_valid():
                    services.preview_password_set(
                        pipeline_id=preview.pipeline_id,
                        label=preview.label,
                        username=form.cleaned_data["username"],
                        password=form.cleaned_data["password"],
                        actor=actor,
                    )
                    self.message_user(request, f"Preview {preview.label} now asks visitors for a password.")  # type: ignore[attr-defined]
                    return HttpResponseRedirect(back)
            except ValidationError as exc:
                form.add_error("password", exc.messages)
            except ApplicationError as exc:
                self.message_user(request, str(exc.detail), messages.ERROR)  # type: ignore[attr-defined]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Visitor password of preview {preview.label}",
            "preview": preview,
            "form": form,
            "opts": Preview._meta,
        }
        return TemplateResponse(request, "admin/pipelines/preview/password.html", context)

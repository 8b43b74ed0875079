"""The pipeline page's build variables: an inline whose saves go through the environment service.

A secret shows its name, scope and when it was set (and copied to SSM), never its value: its
"new secret value" box is a password input that is never filled in, and left empty keeps the
secret. Deleting a row unsets it through the service (its SSM copy goes in a worker).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from deployment_service.exceptions import ApplicationError
from pipelines import services
from pipelines.models import Pipeline, PipelineVariable


class VariableForm(forms.ModelForm):
    value = forms.CharField(
        required=False,
        strip=False,
        widget=forms.TextInput(attrs={"size": 40}),
        help_text="A plain variable's value (shown in the API).",
    )
    new_secret = forms.CharField(
        required=False,
        strip=False,
        label="New secret value",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Makes it a secret (write-only); empty keeps the current secret.",
    )

    class Meta:
        model = PipelineVariable
        fields = ["name", "scope", "value"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["name"].disabled = True
            if self.instance.secret:
                # Never put a secret (nor its token) into the page.
                self.initial["value"] = ""
                self.fields["value"].disabled = True
                self.fields["value"].help_text = "A secret: its value is never shown."

    def has_changed(self) -> bool:
        return super().has_changed() or bool(self.data.get(self.add_prefix("new_secret")))

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if self.instance.pk is None:
            try:
                services.env_name_check(name)
            except ApplicationError as exc:
                raise forms.ValidationError(exc.detail) from exc
        return name


class VariableInline(admin.TabularInline):
    model = PipelineVariable
    form = VariableForm
    extra = 0  # "Add another build variable" adds a row
    fields = ["name", "scope", "value", "new_secret", "secret", "set_at", "set_by", "synced_at", "sync_error"]
    readonly_fields = ["secret", "set_at", "set_by", "synced_at", "sync_error"]
    verbose_name = "build variable"
    verbose_name_plural = "Build variables and secrets"


def variables_save(request: HttpRequest, pipeline: Pipeline, formset: Any, report: Any) -> None:
    """Apply the inline's changes through the service, one variable at a time; ``report`` is the
    admin's message_user. Nothing is saved by the formset itself."""
    actor = services.actor_of(request.user)
    # The admin's change message reads these (set by formset.save(), which is not called): the
    # event log records each change instead.
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    for form in formset.forms:
        if not hasattr(form, "cleaned_data") or not form.cleaned_data:
            continue
        instance: PipelineVariable = form.instance
        name = form.cleaned_data.get("name") or instance.name
        try:
            if form.cleaned_data.get("DELETE"):
                if instance.pk is not None:
                    services.env_variable_unset(pipeline_id=pipeline.pk, name=instance.name, actor=actor)
                continue
            if not form.has_changed():
                continue
            new_secret = form.cleaned_data.get("new_secret") or ""
            scope = form.cleaned_data.get("scope") or "all"
            if new_secret:
                services.env_variable_set(
                    pipeline_id=pipeline.pk, name=name, value=new_secret, secret=True, scope=scope, actor=actor
                )
            elif instance.pk is not None and instance.secret:
                services.env_variable_set(
                    pipeline_id=pipeline.pk, name=name, value=None, secret=True, scope=scope, actor=actor
                )
            else:
                services.env_variable_set(
                    pipeline_id=pipeline.pk,
                    name=name,
                    value=form.cleaned_data.get("value") or "",
                    scope=scope,
                    actor=actor,
                )
        except ApplicationError as exc:
            report(request, f"{name}: {exc.detail}", messages.ERROR)

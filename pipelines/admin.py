"""Admin for operators: read-mostly. Every change goes through the service layer with the operator
recorded as the actor; nothing here writes a status.

The transition buttons use django-fsm's change-form template (and nothing private of its admin):
which buttons show comes from ``services.allowed_actions`` and a click calls the matching service,
never the model transition.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.db import models
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django_fsm import FSMField
from django_fsm.admin import FSMObjectTransition, FSMTransitionContext

from deployment_service.admin import ReadOnlyAdminMixin
from deployment_service.exceptions import ApplicationError
from deployment_service.transactions import send_on_commit
from events.models import Event
from pipelines import event_admin, services  # noqa: F401  (importing event_admin registers the event log's admin)
from pipelines.build_log_admin import BuildLogAdminMixin
from pipelines.choices import NAME_EDITABLE, BuildKind, BuildStatus, BuildTrigger
from pipelines.env_admin import VariableInline, variables_save
from pipelines.models import (
    Build,
    GithubInstallation,
    GithubInstallationRepository,
    Pipeline,
    PipelineVariable,
)
from pipelines.preview_admin import PreviewInline  # importing it registers the previews' admin
from pipelines.selectors import local_site_url
from pipelines.services import EDITABLE_FIELDS

EVENT_LOG_LENGTH = 50
TRANSITION_PARAM = "_fsm_transition_to"  # the name django_fsm/fsm_transition_button.html posts
INLINE_BUILDS = 20


def _operator_action(request: HttpRequest, pipeline_id: Any, name: str) -> str:
    """Run the service behind an admin button; answers the message to show. Raises ApplicationError."""
    actor = services.actor_of(request.user)
    if name == "request_provisioning":
        services.pipeline_request_provisioning(pipeline_id=pipeline_id, actor=actor)
        return "Provisioning requested; a worker creates the distribution and DNS records."
    if name == "schedule_deletion":
        services.pipeline_schedule_deletion(pipeline_id=pipeline_id, actor=actor)
        return "Deletion scheduled; a worker removes the distribution, DNS records and files."
    if name == "queue_deployment":
        branch = Pipeline.objects.values_list("branch", flat=True).get(pk=pipeline_id)
        build = services.build_request(
            pipeline_id=pipeline_id,
            kind=BuildKind.AUTOMATED,
            trigger=BuildTrigger.MANUAL,
            ref=branch,
            actor=actor,
            requested_by=request.user,
        )
        return f"Build #{build.number} of {branch} queued."
    raise ValueError(name)


OPERATOR_ACTIONS = ("request_provisioning", "queue_deployment", "schedule_deletion")


# Django 6 changes forms.URLField's default scheme to https; say so now (and silence the warning).
URL_FIELDS_ASSUME_HTTPS = {models.URLField: {"assume_scheme": "https"}}


class BuildInline(ReadOnlyAdminMixin, admin.TabularInline):
    formfield_overrides = URL_FIELDS_ASSUME_HTTPS
    model = Build
    fk_name = "pipeline"
    verbose_name_plural = f"Builds (latest {INLINE_BUILDS})"
    fields = [
        "build_link",
        "kind",
        "trigger",
        "rollback_note",
        "status",
        "ref",
        "commit_sha",
        "phase",
        "created_at",
        "finished_at",
        "error",
    ]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-number"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Build]:
        # The latest builds of the pipeline shown (the inline adds its pipeline filter after this,
        # so the limit sits in a correlated subquery rather than a slice).
        # Each row is named by its pipeline (Build.__str__): joined here, not queried per row.
        latest = Build.objects.filter(pipeline=OuterRef("pipeline")).order_by("-number").values("pk")[:INLINE_BUILDS]
        return super().get_queryset(request).filter(pk__in=Subquery(latest)).select_related("pipeline")

    @admin.display(description="Build")
    def build_link(self, build: Build) -> str:
        url = reverse("admin:pipelines_build_change", args=[build.pk])
        return format_html('<a href="{}">#{}</a>', url, build.number)

    @admin.display(description="Rollback")
    def rollback_note(self, build: Build) -> str:
        return rollback_text(build, numbers=False)


def rollback_text(build: Build, *, numbers: bool = True) -> str:
    """ "" for a build that is not a rollback. ``numbers`` names the builds (one query each unless
    the caller selected them; the inline does not, to stay one query for its rows)."""
    if not build.is_rollback:
        return ""
    how = "pointer only, nothing uploaded" if build.content_build_id else "stored again"
    source = build.source_build if numbers and build.source_build_id is not None else None
    return f"rollback ({how})" if source is None else f"rollback to #{source.number} ({how})"


def site_address(pipeline: Pipeline) -> str:
    """Where "view site" goes: the local edge's address when this service runs one, else the site."""
    return local_site_url(pipeline) or pipeline.site_url


class PipelineAdminForm(forms.ModelForm):
    """Checks the monorepo patterns as the API does (the service refuses them too)."""

    class Meta:
        model = Pipeline
        fields = ["watch_paths"]  # the admin's fieldsets decide the form's fields

    def clean_watch_paths(self) -> list[str]:
        try:
            return services.watch_paths_check(self.cleaned_data.get("watch_paths") or [])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_preview_branches(self) -> list[str]:
        try:
            return services.preview_branches_check(self.cleaned_data.get("preview_branches") or [])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    # django-fsm's change form (its public template) shows the buttons; which ones, and what a
    # click does (a service, never the model transition), is this class's own.
    change_form_template = "django_fsm/fsm_admin_change_form.html"
    list_display = ["name", "site_link", "status", "owner", "live_build_link", "updated_at"]
    list_filter = ["status", "auto_deploy"]
    search_fields = ["name", "repository", "owner__username", "distribution_id"]
    list_select_related = ["owner", "live_build"]
    raw_id_fields = ["owner"]
    inlines = [VariableInline, BuildInline]
    form = PipelineAdminForm
    readonly_fields = [
        "id",
        "domain",
        "status",
        "status_changed_at",
        "last_error",
        "distribution_id",
        "distribution_domain",
        "live_build_link",
        "github_installation_id",
        "created_at",
        "updated_at",
        "event_log",
    ]
    add_fieldsets = [
        (None, {"fields": ["name", "owner"]}),
        (
            "Source and build",
            {
                "fields": [
                    "repository",
                    "branch",
                    "auto_deploy",
                    "build_install",
                    "build_command",
                    "build_test",
                    "build_output_dir",
                    "base_dir",
                    "watch_paths",
                    "preview_branches",
                    "pull_request_previews",
                ]
            },
        ),
    ]
    fieldsets = [
        (None, {"fields": ["name", "domain", "owner", "status", "status_changed_at", "last_error"]}),
        (
            "Source and build",
            {
                "fields": [
                    "repository",
                    "branch",
                    "auto_deploy",
                    "build_install",
                    "build_command",
                    "build_test",
                    "build_output_dir",
                    "base_dir",
                    "watch_paths",
                    "preview_branches",
                    "pull_request_previews",
                ]
            },
        ),
        (
            "AWS",
            {"fields": ["id", "distribution_id", "distribution_domain", "live_build_link", "github_installation_id"]},
        ),
        ("Timestamps", {"fields": ["created_at", "updated_at"]}),
        (f"Event log (latest {EVENT_LOG_LENGTH})", {"fields": ["event_log"]}),
    ]

    # --- what may be edited ----------------------------------------------------------------------

    def get_fieldsets(self, request: HttpRequest, obj: Pipeline | None = None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_inlines(self, request: HttpRequest, obj: Pipeline | None = None) -> list:
        """The previews inline only on the page of a pipeline that has previews (a form without
        it stays the same for the pipelines that have none)."""
        if obj is None:  # variables are set once the pipeline exists
            return [inline for inline in self.inlines if inline is not VariableInline]
        if obj.previews.exists():
            return [PreviewInline, *self.inlines]
        return list(self.inlines)

    def get_readonly_fields(self, request: HttpRequest, obj: Pipeline | None = None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly.append("owner")
            if obj.status not in NAME_EDITABLE:
                readonly.append("name")  # the domain and distribution use it
        return readonly

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"owner": request.user.pk, **super().get_changeform_initial_data(request)}

    def has_delete_permission(self, request: HttpRequest, obj: Pipeline | None = None) -> bool:
        # Removing the row would leave the distribution and DNS records behind: use the Delete button.
        return False

    def save_model(self, request: HttpRequest, obj: Pipeline, form: Any, change: bool) -> None:
        actor = services.actor_of(request.user)
        fields = {name: form.cleaned_data[name] for name in EDITABLE_FIELDS if name in form.cleaned_data}
        if change:
            changed = {name: value for name, value in fields.items() if name in form.changed_data}
            if changed:
                try:
                    services.pipeline_update(pipeline_id=obj.pk, actor=actor, **changed)
                except ApplicationError as exc:  # e.g. a worker started provisioning meanwhile
                    self.message_user(request, exc.detail, messages.ERROR)
            return
        created = services.pipeline_create(owner=form.cleaned_data["owner"], actor=actor, **fields)
        # The admin goes on with ``obj`` (log entry, redirect): point it at the row the service made.
        obj.id = created.id
        obj._state.adding = False

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is PipelineVariable:
            variables_save(request, form.instance, formset, self.message_user)
            return
        super().save_formset(request, form, formset, change)

    # --- transition buttons ----------------------------------------------------------------------

    def _transition_buttons(self, obj: Pipeline | None) -> list[FSMObjectTransition]:
        """The buttons: exactly ``services.allowed_actions`` (which also offers Deploy while a
        deployment is queued or running: it queues a build behind), labelled as the transitions
        declare (``custom={"label": …}``)."""
        if obj is None:
            return []
        status_field = Pipeline._meta.get_field("status")
        assert isinstance(status_field, FSMField)
        transitions = {transition.name: transition for transition in status_field.get_all_transitions(Pipeline)}
        buttons = []
        for name in services.allowed_actions(obj):
            if name in OPERATOR_ACTIONS:
                custom = transitions[name].custom if name in transitions else {}
                buttons.append(
                    FSMTransitionContext(
                        name=name, label=custom.get("label") or name, help_text=custom.get("help_text")
                    )
                )
        if not buttons:
            return []
        return [FSMObjectTransition(fsm_field="status", block_label="Actions", available_transitions=buttons)]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Pipeline | None = None,
    ) -> HttpResponse:
        # Here rather than in change_view: ``obj`` is the row the form shows, not a second read.
        context["fsm_object_transitions"] = self._transition_buttons(obj)
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def response_change(self, request: HttpRequest, obj: Pipeline) -> HttpResponse:
        name = request.POST.get(TRANSITION_PARAM)
        if not name:
            return super().response_change(request, obj)
        # The change form was saved (through the service) before this runs; now the button.
        self._run_operator_action(request, obj, name)
        return HttpResponseRedirect(
            add_preserved_filters(
                {"preserved_filters": self.get_preserved_filters(request), "opts": self.model._meta}, request.path
            )
        )

    def _run_operator_action(self, request: HttpRequest, obj: Pipeline, name: str) -> None:
        if name not in OPERATOR_ACTIONS:
            self.message_user(request, f"'{name}' is not something an operator can do.", messages.ERROR)
            return
        try:
            message = _operator_action(request, obj.pk, name)
        except ApplicationError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
            return
        self.message_user(request, message, messages.SUCCESS)

    # --- read-only displays ----------------------------------------------------------------------

    def get_view_on_site_url(self, obj: Pipeline | None = None) -> str | None:
        return None if obj is None else site_address(obj)

    @admin.display(description="Site", ordering="name")
    def site_link(self, pipeline: Pipeline) -> str:
        url = site_address(pipeline)
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, url)

    @admin.display(description="Live build", ordering="live_build__number")
    def live_build_link(self, pipeline: Pipeline) -> str:
        if pipeline.live_build is None:
            return "-"
        url = reverse("admin:pipelines_build_change", args=[pipeline.live_build_id])
        return format_html('<a href="{}">#{}</a>', url, pipeline.live_build.number)

    @admin.display(description="Events")
    def event_log(self, pipeline: Pipeline) -> str:
        events = Event.objects.filter(pipeline_id=pipeline.pk).order_by("-created_at", "-id")[:EVENT_LOG_LENGTH]
        return render_to_string(
            "admin/pipelines/pipeline/event_log.html",
            {
                "events": events,
                "all_events_url": reverse("admin:events_event_changelist") + f"?pipeline_id={pipeline.pk}",
            },
        )


@admin.register(Build)
class BuildAdmin(BuildLogAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    formfield_overrides = URL_FIELDS_ASSUME_HTTPS
    list_display = [
        "__str__",
        "number",
        "kind",
        "trigger",
        "rollback",
        "preview_column",
        "status",
        "phase",
        "ref",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "kind", "trigger"]
    search_fields = ["pipeline__name", "commit_sha", "codebuild_build_id", "ref", "preview_label"]
    list_select_related = ["pipeline", "source_build", "preview"]
    readonly_fields = ["rollback", "served_files", "log_tail"]
    actions = ["cancel_builds"]
    date_hierarchy = "created_at"

    @admin.display(description="Rollback")
    def rollback(self, build: Build) -> str:
        return rollback_text(build)

    @admin.display(description="Preview", ordering="preview_label")
    def preview_column(self, build: Build) -> str:
        """(Not named preview_label: the admin would show the model field of that name instead.)
        The preview the build deploys to, kept after the preview is deleted ("" for a production
        build); a fork's build waiting for approval says so."""
        waiting = " (awaiting approval)" if build.awaiting_approval and build.status == BuildStatus.QUEUED else ""
        return f"{build.preview_label}{waiting}"

    @admin.display(description="Files served")
    def served_files(self, build: Build) -> str:
        content = build.content_build if build.content_build_id is not None else None
        if content is not None:
            url = reverse("admin:pipelines_build_change", args=[content.pk])
            return format_html('those stored by <a href="{}">build #{}</a>', url, content.number)
        if build.stored_at is not None:
            return f"its own, stored {build.stored_at:%Y-%m-%d %H:%M:%S}"
        return "none stored"

    @admin.action(description="Cancel selected builds (queued, or running automated ones)")
    def cancel_builds(self, request: HttpRequest, queryset: QuerySet[Build]) -> None:
        actor = services.actor_of(request.user)
        for build in queryset.order_by("pipeline__name", "number"):
            try:
                services.build_cancel(build_id=build.pk, actor=actor)
            except ApplicationError as exc:
                self.message_user(request, f"{build}: {exc.detail}", messages.ERROR)
            else:
                self.message_user(request, f"{build}: cancellation requested.", messages.SUCCESS)


# --- GitHub App installations (the repository grants) ---------------------------------------------


class GithubInstallationRepositoryInline(admin.TabularInline):
    model = GithubInstallationRepository
    extra = 0
    can_delete = False
    readonly_fields = ("full_name",)

    # GitHub's webhooks and the refresh keep the list; nobody types it in.
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(GithubInstallation)
class GithubInstallationAdmin(admin.ModelAdmin):
    """An operator links an installation to a Troy user (``user``); everything else is what GitHub
    said. Saving goes through the service and fetches the repository list in a worker."""

    list_display = ("installation_id", "account", "user", "suspended_at", "removed_at", "repositories_synced_at")
    list_filter = (("removed_at", admin.EmptyFieldListFilter), ("suspended_at", admin.EmptyFieldListFilter))
    search_fields = ("installation_id", "account", "user__username", "repositories__full_name")
    fields = ("installation_id", "user", "account", "suspended_at", "removed_at", "repositories_synced_at")
    readonly_fields = ("account", "suspended_at", "removed_at", "repositories_synced_at")
    raw_id_fields = ("user",)
    inlines = [GithubInstallationRepositoryInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return self.readonly_fields + (("installation_id",) if obj is not None else ())

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: GithubInstallation, form: Any, change: bool) -> None:
        saved = services.installation_assign(installation_id=obj.installation_id, user_id=obj.user_id)
        obj.pk = saved.pk
        send_on_commit("refresh_github_installation", saved.installation_id)

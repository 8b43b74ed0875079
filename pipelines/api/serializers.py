"""Pipeline and build serializers. Input serializers validate what a client sends; the services
write it. Output serializers only read. ``status`` is never writable."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deployment_service.archives import path_problem
from deployment_service.error_codes import ErrorCode
from deployment_service.integrations.local_git import is_local_source
from pipelines import services
from pipelines.api.env_serializers import StrictCharField
from pipelines.exceptions import RepositoryNotGranted
from pipelines.grants import repository_granted
from pipelines.models import COMMAND_MAX_LENGTH, Build, Pipeline, Preview
from pipelines.selectors import local_preview_url, local_site_url
from pipelines.validators import validate_branch, validate_new_pipeline_name, validate_relative_path


class BuildSettingsSerializer(serializers.Serializer):
    """The pipeline's build commands, nested as ``build`` in the API (flat columns on the model)."""

    install = serializers.CharField(
        source="build_install",
        required=False,
        allow_blank=True,
        max_length=COMMAND_MAX_LENGTH,
        help_text="Install command, e.g. 'npm ci'.",
    )
    build = serializers.CharField(
        source="build_command",
        required=False,
        allow_blank=True,
        max_length=COMMAND_MAX_LENGTH,
        help_text="Build command, e.g. 'npm run build'.",
    )
    test = serializers.CharField(
        source="build_test",
        required=False,
        allow_blank=True,
        max_length=COMMAND_MAX_LENGTH,
        help_text="Test command; no test phase when empty.",
    )
    output_dir = serializers.CharField(
        source="build_output_dir",
        required=False,
        max_length=255,
        validators=[validate_relative_path],
        help_text="Directory the build writes the site to, relative to the repository root.",
    )


class BuildRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Build
        fields = ["id", "number"]
        read_only_fields = fields


class PipelineSerializer(serializers.ModelSerializer):
    """A pipeline as the API shows it."""

    status_display = serializers.CharField(source="get_status_display", read_only=True)
    domain = serializers.CharField(read_only=True)
    site_url = serializers.URLField(read_only=True)
    local_url = serializers.SerializerMethodField(
        help_text="The site on this service's local edge (development), e.g. http://hello.localhost:8001/; "
        "empty when the service runs none."
    )
    build = BuildSettingsSerializer(source="*", read_only=True)
    live_build = BuildRefSerializer(read_only=True, allow_null=True)
    allowed_transitions = serializers.SerializerMethodField(
        help_text="Transitions you may ask for now (provision, deploy, delete)."
    )

    class Meta:
        model = Pipeline
        fields = [
            "id",
            "name",
            "domain",
            "site_url",
            "local_url",
            "status",
            "status_display",
            "repository",
            "branch",
            "build",
            "auto_deploy",
            "base_dir",
            "watch_paths",
            "preview_branches",
            "pull_request_previews",
            "distribution_id",
            "distribution_domain",
            "live_build",
            "last_error",
            "created_at",
            "updated_at",
            "allowed_transitions",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_local_url(self, pipeline: Pipeline) -> str:
        return local_site_url(pipeline)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_allowed_transitions(self, pipeline: Pipeline) -> list[str]:
        return services.allowed_actions(pipeline)


class PipelineWriteSerializer(serializers.ModelSerializer):
    """Settings a user may set: on create all of them (plus ``provision``), on PATCH any subset.

    Field validators (DNS-label name, unique name, ``owner/repo``, branch) come from the model; the
    service validates again under the row lock and refuses a name change once provisioned."""

    build = BuildSettingsSerializer(source="*", required=False)
    base_dir = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="Monorepos: the directory install/build/test run in, relative to the repository root "
        "(the output dir is relative to it); empty for the root.",
    )
    watch_paths = serializers.ListField(
        child=StrictCharField(max_length=255, trim_whitespace=False),
        required=False,
        max_length=services.WATCH_PATHS_MAX,
        help_text="Monorepos: patterns (docs/github.md); a push to the branch changing no matching file starts "
        "no build. Empty: every push builds.",
    )

    preview_branches = serializers.ListField(
        child=StrictCharField(max_length=255, trim_whitespace=False),
        required=False,
        max_length=services.MAX_PREVIEW_BRANCH_PATTERNS,
        help_text="Branch patterns (fnmatch, e.g. `feature/*`): a push to a matching branch other than `branch` "
        "builds that branch's preview. Empty: no branch previews.",
    )

    class Meta:
        model = Pipeline
        fields = [
            "name",
            "repository",
            "branch",
            "build",
            "auto_deploy",
            "base_dir",
            "watch_paths",
            "preview_branches",
            "pull_request_previews",
        ]
        extra_kwargs = {"repository": {"required": False}, "branch": {"required": False}}

    def validate_base_dir(self, value: str) -> str:
        value = value.strip()
        if value in ("", ".", "./"):
            return ""
        if path_problem(value) is not None:
            raise serializers.ValidationError(
                "The base directory must be a relative path inside the repository "
                "(no leading '/', no '..', no backslashes).",
                code=ErrorCode.INVALID,
            )
        return value

    def validate_watch_paths(self, value: list[str]) -> list[str]:
        try:
            return services.watch_paths_check(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc), code=ErrorCode.INVALID) from exc

    def validate_preview_branches(self, value: list[str]) -> list[str]:
        try:
            return services.preview_branches_check(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc), code=ErrorCode.INVALID) from exc

    def validate_name(self, value: str) -> str:
        """`--` is reserved for preview hosts (existing names keep it; a new or changed one may not)."""
        if self.instance is None or value != self.instance.name:
            validate_new_pipeline_name(value)
        return value

    def validate(self, attrs: dict) -> dict:
        """A repository must be covered by an installation its owner holds (the creating user, or
        the pipeline's owner on PATCH; staff too: builds run with the owner's installation).
        Empty stays allowed (release-only pipelines)."""
        repository = attrs.get("repository")
        if repository and not is_local_source(repository):  # file:// (TROY_LOCAL_SOURCES): the model checks it
            owner = self.instance.owner if self.instance is not None else self.context["owner"]
            if not repository_granted(user_id=owner.pk, repository=repository):
                raise RepositoryNotGranted(
                    f"{repository} is not covered by a GitHub App installation linked to {owner.get_username()}: "
                    "install the App on it from GET /api/v1/github/install/.",
                    extra={"field": "repository"},
                )
        return attrs


class PipelineCreateSerializer(PipelineWriteSerializer):
    provision = serializers.BooleanField(
        default=False,
        write_only=True,
        help_text="Request provisioning right away (status provision_request).",
    )

    class Meta(PipelineWriteSerializer.Meta):
        fields = [*PipelineWriteSerializer.Meta.fields, "provision"]


class PreviewSerializer(serializers.ModelSerializer):
    url = serializers.CharField(read_only=True, help_text="The preview's exact address (the host may be shortened).")
    local_url = serializers.SerializerMethodField(
        help_text="Its address on the local edge when this service runs one, else empty."
    )
    build_number = serializers.SerializerMethodField(help_text="The number of the build it serves; null for none.")
    password_protected = serializers.BooleanField(
        read_only=True, help_text="Visitors must give the preview's password (it is never shown)."
    )
    branch = serializers.CharField(
        read_only=True, help_text="The branch built (a pull request's head); empty for releases."
    )
    pull_request = serializers.IntegerField(read_only=True, allow_null=True, help_text="The pull request's number.")
    awaiting_approval = serializers.BooleanField(
        read_only=True,
        default=False,
        help_text="A build of a fork's pull request waits for the owner's approval (POST …/approve/).",
    )
    closed_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When its branch was deleted or its pull request closed."
    )
    removal_at = serializers.SerializerMethodField(
        help_text="When the periodic care removes it (closed_at + TROY_PREVIEW_CLOSED_GRACE_SECONDS); null if open."
    )

    class Meta:
        model = Preview
        fields = [
            "label",
            "source",
            "branch",
            "pull_request",
            "host",
            "url",
            "local_url",
            "build",
            "build_number",
            "created_at",
            "last_deployed_at",
            "awaiting_approval",
            "closed_at",
            "removal_at",
            "password_protected",
        ]
        read_only_fields = fields
        # (``source`` from the model: a declared field of that name would shadow Field.source)
        extra_kwargs = {
            "source": {
                "help_text": "`branch` (a push to a preview branch), `pr` (a pull request) or `release` "
                "(uploads to the label)."
            }
        }

    def get_local_url(self, preview: Preview) -> str:
        return local_preview_url(preview)

    def get_build_number(self, preview: Preview) -> int | None:
        return preview.build.number if preview.build is not None else None

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_removal_at(self, preview: Preview) -> str | None:
        if preview.closed_at is None:
            return None
        when = preview.closed_at + timedelta(seconds=settings.TROY_PREVIEW_CLOSED_GRACE_SECONDS)
        return serializers.DateTimeField().to_representation(when)


class PreviewPasswordSerializer(serializers.Serializer):
    """Write-only: the password is hashed at once and never answered back."""

    username = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=128,
        write_only=True,
        help_text="The username visitors must give; any username when left out.",
    )
    password = serializers.CharField(
        max_length=128, write_only=True, trim_whitespace=False, help_text="The visitors' password."
    )


class DeployRequestSerializer(serializers.Serializer):
    ref = serializers.CharField(
        required=False,
        max_length=255,
        validators=[validate_branch],
        help_text="Branch, tag or commit to build; the pipeline's branch when left out.",
    )


class BuildStatsSerializer(serializers.Serializer):
    files_uploaded = serializers.IntegerField(read_only=True)
    files_unchanged = serializers.IntegerField(read_only=True)
    files_deleted = serializers.IntegerField(read_only=True)
    bytes_uploaded = serializers.IntegerField(read_only=True)
    invalidation_id = serializers.CharField(read_only=True)


class BuildSerializer(serializers.ModelSerializer):
    stats = BuildStatsSerializer(source="*", read_only=True)
    phases = serializers.JSONField(read_only=True, help_text="CodeBuild phases with their timings, in order.")
    # A string, not a URI: it is empty until CodeBuild reports one (and always for a release build).
    logs_url = serializers.CharField(read_only=True, help_text="CodeBuild's logs link; empty when there is none.")
    is_rollback = serializers.BooleanField(read_only=True, help_text="A redeploy of an earlier build.")
    duration_seconds = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="From start to finish (to live, when it succeeded); null until it ends.",
    )
    stored = serializers.SerializerMethodField(
        help_text="Its own files are stored at the edge (retention clears this); a rollback that wrote nothing "
        "serves content_build's instead."
    )

    class Meta:
        model = Build
        fields = [
            "id",
            "number",
            "pipeline",
            "kind",
            "trigger",
            "status",
            "ref",
            "commit_sha",
            "release",
            "source_build",
            "preview",
            "preview_label",
            "from_fork",
            "awaiting_approval",
            "approved_by",
            "is_rollback",
            "content_build",
            "stored",
            "codebuild_build_id",
            "phase",
            "phases",
            "logs_url",
            "error",
            "cancel_requested",
            "cancel_requested_by",
            "stats",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "content_build": {
                "help_text": "The build whose stored files this one serves (a rollback); null when its own."
            }
        }

    @extend_schema_field(serializers.BooleanField())
    def get_stored(self, build: Build) -> bool:
        return build.stored_at is not None

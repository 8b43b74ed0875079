"""Pipelines and builds, with their status machines. Transitions are pure state: no I/O here.

Only the service layer (``pipelines/services``) calls a transition; the status fields are
``protected`` so nothing can assign them directly.
"""

from __future__ import annotations

import hashlib
import json
import uuid

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import RETURN_VALUE, ConcurrentTransitionMixin, FSMField, transition

from pipelines.choices import (
    AT_REST,
    DEPLOYABLE,
    ROW_STATUSES,
    BuildKind,
    BuildStatus,
    BuildTrigger,
    EnvScope,
    PointerKind,
    PreviewSource,
)
from pipelines.choices import (
    PipelineStatus as S,
)
from pipelines.validators import validate_branch, validate_pipeline_name, validate_relative_path, validate_repository

# Transitions a person may ask for (API or admin); the rest belong to workers and the reaper.
# ``custom["admin"]`` makes django-fsm's admin show the button; ``custom["label"]`` names it.
_USER = {"admin": True, "user": True}
_WORKER = {"admin": False, "user": False}


# A build command is a shell line or a short script; the cap keeps one pipeline row (and each API
# list of them) small whatever a client sends. A longer script belongs in the repository.
COMMAND_MAX_LENGTH = 4096


class Pipeline(ConcurrentTransitionMixin, models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=63, unique=True, validators=[validate_pipeline_name])
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="pipelines")

    repository = models.CharField(
        max_length=1024,
        blank=True,
        default="",
        validators=[validate_repository],
        help_text="GitHub 'owner/repo', or file:///path of a local git repository (TROY_LOCAL_SOURCES); "
        "empty for release-only pipelines.",
    )
    # A local source's branch head when it was last looked at: a different head is a push
    # (pipelines.services.local_sources). Empty for GitHub repositories.
    source_head = models.CharField(max_length=40, blank=True, default="")
    branch = models.CharField(max_length=255, default="main", validators=[validate_branch])
    build_install = models.TextField(
        blank=True,
        default="",
        max_length=COMMAND_MAX_LENGTH,
        validators=[MaxLengthValidator(COMMAND_MAX_LENGTH)],
        help_text="Install command, e.g. 'npm ci'.",
    )
    build_command = models.TextField(
        blank=True,
        default="",
        max_length=COMMAND_MAX_LENGTH,
        validators=[MaxLengthValidator(COMMAND_MAX_LENGTH)],
        help_text="Build command, e.g. 'npm run build'.",
    )
    build_test = models.TextField(
        blank=True,
        default="",
        max_length=COMMAND_MAX_LENGTH,
        validators=[MaxLengthValidator(COMMAND_MAX_LENGTH)],
        help_text="Test command; no test phase when empty.",
    )
    build_output_dir = models.CharField(
        max_length=255,
        default="dist",
        validators=[validate_relative_path],
        help_text="Directory the build writes the site to, relative to the repository root.",
    )
    auto_deploy = models.BooleanField(default=True, help_text="Deploy on every push to the branch.")
    # Monorepos: install/build/test run in ``base_dir`` (the output dir is relative to it); a push
    # whose changed files match none of ``watch_paths`` (glob patterns) starts no build.
    base_dir = models.CharField(
        max_length=255,
        blank=True,
        default="",
        validators=[validate_relative_path],
        help_text="Directory the build runs in, relative to the repository root; empty = the root.",
    )
    watch_paths = models.JSONField(
        default=list, blank=True, help_text="Glob patterns; a push changing none of them starts no build."
    )
    # Previews of automated builds: branches matching these patterns, and pull requests.
    preview_branches = models.JSONField(
        default=list, blank=True, help_text="Branch patterns (fnmatch) that get a branch preview."
    )
    pull_request_previews = models.BooleanField(default=False, help_text="Build a preview of every pull request.")
    github_installation_id = models.BigIntegerField(null=True, blank=True)

    status = FSMField(default=S.PRE_PROVISIONED, choices=ROW_STATUSES, protected=True, db_index=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    # The at-rest status a queued pipeline returns to when its last queued build is cancelled.
    queued_from = models.CharField(max_length=32, blank=True, default="", choices=ROW_STATUSES)
    last_error = models.TextField(blank=True, default="")

    distribution_id = models.CharField(max_length=64, blank=True, default="")
    distribution_domain = models.CharField(max_length=255, blank=True, default="")
    live_build = models.ForeignKey(
        "pipelines.Build", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The router version its distribution runs (viewer function + origin handler, docs/edge.md).
    # Empty: the distribution still serves the old in-place layout under OriginPath /{id}; its
    # next deploy stores the build in the new layout and moves the distribution over.
    edge_router = models.CharField(max_length=200, blank=True, default="")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(name__startswith="-") & ~Q(name__endswith="-") & ~Q(name=""),
                name="pipeline_name_is_dns_label",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def domain(self) -> str:
        return f"{self.name}.{settings.TROY_BASE_DOMAIN}"

    @property
    def site_url(self) -> str:
        return f"https://{self.domain}/"

    @property
    def live_prefix(self) -> str:
        """Key prefix of this pipeline's files in the live bucket (the distribution's origin path)."""
        return str(self.id)

    # --- transitions (state only) ---------------------------------------------------------------

    def _moved(self) -> None:
        self.status_changed_at = timezone.now()

    @transition(
        field=status,
        source=[S.PRE_PROVISIONED, S.FAILED_TO_PROVISION],
        target=S.PROVISION_REQUEST,
        custom={**_USER, "label": "Provision"},
    )
    def request_provisioning(self) -> None:
        self._moved()
        self.last_error = ""

    @transition(field=status, source=S.PROVISION_REQUEST, target=S.PROVISIONING, custom=_WORKER)
    def start_provisioning(self) -> None:
        self._moved()

    @transition(field=status, source=S.PROVISIONING, target=S.READY_FOR_DEPLOYMENT, custom=_WORKER)
    def finish_provisioning(self, *, distribution_id: str, distribution_domain: str) -> None:
        self._moved()
        self.distribution_id = distribution_id
        self.distribution_domain = distribution_domain
        self.last_error = ""

    @transition(field=status, source=S.PROVISIONING, target=S.FAILED_TO_PROVISION, custom=_WORKER)
    def fail_provisioning(self, *, error: str) -> None:
        self._moved()
        self.last_error = error

    @transition(field=status, source=list(DEPLOYABLE), target=S.QUEUED, custom={**_USER, "label": "Deploy"})
    def queue_deployment(self) -> None:
        self._moved()
        self.queued_from = self.status

    @transition(field=status, source=S.QUEUED, target=S.DEPLOYING, custom=_WORKER)
    def start_deployment(self) -> None:
        self._moved()

    @transition(field=status, source=S.DEPLOYING, target=S.DEPLOYED, custom=_WORKER)
    def finish_deployment(self, *, live_build: Build) -> None:
        self._moved()
        self.live_build = live_build
        self.last_error = ""
        self.queued_from = ""

    @transition(field=status, source=[S.QUEUED, S.DEPLOYING], target=S.FAILED_TO_DEPLOY, custom=_WORKER)
    def fail_deployment(self, *, error: str) -> None:
        self._moved()
        self.last_error = error
        self.queued_from = ""

    @transition(field=status, source=S.QUEUED, target=RETURN_VALUE(*DEPLOYABLE), custom=_WORKER)
    def withdraw_deployment(self) -> str:
        self._moved()
        target = self.queued_from if self.queued_from in DEPLOYABLE else S.READY_FOR_DEPLOYMENT
        self.queued_from = ""
        return target

    @transition(
        field=status,
        # At rest, or waiting for a worker that has not started (deletion itself excepted).
        source=[*AT_REST, S.PROVISION_REQUEST, S.QUEUED],
        target=S.SCHEDULED_FOR_DELETION,
        custom={**_USER, "label": "Delete"},
    )
    def schedule_deletion(self) -> None:
        self._moved()
        self.queued_from = ""

    @transition(field=status, source=S.SCHEDULED_FOR_DELETION, target=S.DELETING, custom=_WORKER)
    def start_deletion(self) -> None:
        self._moved()

    @transition(field=status, source=S.DELETING, target=S.DELETED, custom=_WORKER)
    def finish_deletion(self) -> None:
        self._moved()

    @transition(field=status, source=S.DELETING, target=S.FAILED_TO_DELETE, custom=_WORKER)
    def fail_deletion(self, *, error: str) -> None:
        self._moved()
        self.last_error = error


class Build(ConcurrentTransitionMixin, models.Model):
    """One attempt to put a version live: an automated (CodeBuild) build or a release deploy."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="builds")
    number = models.PositiveIntegerField(help_text="Counts up per pipeline, from 1.")
    kind = models.CharField(max_length=16, choices=BuildKind.choices)
    trigger = models.CharField(max_length=16, choices=BuildTrigger.choices)
    status = FSMField(default=BuildStatus.QUEUED, choices=BuildStatus.choices, protected=True, db_index=True)

    ref = models.CharField(max_length=255, blank=True, default="")
    commit_sha = models.CharField(max_length=40, blank=True, default="")
    release = models.ForeignKey(
        "releases.Release", null=True, blank=True, on_delete=models.SET_NULL, related_name="builds"
    )
    source_build = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="redeploys",
        help_text="The build a rollback redeploys.",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    codebuild_build_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    phase = models.CharField(max_length=32, blank=True, default="")
    phases = models.JSONField(default=list, blank=True)
    logs_url = models.URLField(max_length=1024, blank=True, default="")
    artifact_key = models.CharField(max_length=1024, blank=True, default="")
    cancel_requested = models.BooleanField(default=False)
    cancel_requested_by = models.CharField(
        max_length=150, blank=True, default="", help_text="Who asked to stop the running build."
    )
    error = models.TextField(blank=True, default="")

    files_uploaded = models.PositiveIntegerField(default=0)
    files_unchanged = models.PositiveIntegerField(default=0)
    files_deleted = models.PositiveIntegerField(default=0)
    bytes_uploaded = models.BigIntegerField(default=0)
    invalidation_id = models.CharField(max_length=64, blank=True, default="")  # old layout only
    files_total = models.PositiveIntegerField(default=0)
    # troy.json's basic_auth, hashed at deploy (edge.rules credential_make; never the clear
    # password): the credentials its pointers carry (docs/edge.md, "Visitor passwords").
    visitor_credentials = models.JSONField(default=list, blank=True)
    # At the edge a build is its manifest, `{pipeline}/builds/{id}.json` in the live bucket, over
    # content-addressed blobs (docs/edge.md); the manifest is never loaded into the database.
    # ``stored_at``: when the deploy wrote it; cleared when retention removes it.
    stored_at = models.DateTimeField(null=True, blank=True)
    # The build whose stored manifest this build serves: empty when it stored its own; a rollback
    # to a retained build names that build (the pointer then names it: nothing is written again).
    content_build = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # A build deploying to a preview (its own queue; never the pipeline's status); production
    # builds have none.
    preview = models.ForeignKey(
        "pipelines.Preview", null=True, blank=True, on_delete=models.SET_NULL, related_name="builds"
    )
    # The label of the preview it deploys to, kept when that preview is deleted (so a former
    # preview build never counts as a production one); "" for production builds.
    preview_label = models.CharField(max_length=63, blank=True, default="")
    # A pull request from a fork: built without the pipeline's secrets, and only once the
    # pipeline's owner approved it (``awaiting_approval`` until then: its queue skips it).
    from_fork = models.BooleanField(default=False)
    awaiting_approval = models.BooleanField(default=False)
    approved_by = models.CharField(max_length=150, blank=True, default="")
    # The GitHub deployment that carries a preview build's URL back to its commit (once made).
    github_deployment_id = models.BigIntegerField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "number"], name="build_number_unique_per_pipeline"),
            models.UniqueConstraint(
                fields=["pipeline"],
                condition=Q(status=BuildStatus.RUNNING, preview__isnull=True),
                name="one_running_build_per_pipeline",
            ),
            models.UniqueConstraint(
                fields=["preview"], condition=Q(status=BuildStatus.RUNNING), name="one_running_build_per_preview"
            ),
        ]
        indexes = [
            models.Index(fields=["pipeline", "status"]),
            # The default ordering, for /builds/ (all of a user's builds) and per pipeline.
            models.Index(fields=["-created_at"], name="build_created_desc"),
            models.Index(fields=["pipeline", "-created_at"], name="build_pipeline_created_desc"),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline.name} #{self.number}"

    @property
    def is_rollback(self) -> bool:
        """Serves an earlier build's content: a redeploy or a promoted preview build."""
        return self.trigger in (BuildTrigger.ROLLBACK, BuildTrigger.PROMOTE)

    @property
    def served_build_id(self) -> uuid.UUID:
        """The build id the edge pointer names when this build is live."""
        return self.content_build_id or self.id

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    # --- transitions (state only) ---------------------------------------------------------------

    @transition(field=status, source=BuildStatus.QUEUED, target=BuildStatus.RUNNING)
    def start(self) -> None:
        self.started_at = timezone.now()

    @transition(field=status, source=BuildStatus.RUNNING, target=BuildStatus.SUCCEEDED)
    def succeed(self) -> None:
        self.finished_at = timezone.now()
        self.error = ""

    @transition(field=status, source=[BuildStatus.QUEUED, BuildStatus.RUNNING], target=BuildStatus.FAILED)
    def fail(self, *, error: str) -> None:
        self.finished_at = timezone.now()
        self.error = error

    @transition(field=status, source=[BuildStatus.QUEUED, BuildStatus.RUNNING], target=BuildStatus.CANCELLED)
    def cancel(self, *, reason: str = "") -> None:
        self.finished_at = timezone.now()
        self.error = reason

    @transition(field=status, source=BuildStatus.QUEUED, target=BuildStatus.SUPERSEDED)
    def supersede(self, *, by: Build) -> None:
        self.finished_at = timezone.now()
        self.error = f"Superseded by build #{by.number}."


# --- The edge's pointers ------------------------------------------------------------------------


def pointer_value(pipeline_id: object, build_id: object | None, credentials: str = "") -> str:
    """An EdgePointer's KeyValueStore value: "{pipeline id}/{build id}", or "{pipeline id}/" for
    a known host with nothing live (never "": the KeyValueStore API documents no empty value).
    A protected host (``credentials``: space-separated salted hashes, edge.rules) gets the JSON
    form {"p": pipeline, "b": build, "a": [credential, ...]} that edge/viewer_request.js
    parsePointer reads. Short keys on purpose: a viewer function from before visitor passwords
    finds no "pipeline" in it and answers 404, so a protected host fails closed, never open,
    until the function that checks passwords is published (docs/edge.md)."""
    if not credentials:
        return f"{pipeline_id}/{build_id or ''}"
    return json.dumps(
        {"p": str(pipeline_id), "b": str(build_id or ""), "a": credentials.split()},
        separators=(",", ":"),
    )


def pointer_value_build(value: str) -> str:
    """The build id a pointer value names ("" for nothing live or a value that is not one):
    both forms pointer_value writes."""
    if value.startswith("{"):
        try:
            data = json.loads(value)
            build = data.get("b", data.get("build", ""))
        except (ValueError, AttributeError):
            return ""
        return build if isinstance(build, str) else ""
    _pipeline, slash, build = value.partition("/")
    return build if slash else ""


# A DNS label holds 63 characters; `{label}--{name}` longer than that is shortened (preview_host).
DNS_LABEL_MAX = 63
PREVIEW_SEPARATOR = "--"


def preview_host_label(*, label: str, name: str) -> str:
    """The first DNS label of a preview's (or a permalink's) host: `{label}--{name}`, or, when that
    is longer than 63 characters, the label cut and followed by `-{8 hex}` (SHA-256 of the full
    `{label}--{name}`: stable, and two labels sharing a prefix stay apart); for a name too long to
    leave room for any of the label, `{8 hex}--{name cut}`. The API shows the exact URL."""
    full = f"{label}{PREVIEW_SEPARATOR}{name}"
    if len(full) <= DNS_LABEL_MAX:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    room = DNS_LABEL_MAX - len(name) - len(PREVIEW_SEPARATOR) - len(digest) - 1
    head = label[: max(room, 0)].rstrip("-")
    if head:
        return f"{head}-{digest}{PREVIEW_SEPARATOR}{name}"
    return f"{digest}{PREVIEW_SEPARATOR}{name[: DNS_LABEL_MAX - len(digest) - len(PREVIEW_SEPARATOR)].rstrip('-')}"


def preview_host(*, label: str, name: str) -> str:
    return f"{preview_host_label(label=label, name=name)}.{settings.TROY_BASE_DOMAIN}"


def permalink_host(*, number: int, name: str) -> str:
    """Where one stored build is served whatever is live: `b{number}--{name}.{base}`."""
    return preview_host(label=f"b{number}", name=name)


class EdgePointer(models.Model):
    """host → the build that answers it. The database is the source of truth; the CloudFront
    KeyValueStore is a projection a worker writes (``published``: the value it last confirmed
    there) and the local edge reads these rows directly. Written only by pipelines.services."""

    host = models.CharField(max_length=253, unique=True)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="edge_pointers")
    build = models.ForeignKey(Build, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, choices=PointerKind.choices, default=PointerKind.LIVE)
    # The visitor credentials the host asks for (space-separated salted hashes; "" = open):
    # the served build's basic_auth and, for a preview and its builds' permalinks, the
    # preview's password. Written with the build by pipelines.services.pointers.
    credentials = models.CharField(max_length=800, blank=True, default="")
    published = models.CharField(max_length=1024, blank=True, default="")
    published_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["host"]

    def __str__(self) -> str:
        return f"{self.host} → {self.value or 'nothing live'}"

    @property
    def value(self) -> str:
        """What the KeyValueStore holds for the host (edge/viewer_request.js parsePointer)."""
        return pointer_value(self.pipeline_id, self.build_id, self.credentials)

    @property
    def is_published(self) -> bool:
        return self.published_at is not None and self.published == self.value


class Preview(models.Model):
    """A named preview of a pipeline, `{label}--{name}.{TROY_BASE_DOMAIN}` (``host``, shortened to
    a DNS label with a stable hash when too long): serves ``build``, the newest preview build that
    went live there. Written only by pipelines.services (previews)."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="previews")
    label = models.CharField(max_length=63)
    host = models.CharField(max_length=253, unique=True)
    build = models.ForeignKey(Build, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_deployed_at = models.DateTimeField(null=True, blank=True)
    # An optional visitor password, hashed (edge.rules credential_make: "{salt}:{sha256}", "*"
    # first when any username is accepted); never the clear text. Set by
    # pipelines.services.visitor_passwords; write-only in the API.
    password_credential = models.CharField(max_length=140, blank=True, default="")
    # Where its builds come from; the branch (a branch preview's, a pull request's head) and
    # the pull request's number. ``closed_at``: the branch was deleted or the pull request
    # closed; the periodic care removes the preview TROY_PREVIEW_CLOSED_GRACE_SECONDS later
    # (a reopened pull request clears it).
    source = models.CharField(max_length=16, choices=PreviewSource.choices, default=PreviewSource.RELEASE)
    branch = models.CharField(max_length=255, blank=True, default="")
    pull_request = models.PositiveIntegerField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["label"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "label"], name="preview_label_unique_per_pipeline")]

    def __str__(self) -> str:
        return f"{self.pipeline.name} preview {self.label}"

    @property
    def url(self) -> str:
        return f"https://{self.host}/"

    @property
    def password_protected(self) -> bool:
        return bool(self.password_credential)


# --- GitHub App installations and the repositories they grant --------------------------------------


class GithubInstallation(models.Model):
    """An installation of Troy's GitHub App, linked to the Troy user who installed it (through the
    App's setup flow or by an operator in the admin). Its repositories are the ones that user may
    name in a pipeline; a push builds only pipelines whose owner holds the pushing installation.

    It lives here (not in hooks) because pipelines validate and build with it, and hooks keeps
    it current from the ``installation`` and ``installation_repositories`` webhooks."""

    installation_id = models.BigIntegerField(unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="github_installations",
        help_text="The Troy user this installation grants repositories to.",
    )
    account = models.CharField(max_length=100, blank=True, default="", help_text="GitHub account it is installed on.")
    suspended_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True, help_text="Uninstalled on GitHub.")
    repositories_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["installation_id"]

    def __str__(self) -> str:
        return f"installation {self.installation_id} ({self.account or 'unknown account'})"

    @property
    def active(self) -> bool:
        return self.suspended_at is None and self.removed_at is None


class GithubInstallationRepository(models.Model):
    """One repository an installation covers; ``full_name`` is stored lower-case (GitHub names are
    case-insensitive)."""

    installation = models.ForeignKey(GithubInstallation, on_delete=models.CASCADE, related_name="repositories")
    full_name = models.CharField(max_length=200)

    class Meta:
        ordering = ["full_name"]
        constraints = [
            models.UniqueConstraint(fields=["installation", "full_name"], name="installation_repository_once")
        ]
        indexes = [models.Index(fields=["full_name"])]

    def __str__(self) -> str:
        return self.full_name


# --- Build environment: variables and secrets -----------------------------------------------------


class PipelineVariable(models.Model):
    """One variable of a pipeline's builds. A plain variable keeps its value here; a secret keeps
    only a Fernet token (deployment_service/secret_box.py) and a worker copies it to SSM Parameter
    Store (``synced_at``: when that copy last matched this row). Written only by
    pipelines.services.environment."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="variables")
    name = models.CharField(max_length=128)
    secret = models.BooleanField(default=False)
    # A plain value, or, for a secret, its Fernet token (never the value itself).
    value = models.TextField(blank=True, default="")
    scope = models.CharField(max_length=16, choices=EnvScope.choices, default=EnvScope.ALL)
    set_at = models.DateTimeField(default=timezone.now)
    set_by = models.CharField(max_length=150, blank=True, default="")
    synced_at = models.DateTimeField(null=True, blank=True)
    sync_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "name"], name="variable_name_unique_per_pipeline")]

    def __str__(self) -> str:
        return f"{self.pipeline.name} {self.name}"


# --- Build logs ---------------------------------------------------------------------------------


class BuildLog(models.Model):
    """A build's log: append-only text kept as ``BuildLogChunk`` rows (``size`` characters in all,
    already redacted), ``complete`` once nothing more will be written. For a CodeBuild build the
    ``source_*`` fields say where its CloudWatch Logs stream is and how far it was copied
    (``source_token``: GetLogEvents' nextForwardToken). Written only by
    pipelines.services.build_logs."""

    build = models.OneToOneField(Build, on_delete=models.CASCADE, primary_key=True, related_name="log")
    size = models.BigIntegerField(default=0, help_text="Characters stored, the next chunk's offset.")
    complete = models.BooleanField(default=False)
    truncated = models.BooleanField(default=False, help_text="Text past the size limit was dropped.")
    source_group = models.CharField(max_length=512, blank=True, default="")
    source_stream = models.CharField(max_length=512, blank=True, default="")
    source_token = models.TextField(blank=True, default="")
    # The failed build's error already ends with this log's last lines (added once).
    tail_in_error = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"log of build {self.build_id}"


class BuildLogChunk(models.Model):
    """One appended piece of a build's log, starting at character ``offset`` of the whole log."""

    log = models.ForeignKey(BuildLog, on_delete=models.CASCADE, related_name="chunks")
    offset = models.BigIntegerField()
    text = models.TextField()

    class Meta:
        ordering = ["log", "offset"]
        constraints = [models.UniqueConstraint(fields=["log", "offset"], name="build_log_chunk_offset_once")]

    def __str__(self) -> str:
        return f"{self.log_id}@{self.offset}"

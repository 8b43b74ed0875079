"""Reads of pipelines and builds, scoped to who asks. The API and anything else that shows a user
their pipelines go through these, so the ownership rule lives in one place: a user sees only their
own pipelines and their builds; staff see everything."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from events.models import Event
from pipelines.choices import BuildStatus, PipelineStatus
from pipelines.exceptions import PreviewNotFound
from pipelines.models import Build, EdgePointer, Pipeline, PipelineVariable, Preview


def user_sees_all(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_staff", False))


def pipeline_list_for(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Pipeline]:
    pipelines = Pipeline.objects.select_related("owner", "live_build")
    if user_sees_all(user):
        return pipelines
    if not getattr(user, "is_authenticated", False):
        return pipelines.none()
    return pipelines.filter(owner=user)


# Up to this many pipelines, a user's builds are asked for by pipeline id (below); past it by owner.
OWNED_PIPELINES_BY_ID = 1000


def build_list_for(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Build]:
    """A user's builds (staff: all). The API shows no field of the build's pipeline but its id, so
    nothing of the pipeline row is loaded.

    The owner's pipeline ids are read first and passed as values, not joined: PostgreSQL then
    estimates the rows from the builds' own per-pipeline statistics. Behind a join on the owner it
    guessed from the average user and walked everyone's newest builds for the user's (480 ms for
    a user with 20 builds among 100,000, benchmarks/list_bench.py); by id it reads them through
    (pipeline, -created_at), and still walks the newest builds (-created_at) for a user who owns
    a good share of them. A user with more pipelines than OWNED_PIPELINES_BY_ID is such a user:
    the join serves them and keeps the query's parameters few."""
    builds = Build.objects.all()
    if user_sees_all(user):
        return builds
    if not getattr(user, "is_authenticated", False):
        return builds.none()
    owned = Pipeline.objects.filter(owner=user).order_by().values_list("id", flat=True)
    pipeline_ids = list(owned[: OWNED_PIPELINES_BY_ID + 1])
    if len(pipeline_ids) > OWNED_PIPELINES_BY_ID:
        return builds.filter(pipeline__owner=user)
    return builds.filter(pipeline_id__in=pipeline_ids)


def event_list_for(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Event]:
    """The event log scoped to who asks. Events are not foreign keys (the log outlives the
    pipeline rows), so ownership comes from the ``owner_id`` recorded with each event, plus the
    pipelines the user owns now (in case an operator reassigned one). Staff see every event.
    Here rather than in events/: it reads pipelines, and events sit below them."""
    events = Event.objects.all()
    if user_sees_all(user):
        return events
    if not getattr(user, "is_authenticated", False):
        return events.none()
    # By id, as for builds: a subquery inside the OR is a filter row by row, which PostgreSQL
    # can only apply while walking everyone's newest events; ids let it combine both indexes.
    owned = Pipeline.objects.filter(owner=user).order_by().values_list("id", flat=True)
    owned_now = list(owned[: OWNED_PIPELINES_BY_ID + 1])
    if len(owned_now) > OWNED_PIPELINES_BY_ID:
        return events.filter(Q(owner_id=user.pk) | Q(pipeline_id__in=owned.values("id")))
    return events.filter(Q(owner_id=user.pk) | Q(pipeline_id__in=owned_now))


LOCAL_HOST_SUFFIX = ".localhost"


def edge_host_for(host: str) -> str:
    """The pointer host a request's Host header stands for: lowercased, without port or trailing
    dot; ``{name}.localhost`` (the local edge's address) stands for ``{name}.{TROY_BASE_DOMAIN}``."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("["):  # an IPv6 literal names no site
        return ""
    host = host.rsplit(":", 1)[0] if ":" in host else host
    host = host.rstrip(".")
    if host.endswith(LOCAL_HOST_SUFFIX):
        host = host[: -len(LOCAL_HOST_SUFFIX)] + "." + settings.TROY_BASE_DOMAIN
    return host


def edge_pointer_value(host: str) -> str | None:
    """The local edge's KeyValueStore: the pointer value for a host ("{pipeline}/{build}", or
    "{pipeline}/" when nothing is live: ``EdgePointer.value``), "" for a pipeline's host that has
    no pointer row yet (also "nothing live"), None for a host no pipeline answers."""
    pointer_host = edge_host_for(host)
    if not pointer_host:
        return None
    pointer = EdgePointer.objects.filter(host=pointer_host).only("pipeline_id", "build_id").first()
    if pointer is not None:
        return pointer.value
    suffix = "." + settings.TROY_BASE_DOMAIN
    if pointer_host.endswith(suffix) and Pipeline.objects.filter(name=pointer_host[: -len(suffix)]).exists():
        return ""
    return None


def local_site_url(pipeline: Pipeline) -> str:
    """The site's address on the local edge when this service runs one (TROY_LOCAL_EDGE_PORT),
    else ""."""
    port = settings.TROY_LOCAL_EDGE_PORT
    return f"http://{pipeline.name}{LOCAL_HOST_SUFFIX}:{port}/" if port else ""


def pipelines_over_retention(*, retained: int) -> list[str]:
    """Ids of the pipelines holding more stored builds than ``retained``: the ones a retention run
    may have something to let go (one grouped count over the stored builds, which retention keeps
    near ``retained`` per pipeline). Pipelines being deleted are left to the deletion."""
    over = (
        Build.objects.filter(stored_at__isnull=False)
        .exclude(pipeline__status__in=(PipelineStatus.SCHEDULED_FOR_DELETION, PipelineStatus.DELETING))
        .values("pipeline_id")
        .annotate(stored=Count("id"))
        .filter(stored__gt=retained)
        .order_by("pipeline_id")
    )
    return [str(row["pipeline_id"]) for row in over]


def edge_pointers_of(pipeline_id: uuid.UUID | str) -> list[EdgePointer]:
    """The pipeline's pointers (one per host it answers), for the workers that publish them to
    the KeyValueStore or remove them from it."""
    return list(EdgePointer.objects.filter(pipeline_id=pipeline_id).order_by("host"))


def edge_pointer_hosts(hosts: list[str]) -> list[str]:
    """Those of ``hosts`` that have a pointer row."""
    return list(EdgePointer.objects.filter(host__in=hosts).values_list("host", flat=True))


def preview_list_for(pipeline_id: uuid.UUID | str) -> QuerySet[Preview]:
    """A pipeline's previews with the build each serves and ``awaiting_approval`` (a build of a
    fork's pull request waits for the owner), in one query (the caller scoped the pipeline)."""
    waiting = Build.objects.filter(preview=OuterRef("pk"), status=BuildStatus.QUEUED, awaiting_approval=True)
    return (
        Preview.objects.filter(pipeline_id=pipeline_id)
        .select_related("build", "pipeline")
        .annotate(awaiting_approval=Exists(waiting))
        .order_by("label")
    )


def preview_get_for(pipeline_id: uuid.UUID | str, label: str) -> Preview:
    """One preview of a (scoped) pipeline as the list shows it; PreviewNotFound (404) when none."""
    preview = preview_list_for(pipeline_id).filter(label=label).first()
    if preview is None:
        raise PreviewNotFound(f"No preview {label!r} on this pipeline.")
    return preview


def local_preview_url(preview: Preview) -> str:
    """The preview's address on the local edge when this service runs one, else ""."""
    port = settings.TROY_LOCAL_EDGE_PORT
    if not port:
        return ""
    first = preview.host.removesuffix("." + settings.TROY_BASE_DOMAIN)
    return f"http://{first}{LOCAL_HOST_SUFFIX}:{port}/"


def pipelines_with_distribution() -> QuerySet[Pipeline]:
    """Pipelines whose CloudFront distribution Troy owns and keeps (not being deleted): what a
    router rollout updates."""
    return (
        Pipeline.objects.exclude(distribution_id="")
        .exclude(
            status__in=[PipelineStatus.SCHEDULED_FOR_DELETION, PipelineStatus.DELETING, PipelineStatus.FAILED_TO_DELETE]
        )
        .order_by("name")
    )


def variable_list_for(pipeline_id: uuid.UUID | str) -> QuerySet[PipelineVariable]:
    """A pipeline's build variables by name (the caller scoped the pipeline)."""
    return PipelineVariable.objects.filter(pipeline_id=pipeline_id).order_by("name")

"""System checks of the pipelines app (``manage.py check --database default``; ``migrate`` runs them)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import DatabaseError
from django.db.models import Q

from pipelines.models import PREVIEW_SEPARATOR, Pipeline


@register(Tags.database)
def pipeline_names_with_separator(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Warning]:
    """Pipelines named before `--` was reserved for preview hosts keep working; list them, since
    a preview host `{label}--{name}` of another pipeline can read like theirs."""
    if not databases:
        return []
    try:
        names = list(
            Pipeline.objects.filter(name__contains=PREVIEW_SEPARATOR).order_by("name").values_list("name", flat=True)
        )
    except DatabaseError:  # not migrated yet: nothing to list
        return []
    if not names:
        return []
    return [
        Warning(
            f"{len(names)} pipeline name(s) contain '--', now reserved for preview hosts: {', '.join(names)}.",
            hint="They keep working; a new or renamed pipeline may not contain '--'. Previews of such a "
            "pipeline are still told apart by their exact host (the API shows it).",
            id="pipelines.W001",
        )
    ]


@register(Tags.security)
def local_sources_without_debug(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Local git sources let a user name any path of the service's machine and have its workers
    build it: for one developer's machine (the dev run), not a shared service."""
    if not settings.TROY_LOCAL_SOURCES or settings.DEBUG:
        return []
    return [
        Warning(
            "TROY_LOCAL_SOURCES is on without DJANGO_DEBUG: any user may create a pipeline on a git repository "
            "of this machine's disk (file://…), and the workers read and build it.",
            hint="Turn it off on a shared service; `python3 dev.py run` sets it for development (and silences this).",
            id="pipelines.W020",
        )
    ]


@register(Tags.security, deploy=True)
def secrets_key_set(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Build secrets encrypted under a key derived from DJANGO_SECRET_KEY become unreadable when
    that key changes (docs/settings.md): production should set its own."""
    if settings.TROY_SECRETS_KEY:
        return []
    return [
        Warning(
            "TROY_SECRETS_KEY is not set: build secrets are encrypted with a key derived from DJANGO_SECRET_KEY, "
            "and changing DJANGO_SECRET_KEY would make them unreadable.",
            hint="Set TROY_SECRETS_KEY to a Fernet key (docs/settings.md, Build environment).",
            id="pipelines.W002",
        )
    ]


@register(Tags.database)
def previews_without_repository(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Warning]:
    """Branch and pull request previews are built from GitHub: without a repository they never run."""
    if not databases:
        return []
    try:
        names = list(
            Pipeline.objects.filter(repository="")
            .filter(Q(pull_request_previews=True) | ~Q(preview_branches=[]))
            .order_by("name")
            .values_list("name", flat=True)
        )
    except DatabaseError:  # not migrated yet
        return []
    if not names:
        return []
    return [
        Warning(
            f"{len(names)} pipeline(s) ask for branch or pull request previews but have no repository: "
            f"{', '.join(names)}.",
            hint="Set their repository, or clear preview_branches and pull_request_previews (release previews "
            "need neither).",
            id="pipelines.W030",
        )
    ]


@register()
def preview_grace_valid(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """A negative grace would remove a closed preview at the next tick, like 0; say so."""
    if settings.TROY_PREVIEW_CLOSED_GRACE_SECONDS >= 0:
        return []
    return [
        Warning(
            "TROY_PREVIEW_CLOSED_GRACE_SECONDS is negative: closed previews are removed at the next tick.",
            hint="Set it to 0 or more seconds (default 3600).",
            id="pipelines.W031",
        )
    ]

"""Reads of releases, scoped to who asks: a user sees the releases of their own pipelines, staff
see all (the pipelines' rule, from ``pipelines.selectors``)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from pipelines.models import Pipeline
from pipelines.selectors import pipeline_list_for
from releases.models import Release


def release_list_for(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Release]:
    """Without ``files`` (every file's path, hash and size: up to TROY_ARCHIVE_MAX_ENTRIES of
    them), which no API answer shows; the deploy step reads it from its own query."""
    return (
        Release.objects.select_related("pipeline", "uploaded_by")
        .defer("files")
        .filter(pipeline__in=pipeline_list_for(user))
    )


def pipeline_get_for(user: AbstractBaseUser | AnonymousUser, pipeline_id) -> Pipeline | None:
    """The pipeline when ``user`` may see it (None otherwise, or for a malformed id)."""
    try:
        return pipeline_list_for(user).filter(pk=pipeline_id).first()
    except (ValueError, TypeError, ValidationError):
        return None

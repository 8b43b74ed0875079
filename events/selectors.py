"""Reads of the event log, scoped to who asks.

Events are not foreign keys (the log outlives the pipeline rows), so ownership comes from the
``owner_id`` recorded with each event, plus the pipelines the user owns now (in case an operator
reassigned one). Staff see every event."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from events.models import Event
from pipelines.models import Pipeline
from pipelines.selectors import user_sees_all


def event_list_for(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Event]:
    events = Event.objects.all()
    if user_sees_all(user):
        return events
    if not getattr(user, "is_authenticated", False):
        return events.none()
    owned_now = Pipeline.objects.filter(owner=user).values("id")
    return events.filter(Q(owner_id=user.pk) | Q(pipeline_id__in=owned_now))

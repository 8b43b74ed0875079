import pytest

from events.models import Event
from pipelines import services
from pipelines.selectors import event_list_for
from tests.factories import PipelineFactory

pytestmark = pytest.mark.django_db


def test_events_record_the_owner_and_scope_by_it(user, other_user, staff_user):
    mine = PipelineFactory(owner=user)
    theirs = PipelineFactory(owner=other_user)
    services.pipeline_request_provisioning(pipeline_id=mine.id, actor="alice")
    services.pipeline_request_provisioning(pipeline_id=theirs.id, actor="mallory")

    assert Event.objects.get(pipeline_id=mine.id).owner_id == user.id
    assert [e.pipeline_id for e in event_list_for(user)] == [mine.id]
    assert [e.pipeline_id for e in event_list_for(other_user)] == [theirs.id]
    assert event_list_for(staff_user).count() == 2


def test_anonymous_sees_no_events(user):
    from django.contrib.auth.models import AnonymousUser

    services.pipeline_request_provisioning(pipeline_id=PipelineFactory(owner=user).id, actor="alice")
    assert event_list_for(AnonymousUser()).count() == 0


def test_events_without_a_recorded_owner_follow_the_pipelines_current_owner(user, other_user):
    pipeline = PipelineFactory(owner=user)
    services.pipeline_request_provisioning(pipeline_id=pipeline.id, actor="alice")
    Event.objects.update(owner_id=None)  # written before owner_id existed
    assert event_list_for(user).count() == 1
    assert event_list_for(other_user).count() == 0

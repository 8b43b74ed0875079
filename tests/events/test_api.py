"""The event log over REST: shape, filters, scoping, and readable after the pipeline is gone."""

import pytest

from events.models import Event
from pipelines import services
from pipelines.choices import PipelineStatus as S
from pipelines.models import Pipeline
from tests.factories import PipelineFactory

pytestmark = pytest.mark.django_db


def delete_completely(pipeline_id):
    """What the deletion worker does, through the same services (no AWS involved here)."""
    services.pipeline_schedule_deletion(pipeline_id=pipeline_id, actor="alice")
    services.pipeline_start_deletion(pipeline_id=pipeline_id)
    services.pipeline_finish_deletion(pipeline_id=pipeline_id)


@pytest.fixture
def history(user):
    """Alice's pipeline: requested, provisioning, failed, retried."""
    pipeline = PipelineFactory(owner=user, name="hist")
    services.pipeline_request_provisioning(pipeline_id=pipeline.id, actor="alice")
    services.pipeline_start_provisioning(pipeline_id=pipeline.id)
    services.pipeline_fail_provisioning(pipeline_id=pipeline.id, error="AccessDenied: no CloudFront for you")
    services.pipeline_request_provisioning(pipeline_id=pipeline.id, actor="alice")
    return pipeline


def test_an_event_shows_what_moved_who_moved_it_and_why(api, history):
    body = api.get("/api/v1/events/").json()
    assert body["count"] == 4
    newest = body["results"][0]
    assert set(newest) == {
        "id",
        "pipeline",
        "pipeline_name",
        "build",
        "build_number",
        "from_status",
        "to_status",
        "transition",
        "actor",
        "message",
        "created_at",
    }
    assert newest["pipeline"] == str(history.id) and newest["pipeline_name"] == "hist"
    assert (newest["from_status"], newest["to_status"], newest["transition"], newest["actor"]) == (
        "failed_to_provision",
        "provision_request",
        "request_provisioning",
        "alice",
    )
    assert newest["build"] is None and newest["build_number"] is None
    failed = body["results"][1]
    assert failed["actor"] == "system:worker" and "AccessDenied" in failed["message"]


def test_events_carry_their_build(api, user):
    from tests.factories import put_in_status

    pipeline = put_in_status(PipelineFactory(owner=user), S.READY_FOR_DEPLOYMENT)
    build = api.post(f"/api/v1/pipelines/{pipeline.id}/deploy/").json()
    event = api.get("/api/v1/events/").json()["results"][0]
    assert event["build"] == build["id"] and event["build_number"] == 1


def test_events_filter_by_pipeline_status_and_transition(api, user, history):
    other = PipelineFactory(owner=user, name="other")
    services.pipeline_request_provisioning(pipeline_id=other.id, actor="alice")

    def transitions(params):
        response = api.get("/api/v1/events/", params)
        assert response.status_code == 200, response.json()
        return [(e["pipeline_name"], e["transition"]) for e in response.json()["results"]]

    assert transitions({"pipeline": str(other.id)}) == [("other", "request_provisioning")]
    assert transitions({"pipeline": str(history.id), "status": "provision_request"}) == [
        ("hist", "request_provisioning"),
        ("hist", "request_provisioning"),
    ]
    assert transitions({"status": "provisioning,failed_to_provision"}) == [
        ("hist", "fail_provisioning"),
        ("hist", "start_provisioning"),
    ]
    assert transitions({"transition": "fail_provisioning"}) == [("hist", "fail_provisioning")]
    assert api.get("/api/v1/events/", {"status": "nonsense"}).status_code == 400
    assert api.get("/api/v1/events/", {"pipeline": "not-a-uuid"}).status_code == 400


def test_a_pipelines_events_newest_first(api, history):
    body = api.get(f"/api/v1/pipelines/{history.id}/events/").json()
    assert [e["transition"] for e in body["results"]] == [
        "request_provisioning",
        "fail_provisioning",
        "start_provisioning",
        "request_provisioning",
    ]


def test_a_pipeline_without_events_has_an_empty_log(api, user):
    pipeline = PipelineFactory(owner=user)
    response = api.get(f"/api/v1/pipelines/{pipeline.id}/events/")
    assert response.status_code == 200 and response.json()["count"] == 0


def test_events_stay_readable_after_the_pipeline_is_deleted(api, other_api, staff_api, history):
    delete_completely(history.id)
    assert not Pipeline.objects.filter(pk=history.id).exists()

    response = api.get(f"/api/v1/pipelines/{history.id}/events/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 7
    assert (results[0]["transition"], results[0]["to_status"], results[0]["pipeline_name"]) == (
        "finish_deletion",
        "deleted",
        "hist",
    )
    assert api.get("/api/v1/events/", {"pipeline": str(history.id)}).json()["count"] == 7
    assert api.get("/api/v1/events/", {"status": "deleted"}).json()["count"] == 1

    # still nobody else's business
    assert other_api.get(f"/api/v1/pipelines/{history.id}/events/").status_code == 404
    assert other_api.get("/api/v1/events/").json()["count"] == 0
    assert staff_api.get(f"/api/v1/pipelines/{history.id}/events/").json()["count"] == 7


def test_a_new_pipeline_reusing_a_deleted_name_does_not_mix_logs(api, other_api, user, other_user, history):
    delete_completely(history.id)
    reused = PipelineFactory(owner=other_user, name="hist")
    services.pipeline_request_provisioning(pipeline_id=reused.id, actor="mallory")
    assert other_api.get("/api/v1/events/").json()["count"] == 1
    assert api.get("/api/v1/events/").json()["count"] == 7


def test_staff_see_every_event(staff_api, history, other_user):
    theirs = PipelineFactory(owner=other_user)
    services.pipeline_request_provisioning(pipeline_id=theirs.id, actor="mallory")
    assert staff_api.get("/api/v1/events/").json()["count"] == 5


def test_the_event_log_is_read_only(api, history):
    event = Event.objects.first()
    assert api.post("/api/v1/events/", {}, format="json").status_code == 405
    assert api.delete(f"/api/v1/events/{event.id}/").status_code == 405
    assert api.get(f"/api/v1/events/{event.id}/").json()["id"] == event.id

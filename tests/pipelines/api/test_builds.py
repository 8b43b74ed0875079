"""Deploy requests and the builds endpoints."""

import pytest

from events.models import Event
from pipelines import services
from pipelines.choices import BuildKind, BuildStatus, BuildTrigger
from pipelines.choices import PipelineStatus as S
from pipelines.models import Build
from tests.factories import PipelineFactory, put_in_status

pytestmark = pytest.mark.django_db


def deploy_url(pipeline) -> str:
    return f"/api/v1/pipelines/{pipeline.id}/deploy/"


def build_url(build, action: str = "") -> str:
    return f"/api/v1/builds/{build.id}/" + (f"{action}/" if action else "")


@pytest.fixture
def ready(user):
    return put_in_status(PipelineFactory(owner=user, branch="main"), S.READY_FOR_DEPLOYMENT)


def live_release_build(pipeline) -> Build:
    """A release build that went live (so it has an artifact to redeploy)."""
    build = services.build_request(
        pipeline_id=pipeline.id,
        kind=BuildKind.RELEASE,
        trigger=BuildTrigger.CLI,
        actor="alice",
        artifact_key=f"releases/{pipeline.id}.zip",
    )
    services.deployment_start(pipeline_id=pipeline.id)
    services.deployment_finish(
        build_id=build.id, stats={"files_uploaded": 4, "bytes_uploaded": 1234, "invalidation_id": "I123"}
    )
    build.refresh_from_db()
    return build


# --- deploy --------------------------------------------------------------------------------------


def test_deploy_queues_an_automated_build_of_the_branch(api, ready, broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(deploy_url(ready))

    assert response.status_code == 202, response.json()
    body = response.json()
    assert set(body) == {
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
    }
    assert (body["number"], body["kind"], body["trigger"], body["status"], body["ref"]) == (
        1,
        "automated",
        "manual",
        "queued",
        "main",
    )
    assert body["pipeline"] == str(ready.id)
    assert body["stats"] == {
        "files_uploaded": 0,
        "files_unchanged": 0,
        "files_deleted": 0,
        "bytes_uploaded": 0,
        "invalidation_id": "",
    }
    ready.refresh_from_db()
    assert ready.status == S.QUEUED
    event = Event.objects.get()
    assert (event.transition, event.actor, event.build_number) == ("queue_deployment", "alice", 1)
    assert Build.objects.get().requested_by.username == "alice"
    assert len(broker.queues["troy"].queue) == 1  # run_deployment, after commit


def test_deploy_builds_the_ref_asked_for(api, ready):
    response = api.post(deploy_url(ready), {"ref": "v1.2.0"}, format="json")
    assert response.status_code == 202 and response.json()["ref"] == "v1.2.0"


@pytest.mark.parametrize("ref", ["bad..ref", "with space", "-x", "end.lock", "a" * 256])
def test_deploy_rejects_a_ref_git_would_not_accept(api, ready, ref):
    response = api.post(deploy_url(ready), {"ref": ref}, format="json")
    assert response.status_code == 400 and "ref" in response.json()["errors"]
    assert not Build.objects.exists()


def test_deploy_without_repository_is_400_no_repository(api, user):
    pipeline = put_in_status(PipelineFactory(owner=user, repository=""), S.READY_FOR_DEPLOYMENT)
    response = api.post(deploy_url(pipeline))
    assert response.status_code == 400
    assert response.json()["code"] == "no_repository"
    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT
    assert not Build.objects.exists() and not Event.objects.exists()


@pytest.mark.parametrize(
    "status",
    [
        S.PRE_PROVISIONED,
        S.PROVISION_REQUEST,
        S.PROVISIONING,
        S.FAILED_TO_PROVISION,
        S.SCHEDULED_FOR_DELETION,
        S.DELETING,
        S.FAILED_TO_DELETE,
    ],
)
def test_deploy_when_it_cannot_deploy_is_409(api, user, status):
    pipeline = put_in_status(PipelineFactory(owner=user), status)
    response = api.post(deploy_url(pipeline))
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "invalid_transition" and body["status"] == status
    assert "queue_deployment" not in body["allowed"]
    assert not Build.objects.exists()


def test_deploy_while_deploying_queues_behind(api, ready):
    first = api.post(deploy_url(ready)).json()
    second = api.post(deploy_url(ready))
    assert second.status_code == 202
    assert second.json()["number"] == first["number"] + 1
    ready.refresh_from_db()
    assert ready.status == S.QUEUED
    assert Event.objects.count() == 1  # the status moved once


# --- read ----------------------------------------------------------------------------------------


def test_pipeline_builds_are_listed_newest_first(api, ready):
    for _ in range(3):
        api.post(deploy_url(ready))
    body = api.get(f"/api/v1/pipelines/{ready.id}/builds/").json()
    assert body["count"] == 3
    assert [b["number"] for b in body["results"]] == [3, 2, 1]


def test_build_detail_shows_its_stats(api, ready):
    build = live_release_build(ready)
    body = api.get(build_url(build)).json()
    assert body["status"] == "succeeded" and body["kind"] == "release" and body["trigger"] == "cli"
    assert body["stats"]["files_uploaded"] == 4 and body["stats"]["bytes_uploaded"] == 1234
    assert body["stats"]["invalidation_id"] == "I123"
    assert body["finished_at"] and body["started_at"]


def test_builds_list_filters_by_status(api, ready):
    live = live_release_build(ready)
    api.post(deploy_url(ready))
    body = api.get("/api/v1/builds/", {"status": "succeeded"}).json()
    assert [b["id"] for b in body["results"]] == [str(live.id)]
    body = api.get("/api/v1/builds/?status=succeeded,queued").json()
    assert body["count"] == 2


# --- cancel --------------------------------------------------------------------------------------


def test_cancel_a_queued_build_withdraws_the_pipeline(api, ready):
    build_id = api.post(deploy_url(ready)).json()["id"]
    response = api.post(f"/api/v1/builds/{build_id}/cancel/")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    ready.refresh_from_db()
    assert ready.status == S.READY_FOR_DEPLOYMENT
    assert Event.objects.order_by("id").last().actor == "alice"


def test_cancel_a_running_automated_build_asks_codebuild_to_stop(
    api, ready, broker, django_capture_on_commit_callbacks
):
    build_id = api.post(deploy_url(ready)).json()["id"]
    services.deployment_start(pipeline_id=ready.id)
    broker.flush_all()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/builds/{build_id}/cancel/")
    assert response.status_code == 202
    assert response.json()["cancel_requested"] is True and response.json()["status"] == "running"
    assert response.json()["cancel_requested_by"] == "alice"
    assert len(broker.queues["troy"].queue) == 1  # stop_codebuild


def test_cancel_a_finished_build_is_409(api, ready):
    build = live_release_build(ready)
    response = api.post(build_url(build, "cancel"))
    assert response.status_code == 409
    assert response.json()["code"] == "build_not_cancellable" and response.json()["status"] == "succeeded"


# --- redeploy ------------------------------------------------------------------------------------


def test_redeploy_queues_a_rollback_of_the_same_artifact(api, ready):
    old = live_release_build(ready)
    live_release_build(ready)  # a newer one went live since
    response = api.post(build_url(old, "redeploy"))
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["trigger"] == "rollback" and body["source_build"] == str(old.id) and body["number"] == 3
    assert body["status"] == "queued"
    ready.refresh_from_db()
    assert ready.status == S.QUEUED


def test_redeploy_of_a_build_that_never_went_live_is_409(api, ready):
    build_id = api.post(deploy_url(ready)).json()["id"]
    response = api.post(f"/api/v1/builds/{build_id}/redeploy/")
    assert response.status_code == 409 and response.json()["code"] == "nothing_to_redeploy"
    assert Build.objects.filter(status=BuildStatus.QUEUED).count() == 1


def test_redeploy_while_the_pipeline_is_being_deleted_is_409(api, ready):
    build = live_release_build(ready)
    services.pipeline_schedule_deletion(pipeline_id=ready.id, actor="alice")
    response = api.post(build_url(build, "redeploy"))
    assert response.status_code == 409
    assert response.json()["status"] == "scheduled_for_deletion"

"""Releases over REST: upload, store, list, read, deploy; scoping; the queue through the API."""

from __future__ import annotations

import hashlib

from django.conf import settings
import pytest

from deployment_service import aws
from events.models import Event
from pipelines import services as pipeline_services
from pipelines.choices import BuildStatus
from pipelines.choices import PipelineStatus as S
from pipelines.flows.deploy import deploy_build_run
from pipelines.models import Build, Pipeline
from releases.choices import ReleaseStatus
from releases.models import Release
from releases.storage import release_store_run
from tests.factories import PipelineFactory, put_in_status
from tests.releases.helpers import live_body, run_queued, spool_files, upload, zip_bytes

pytestmark = pytest.mark.django_db

SITE = {"dist/index.html": "<!doctype html><p>v1</p>", "dist/assets/app.3f9a1c.js": "1"}


@pytest.fixture
def pipeline(user, aws):
    return put_in_status(PipelineFactory(owner=user, repository=""), S.READY_FOR_DEPLOYMENT)


def post_release(client, pipeline, files=SITE, **fields):
    return client.post(
        f"/api/v1/pipelines/{pipeline.id}/releases/", {"file": upload(zip_bytes(files)), **fields}, format="multipart"
    )


def test_upload_with_deploy_answers_the_release_and_its_queued_build(
    api, pipeline, spool, django_capture_on_commit_callbacks
):
    data = zip_bytes(SITE)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        answer = api.post(
            f"/api/v1/pipelines/{pipeline.id}/releases/",
            {"file": upload(data), "version": "1.0.0", "deploy": "true"},
            format="multipart",
        )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    release = Release.objects.get()
    assert body["id"] == str(release.id) and body["version"] == "1.0.0" and body["status"] == "pending"
    assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["size"] == len(data)
    assert body["file_count"] == 2 and body["artifact_key"] == f"releases/{release.id}.zip"
    assert body["uploaded_by"] == "alice"
    assert body["build"]["status"] == "queued" and body["build"]["kind"] == "release"
    assert body["build"]["trigger"] == "cli" and body["build"]["release"] == str(release.id)
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.QUEUED
    assert spool_files(spool) == [f"{release.id}.zip"]
    assert len(callbacks) == 2  # run_deployment and store_release, sent once the rows are committed

    # The worker stores it; the spool empties.
    release_store_run(release_id=release.id)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.STORED and release.stored_at is not None
    assert spool_files(spool) == []
    stored = aws.client("s3").get_object(Bucket=settings.TROY_ARTIFACT_BUCKET, Key=release.artifact_key)
    assert stored["Body"].read() == data and stored["Metadata"]["sha256"] == release.sha256

    build = run_queued(pipeline)
    assert build.status == BuildStatus.SUCCEEDED, build.error
    # The single top-level folder is gone: dist/index.html is served as /index.html.
    assert live_body(pipeline, "index.html") == b"<!doctype html><p>v1</p>"
    assert api.get(f"/api/v1/builds/{build.id}/").json()["stats"]["files_uploaded"] == 2


def test_upload_without_deploy_changes_nothing_on_the_pipeline(api, user, aws):
    pipeline = PipelineFactory(owner=user, repository="")  # pre_provisioned: cannot deploy yet
    answer = post_release(api, pipeline, version="draft")
    assert answer.status_code == 201 and answer.json()["build"] is None
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.PRE_PROVISIONED
    assert Build.objects.count() == 0 and Event.objects.count() == 0


def test_upload_with_deploy_to_a_pipeline_that_cannot_deploy_is_409_and_stores_nothing(api, user, aws, spool):
    pipeline = PipelineFactory(owner=user, repository="")
    answer = post_release(api, pipeline, deploy="true")
    assert answer.status_code == 409
    assert answer.json()["code"] == "invalid_transition" and answer.json()["status"] == "pre_provisioned"
    assert Release.objects.count() == 0 and spool_files(spool) == []


def test_list_and_read_releases_are_scoped_to_the_owner(api, other_api, staff_api, pipeline):
    release_id = post_release(api, pipeline, version="1").json()["id"]
    post_release(api, pipeline, version="2")
    listed = api.get(f"/api/v1/pipelines/{pipeline.id}/releases/").json()
    assert [r["version"] for r in listed["results"]] == ["2", "1"]
    assert api.get(f"/api/v1/releases/{release_id}/").json()["version"] == "1"
    assert staff_api.get(f"/api/v1/releases/{release_id}/").status_code == 200
    assert staff_api.get(f"/api/v1/pipelines/{pipeline.id}/releases/").json()["count"] == 2

    for method, path in [
        ("get", f"/api/v1/pipelines/{pipeline.id}/releases/"),
        ("get", f"/api/v1/releases/{release_id}/"),
        ("post", f"/api/v1/releases/{release_id}/deploy/"),
    ]:
        answer = getattr(other_api, method)(path)
        assert answer.status_code == 404 and answer.json()["code"] == "not_found", path
    assert post_release(other_api, pipeline).status_code == 404
    assert Release.objects.count() == 2
    assert api.get("/api/v1/releases/not-a-uuid/").status_code == 404
    assert api.get("/api/v1/pipelines/not-a-uuid/releases/").status_code == 404


def test_anonymous_is_401(client, pipeline):
    assert client.get(f"/api/v1/pipelines/{pipeline.id}/releases/").status_code == 401


def test_deploy_endpoint_queues_a_build_of_the_release(api, pipeline):
    release_id = post_release(api, pipeline).json()["id"]
    answer = api.post(f"/api/v1/releases/{release_id}/deploy/")
    assert answer.status_code == 202
    assert answer.json()["status"] == "queued" and answer.json()["release"] == release_id
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.QUEUED


def test_deploy_of_a_release_that_failed_to_store_is_409(api, pipeline):
    release_id = post_release(api, pipeline).json()["id"]
    Release.objects.get(pk=release_id).spool_path.unlink()
    release_store_run(release_id=release_id)
    answer = api.post(f"/api/v1/releases/{release_id}/deploy/")
    assert answer.status_code == 409 and answer.json()["code"] == "release_not_deployable"


def test_two_deploys_asked_for_while_one_runs_supersede_the_older(api, pipeline):
    first = post_release(api, pipeline, deploy="true").json()
    releases = [post_release(api, pipeline, {"index.html": f"<!doctype html>v{n}"}).json()["id"] for n in (2, 3)]
    for release_id in [first["id"], *releases]:
        release_store_run(release_id=release_id)
    running = pipeline_services.deployment_start(pipeline_id=pipeline.id)
    assert str(running.id) == first["build"]["id"]

    older = api.post(f"/api/v1/releases/{releases[0]}/deploy/").json()
    newer = api.post(f"/api/v1/releases/{releases[1]}/deploy/").json()
    assert older["status"] == newer["status"] == "queued"
    assert api.get(f"/api/v1/pipelines/{pipeline.id}/").json()["status"] == "deploying"

    deploy_build_run(build_id=running.id)  # the running one ends; the newest queued runs next
    assert api.get(f"/api/v1/pipelines/{pipeline.id}/").json()["status"] == "queued"
    last = run_queued(pipeline)
    assert str(last.id) == newer["id"] and last.status == BuildStatus.SUCCEEDED
    assert api.get(f"/api/v1/builds/{older['id']}/").json()["status"] == "superseded"
    assert live_body(pipeline, "index.html") == b"<!doctype html>v3"
    assert api.get(f"/api/v1/pipelines/{pipeline.id}/").json()["status"] == "deployed"


def test_cancelling_the_last_queued_build_withdraws_the_pipeline(api, pipeline):
    post_release(api, pipeline, deploy="true")
    release = Release.objects.get()
    release_store_run(release_id=release.id)
    run_queued(pipeline)
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.DEPLOYED

    build = api.post(f"/api/v1/releases/{release.id}/deploy/").json()
    assert api.get(f"/api/v1/pipelines/{pipeline.id}/").json()["status"] == "queued"
    answer = api.post(f"/api/v1/builds/{build['id']}/cancel/")
    assert answer.status_code == 202, answer.json()
    assert api.get(f"/api/v1/builds/{build['id']}/").json()["status"] == "cancelled"
    assert api.get(f"/api/v1/pipelines/{pipeline.id}/").json()["status"] == "deployed"

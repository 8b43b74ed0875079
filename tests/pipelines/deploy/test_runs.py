"""The deploy step's run: rollback (pointer only, or stored again past retention), failures,
waiting for the release, guards."""

from __future__ import annotations

import io
import zipfile

from django.conf import settings
import pytest

from deployment_service import aws
from edge.manifest import manifest_key
from events.models import Event
from pipelines import services as pipeline_services
from pipelines.choices import BuildKind, BuildStatus, BuildTrigger, PointerKind
from pipelines.choices import PipelineStatus as S
from pipelines.flows.deploy import deploy_build_run
from pipelines.models import Build, EdgePointer, Pipeline
from releases import services
from releases.choices import ReleaseStatus
from releases.storage import release_store_run
from tests.pipelines.codebuild_support import sent
from tests.pipelines.deploy.support import PAGE
from tests.releases.helpers import bucket_keys, live_files, release_and_deploy, run_queued, upload, zip_bytes

pytestmark = pytest.mark.django_db

V1 = {"index.html": PAGE.format("v1"), "a.txt": "same", "b.txt": "old"}
V2 = {"index.html": PAGE.format("v2"), "a.txt": "same", "c.txt": "new"}


def encoded(files: dict[str, str]) -> dict[str, bytes]:
    return {path: body.encode() for path, body in files.items()}


def rollback_to(api, pipeline: Pipeline, build: Build) -> Build:
    answer = api.post(f"/api/v1/builds/{build.id}/redeploy/")
    assert answer.status_code == 202, answer.json()
    rollback = run_queued(Pipeline.objects.get(pk=pipeline.pk))
    assert str(rollback.id) == answer.json()["id"] and rollback.trigger == BuildTrigger.ROLLBACK
    return rollback


def test_a_rollback_to_a_retained_build_writes_nothing_and_points_at_it(pipeline, api, s3_requests):
    first = release_and_deploy(pipeline, V1)
    release_and_deploy(pipeline, V2)
    before = bucket_keys(pipeline)
    s3_requests.clear()

    rollback = rollback_to(api, pipeline, first)

    assert rollback.status == BuildStatus.SUCCEEDED, rollback.error
    assert s3_requests.writes() == []
    assert [r.operation for r in s3_requests.live()] == ["HeadObject"]  # the manifest is still there
    assert s3_requests.all == s3_requests.live()  # not even the artifact is read
    assert bucket_keys(pipeline) == before
    assert rollback.content_build_id == first.id and rollback.stored_at is None
    assert EdgePointer.objects.get(pipeline=pipeline, kind=PointerKind.LIVE).build_id == first.id
    assert Pipeline.objects.get(pk=pipeline.pk).live_build_id == rollback.id
    assert live_files(pipeline) == encoded(V1)
    assert (rollback.files_total, rollback.files_uploaded, rollback.bytes_uploaded) == (3, 0, 0)
    assert Event.objects.filter(
        pipeline_id=pipeline.id,
        message=f"Build #{rollback.number} is live: rolled back to build #1 (pointer only, nothing uploaded).",
    ).exists()


def test_a_rollback_of_a_rollback_points_at_the_build_that_holds_the_content(pipeline, api, s3_requests):
    first = release_and_deploy(pipeline, V1)
    release_and_deploy(pipeline, V2)
    back = rollback_to(api, pipeline, first)
    release_and_deploy(pipeline, V2)
    s3_requests.clear()
    again = rollback_to(api, pipeline, back)
    assert again.status == BuildStatus.SUCCEEDED, again.error
    assert s3_requests.writes() == []
    assert again.content_build_id == first.id
    assert EdgePointer.objects.get(pipeline=pipeline, kind=PointerKind.LIVE).build_id == first.id


@pytest.mark.parametrize("past_retention", ["stored_at cleared", "manifest gone"])
def test_a_rollback_past_retention_stores_the_build_again(pipeline, api, s3_requests, past_retention):
    first = release_and_deploy(pipeline, V1)
    release_and_deploy(pipeline, V2)
    if past_retention == "stored_at cleared":
        Build.objects.filter(pk=first.pk).update(stored_at=None)
    else:
        aws.client("s3").delete_object(
            Bucket=settings.TROY_LIVE_BUCKET, Key=manifest_key(str(pipeline.id), str(first.id))
        )
    s3_requests.clear()

    rollback = rollback_to(api, pipeline, first)

    assert rollback.status == BuildStatus.SUCCEEDED, rollback.error
    assert rollback.content_build_id is None and rollback.stored_at is not None
    assert s3_requests.manifest_puts() == [f"builds/{rollback.id}.json"]
    pointer = EdgePointer.objects.get(pipeline=pipeline, kind=PointerKind.LIVE)
    assert pointer.build_id == rollback.id
    assert live_files(pipeline) == encoded(V1)
    # Build 1's manifest no longer counts: its blobs are looked up, found young enough, trusted.
    assert s3_requests.blob_puts() == []
    assert (rollback.files_uploaded, rollback.files_unchanged) == (0, 3)
    assert Event.objects.filter(
        pipeline_id=pipeline.id, message=f"Build #{rollback.number} is live: rolled back to build #1 (stored again)."
    ).exists()


def test_a_failing_deploy_keeps_the_error_and_the_next_queued_build_runs(pipeline):
    good = release_and_deploy(pipeline, V1)
    broken = pipeline_services.build_request(
        pipeline_id=pipeline.id,
        kind=BuildKind.RELEASE,
        trigger=BuildTrigger.CLI,
        actor="test",
        artifact_key="releases/missing.zip",
    )
    started = pipeline_services.deployment_start(pipeline_id=pipeline.id)
    assert started == broken
    waiting = pipeline_services.build_redeploy(build_id=good.id, actor="test")  # queued behind the running one

    deploy_build_run(build_id=broken.id)
    broken.refresh_from_db()
    p = Pipeline.objects.get(pk=pipeline.pk)
    assert broken.status == BuildStatus.FAILED
    assert (
        broken.error
        == f"The artifact releases/missing.zip is not in the artifact bucket {settings.TROY_ARTIFACT_BUCKET}."
    )
    assert p.status == S.QUEUED  # failed_to_deploy, then at once the waiting build is queued to run
    assert run_queued(p).id == waiting.id
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.DEPLOYED


def test_an_unsafe_artifact_fails_the_build_and_writes_nothing(pipeline, s3_requests):
    first = release_and_deploy(pipeline, V1)
    before = bucket_keys(pipeline)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("index.html", "x")
        zf.writestr("../escape.html", "x")
    aws.client("s3").put_object(Bucket=settings.TROY_ARTIFACT_BUCKET, Key="artifacts/evil.zip", Body=buffer.getvalue())
    # As a CodeBuild artifact would arrive: no release row, the key on the build.
    build = pipeline_services.build_request(
        pipeline_id=pipeline.id,
        kind=BuildKind.RELEASE,
        trigger=BuildTrigger.CLI,
        actor="test",
        artifact_key="artifacts/evil.zip",
    )
    assert pipeline_services.deployment_start(pipeline_id=pipeline.id) == build
    s3_requests.clear()
    deploy_build_run(build_id=build.id)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED and "../escape.html" in build.error
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.FAILED_TO_DEPLOY
    assert s3_requests.writes() == [] and bucket_keys(pipeline) == before
    assert EdgePointer.objects.get(pipeline=pipeline, kind=PointerKind.LIVE).build_id == first.id


def site(version: int) -> dict[str, str]:
    return {"index.html": PAGE.format(version), "a.txt": "a", "b.txt": "b"}


def test_the_deploy_waits_for_the_release_to_be_stored(pipeline, broker, django_capture_on_commit_callbacks):
    release, build = services.release_upload(
        pipeline=pipeline, upload=upload(zip_bytes(site(1))), deploy=True, actor="test"
    )
    pipeline_services.deployment_start(pipeline_id=pipeline.id)
    broker.flush_all()

    deploy_build_run(build_id=build.id)  # the zip is still in the spool
    build.refresh_from_db()
    assert build.status == BuildStatus.RUNNING and bucket_keys(pipeline) == {}
    assert broker.queues["troy-deploy.DQ"].qsize() == 0  # it does not poll: storing sends it

    with django_capture_on_commit_callbacks(execute=True):
        release_store_run(release_id=release.id)
    assert sent(broker, "deploy_build") == [(str(build.id),)]  # storing the zip started the build
    deploy_build_run(build_id=build.id)
    build.refresh_from_db()
    assert build.status == BuildStatus.SUCCEEDED and live_files(pipeline) == encoded(site(1))


def test_a_release_that_could_not_be_stored_fails_its_build(pipeline):
    release, build = services.release_upload(
        pipeline=pipeline, upload=upload(zip_bytes(site(1))), deploy=True, actor="test"
    )
    release.spool_path.unlink()  # the spool lost it
    release_store_run(release_id=release.id)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.FAILED
    pipeline_services.deployment_start(pipeline_id=pipeline.id)
    deploy_build_run(build_id=build.id)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED and "could not be stored" in build.error
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.FAILED_TO_DEPLOY


def test_a_release_that_fails_to_store_fails_the_build_waiting_for_it(pipeline):
    release, build = services.release_upload(
        pipeline=pipeline, upload=upload(zip_bytes(site(1))), deploy=True, actor="test"
    )
    pipeline_services.deployment_start(pipeline_id=pipeline.id)
    deploy_build_run(build_id=build.id)  # waits: no key yet
    release.spool_path.unlink()
    release_store_run(release_id=release.id)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED and "could not be stored" in build.error
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.FAILED_TO_DEPLOY


def test_a_stale_or_duplicate_message_changes_nothing(pipeline, s3_requests):
    done = release_and_deploy(pipeline, site(1))
    s3_requests.clear()
    deploy_build_run(build_id=done.id)  # already succeeded
    deploy_build_run(build_id="00000000-0000-0000-0000-000000000000")
    done.refresh_from_db()
    assert done.status == BuildStatus.SUCCEEDED
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.DEPLOYED
    assert s3_requests.all == []


def test_an_artifact_replaced_after_upload_is_refused(pipeline):
    release, build = services.release_upload(
        pipeline=pipeline, upload=upload(zip_bytes(site(1))), deploy=True, actor="test"
    )
    release_store_run(release_id=release.id)
    aws.client("s3").put_object(
        Bucket=settings.TROY_ARTIFACT_BUCKET,
        Key=release.artifact_key,
        Body=zip_bytes({"index.html": "<!doctype html>swapped"}),
    )
    pipeline_services.deployment_start(pipeline_id=pipeline.id)
    deploy_build_run(build_id=build.id)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED and "sha256 differs" in build.error
    assert bucket_keys(pipeline) == {}

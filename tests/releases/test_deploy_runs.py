"""The deploy step's run: crash and re-run, failures, rollback, waiting for the release, guards."""

from __future__ import annotations

import threading

from django.conf import settings
import pytest

from deployment_service import aws
from pipelines import services as pipeline_services
from pipelines.choices import BuildKind, BuildStatus, BuildTrigger
from pipelines.choices import PipelineStatus as S
from pipelines.flows.deploy import deploy_build_run
from pipelines.models import Pipeline
from releases import services
from releases.choices import ReleaseStatus
from releases.storage import release_store_run
from tests.factories import PipelineFactory, put_in_status
from tests.pipelines.codebuild_support import sent
from tests.releases.helpers import (
    create_distribution,
    live_body,
    live_objects,
    release_and_deploy,
    run_queued,
    upload,
    zip_bytes,
)

pytestmark = pytest.mark.django_db

PAGE = "<!doctype html><p>{}</p>"


@pytest.fixture
def pipeline(aws, user):
    p = put_in_status(PipelineFactory(owner=user, repository=""), S.READY_FOR_DEPLOYMENT)
    create_distribution(p)
    return Pipeline.objects.get(pk=p.pk)


class WorkerCrash(BaseException):
    """Stands for the worker process dying: nothing in the deploy step catches it."""


def site(version: int, files: int = 30) -> dict[str, str]:
    return {"index.html": PAGE.format(version), **{f"assets/f{i}.txt": f"{version}-{i}" for i in range(files)}}


@pytest.mark.parametrize("files", [30, 150])  # a HEAD per file to check, or one LIST past 100
def test_a_crashed_deploy_run_again_uploads_only_what_is_missing(pipeline, files):
    release_and_deploy(pipeline, site(1, files))
    release, build = services.release_upload(
        pipeline=pipeline, upload=upload(zip_bytes(site(2, files))), deploy=True, actor="test"
    )
    release_store_run(release_id=release.id)
    build = pipeline_services.deployment_start(pipeline_id=pipeline.id)

    puts: list[str] = []
    lock = threading.Lock()

    def crash_after_ten(params, **kwargs):
        if params["Bucket"] != settings.TROY_LIVE_BUCKET:
            return
        with lock:
            if len(puts) >= 10:
                raise WorkerCrash()
            puts.append(params["Key"])

    events = aws.client("s3").meta.events
    events.register("before-parameter-build.s3.PutObject", crash_after_ten)
    with pytest.raises(WorkerCrash):
        deploy_build_run(build_id=build.id)
    events.unregister("before-parameter-build.s3.PutObject", crash_after_ten)
    build.refresh_from_db()
    assert build.status == BuildStatus.RUNNING and len(puts) == 10

    deploy_build_run(build_id=build.id)  # the message is delivered again after the crash
    build.refresh_from_db()
    assert build.status == BuildStatus.SUCCEEDED
    assert build.files_uploaded == files + 1 - 10  # what the crashed run had not put yet
    assert {path: live_body(pipeline, path).decode() for path in live_objects(pipeline)} == site(2, files)
    # The files the crashed run uploaded still count as changed for CloudFront.
    paths = aws.client("cloudfront").get_invalidation(
        DistributionId=pipeline.distribution_id, Id=build.invalidation_id
    )["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
    assert sorted(paths) == ["/", "/assets/*", "/index.html"]


def test_rollback_restores_the_earlier_content_uploading_only_what_differs(pipeline, api):
    first = release_and_deploy(pipeline, {"index.html": PAGE.format("v1"), "a.txt": "same", "b.txt": "old"})
    release_and_deploy(pipeline, {"index.html": PAGE.format("v2"), "a.txt": "same", "c.txt": "new"})

    answer = api.post(f"/api/v1/builds/{first.id}/redeploy/")
    assert answer.status_code == 202, answer.json()
    rollback = run_queued(Pipeline.objects.get(pk=pipeline.pk))
    assert str(rollback.id) == answer.json()["id"] and rollback.trigger == BuildTrigger.ROLLBACK
    assert rollback.status == BuildStatus.SUCCEEDED, rollback.error
    assert {path: live_body(pipeline, path).decode() for path in live_objects(pipeline)} == {
        "index.html": PAGE.format("v1"),
        "a.txt": "same",
        "b.txt": "old",
    }
    assert (rollback.files_uploaded, rollback.files_unchanged, rollback.files_deleted) == (2, 1, 1)
    assert Pipeline.objects.get(pk=pipeline.pk).live_build_id == rollback.id


def test_a_failing_deploy_keeps_the_error_and_the_next_queued_build_runs(pipeline):
    good = release_and_deploy(pipeline, site(1, files=2))
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


def test_an_unsafe_artifact_fails_the_build_and_changes_nothing_live(pipeline):
    release_and_deploy(pipeline, site(1, files=2))
    before = {path: obj["ETag"] for path, obj in live_objects(pipeline).items()}
    import io
    import zipfile

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
    deploy_build_run(build_id=build.id)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED and "../escape.html" in build.error
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.FAILED_TO_DEPLOY
    assert {path: obj["ETag"] for path, obj in live_objects(pipeline).items()} == before


def test_a_pipeline_without_distribution_deploys_without_invalidating(aws, user, caplog):
    p = put_in_status(PipelineFactory(owner=user, repository=""), S.READY_FOR_DEPLOYMENT)
    release_and_deploy(p, site(1, files=2))
    second = release_and_deploy(p, site(2, files=2))
    assert second.status == BuildStatus.SUCCEEDED and second.files_uploaded == 3
    assert second.invalidation_id == ""
    assert "has no distribution" in caplog.text


def test_the_deploy_waits_for_the_release_to_be_stored(pipeline, broker, django_capture_on_commit_callbacks):
    release, build = services.release_upload(
        pipeline=pipeline, upload=upload(zip_bytes(site(1, files=2))), deploy=True, actor="test"
    )
    pipeline_services.deployment_start(pipeline_id=pipeline.id)
    broker.flush_all()

    deploy_build_run(build_id=build.id)  # the zip is still in the spool
    build.refresh_from_db()
    assert build.status == BuildStatus.RUNNING and live_objects(pipeline) == {}
    assert broker.queues["troy-deploy.DQ"].qsize() == 0  # it does not poll: storing sends it

    with django_capture_on_commit_callbacks(execute=True):
        release_store_run(release_id=release.id)
    assert sent(broker, "deploy_build") == [(str(build.id),)]  # storing the zip started the build
    deploy_build_run(build_id=build.id)
    build.refresh_from_db()
    assert build.status == BuildStatus.SUCCEEDED and len(live_objects(pipeline)) == 3


def test_a_release_that_could_not_be_stored_fails_its_build(pipeline):
    release, build = services.release_upload(
        pipeline=pipeline, upload=upload(zip_bytes(site(1, files=2))), deploy=True, actor="test"
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
        pipeline=pipeline, upload=upload(zip_bytes(site(1, files=2))), deploy=True, actor="test"
    )
    pipeline_services.deployment_start(pipeline_id=pipeline.id)
    deploy_build_run(build_id=build.id)  # waits: no key yet
    release.spool_path.unlink()
    release_store_run(release_id=release.id)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED and "could not be stored" in build.error
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.FAILED_TO_DEPLOY


def test_a_stale_or_duplicate_message_changes_nothing(pipeline):
    done = release_and_deploy(pipeline, site(1, files=2))
    deploy_build_run(build_id=done.id)  # already succeeded
    deploy_build_run(build_id="00000000-0000-0000-0000-000000000000")
    done.refresh_from_db()
    assert done.status == BuildStatus.SUCCEEDED
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.DEPLOYED


def test_after_a_failed_deploy_the_next_one_lists_the_bucket_and_removes_its_leftovers(pipeline):
    release_and_deploy(pipeline, site(1, files=3))
    release, build = services.release_upload(
        pipeline=pipeline,
        upload=upload(zip_bytes({**site(2, files=3), "extra/new-1.txt": "n1", "extra/new-2.txt": "n2"})),
        deploy=True,
        actor="test",
    )
    release_store_run(release_id=release.id)
    build = pipeline_services.deployment_start(pipeline_id=pipeline.id)
    seen: list[str] = []

    def fail_on_pages(params, **kwargs):
        if params["Bucket"] == settings.TROY_LIVE_BUCKET:
            if params["ContentType"].startswith("text/html"):
                raise RuntimeError("network down")
            seen.append(params["Key"])

    events = aws.client("s3").meta.events
    events.register("before-parameter-build.s3.PutObject", fail_on_pages)
    deploy_build_run(build_id=build.id)
    events.unregister("before-parameter-build.s3.PutObject", fail_on_pages)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED and "network down" in build.error
    assert "extra/new-1.txt" in live_objects(pipeline)  # left behind by the failed run

    again = release_and_deploy(pipeline, site(1, files=3))
    assert again.status == BuildStatus.SUCCEEDED
    assert {path: live_body(pipeline, path).decode() for path in live_objects(pipeline)} == site(1, files=3)
    assert again.files_deleted == 2 and again.files_uploaded == 3  # the assets the failed run overwrote


def test_an_artifact_replaced_after_upload_is_refused(pipeline):
    release, build = services.release_upload(
        pipeline=pipeline, upload=upload(zip_bytes(site(1, files=2))), deploy=True, actor="test"
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
    assert live_objects(pipeline) == {}

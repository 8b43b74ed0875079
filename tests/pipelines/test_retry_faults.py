"""Faults injected at each AWS call of provisioning, deploy and deletion: a transient error is
retried into a success with no failed status, a permanent one fails the row with its message,
retries used up fail it with the last error, and a pipeline never gets two distributions."""

from __future__ import annotations

from django.conf import settings
import pytest

from deployment_service import aws as aws_clients
from pipelines import services, tasks
from pipelines.choices import PipelineStatus as S
from pipelines.flows import provisioning
from pipelines.models import Build, Pipeline
from tests.factories import PipelineFactory, put_in_status
from tests.releases.helpers import create_distribution, live_objects, release_and_deploy, upload, zip_bytes
from tests.retry_support import (
    AwsFaults,
    access_denied,
    connection_error,
    run_like_dramatiq,
    server_error,
    throttling,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def faults(aws, monkeypatch) -> AwsFaults:
    return AwsFaults().install(monkeypatch)


def _distribution_count() -> int:
    return len(aws_clients.client("cloudfront").list_distributions()["DistributionList"].get("Items") or [])


def _requested(name: str) -> Pipeline:
    pipeline = PipelineFactory(name=name)
    return services.pipeline_request_provisioning(pipeline_id=pipeline.id, actor="alice")


def _failed_statuses(pipeline_id) -> list[str]:
    from events.models import Event

    return list(
        Event.objects.filter(pipeline_id=pipeline_id, transition__startswith="fail").values_list(
            "transition", flat=True
        )
    )


# --- provisioning ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation, error",
    [
        ("CreateDistribution", throttling),
        ("CreateDistribution", connection_error),
        ("ChangeResourceRecordSets", server_error),
        ("ChangeResourceRecordSets", throttling),
    ],
)
def test_a_transient_provisioning_error_is_retried_into_success(faults, broker, operation, error):
    pipeline = _requested("flaky")
    faults.fail(operation, times=2, error=error)

    retries = run_like_dramatiq(tasks.provision_pipeline, str(pipeline.id))

    pipeline.refresh_from_db()
    assert retries == 2
    assert pipeline.status == S.READY_FOR_DEPLOYMENT and pipeline.last_error == ""
    assert _failed_statuses(pipeline.id) == []
    assert _distribution_count() == 1


def test_the_hosted_zone_lookup_is_retried_too(faults, broker, settings):
    settings.TROY_HOSTED_ZONE_ID = ""  # found by name with ListHostedZonesByName
    pipeline = _requested("zone")
    faults.fail("ListHostedZonesByName", times=1, error=throttling)

    assert run_like_dramatiq(tasks.provision_pipeline, str(pipeline.id)) == 1

    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT
    assert faults.calls["ListHostedZonesByName"] >= 2


def test_a_lost_create_answer_and_a_throttled_lookup_still_give_one_distribution(faults, broker):
    pipeline = _requested("lost")
    # CloudFront creates the distribution but the answer never arrives; the retry's create then
    # says DistributionAlreadyExists and the CallerReference lookup (throttled once) finds it.
    faults.fail("CreateDistribution", times=1, error=connection_error, after=True)
    faults.fail("ListDistributions", times=1, error=throttling)

    run_like_dramatiq(tasks.provision_pipeline, str(pipeline.id))

    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT
    assert _distribution_count() == 1
    assert faults.calls["CreateDistribution"] >= 2 and faults.calls["ListDistributions"] >= 1


def test_a_permanent_provisioning_error_fails_at_once_with_the_message(faults, broker):
    pipeline = _requested("denied")
    faults.fail("CreateDistribution", times=1, error=access_denied)

    assert run_like_dramatiq(tasks.provision_pipeline, str(pipeline.id)) == 0

    pipeline.refresh_from_db()
    assert pipeline.status == S.FAILED_TO_PROVISION
    assert pipeline.last_error == "CreateDistribution: AccessDenied: Not yours (injected)"
    assert faults.calls["CreateDistribution"] == 1


def test_retries_used_up_fail_provisioning_with_the_last_error_and_one_distribution(faults, broker):
    pipeline = _requested("outage")
    faults.fail("ChangeResourceRecordSets", times=100, error=throttling)

    retries = run_like_dramatiq(tasks.provision_pipeline, str(pipeline.id))

    pipeline.refresh_from_db()
    assert retries == tasks.RETRY.max_retries
    assert pipeline.status == S.FAILED_TO_PROVISION
    assert pipeline.last_error == "ChangeResourceRecordSets: ThrottlingException: Rate exceeded (injected)"
    assert _distribution_count() == 1
    assert faults.calls["CreateDistribution"] == 1  # later attempts reuse the recorded distribution


def test_a_redelivered_provision_message_resumes_a_pipeline_left_provisioning(aws, broker):
    pipeline = _requested("redelivered")
    services.pipeline_start_provisioning(pipeline_id=pipeline.id)  # the worker that took it died here

    provisioning.provision_run(pipeline_id=pipeline.id)

    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT
    assert _distribution_count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_retries_throttled_provisioning_into_success(faults, broker, worker, monkeypatch):
    monkeypatch.setitem(tasks.provision_pipeline.options, "min_backoff", 10)
    monkeypatch.setitem(tasks.provision_pipeline.options, "max_backoff", 50)
    pipeline = PipelineFactory(name="worker-retry")
    faults.fail("CreateDistribution", times=2, error=throttling)

    services.pipeline_request_provisioning(pipeline_id=pipeline.id, actor="alice")  # sends on commit
    broker.join("troy", timeout=30_000)
    worker.join()

    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT
    assert _failed_statuses(pipeline.id) == []
    assert faults.calls["CreateDistribution"] == 3 and _distribution_count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_fails_the_pipeline_with_the_last_error_when_retries_run_out(faults, broker, worker, monkeypatch):
    for option, value in (("min_backoff", 10), ("max_backoff", 20), ("max_retries", 2)):
        monkeypatch.setitem(tasks.provision_pipeline.options, option, value)
    monkeypatch.setitem(tasks.provision_pipeline.options, "retry_when", type(tasks.RETRY)(2).should_retry)
    pipeline = PipelineFactory(name="worker-outage")
    faults.fail("ChangeResourceRecordSets", times=100, error=server_error)

    services.pipeline_request_provisioning(pipeline_id=pipeline.id, actor="alice")
    broker.join("troy", timeout=30_000, fail_fast=False)  # the last attempt's message fails, as it should
    worker.join()

    pipeline.refresh_from_db()
    assert pipeline.status == S.FAILED_TO_PROVISION
    assert pipeline.last_error == "ChangeResourceRecordSets: InternalError: injected"
    assert faults.calls["ChangeResourceRecordSets"] == 3


# --- deploy ---------------------------------------------------------------------------------------


@pytest.fixture
def ready(aws, user) -> Pipeline:
    p = put_in_status(PipelineFactory(owner=user, repository=""), S.READY_FOR_DEPLOYMENT)
    create_distribution(p)
    return Pipeline.objects.get(pk=p.pk)


def _queued_release_build(pipeline: Pipeline, files: dict[str, str]) -> Build:
    from releases import services as release_services
    from releases.storage import release_store_run

    release, _build = release_services.release_upload(
        pipeline=pipeline, upload=upload(zip_bytes(files)), deploy=True, actor="test"
    )
    release_store_run(release_id=release.id)
    build = services.deployment_start(pipeline_id=pipeline.id)
    assert build is not None
    return build


SITE = {"index.html": "<p>v2</p>", "app.css": "body{}"}


@pytest.mark.parametrize("operation", ["GetObject", "HeadObject", "PutObject"])
def test_a_transient_deploy_error_is_retried_into_a_deployed_build(ready, faults, broker, operation):
    # A stored build (its manifest is read) with one of the two files: one blob to look up and put.
    release_and_deploy(ready, {"index.html": "<p>v1</p>", "app.css": SITE["app.css"]})
    build = _queued_release_build(ready, SITE)
    faults.fail(operation, times=2, error=throttling)

    assert run_like_dramatiq(tasks.deploy_build, str(build.id)) == 2

    build.refresh_from_db()
    ready.refresh_from_db()
    assert build.status == "succeeded" and build.error == ""
    assert ready.status == S.DEPLOYED and ready.live_build_id == build.id
    assert set(live_objects(ready)) >= {"index.html", "app.css"}


def test_a_permanent_deploy_error_fails_the_build_with_the_message(ready, faults, broker):
    build = _queued_release_build(ready, SITE)
    faults.fail("PutObject", times=100, error=access_denied)

    assert run_like_dramatiq(tasks.deploy_build, str(build.id)) == 0

    build.refresh_from_db()
    ready.refresh_from_db()
    assert build.status == "failed" and "AccessDenied" in build.error
    assert ready.status == S.FAILED_TO_DEPLOY


def test_deploy_retries_used_up_fail_the_build_with_the_last_error(ready, faults, broker):
    build = _queued_release_build(ready, SITE)
    faults.fail("GetObject", times=100, error=server_error)

    assert run_like_dramatiq(tasks.deploy_build, str(build.id)) == tasks.RETRY_DEPLOY.max_retries

    build.refresh_from_db()
    ready.refresh_from_db()
    assert build.status == "failed" and build.error == "GetObject: InternalError: injected"
    assert ready.status == S.FAILED_TO_DEPLOY and ready.last_error.endswith("GetObject: InternalError: injected")


# --- deletion -------------------------------------------------------------------------------------


def _provisioned(name: str) -> Pipeline:
    pipeline = _requested(name)
    provisioning.provision_run(pipeline_id=pipeline.id)
    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT
    return pipeline


def _delete_like_dramatiq(pipeline: Pipeline, *, max_passes: int = 10) -> None:
    """The deletion's passes (the actor re-sends itself while CloudFront disables), each one
    retried as Dramatiq would."""
    services.pipeline_schedule_deletion(pipeline_id=pipeline.id, actor="alice")
    for attempt in range(max_passes):
        run_like_dramatiq(tasks.delete_pipeline, str(pipeline.id), attempt)
        current = Pipeline.objects.filter(pk=pipeline.pk).first()
        if current is None or current.status != S.DELETING:
            return
    raise AssertionError("deletion never finished")


@pytest.mark.parametrize(
    "operation",
    ["GetDistribution", "UpdateDistribution", "DeleteDistribution", "ChangeResourceRecordSets", "DeleteObjects"],
)
def test_a_transient_deletion_error_is_retried_until_everything_is_gone(faults, broker, operation):
    pipeline = _provisioned("doomed")
    aws_clients.client("s3").put_object(Bucket=settings.TROY_LIVE_BUCKET, Key=f"{pipeline.id}/index.html", Body=b"x")
    faults.fail(operation, times=2, error=throttling)

    _delete_like_dramatiq(pipeline)

    assert not Pipeline.objects.filter(pk=pipeline.pk).exists()
    assert _distribution_count() == 0
    listed = aws_clients.client("s3").list_objects_v2(Bucket=settings.TROY_LIVE_BUCKET, Prefix=f"{pipeline.id}/")
    assert listed.get("KeyCount", 0) == 0
    assert faults.calls[operation] >= 3


def test_a_permanent_deletion_error_fails_the_deletion_with_the_message(faults, broker):
    pipeline = _provisioned("stuck")
    faults.fail("UpdateDistribution", times=1, error=access_denied)

    _delete_like_dramatiq(pipeline)

    pipeline.refresh_from_db()
    assert pipeline.status == S.FAILED_TO_DELETE
    assert pipeline.last_error == "UpdateDistribution: AccessDenied: Not yours (injected)"


def test_deletion_retries_used_up_fail_it_with_the_last_error(faults, broker):
    pipeline = _provisioned("outage-delete")
    faults.fail("GetDistribution", times=100, error=connection_error)

    _delete_like_dramatiq(pipeline)

    pipeline.refresh_from_db()
    assert pipeline.status == S.FAILED_TO_DELETE
    assert pipeline.last_error.startswith("EndpointConnectionError: Could not connect to the endpoint URL")

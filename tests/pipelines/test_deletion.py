"""Deletion against AWS: moto for what it models, botocore's Stubber for the ordering and the
answers moto cannot give (it lets an enabled distribution be deleted and ignores IfMatch)."""

from datetime import UTC, datetime
import time

from botocore.stub import ANY, Stubber
from django.conf import settings
from dramatiq import Message
import pytest

from deployment_service import aws as aws_clients
from deployment_service.integrations import cloudfront, s3_cleanup
from events.models import Event
from pipelines import services, tasks
from pipelines.choices import BuildKind, BuildStatus, BuildTrigger
from pipelines.choices import PipelineStatus as S
from pipelines.flows import provisioning
from pipelines.models import Build, Pipeline
from releases.models import Release
from tests.factories import PipelineFactory, put_in_status

pytestmark = pytest.mark.django_db


def _s3():
    return aws_clients.client("s3")


def _keys(bucket: str, prefix: str = "") -> list[str]:
    answer = _s3().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for item in answer.get("Contents", []))


def _distribution_ids() -> list[str]:
    items = aws_clients.client("cloudfront").list_distributions()["DistributionList"].get("Items") or []
    return [item["Id"] for item in items]


def _alias_records(name: str) -> list[dict]:
    answer = aws_clients.client("route53").list_resource_record_sets(HostedZoneId=settings.TROY_HOSTED_ZONE_ID)
    return [r for r in answer["ResourceRecordSets"] if r["Name"].rstrip(".") == name and r["Type"] in ("A", "AAAA")]


def _provisioned(name: str) -> Pipeline:
    pipeline = PipelineFactory(name=name)
    services.pipeline_request_provisioning(pipeline_id=pipeline.id, actor="alice")
    provisioning.provision_run(pipeline_id=pipeline.id)
    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT
    return pipeline


def _delete_until_done(pipeline_id, *, max_passes: int = 10) -> list[float]:
    """Run the passes the actor would run, returning the waits it asked for."""
    waits: list[float] = []
    attempt = 0
    while (wait := provisioning.deletion_run(pipeline_id=pipeline_id, attempt=attempt)) is not None:
        waits.append(wait)
        attempt += 1
        assert attempt < max_passes, "deletion never finished"
    return waits


def _put(bucket: str, key: str) -> None:
    _s3().put_object(Bucket=bucket, Key=key, Body=b"x")


def test_deletion_removes_records_distribution_files_and_the_row(aws, monkeypatch):
    pipeline = _provisioned("gone")
    neighbour = _provisioned("gone-too-not")  # a name sharing the prefix "gone"
    for key in ("index.html", "assets/app.1234.js", "deep/a/b/c.css"):
        _put(settings.TROY_LIVE_BUCKET, f"{pipeline.id}/{key}")
    _put(settings.TROY_LIVE_BUCKET, f"{neighbour.id}/index.html")
    build = Build.objects.create(
        pipeline=pipeline,
        number=1,
        kind=BuildKind.AUTOMATED,
        trigger=BuildTrigger.PUSH,
        artifact_key=f"artifacts/{'b' * 8}.zip",
    )
    release = Release.objects.create(
        pipeline=pipeline, artifact_key="releases/custom-name.zip", sha256="0" * 64, size=1, file_count=1
    )
    mine = [
        f"sources/{build.id}.zip",
        f"artifacts/{build.id}.zip",
        build.artifact_key,
        f"releases/{release.id}.zip",
        release.artifact_key,
    ]
    for key in [*mine, "releases/someone-else.zip", "sources/placeholder.zip"]:
        _put(settings.TROY_ARTIFACT_BUCKET, key)
    # More files than one listing page and one DeleteObjects batch hold (1000 each; 7 here).
    monkeypatch.setattr(s3_cleanup, "LIST_PAGE_SIZE", 7)
    monkeypatch.setattr(s3_cleanup, "DELETE_BATCH", 7)
    for n in range(30):
        _put(settings.TROY_LIVE_BUCKET, f"{pipeline.id}/bulk/{n}.txt")

    services.pipeline_schedule_deletion(pipeline_id=pipeline.id, actor="alice")
    waits = _delete_until_done(pipeline.id)

    # One pass disabled the distribution; the next, sent at once, found it disabled (moto reports
    # it deployed at once) and deleted it.
    assert waits == [0.0]
    assert not Pipeline.objects.filter(pk=pipeline.id).exists()
    assert _distribution_ids() == [neighbour.distribution_id]
    assert _alias_records("gone.sites.troy.test") == []
    assert len(_alias_records("gone-too-not.sites.troy.test")) == 2
    assert _keys(settings.TROY_LIVE_BUCKET, f"{pipeline.id}/") == []
    assert _keys(settings.TROY_LIVE_BUCKET, f"{neighbour.id}/") == [f"{neighbour.id}/index.html"]
    assert _keys(settings.TROY_ARTIFACT_BUCKET) == ["releases/someone-else.zip", "sources/placeholder.zip"]

    events = Event.objects.filter(pipeline_id=pipeline.id).order_by("id")
    assert [e.transition for e in events][-3:] == ["schedule_deletion", "start_deletion", "finish_deletion"]
    deleted = events.last()
    assert deleted.to_status == S.DELETED
    assert deleted.pipeline_id == pipeline.id and deleted.pipeline_name == "gone"


def test_a_pipeline_that_was_never_provisioned_is_deleted_at_once(aws):
    pipeline = PipelineFactory(name="draft")
    services.pipeline_schedule_deletion(pipeline_id=pipeline.id, actor="alice")

    assert _delete_until_done(pipeline.id) == []
    assert not Pipeline.objects.filter(pk=pipeline.id).exists()
    assert Event.objects.filter(pipeline_id=pipeline.id, to_status=S.DELETED).count() == 1


def test_a_distribution_whose_id_was_never_saved_is_found_and_deleted(aws):
    # Provisioning created it and died before saving the id; the reaper failed the pipeline.
    pipeline = put_in_status(PipelineFactory(name="orphan"), S.FAILED_TO_PROVISION)
    orphan = cloudfront.distribution_create(provisioning.distribution_spec(pipeline))
    other = _provisioned("bystander")

    services.pipeline_schedule_deletion(pipeline_id=pipeline.id, actor="alice")
    _delete_until_done(pipeline.id)

    assert not Pipeline.objects.filter(pk=pipeline.id).exists()
    assert orphan.id not in _distribution_ids()
    assert _distribution_ids() == [other.distribution_id]


def test_a_stale_message_changes_nothing(aws):
    pipeline = _provisioned("busy")
    assert provisioning.deletion_run(pipeline_id=pipeline.id, attempt=0) is None
    assert provisioning.deletion_run(pipeline_id="00000000-0000-0000-0000-000000000000", attempt=3) is None
    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT
    assert _distribution_ids() == [pipeline.distribution_id]


def test_an_aws_error_fails_deletion_with_the_message_kept_and_it_can_be_retried(aws, settings):
    pipeline = _provisioned("stubborn")
    _put(settings.TROY_LIVE_BUCKET, f"{pipeline.id}/index.html")
    live = settings.TROY_LIVE_BUCKET
    settings.TROY_LIVE_BUCKET = "no-such-bucket"

    services.pipeline_schedule_deletion(pipeline_id=pipeline.id, actor="alice")
    _delete_until_done(pipeline.id)

    pipeline.refresh_from_db()
    assert pipeline.status == S.FAILED_TO_DELETE
    assert pipeline.last_error.startswith("ListObjectsV2: NoSuchBucket:")
    failed = Event.objects.get(pipeline_id=pipeline.id, transition="fail_deletion")
    assert failed.message == pipeline.last_error and failed.actor == "system:worker"

    settings.TROY_LIVE_BUCKET = live
    services.pipeline_schedule_deletion(pipeline_id=pipeline.id, actor="alice")
    _delete_until_done(pipeline.id)

    assert not Pipeline.objects.filter(pk=pipeline.id).exists()
    assert _distribution_ids() == []
    assert _keys(live, f"{pipeline.id}/") == []


@pytest.mark.parametrize(("attempt", "delay_ms"), [(0, 0), (3, 4_000)])
def test_the_actor_waits_by_sending_itself_again_with_a_delay(aws, broker, attempt, delay_ms):
    pipeline = _provisioned("patient")
    services.pipeline_schedule_deletion(pipeline_id=pipeline.id, actor="alice")
    broker.flush_all()  # the on-commit message is not what this test is about

    tasks.delete_pipeline(str(pipeline.id), attempt)  # the actor's body, run here: it disables

    pipeline.refresh_from_db()
    assert pipeline.status == S.DELETING
    delayed = broker.queues["troy.DQ"]
    assert delayed.qsize() == 1
    message = Message.decode(delayed.queue[0])
    assert message.actor_name == "delete_pipeline"
    assert list(message.args) == [str(pipeline.id), attempt + 1]
    # The first check after disabling comes at once (a new message, not a sleep), later ones back off.
    assert delay_ms - 1_000 <= message.options["eta"] - time.time() * 1000 <= delay_ms


# --- ordering, IfMatch and "not found" with botocore's Stubber ------------------------------------

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DIST_ID = "E2EXAMPLE12345"


def _stubbed_pipeline() -> Pipeline:
    pipeline = PipelineFactory(name="stubbed")
    pipeline = put_in_status(
        pipeline, S.READY_FOR_DEPLOYMENT, distribution_id=DIST_ID, distribution_domain="d111111abcdef8.cloudfront.net"
    )
    services.pipeline_schedule_deletion(pipeline_id=pipeline.id, actor="alice")
    return pipeline


def _config(pipeline: Pipeline, *, enabled: bool) -> dict:
    config = cloudfront.distribution_config(provisioning.distribution_spec(pipeline), origin_access_control_id="OAC1")
    config["Enabled"] = enabled
    return config


def _distribution(pipeline: Pipeline, *, enabled: bool, status: str, etag: str) -> dict:
    return {
        "ETag": etag,
        "Distribution": {
            "Id": DIST_ID,
            "ARN": f"arn:aws:cloudfront::123456789012:distribution/{DIST_ID}",
            "Status": status,
            "LastModifiedTime": NOW,
            "InProgressInvalidationBatches": 0,
            "DomainName": "d111111abcdef8.cloudfront.net",
            "DistributionConfig": _config(pipeline, enabled=enabled),
        },
    }


def test_deletion_disables_then_waits_until_deployed_then_deletes_with_the_current_etag(aws):
    pipeline = _stubbed_pipeline()
    with Stubber(aws_clients.client("cloudfront")) as stub:
        # Pass 0: enabled → read config + ETag, write it back disabled with IfMatch = that ETag.
        stub.add_response(
            "get_distribution", _distribution(pipeline, enabled=True, status="Deployed", etag="E1"), {"Id": DIST_ID}
        )
        stub.add_response(
            "get_distribution_config",
            {"ETag": "E2", "DistributionConfig": _config(pipeline, enabled=True)},
            {"Id": DIST_ID},
        )
        stub.add_response(
            "update_distribution",
            _distribution(pipeline, enabled=False, status="InProgress", etag="E3"),
            {"Id": DIST_ID, "IfMatch": "E2", "DistributionConfig": _config(pipeline, enabled=False)},
        )
        # Pass 1 (at once): disabled but still rolling out → wait, a second.
        stub.add_response(
            "get_distribution", _distribution(pipeline, enabled=False, status="InProgress", etag="E3"), {"Id": DIST_ID}
        )
        # Pass 2: disabled and deployed → delete with the ETag just read.
        stub.add_response(
            "get_distribution", _distribution(pipeline, enabled=False, status="Deployed", etag="E4"), {"Id": DIST_ID}
        )
        stub.add_response("delete_distribution", {}, {"Id": DIST_ID, "IfMatch": "E4"})

        assert provisioning.deletion_run(pipeline_id=pipeline.id, attempt=0) == 0
        assert Pipeline.objects.get(pk=pipeline.id).status == S.DELETING
        assert provisioning.deletion_run(pipeline_id=pipeline.id, attempt=1) == 1
        assert Pipeline.objects.get(pk=pipeline.id).status == S.DELETING
        assert provisioning.deletion_run(pipeline_id=pipeline.id, attempt=2) is None
        stub.assert_no_pending_responses()

    assert not Pipeline.objects.filter(pk=pipeline.id).exists()
    assert Event.objects.filter(pipeline_id=pipeline.id, to_status=S.DELETED).count() == 1


def test_the_first_check_comes_at_once_and_the_wait_doubles_up_to_two_minutes():
    waits = [provisioning.deletion_wait_seconds(n) for n in range(11)]
    assert waits == [0, 1, 2, 4, 8, 16, 32, 64, 120, 120, 120]


def test_deletion_waits_about_95_minutes_in_all_before_giving_up():
    # CloudFront usually disables a distribution in 5–15 minutes; the give-up leaves it far more.
    total = sum(provisioning.deletion_wait_seconds(n) for n in range(provisioning.DELETION_MAX_ATTEMPTS))
    assert 95 * 60 <= total <= 97 * 60


@pytest.mark.parametrize("call", ["get_distribution", "delete_distribution"])
def test_a_distribution_that_is_already_gone_counts_as_deleted(aws, call):
    pipeline = _stubbed_pipeline()
    _put(settings.TROY_LIVE_BUCKET, f"{pipeline.id}/index.html")
    with Stubber(aws_clients.client("cloudfront")) as stub:
        if call == "delete_distribution":
            stub.add_response(
                "get_distribution",
                _distribution(pipeline, enabled=False, status="Deployed", etag="E9"),
                {"Id": DIST_ID},
            )
        stub.add_client_error(
            call,
            service_error_code="NoSuchDistribution",
            service_message="The specified distribution does not exist.",
            http_status_code=404,
            expected_params={"Id": DIST_ID, "IfMatch": "E9"} if call == "delete_distribution" else {"Id": DIST_ID},
        )
        assert provisioning.deletion_run(pipeline_id=pipeline.id, attempt=0) is None
        stub.assert_no_pending_responses()

    assert not Pipeline.objects.filter(pk=pipeline.id).exists()
    assert _keys(settings.TROY_LIVE_BUCKET, f"{pipeline.id}/") == []


def test_a_refused_disable_fails_deletion_with_the_aws_message(aws):
    pipeline = _stubbed_pipeline()
    with Stubber(aws_clients.client("cloudfront")) as stub:
        stub.add_response("get_distribution", _distribution(pipeline, enabled=True, status="Deployed", etag="E1"))
        stub.add_response(
            "get_distribution_config", {"ETag": "E2", "DistributionConfig": _config(pipeline, enabled=True)}
        )
        stub.add_client_error(
            "update_distribution",
            service_error_code="AccessDenied",
            service_message="User is not authorized to perform: cloudfront:UpdateDistribution",
            http_status_code=403,
            expected_params={"Id": DIST_ID, "IfMatch": "E2", "DistributionConfig": ANY},
        )
        assert provisioning.deletion_run(pipeline_id=pipeline.id, attempt=0) is None
        stub.assert_no_pending_responses()

    pipeline.refresh_from_db()
    assert pipeline.status == S.FAILED_TO_DELETE
    assert pipeline.last_error == (
        "UpdateDistribution: AccessDenied: User is not authorized to perform: cloudfront:UpdateDistribution"
    )
    assert Event.objects.get(pipeline_id=pipeline.id, transition="fail_deletion").message == pipeline.last_error
    assert pipeline.distribution_id == DIST_ID  # kept, so the retry deletes the same distribution


def test_a_changed_etag_at_delete_time_means_look_again_later(aws):
    pipeline = _stubbed_pipeline()
    with Stubber(aws_clients.client("cloudfront")) as stub:
        stub.add_response("get_distribution", _distribution(pipeline, enabled=False, status="Deployed", etag="E5"))
        stub.add_client_error(
            "delete_distribution",
            service_error_code="PreconditionFailed",
            service_message="The If-Match version is missing or not valid.",
            http_status_code=412,
        )
        assert provisioning.deletion_run(pipeline_id=pipeline.id, attempt=3) == 4
    assert Pipeline.objects.get(pk=pipeline.id).status == S.DELETING


def test_deletion_gives_up_after_a_bounded_number_of_checks(aws):
    pipeline = _stubbed_pipeline()
    put_in_status(pipeline, S.DELETING)
    with Stubber(aws_clients.client("cloudfront")) as stub:
        stub.add_response("get_distribution", _distribution(pipeline, enabled=False, status="InProgress", etag="E6"))
        result = provisioning.deletion_run(pipeline_id=pipeline.id, attempt=provisioning.DELETION_MAX_ATTEMPTS)

    assert result is None
    pipeline.refresh_from_db()
    assert pipeline.status == S.FAILED_TO_DELETE
    assert pipeline.last_error.startswith(f"Gave up waiting for CloudFront distribution {DIST_ID} to be disabled")


def test_queued_builds_are_cancelled_when_deletion_is_scheduled(aws):
    pipeline = put_in_status(PipelineFactory(name="withqueue"), S.READY_FOR_DEPLOYMENT)
    build = services.build_request(
        pipeline_id=pipeline.id,
        kind=BuildKind.RELEASE,
        trigger=BuildTrigger.CLI,
        actor="alice",
        artifact_key="releases/x.zip",
    )
    services.pipeline_schedule_deletion(pipeline_id=pipeline.id, actor="alice")
    build.refresh_from_db()
    assert build.status == BuildStatus.CANCELLED
    _delete_until_done(pipeline.id)
    assert not Pipeline.objects.filter(pk=pipeline.id).exists()


@pytest.mark.django_db(transaction=True)
def test_deletion_runs_through_the_broker_re_sending_itself_until_done(aws, broker, worker, monkeypatch):
    monkeypatch.setattr(provisioning, "DELETION_WAIT_FIRST_SECONDS", 0.05)  # CloudFront's minutes, shortened
    pipeline = PipelineFactory(name="via-worker")
    services.pipeline_request_provisioning(pipeline_id=pipeline.id, actor="alice")
    broker.join("troy", timeout=20_000)
    worker.join()
    assert Pipeline.objects.get(pk=pipeline.id).status == S.READY_FOR_DEPLOYMENT
    _put(settings.TROY_LIVE_BUCKET, f"{pipeline.id}/index.html")

    services.pipeline_schedule_deletion(pipeline_id=pipeline.id, actor="alice")  # enqueues on commit
    broker.join("troy", timeout=20_000)
    worker.join()

    assert not Pipeline.objects.filter(pk=pipeline.id).exists()
    assert _distribution_ids() == []
    assert _keys(settings.TROY_LIVE_BUCKET, f"{pipeline.id}/") == []
    assert [e.transition for e in Event.objects.filter(pipeline_id=pipeline.id).order_by("id")][-3:] == [
        "schedule_deletion",
        "start_deletion",
        "finish_deletion",
    ]


def test_records_removed_by_someone_else_mid_deletion_count_as_deleted(aws):
    pipeline = PipelineFactory(name="raced")
    services.pipeline_schedule_deletion(pipeline_id=pipeline.id, actor="alice")
    record = {
        "Name": "raced.sites.troy.test.",
        "Type": "A",
        "AliasTarget": {
            "HostedZoneId": "Z2FDTNDATAQYW2",
            "DNSName": "d1.cloudfront.net.",
            "EvaluateTargetHealth": False,
        },
    }
    listing = {"IsTruncated": False, "MaxItems": "10"}
    with Stubber(aws_clients.client("route53")) as stub:
        stub.add_response("list_resource_record_sets", {**listing, "ResourceRecordSets": [record]})
        # Route53 refuses a DELETE of a record that is not there (moto does not).
        stub.add_client_error(
            "change_resource_record_sets",
            service_error_code="InvalidChangeBatch",
            http_status_code=400,
            service_message="[Tried to delete resource record set [name='raced.sites.troy.test.', type='A'] "
            "but it was not found]",
            expected_params={
                "HostedZoneId": settings.TROY_HOSTED_ZONE_ID,
                "ChangeBatch": {"Comment": ANY, "Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]},
            },
        )
        stub.add_response("list_resource_record_sets", {**listing, "ResourceRecordSets": []})
        assert provisioning.deletion_run(pipeline_id=pipeline.id, attempt=0) is None
        stub.assert_no_pending_responses()

    assert not Pipeline.objects.filter(pk=pipeline.id).exists()


def test_other_route53_errors_fail_the_deletion(aws, settings):
    settings.TROY_HOSTED_ZONE_ID = "ZNOSUCHZONE123"
    pipeline = PipelineFactory(name="nozone")
    services.pipeline_schedule_deletion(pipeline_id=pipeline.id, actor="alice")

    assert provisioning.deletion_run(pipeline_id=pipeline.id, attempt=0) is None

    pipeline.refresh_from_db()
    assert pipeline.status == S.FAILED_TO_DELETE
    assert pipeline.last_error.startswith("ListResourceRecordSets: NoSuchHostedZone")

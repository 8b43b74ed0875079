"""Provisioning against AWS (in-process moto; botocore's Stubber where moto cannot fail)."""

from datetime import timedelta

from botocore.stub import Stubber
from django.conf import settings
from django.utils import timezone
import pytest

from deployment_service import aws as aws_clients
from deployment_service.integrations import cloudfront
from events.models import Event
from pipelines import services
from pipelines.choices import PipelineStatus as S
from pipelines.flows import provisioning
from pipelines.models import Pipeline
from tests.factories import PipelineFactory


def _distributions() -> list[dict]:
    return aws_clients.client("cloudfront").list_distributions()["DistributionList"].get("Items") or []


def _alias_records(name: str) -> dict[str, dict]:
    answer = aws_clients.client("route53").list_resource_record_sets(HostedZoneId=settings.TROY_HOSTED_ZONE_ID)
    return {
        r["Type"]: r
        for r in answer["ResourceRecordSets"]
        if r["Name"].rstrip(".") == name and r["Type"] in ("A", "AAAA")
    }


def _requested(**fields) -> Pipeline:
    pipeline = PipelineFactory(**fields)
    return services.pipeline_request_provisioning(pipeline_id=pipeline.id, actor="alice")


def _transitions(pipeline_id) -> list[str]:
    return list(Event.objects.filter(pipeline_id=pipeline_id).order_by("id").values_list("transition", flat=True))


@pytest.mark.django_db
def test_provisioning_creates_the_distribution_and_alias_records(aws):
    pipeline = _requested(name="blog")

    provisioning.provision_run(pipeline_id=pipeline.id)

    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT
    assert pipeline.last_error == ""
    assert pipeline.distribution_id and pipeline.distribution_domain.endswith(".cloudfront.net")

    config = aws_clients.client("cloudfront").get_distribution_config(Id=pipeline.distribution_id)["DistributionConfig"]
    assert config["Aliases"]["Items"] == ["blog.sites.troy.test"]
    assert config["CallerReference"] == f"troy-{pipeline.id}"
    assert str(pipeline.id) in config["Comment"] and "blog" in config["Comment"]
    assert config["DefaultRootObject"] == "index.html"
    assert config["Enabled"] is True
    [origin] = config["Origins"]["Items"]
    assert origin["DomainName"] == f"{settings.TROY_LIVE_BUCKET}.s3.{settings.AWS_REGION}.amazonaws.com"
    assert origin["OriginPath"] == f"/{pipeline.id}"
    assert config["ViewerCertificate"]["ACMCertificateArn"] == settings.TROY_ACM_CERTIFICATE_ARN
    assert config["ViewerCertificate"]["SSLSupportMethod"] == "sni-only"
    assert config["ViewerCertificate"]["MinimumProtocolVersion"] == "TLSv1.2_2021"
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["Compress"] is True
    assert behavior["CachePolicyId"] == cloudfront.CACHING_OPTIMIZED_POLICY_ID

    records = _alias_records("blog.sites.troy.test")
    assert set(records) == {"A", "AAAA"}
    for record in records.values():
        assert record["AliasTarget"]["HostedZoneId"] == "Z2FDTNDATAQYW2"
        assert record["AliasTarget"]["DNSName"].rstrip(".") == pipeline.distribution_domain

    assert _transitions(pipeline.id) == ["request_provisioning", "start_provisioning", "finish_provisioning"]
    finished = Event.objects.get(pipeline_id=pipeline.id, transition="finish_provisioning")
    assert finished.actor == "system:worker" and pipeline.distribution_id in finished.message


@pytest.mark.django_db
def test_the_origin_access_control_is_shared_and_found_by_name(aws):
    first, second = _requested(name="one"), _requested(name="two")
    provisioning.provision_run(pipeline_id=first.id)
    provisioning.provision_run(pipeline_id=second.id)

    controls = aws_clients.client("cloudfront").list_origin_access_controls()["OriginAccessControlList"]["Items"]
    assert [c["Name"] for c in controls] == [cloudfront.ORIGIN_ACCESS_CONTROL_NAME]
    assert controls[0]["SigningBehavior"] == "always" and controls[0]["OriginAccessControlOriginType"] == "s3"


@pytest.mark.django_db
def test_the_hosted_zone_is_found_by_base_domain_when_no_id_is_set(aws, settings):
    zone_id = settings.TROY_HOSTED_ZONE_ID
    settings.TROY_HOSTED_ZONE_ID = ""
    pipeline = _requested(name="docs")

    provisioning.provision_run(pipeline_id=pipeline.id)

    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT
    settings.TROY_HOSTED_ZONE_ID = zone_id
    assert set(_alias_records("docs.sites.troy.test")) == {"A", "AAAA"}


@pytest.mark.django_db
def test_a_second_message_for_the_same_request_changes_nothing(aws):
    pipeline = _requested()
    provisioning.provision_run(pipeline_id=pipeline.id)
    provisioning.provision_run(pipeline_id=pipeline.id)  # a duplicate delivery

    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT
    assert len(_distributions()) == 1
    assert _transitions(pipeline.id).count("start_provisioning") == 1


@pytest.mark.django_db
def test_messages_for_pipelines_in_other_statuses_or_gone_are_dropped(aws):
    pipeline = PipelineFactory()  # pre_provisioned: nobody asked
    provisioning.provision_run(pipeline_id=pipeline.id)
    provisioning.provision_run(pipeline_id="00000000-0000-0000-0000-000000000000")

    pipeline.refresh_from_db()
    assert pipeline.status == S.PRE_PROVISIONED
    assert _distributions() == []
    assert Event.objects.count() == 0


@pytest.mark.django_db
def test_a_crash_after_the_distribution_was_created_is_recovered_without_a_second_one(aws, monkeypatch):
    pipeline = _requested(name="crashy")

    class WorkerKilled(BaseException):
        """Stands for the process dying: nothing in the flow gets to handle it."""

    def die(**kwargs):
        raise WorkerKilled

    # The worker dies right after CreateDistribution answered, before the id was saved.
    monkeypatch.setattr(services, "pipeline_record_distribution", die)
    with pytest.raises(WorkerKilled):
        provisioning.provision_run(pipeline_id=pipeline.id)
    monkeypatch.undo()
    pipeline.refresh_from_db()
    assert pipeline.status == S.PROVISIONING and pipeline.distribution_id == ""
    [created] = _distributions()

    # The reaper fails it; the user retries; CloudFront answers DistributionAlreadyExists.
    services.pipelines_reap_stuck(now=timezone.now() + timedelta(seconds=settings.TROY_STUCK_PROVISIONING_SECONDS + 1))
    pipeline.refresh_from_db()
    assert pipeline.status == S.FAILED_TO_PROVISION
    services.pipeline_request_provisioning(pipeline_id=pipeline.id, actor="alice")
    provisioning.provision_run(pipeline_id=pipeline.id)

    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT
    assert [d["Id"] for d in _distributions()] == [created["Id"]]
    assert pipeline.distribution_id == created["Id"]
    assert pipeline.distribution_domain == created["DomainName"]
    assert set(_alias_records("crashy.sites.troy.test")) == {"A", "AAAA"}


@pytest.mark.django_db
def test_an_aws_error_fails_provisioning_with_the_message_kept_and_a_retry_reuses_the_distribution(aws, settings):
    zone_id = settings.TROY_HOSTED_ZONE_ID
    settings.TROY_HOSTED_ZONE_ID = "ZNOSUCHZONE123"
    pipeline = _requested(name="shop")

    provisioning.provision_run(pipeline_id=pipeline.id)

    pipeline.refresh_from_db()
    assert pipeline.status == S.FAILED_TO_PROVISION
    assert "ChangeResourceRecordSets" in pipeline.last_error and "NoSuchHostedZone" in pipeline.last_error
    failed = Event.objects.get(pipeline_id=pipeline.id, transition="fail_provisioning")
    assert failed.message == pipeline.last_error and failed.to_status == S.FAILED_TO_PROVISION
    # The distribution was made before Route53 failed, and its id kept for the retry (and deletion).
    [made] = _distributions()
    assert pipeline.distribution_id == made["Id"]

    settings.TROY_HOSTED_ZONE_ID = zone_id
    services.pipeline_request_provisioning(pipeline_id=pipeline.id, actor="alice")
    provisioning.provision_run(pipeline_id=pipeline.id)

    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT and pipeline.last_error == ""
    assert [d["Id"] for d in _distributions()] == [made["Id"]] == [pipeline.distribution_id]
    assert set(_alias_records("shop.sites.troy.test")) == {"A", "AAAA"}


@pytest.mark.django_db
def test_a_refused_create_distribution_fails_provisioning_with_the_aws_message(aws):
    pipeline = _requested(name="denied")
    client = aws_clients.client("cloudfront")
    with Stubber(client) as stub:
        stub.add_response(
            "list_origin_access_controls",
            {
                "OriginAccessControlList": {
                    "Marker": "",
                    "MaxItems": 100,
                    "IsTruncated": False,
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "OAC1",
                            "Description": "",
                            "Name": cloudfront.ORIGIN_ACCESS_CONTROL_NAME,
                            "SigningProtocol": "sigv4",
                            "SigningBehavior": "always",
                            "OriginAccessControlOriginType": "s3",
                        }
                    ],
                }
            },
        )
        stub.add_client_error(
            "create_distribution",
            service_error_code="AccessDenied",
            service_message="User is not authorized to perform: cloudfront:CreateDistribution",
            http_status_code=403,
        )
        provisioning.provision_run(pipeline_id=pipeline.id)
        stub.assert_no_pending_responses()

    pipeline.refresh_from_db()
    assert pipeline.status == S.FAILED_TO_PROVISION
    assert pipeline.last_error == (
        "CreateDistribution: AccessDenied: User is not authorized to perform: cloudfront:CreateDistribution"
    )
    assert pipeline.distribution_id == ""
    assert Event.objects.get(pipeline_id=pipeline.id, transition="fail_provisioning").message == pipeline.last_error


@pytest.mark.django_db(transaction=True)
def test_a_provision_request_goes_through_the_broker_and_a_worker(aws, broker, worker):
    pipeline = PipelineFactory(name="queued-site")

    services.pipeline_request_provisioning(pipeline_id=pipeline.id, actor="alice")  # enqueues on commit
    broker.join("troy", timeout=20_000)
    worker.join()

    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT
    assert [d["Aliases"]["Items"] for d in _distributions()] == [["queued-site.sites.troy.test"]]
    assert set(_alias_records("queued-site.sites.troy.test")) == {"A", "AAAA"}


@pytest.mark.django_db
def test_a_pipeline_created_with_provision_is_provisioned_by_its_actor(aws, django_capture_on_commit_callbacks):
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.create_user(username="carol")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        pipeline = services.pipeline_create(owner=owner, name="fresh", provision=True, actor="carol")
    assert len(callbacks) == 1
    # What the message would run:
    from pipelines import tasks

    tasks.provision_pipeline(str(pipeline.id))
    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT

"""The shared wildcard distribution of previews and permalinks (docs/edge.md, "The wildcard
distribution"): `bootstrap_aws` makes it once with alias `*.{base}`, checks that the certificate
covers that alias, points the DNS wildcard at it, attaches the router in the kvs mode exactly as
to a pipeline's distribution, and finds it all again; `edge_rollout` brings its router up to date."""

from __future__ import annotations

import io

from django.core.management import CommandError, call_command
import pytest

from deployment_service import aws as aws_clients
from deployment_service import bootstrap
from deployment_service.integrations import cloudfront
from pipelines.flows import edge
from tests.aws_stubs import PartialStubber, Recorder
from tests.edge_aws import (  # noqa: F401 - a fixture
    ROUTER_FIND_STUBBED,
    edge_aws_fixture,
    router_find_stubber,
    stub_router_find,
)

pytestmark = pytest.mark.django_db


def _distributions() -> list[dict]:
    return aws_clients.client("cloudfront").list_distributions()["DistributionList"].get("Items") or []


def _wildcard_records(zone_id: str) -> list[dict]:
    records = aws_clients.client("route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return [r for r in records if r["Name"].replace("\\052", "*").startswith("*.")]


def _certificate(domain: str, *also: str) -> str:
    return aws_clients.client("acm").request_certificate(
        DomainName=domain, SubjectAlternativeNames=[domain, *also], ValidationMethod="DNS"
    )["CertificateArn"]


@pytest.fixture
def empty_aws(settings):
    from moto import mock_aws

    settings.AWS_ENDPOINT_URL = ""
    settings.TROY_HOSTED_ZONE_ID = ""
    settings.TROY_WILDCARD_DISTRIBUTION = True
    with mock_aws():
        aws_clients.reset_clients()
        yield
    aws_clients.reset_clients()


def _bootstrap() -> list[str]:
    out = io.StringIO()
    call_command("bootstrap_aws", stdout=out)
    return out.getvalue().splitlines()


def test_bootstrap_makes_the_wildcard_distribution_and_its_record_once(empty_aws, settings):
    settings.TROY_ACM_CERTIFICATE_ARN = _certificate(f"*.{settings.TROY_BASE_DOMAIN}")
    alias = f"*.{settings.TROY_BASE_DOMAIN}"

    first = _bootstrap()

    [made] = [line for line in first if line.startswith("made") and "cloudfront distribution" in line]
    assert alias in made and "previews and permalinks" in made
    assert any(line.startswith("made") and f"dns alias {alias}" in line for line in first)
    assert any(line.startswith("found") and "covers" in line for line in first)
    [dist] = _distributions()
    assert dist["Aliases"]["Items"] == [alias]
    config = aws_clients.client("cloudfront").get_distribution_config(Id=dist["Id"])["DistributionConfig"]
    assert config["CallerReference"] == cloudfront.WILDCARD_CALLER_REFERENCE
    assert config["ViewerCertificate"]["ACMCertificateArn"] == settings.TROY_ACM_CERTIFICATE_ARN
    # The local mode has no router: it serves nothing rather than the bucket's root.
    assert config["Origins"]["Items"][0]["OriginPath"] == cloudfront.WILDCARD_IDLE_ORIGIN_PATH
    zone_id = next(line.split(":", 1)[1].strip() for line in first if line.startswith("hosted zone id:"))
    records = _wildcard_records(zone_id)
    assert sorted(r["Type"] for r in records) == ["A", "AAAA"]
    assert all(r["AliasTarget"]["DNSName"].rstrip(".") == dist["DomainName"] for r in records)
    assert all(r["AliasTarget"]["HostedZoneId"] == cloudfront.CLOUDFRONT_HOSTED_ZONE_ID for r in records)
    assert f"previews:       {dist['Id']} ({dist['DomainName']})" in first

    settings.TROY_HOSTED_ZONE_ID = zone_id
    second = _bootstrap()
    assert not [line for line in second if line.startswith("made")]
    assert any(f"cloudfront distribution {dist['Id']} for {alias}" in line for line in second)
    assert any(line.startswith("found") and f"dns alias {alias}" in line for line in second)
    assert len(_distributions()) == 1 and len(_wildcard_records(zone_id)) == 2


def test_a_certificate_that_does_not_cover_the_wildcard_stops_bootstrap_saying_so(empty_aws, settings):
    settings.TROY_ACM_CERTIFICATE_ARN = _certificate("www.example.org")
    with pytest.raises(CommandError, match=r"not \*\.sites\.troy\.test.*Request one"):
        _bootstrap()
    assert _distributions() == []


def test_the_local_mode_does_not_require_the_certificate_to_exist(empty_aws, settings):
    settings.TROY_ACM_CERTIFICATE_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/missing"
    lines = _bootstrap()
    assert any("not checked" in line for line in lines)
    assert len(_distributions()) == 1


def test_in_the_kvs_mode_the_router_is_attached_as_to_a_pipelines_distribution(edge_aws, settings):
    router = edge_aws
    settings.TROY_ACM_CERTIFICATE_ARN = _certificate(f"*.{settings.TROY_BASE_DOMAIN}")
    report = bootstrap.BootstrapReport(hosted_zone_id=settings.TROY_HOSTED_ZONE_ID, router=router)
    client = aws_clients.client("cloudfront")

    with Recorder(client, "CreateDistribution") as created:
        bootstrap._ensure_wildcard(report)

    [request] = created.calls
    config = request["DistributionConfig"]
    assert config["Aliases"]["Items"] == [f"*.{settings.TROY_BASE_DOMAIN}"]
    # The same router a pipeline's distribution gets, applied by the same function.
    pipeline_like = cloudfront.distribution_config(
        cloudfront.DistributionSpec("x", "x", "x.example", "/p", router=router.associations),
        origin_access_control_id="oac",
    )
    for key in ("FunctionAssociations", "LambdaFunctionAssociations", "OriginRequestPolicyId", "CachePolicyId"):
        assert config["DefaultCacheBehavior"][key] == pipeline_like["DefaultCacheBehavior"][key]
    assert config["DefaultCacheBehavior"]["FunctionAssociations"]["Items"] == [
        {"FunctionARN": router.function_arn, "EventType": "viewer-request"}
    ]
    assert config["Origins"]["Items"][0]["OriginPath"] == "" and config["DefaultRootObject"] == ""
    assert report.wildcard_distribution_id
    assert len(_wildcard_records(settings.TROY_HOSTED_ZONE_ID)) == 2


def test_in_the_kvs_mode_a_missing_certificate_stops_bootstrap(edge_aws, settings):
    settings.TROY_ACM_CERTIFICATE_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/missing"
    report = bootstrap.BootstrapReport(hosted_zone_id=settings.TROY_HOSTED_ZONE_ID, router=edge_aws)
    with pytest.raises(bootstrap.BootstrapError, match="is not an ACM certificate"):
        bootstrap._ensure_wildcard(report)
    assert cloudfront.wildcard_distribution_find() is None


def test_edge_rollout_brings_the_wildcard_distribution_to_the_router(edge_aws, settings):
    router = edge_aws
    settings.TROY_WILDCARD_DISTRIBUTION = True
    # Made before the router existed (the local shape), as an earlier bootstrap would have.
    made = cloudfront.distribution_create(cloudfront.wildcard_spec(None))
    alias = f"*.{settings.TROY_BASE_DOMAIN}"
    client = aws_clients.client("cloudfront")

    with router_find_stubber(router, settings):
        out = io.StringIO()
        call_command("edge_rollout", "--dry-run", stdout=out)
    assert f"would update {alias} ({made.id}, previews and permalinks)" in out.getvalue().splitlines()

    with router_find_stubber(router, settings), Recorder(client, "UpdateDistribution") as updated:
        out = io.StringIO()
        call_command("edge_rollout", stdout=out)
    assert f"updated {alias} ({made.id}, previews and permalinks)" in out.getvalue().splitlines()
    [request] = updated.calls
    assert request["Id"] == made.id
    assert cloudfront.runs_router(request["DistributionConfig"], router.associations)

    # Again, with CloudFront answering what the rollout wrote: nothing is updated.
    stubber = PartialStubber(client, ["GetDistributionConfig"])
    for _ in ("found by its CallerReference", "read before the update"):
        stubber.add_response(
            "get_distribution_config",
            {"DistributionConfig": request["DistributionConfig"], "ETag": "E9"},
            {"Id": made.id},
        )
    with stubber, Recorder(client, "UpdateDistribution") as again:
        lines = edge._rollout_wildcard(router, router.associations)
    assert again.calls == [] and lines == [f"current {alias} ({made.id}, previews and permalinks)"]


def test_without_the_wildcard_distribution_rollout_says_to_bootstrap(edge_aws, settings):
    settings.TROY_WILDCARD_DISTRIBUTION = True
    assert edge._rollout_wildcard(edge_aws, edge_aws.associations) == [
        f"missing *.{settings.TROY_BASE_DOMAIN} distribution (previews and permalinks): run `manage.py bootstrap_aws`"
    ]

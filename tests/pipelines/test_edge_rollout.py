"""``manage.py edge_rollout``: a new router version is published and every distribution Troy
keeps moves to it; old-layout pipelines wait for their next deploy; a second run changes nothing."""

from __future__ import annotations

import io

from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import transaction
from dramatiq import Message
import pytest

from deployment_service import aws as aws_clients
from deployment_service.integrations import cloudfront, edge_lambda, edge_router
from pipelines import services
from pipelines.choices import BuildKind, BuildTrigger
from pipelines.choices import PipelineStatus as S
from pipelines.flows import provisioning
from pipelines.models import Build, Pipeline
from tests.aws_stubs import PartialStubber, Recorder
from tests.edge_aws import (  # noqa: F401 - a fixture
    ROUTER_FIND_STUBBED,
    edge_aws_fixture,
    router_find_stubber,
    stub_router_find,
)
from tests.factories import PipelineFactory

pytestmark = pytest.mark.django_db


def _run(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("edge_rollout", *args, stdout=out)
    return out.getvalue().splitlines()


def _provisioned(name: str, router: edge_router.Router) -> Pipeline:
    pipeline = PipelineFactory(name=name)
    services.pipeline_request_provisioning(pipeline_id=pipeline.id, actor="alice")
    with router_find_stubber(router, settings):
        provisioning.provision_run(pipeline_id=pipeline.id)
    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT and pipeline.edge_router == router.version
    return pipeline


@pytest.fixture
def changed_handler(monkeypatch, tmp_path):
    """This checkout's origin handler differs from the published one."""
    changed = tmp_path / "edge"
    changed.mkdir()
    for name in edge_lambda.LAMBDA_MODULES:
        (changed / name).write_bytes((edge_lambda.EDGE_DIR / name).read_bytes())
    (changed / "origin_request.py").write_text((edge_lambda.EDGE_DIR / "origin_request.py").read_text() + "\n# v2\n")
    monkeypatch.setattr(edge_lambda, "EDGE_DIR", changed)


def test_rollout_publishes_a_new_version_and_moves_every_router_distribution(edge_aws, changed_handler):
    router = edge_aws
    current = _provisioned("current", router)
    old = _provisioned("old", router)
    Pipeline.objects.filter(pk=old.pk).update(edge_router="")  # a pipeline from before the router

    # Dry run: what would change, and nothing changes.
    with router_find_stubber(router, settings):
        planned = _run("--dry-run")
    assert "function current" in planned
    assert "lambda   would get a new version (code changed)" in planned
    assert f"would update current ({current.distribution_id})" in planned
    assert any(line.startswith("skip") and "old" in line and "next deploy" in line for line in planned)
    assert Pipeline.objects.get(pk=current.pk).edge_router == router.version

    # The rollout: version 2 of the Lambda, the distribution updated to it, recorded.
    cloudfront_client = aws_clients.client("cloudfront")
    with router_find_stubber(router, settings), Recorder(cloudfront_client, "UpdateDistribution") as updated:
        done = _run()
    new_version = router.lambda_version_arn.rsplit(":", 1)[0] + ":2"
    assert any(line.startswith("made") and "version 2" in line for line in done)
    assert f"updated current ({current.distribution_id})" in done
    [request] = updated.calls
    assert request["Id"] == current.distribution_id
    lambdas = request["DistributionConfig"]["DefaultCacheBehavior"]["LambdaFunctionAssociations"]["Items"]
    assert [(item["LambdaFunctionARN"], item["EventType"]) for item in lambdas] == [
        (new_version, "origin-request"),
        (new_version, "origin-response"),
    ]
    recorded = Pipeline.objects.get(pk=current.pk).edge_router
    assert recorded.startswith(new_version + "|fn:")
    assert Pipeline.objects.get(pk=old.pk).edge_router == ""

    # Again, with CloudFront answering what the first run wrote: nothing is updated.
    stubber = PartialStubber(cloudfront_client, [*ROUTER_FIND_STUBBED, "GetDistributionConfig"])
    stub_router_find(stubber, router, settings)
    stubber.add_response(
        "get_distribution_config",
        {"DistributionConfig": request["DistributionConfig"], "ETag": "E9"},
        {"Id": current.distribution_id},
    )
    with stubber, Recorder(cloudfront_client, "UpdateDistribution") as again:
        second = _run()
        stubber.assert_no_pending_responses()
    assert again.calls == []
    assert f"current current ({current.distribution_id})" in second
    assert not any(line.startswith("made") for line in second)


def test_rollout_sends_the_move_again_for_an_old_layout_pipeline_already_deployed_anew(
    edge_aws, broker, django_capture_on_commit_callbacks
):
    router = edge_aws
    stuck = _provisioned("stuck", router)
    waiting = _provisioned("waiting", router)
    Pipeline.objects.filter(pk__in=[stuck.pk, waiting.pk]).update(edge_router="")
    build = Build.objects.create(
        pipeline=stuck, number=1, kind=BuildKind.RELEASE, trigger=BuildTrigger.CLI, artifact_key="releases/x.zip"
    )
    with transaction.atomic():
        services.pointer_set(pipeline=stuck, build=build)
    broker.flush_all()

    with router_find_stubber(router, settings):
        planned = _run("--dry-run")
    assert "would move stuck (old layout, build stored)" in planned
    assert any(line.startswith("skip") and "waiting" in line for line in planned)

    with router_find_stubber(router, settings), django_capture_on_commit_callbacks(execute=True):
        done = _run()
    assert "moving stuck (old layout, build stored)" in done
    sent = [Message.decode(raw) for raw in list(broker.queues["troy"].queue)]
    assert [(m.actor_name, list(m.args)) for m in sent if m.actor_name == "edge_attach_router"] == [
        ("edge_attach_router", [str(stuck.id)])
    ]
    assert Pipeline.objects.get(pk=waiting.pk).edge_router == ""


def test_the_router_check_is_exact():
    config = {
        "Origins": {"Quantity": 1, "Items": [{"Id": cloudfront.ORIGIN_ID, "OriginPath": "/p1"}]},
        "DefaultRootObject": "index.html",
        "DefaultCacheBehavior": {"TargetOriginId": cloudfront.ORIGIN_ID},
    }
    router = cloudfront.EdgeAssociations("arn:fn", "arn:lambda:3", "policy", "cache")
    assert not cloudfront.runs_router(config, router)
    cloudfront.router_apply(config, router)
    assert cloudfront.runs_router(config, router)
    assert config["Origins"]["Items"][0]["OriginPath"] == ""
    assert config["DefaultCacheBehavior"]["CachePolicyId"] == "cache"
    for other in (
        cloudfront.EdgeAssociations("arn:fn", "arn:lambda:4", "policy", "cache"),
        cloudfront.EdgeAssociations("arn:fn", "arn:lambda:3", "other", "cache"),
        cloudfront.EdgeAssociations("arn:fn", "arn:lambda:3", "policy", "CachingOptimized"),
    ):
        assert not cloudfront.runs_router(config, other)
    # A distribution whose Lambda answers origin requests only (before the rules) is not current.
    behavior = config["DefaultCacheBehavior"]
    behavior["LambdaFunctionAssociations"] = {
        "Quantity": 1,
        "Items": behavior["LambdaFunctionAssociations"]["Items"][:1],
    }
    assert not cloudfront.runs_router(config, router)


def test_the_local_mode_has_nothing_to_roll_out(settings):
    settings.TROY_EDGE_POINTERS = "local"
    with pytest.raises(CommandError, match="no AWS router"):
        _run()

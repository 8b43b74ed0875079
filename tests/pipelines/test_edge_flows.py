"""The edge flows in the kvs mode: publishing pointers to the KeyValueStore (its data API checked
with Stubber), provisioning with the router attached, deletion removing the keys, and moving an
old-layout pipeline onto the router (moto for distributions and S3; Stubber for what it lacks)."""

from __future__ import annotations

from datetime import UTC, datetime
import time

from botocore.stub import Stubber
from django.conf import settings
from django.db import transaction
from dramatiq import Message
import pytest

from deployment_service import aws as aws_clients
from pipelines import services, tasks
from pipelines.choices import BuildKind, BuildTrigger, PointerKind
from pipelines.choices import PipelineStatus as S
from pipelines.flows import edge, provisioning
from pipelines.models import Build, EdgePointer, Pipeline
from tests.aws_stubs import Recorder
from tests.edge_aws import edge_aws_fixture, router_find_stubber  # noqa: F401 - a fixture, used by name
from tests.factories import PipelineFactory, put_in_status

pytestmark = pytest.mark.django_db


def _store_arn() -> str:
    return aws_clients.client("cloudfront").describe_key_value_store(Name=settings.TROY_EDGE_KVS_NAME)["KeyValueStore"][
        "ARN"
    ]


def _described(etag: str) -> dict:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    return {"ItemCount": 1, "TotalSizeInBytes": 10, "KvsARN": _store_arn(), "Created": created, "ETag": etag}


def _updated(etag: str) -> dict:
    return {"ItemCount": 1, "TotalSizeInBytes": 10, "ETag": etag}


@pytest.fixture
def data_api(edge_aws):
    with Stubber(aws_clients.client("cloudfront-keyvaluestore")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _build(pipeline: Pipeline, number: int = 1) -> Build:
    return Build.objects.create(
        pipeline=pipeline,
        number=number,
        kind=BuildKind.RELEASE,
        trigger=BuildTrigger.CLI,
        artifact_key="releases/x.zip",
    )


def _point(pipeline: Pipeline, build: Build | None) -> EdgePointer:
    with transaction.atomic():
        return services.pointer_set(pipeline=pipeline, build=build)


def _sent(broker, queue: str = "troy") -> list[tuple[str, tuple]]:
    found = broker.queues.get(queue)
    return [(m.actor_name, tuple(m.args)) for m in map(Message.decode, list(found.queue))] if found else []


def _expect_put(data_api: Stubber, puts: dict[str, str], *, etag: str = "E1") -> None:
    data_api.add_response("describe_key_value_store", _described(etag), {"KvsARN": _store_arn()})
    data_api.add_response(
        "update_keys",
        _updated(etag + "+"),
        {"KvsARN": _store_arn(), "IfMatch": etag, "Puts": [{"Key": k, "Value": v} for k, v in sorted(puts.items())]},
    )


# --- publishing -----------------------------------------------------------------------------------


def test_publish_writes_the_unconfirmed_pointer_and_marks_it_published(data_api):
    pipeline = PipelineFactory(name="blog")
    build = _build(pipeline)
    pointer = _point(pipeline, build)
    assert not pointer.is_published  # kvs mode: a worker must confirm it
    _expect_put(data_api, {"blog.sites.troy.test": f"{pipeline.id}/{build.id}"})

    assert edge.publish_pointers_run(pipeline_id=pipeline.id) == 1

    pointer.refresh_from_db()
    assert pointer.is_published and pointer.published == f"{pipeline.id}/{build.id}"
    # Again: nothing to write, so no call at all (the stubber would refuse one).
    assert edge.publish_pointers_run(pipeline_id=pipeline.id) == 0


def test_nothing_live_is_written_as_the_pipeline_with_no_build(data_api):
    pipeline = PipelineFactory(name="fresh")
    with transaction.atomic():
        services.pointer_ensure(pipeline=pipeline)
    _expect_put(data_api, {"fresh.sites.troy.test": f"{pipeline.id}/"})

    assert edge.publish_pointers_run(pipeline_id=pipeline.id) == 1
    assert EdgePointer.objects.get(pipeline=pipeline, kind=PointerKind.LIVE).is_published


def test_a_pointer_changed_while_it_was_written_is_written_again(data_api):
    pipeline = PipelineFactory(name="busy")
    first, second = _build(pipeline, 1), _build(pipeline, 2)
    _point(pipeline, first)
    _expect_put(data_api, {"busy.sites.troy.test": f"{pipeline.id}/{first.id}"}, etag="E1")
    _expect_put(data_api, {"busy.sites.troy.test": f"{pipeline.id}/{second.id}"}, etag="E2")

    # A deploy finishing between the write and its confirmation (another worker, as it happens).
    def deploy_meanwhile(**kwargs):
        client.meta.events.unregister("after-call.cloudfront-keyvaluestore.UpdateKeys", deploy_meanwhile)
        _point(pipeline, second)

    client = aws_clients.client("cloudfront-keyvaluestore")
    client.meta.events.register("after-call.cloudfront-keyvaluestore.UpdateKeys", deploy_meanwhile)

    assert edge.publish_pointers_run(pipeline_id=pipeline.id) == 2

    pointer = EdgePointer.objects.get(pipeline=pipeline, kind=PointerKind.LIVE)
    assert pointer.build_id == second.id and pointer.published == f"{pipeline.id}/{second.id}"


def test_a_pipeline_being_deleted_or_gone_is_not_published(data_api):
    pipeline = PipelineFactory(name="leaving")
    _point(pipeline, _build(pipeline))
    put_in_status(pipeline, S.DELETING)

    assert edge.publish_pointers_run(pipeline_id=pipeline.id) == 0
    assert edge.publish_pointers_run(pipeline_id="00000000-0000-0000-0000-000000000000") == 0
    assert edge.publish_pointers_run(pipeline_id="not-a-uuid") == 0


def test_the_actor_publishes_and_the_periodic_care_resends_unconfirmed_pointers(
    data_api, broker, django_capture_on_commit_callbacks
):
    pipeline = PipelineFactory(name="lost")
    with django_capture_on_commit_callbacks(execute=True):
        pointer = _point(pipeline, _build(pipeline))
    assert _sent(broker) == [("publish_edge_pointers", (str(pipeline.id),))]
    broker.flush_all()

    # The message was lost: the periodic care sends it again.
    with django_capture_on_commit_callbacks(execute=True):
        tasks.reap_stuck_pipelines()
    assert _sent(broker) == [("publish_edge_pointers", (str(pipeline.id),))]

    _expect_put(data_api, {"lost.sites.troy.test": pointer.value})
    tasks.publish_edge_pointers(str(pipeline.id))
    broker.flush_all()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.pointers_resend_unpublished() == []
    assert _sent(broker) == []


# --- provisioning ---------------------------------------------------------------------------------


def _requested(name: str) -> Pipeline:
    pipeline = PipelineFactory(name=name)
    return services.pipeline_request_provisioning(pipeline_id=pipeline.id, actor="alice")


def test_provisioning_attaches_the_published_router(edge_aws):
    router = edge_aws
    pipeline = _requested("edge")
    cloudfront_client = aws_clients.client("cloudfront")
    with router_find_stubber(router, settings), Recorder(cloudfront_client, "CreateDistribution") as created:
        provisioning.provision_run(pipeline_id=pipeline.id)

    pipeline.refresh_from_db()
    assert pipeline.status == S.READY_FOR_DEPLOYMENT, pipeline.last_error
    assert pipeline.edge_router == router.version
    assert router.lambda_version_arn in router.version

    [request] = created.calls
    config = request["DistributionConfig"]
    assert config["Origins"]["Items"][0]["OriginPath"] == ""
    assert config["DefaultRootObject"] == ""
    behavior = config["DefaultCacheBehavior"]
    assert behavior["CachePolicyId"] == router.cache_policy_id  # URI and query in the key, x-troy-build not
    assert behavior["OriginRequestPolicyId"] == router.origin_request_policy_id
    assert behavior["FunctionAssociations"] == {
        "Quantity": 1,
        "Items": [{"FunctionARN": router.function_arn, "EventType": "viewer-request"}],
    }
    assert behavior["LambdaFunctionAssociations"] == {
        "Quantity": 2,
        "Items": [
            {"LambdaFunctionARN": router.lambda_version_arn, "EventType": "origin-request", "IncludeBody": False},
            {"LambdaFunctionARN": router.lambda_version_arn, "EventType": "origin-response", "IncludeBody": False},
        ],
    }
    # What moto keeps of it.
    stored = cloudfront_client.get_distribution_config(Id=pipeline.distribution_id)["DistributionConfig"]
    assert stored["Origins"]["Items"][0]["OriginPath"] == ""
    assert stored["DefaultCacheBehavior"]["OriginRequestPolicyId"] == router.origin_request_policy_id
    # The host is known at the edge; its publish is the worker's.
    assert EdgePointer.objects.get(pipeline=pipeline, kind=PointerKind.LIVE).value == f"{pipeline.id}/"


def test_provisioning_without_a_bootstrapped_router_fails_saying_what_to_run(aws, settings):
    settings.TROY_EDGE_POINTERS = "kvs"
    pipeline = _requested("early")

    provisioning.provision_run(pipeline_id=pipeline.id)

    pipeline.refresh_from_db()
    assert pipeline.status == S.FAILED_TO_PROVISION
    assert "bootstrap_aws" in pipeline.last_error


def test_the_local_mode_makes_the_old_shape_and_records_it(aws):
    pipeline = _requested("dev")
    with Recorder(aws_clients.client("cloudfront"), "CreateDistribution") as created:
        provisioning.provision_run(pipeline_id=pipeline.id)

    pipeline.refresh_from_db()
    assert pipeline.edge_router == provisioning.LOCAL_ROUTER
    behavior = created.calls[0]["DistributionConfig"]["DefaultCacheBehavior"]
    assert "FunctionAssociations" not in behavior and "LambdaFunctionAssociations" not in behavior
    assert created.calls[0]["DistributionConfig"]["Origins"]["Items"][0]["OriginPath"] == f"/{pipeline.id}"


# --- deletion -------------------------------------------------------------------------------------


def test_deletion_removes_the_hosts_keys_before_the_rows_go(edge_aws, data_api):
    pipeline = _requested("bye")
    with router_find_stubber(edge_aws, settings):
        provisioning.provision_run(pipeline_id=pipeline.id)
    services.pipeline_schedule_deletion(pipeline_id=pipeline.id, actor="alice")
    host = "bye.sites.troy.test"
    arn = _store_arn()
    # Pass 1 removes the key (and disables the distribution); pass 2 finds it gone.
    data_api.add_response(
        "get_key",
        {"Key": host, "Value": f"{pipeline.id}/", "ItemCount": 1, "TotalSizeInBytes": 9},
        {"KvsARN": arn, "Key": host},
    )
    data_api.add_response("describe_key_value_store", _described("E1"))
    data_api.add_response("update_keys", _updated("E2"), {"KvsARN": arn, "IfMatch": "E1", "Deletes": [{"Key": host}]})
    data_api.add_client_error("get_key", service_error_code="ResourceNotFoundException", http_status_code=404)

    attempt = 0
    while provisioning.deletion_run(pipeline_id=pipeline.id, attempt=attempt) is not None:
        attempt += 1
        assert attempt < 5

    assert not Pipeline.objects.filter(pk=pipeline.id).exists()
    assert not EdgePointer.objects.filter(host=host).exists()


# --- moving an old-layout pipeline ----------------------------------------------------------------


def _old_layout(name: str, settings) -> Pipeline:
    """A pipeline provisioned before the router (origin at /{id}, edge_router ""), with its old
    in-place files, and a first deploy in the new layout whose pointer is published."""
    settings.TROY_EDGE_POINTERS = "local"
    pipeline = _requested(name)
    provisioning.provision_run(pipeline_id=pipeline.id)
    Pipeline.objects.filter(pk=pipeline.pk).update(edge_router="")
    settings.TROY_EDGE_POINTERS = "kvs"
    s3 = aws_clients.client("s3")
    for key in ("index.html", "about/index.html", "assets/app.3f9a1c2b.js", "blobs/abc", "builds/b1.json"):
        s3.put_object(Bucket=settings.TROY_LIVE_BUCKET, Key=f"{pipeline.id}/{key}", Body=b"x")
    return Pipeline.objects.get(pk=pipeline.pk)


def _live_keys(pipeline: Pipeline) -> list[str]:
    answer = aws_clients.client("s3").list_objects_v2(Bucket=settings.TROY_LIVE_BUCKET, Prefix=f"{pipeline.id}/")
    return sorted(item["Key"][len(str(pipeline.id)) + 1 :] for item in answer.get("Contents", []))


def _origin_path(pipeline: Pipeline) -> str:
    config = aws_clients.client("cloudfront").get_distribution_config(Id=pipeline.distribution_id)
    return config["DistributionConfig"]["Origins"]["Items"][0]["OriginPath"]


def test_an_old_layout_pipeline_waits_for_its_pointer_before_the_switch(edge_aws, settings):
    pipeline = _old_layout("waits", settings)
    _point(pipeline, _build(pipeline))  # not published yet

    assert edge.attach_router_run(pipeline_id=pipeline.id, attempt=0) == edge.attach_wait_seconds(0)

    pipeline.refresh_from_db()
    assert pipeline.edge_router == ""
    assert _origin_path(pipeline) == f"/{pipeline.id}"  # the old files still serve the old build
    assert "index.html" in _live_keys(pipeline)


def test_an_old_layout_pipeline_moves_onto_the_router_then_loses_its_old_files(edge_aws, settings):
    router = edge_aws
    pipeline = _old_layout("moves", settings)
    pointer = _point(pipeline, _build(pipeline))
    services.pointer_mark_published(pointer_id=pointer.id, value=pointer.value)

    with (
        router_find_stubber(router, settings),
        Recorder(aws_clients.client("cloudfront"), "UpdateDistribution") as updated,
    ):
        wait = edge.attach_router_run(pipeline_id=pipeline.id, attempt=0)
    assert wait is not None

    pipeline.refresh_from_db()
    assert pipeline.edge_router == router.version
    [request] = updated.calls
    behavior = request["DistributionConfig"]["DefaultCacheBehavior"]
    assert behavior["LambdaFunctionAssociations"]["Items"][0]["LambdaFunctionARN"] == router.lambda_version_arn
    assert behavior["FunctionAssociations"]["Items"][0]["FunctionARN"] == router.function_arn
    assert request["DistributionConfig"]["Aliases"]["Items"] == ["moves.sites.troy.test"]  # the rest kept
    assert _origin_path(pipeline) == ""
    assert "index.html" in _live_keys(pipeline)  # nothing deleted before CloudFront says Deployed

    attempt = 1
    while edge.attach_router_run(pipeline_id=pipeline.id, attempt=attempt) is not None:
        attempt += 1
        assert attempt < 10
    assert _live_keys(pipeline) == ["blobs/abc", "builds/b1.json"]


def test_deployment_finish_sends_the_move_for_old_layout_pipelines_only(
    edge_aws,
    settings,
    broker,
    django_capture_on_commit_callbacks,
):
    old = put_in_status(PipelineFactory(name="old"), S.READY_FOR_DEPLOYMENT, distribution_id="D1", edge_router="")
    new = put_in_status(PipelineFactory(name="new"), S.READY_FOR_DEPLOYMENT, distribution_id="D2", edge_router="r1")
    for pipeline in (old, new):
        build = services.build_request(
            pipeline_id=pipeline.id,
            kind=BuildKind.RELEASE,
            trigger=BuildTrigger.CLI,
            actor="alice",
            artifact_key="releases/x.zip",
        )
        services.deployment_start(pipeline_id=pipeline.id)
        broker.flush_all()
        with django_capture_on_commit_callbacks(execute=True):
            services.deployment_finish(build_id=build.id)
        sent = _sent(broker)
        moved = ("edge_attach_router", (str(pipeline.id),)) in sent
        assert moved is (pipeline is old)
        assert ("publish_edge_pointers", (str(pipeline.id),)) in sent


def test_the_attach_actor_re_sends_itself_with_a_delay(edge_aws, settings, broker):
    pipeline = _old_layout("later", settings)
    _point(pipeline, _build(pipeline))

    tasks.edge_attach_router(str(pipeline.id))

    # Not published yet: the actor sends itself again, delayed, rather than waiting.
    [message] = [Message.decode(raw) for raw in list(broker.queues["troy.DQ"].queue)]
    assert message.actor_name == "edge_attach_router" and list(message.args) == [str(pipeline.id), 1]
    assert message.options["eta"] - time.time() * 1000 >= (edge.attach_wait_seconds(0) - 1) * 1000


def test_deleted_pointer_rows_have_their_keys_removed_unless_the_host_has_a_row_again(
    edge_aws, data_api, broker, django_capture_on_commit_callbacks
):
    pipeline = put_in_status(PipelineFactory(name="prev"), S.DEPLOYED)
    build = _build(pipeline)
    with transaction.atomic():
        gone = services.pointer_set_permalink(pipeline=pipeline, build=build)
        back = services.pointer_write(
            pipeline=pipeline, host="x--prev.sites.troy.test", kind=PointerKind.PREVIEW, build_id=None
        )
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        hosts = services.pointers_delete(pointers=[gone, back])
    assert hosts == sorted([gone.host, back.host])
    assert ("unpublish_edge_hosts", (hosts,)) in _sent(broker)
    with transaction.atomic():  # the preview is made again before the message runs
        services.pointer_write(pipeline=pipeline, host=back.host, kind=PointerKind.PREVIEW, build_id=None)

    arn = _store_arn()
    data_api.add_response(
        "get_key",
        {"Key": gone.host, "Value": f"{pipeline.id}/{build.id}", "ItemCount": 1, "TotalSizeInBytes": 9},
        {"KvsARN": arn, "Key": gone.host},
    )
    data_api.add_response("describe_key_value_store", _described("E1"))
    data_api.add_response(
        "update_keys", _updated("E2"), {"KvsARN": arn, "IfMatch": "E1", "Deletes": [{"Key": gone.host}]}
    )
    assert edge.unpublish_hosts_run(hosts=hosts) == [gone.host]

"""The service layer: pipeline settings and the build queue rules."""

import threading

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
import pytest

from deployment_service.exceptions import InvalidTransition
from events.models import Event
from pipelines import services
from pipelines.choices import BuildKind, BuildStatus, BuildTrigger
from pipelines.choices import PipelineStatus as S
from pipelines.exceptions import BuildNotCancellable, NameLocked, NothingToRedeploy
from pipelines.models import Build, Pipeline
from tests.factories import PipelineFactory, UserFactory, put_in_status

pytestmark = pytest.mark.django_db


def release_build(pipeline, **kwargs):
    return services.build_request(
        pipeline_id=pipeline.id,
        kind=BuildKind.RELEASE,
        trigger=BuildTrigger.CLI,
        actor="alice",
        artifact_key="releases/x.zip",
        **kwargs,
    )


def statuses(pipeline):
    return dict(Build.objects.filter(pipeline=pipeline).values_list("number", "status"))


# --- pipelines ----------------------------------------------------------------------------------


def test_create_validates_and_provisions_on_request(django_capture_on_commit_callbacks):
    owner = UserFactory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        pipeline = services.pipeline_create(
            owner=owner, name="docs", repository="octo-org/docs", provision=True, actor="alice"
        )
    assert pipeline.status == S.PROVISION_REQUEST
    assert pipeline.domain == "docs.sites.troy.test"
    assert len(callbacks) == 1
    assert Event.objects.get().transition == "request_provisioning"


@pytest.mark.parametrize("name", ["Docs", "-docs", "docs-", "a" * 64, "do.cs", "", "dócs"])
def test_create_refuses_names_that_are_not_dns_labels(name):
    with pytest.raises(ValidationError) as excinfo:
        services.pipeline_create(owner=UserFactory(), name=name, actor="alice")
    assert "name" in excinfo.value.message_dict
    assert not Pipeline.objects.exists()


@pytest.mark.parametrize(
    "field,value",
    [
        ("repository", "no-slash"),
        ("repository", "a/b/c"),
        ("repository", "-owner/repo"),
        ("repository", "owner/.."),
        ("branch", "has space"),
        ("branch", "a..b"),
        ("branch", "-x"),
        ("build_output_dir", "/abs"),
        ("build_output_dir", "../up"),
        ("build_output_dir", "a\\b"),
    ],
)
def test_create_refuses_bad_settings(field, value):
    with pytest.raises(ValidationError) as excinfo:
        services.pipeline_create(owner=UserFactory(), name="ok", actor="alice", **{field: value})
    assert field in excinfo.value.message_dict
    assert not Pipeline.objects.exists()


def test_duplicate_name_is_a_validation_error():
    services.pipeline_create(owner=UserFactory(), name="docs", actor="alice")
    with pytest.raises(ValidationError) as excinfo:
        services.pipeline_create(owner=UserFactory(), name="docs", actor="bob")
    assert "name" in excinfo.value.message_dict


def test_name_is_locked_once_provisioning_was_asked_for():
    pipeline = PipelineFactory(name="docs")
    services.pipeline_update(pipeline_id=pipeline.id, actor="alice", name="docs2")
    services.pipeline_request_provisioning(pipeline_id=pipeline.id, actor="alice")
    with pytest.raises(NameLocked):
        services.pipeline_update(pipeline_id=pipeline.id, actor="alice", name="docs3")
    services.pipeline_update(pipeline_id=pipeline.id, actor="alice", branch="release", build_output_dir="./out/")
    pipeline.refresh_from_db()
    assert (pipeline.name, pipeline.branch, pipeline.build_output_dir) == ("docs2", "release", "out")


def test_retry_provisioning_from_failed():
    pipeline = put_in_status(PipelineFactory(), S.PROVISIONING)
    services.pipeline_fail_provisioning(pipeline_id=pipeline.id, error="CloudFront: AccessDenied")
    assert Pipeline.objects.get(pk=pipeline.pk).last_error == "CloudFront: AccessDenied"
    services.pipeline_request_provisioning(pipeline_id=pipeline.id, actor="alice")
    pipeline.refresh_from_db()
    assert (pipeline.status, pipeline.last_error) == (S.PROVISION_REQUEST, "")


def test_finish_deletion_removes_the_row_and_keeps_the_log():
    pipeline = put_in_status(PipelineFactory(name="gone"), S.DEPLOYED)
    services.pipeline_schedule_deletion(pipeline_id=pipeline.id, actor="alice")
    services.pipeline_start_deletion(pipeline_id=pipeline.id)
    services.pipeline_finish_deletion(pipeline_id=pipeline.id)
    assert not Pipeline.objects.filter(pk=pipeline.pk).exists()
    log = list(Event.objects.filter(pipeline_id=pipeline.pk).order_by("id").values_list("to_status", "pipeline_name"))
    assert log == [(S.SCHEDULED_FOR_DELETION, "gone"), (S.DELETING, "gone"), (S.DELETED, "gone")]


# --- the build queue ----------------------------------------------------------------------------


def test_request_at_rest_queues_the_pipeline(django_capture_on_commit_callbacks):
    pipeline = put_in_status(PipelineFactory(), S.DEPLOYED)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        build = release_build(pipeline)
    assert (build.number, build.status) == (1, BuildStatus.QUEUED)
    pipeline.refresh_from_db()
    assert (pipeline.status, pipeline.queued_from) == (S.QUEUED, S.DEPLOYED)
    assert len(callbacks) == 1
    assert Event.objects.get().build_id == build.id


def test_request_while_deploying_queues_behind_and_leaves_status(django_capture_on_commit_callbacks):
    pipeline = put_in_status(PipelineFactory(), S.READY_FOR_DEPLOYMENT)
    first = release_build(pipeline)
    services.deployment_start(pipeline_id=pipeline.id)
    events_before = Event.objects.count()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        second = release_build(pipeline)
    assert second.number == 2
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.DEPLOYING
    assert Event.objects.count() == events_before and callbacks == []
    assert statuses(pipeline) == {1: BuildStatus.RUNNING, 2: BuildStatus.QUEUED}
    assert first.pk != second.pk


@pytest.mark.parametrize(
    "status",
    [
        S.PRE_PROVISIONED,
        S.PROVISION_REQUEST,
        S.PROVISIONING,
        S.SCHEDULED_FOR_DELETION,
        S.DELETING,
        S.FAILED_TO_PROVISION,
        S.FAILED_TO_DELETE,
    ],
)
def test_request_refused_without_a_distribution(status):
    pipeline = put_in_status(PipelineFactory(), status)
    with pytest.raises(InvalidTransition) as excinfo:
        release_build(pipeline)
    assert excinfo.value.status == status
    assert not Build.objects.exists() and not Event.objects.exists()


def test_newest_queued_runs_next_and_older_are_superseded():
    pipeline = put_in_status(PipelineFactory(), S.READY_FOR_DEPLOYMENT)
    first = release_build(pipeline)
    services.deployment_start(pipeline_id=pipeline.id)
    release_build(pipeline)
    third = release_build(pipeline)

    services.deployment_finish(build_id=first.id, stats={"files_uploaded": 2})
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.QUEUED  # the queue moves on
    started = services.deployment_start(pipeline_id=pipeline.id)

    assert started == third
    assert statuses(pipeline) == {1: BuildStatus.SUCCEEDED, 2: BuildStatus.SUPERSEDED, 3: BuildStatus.RUNNING}
    assert Build.objects.get(number=2, pipeline=pipeline).error == "Superseded by build #3."
    pipeline.refresh_from_db()
    assert (pipeline.status, pipeline.live_build_id) == (S.DEPLOYING, first.id)


def test_newest_wins_even_before_the_first_started():
    pipeline = put_in_status(PipelineFactory(), S.DEPLOYED)
    release_build(pipeline)
    second = release_build(pipeline)
    assert services.deployment_start(pipeline_id=pipeline.id) == second
    assert statuses(pipeline) == {1: BuildStatus.SUPERSEDED, 2: BuildStatus.RUNNING}


def test_failure_keeps_the_site_and_runs_the_next_build():
    pipeline = put_in_status(PipelineFactory(), S.READY_FOR_DEPLOYMENT)
    first = release_build(pipeline)
    services.deployment_start(pipeline_id=pipeline.id)
    release_build(pipeline)
    services.deployment_fail(build_id=first.id, error="S3: AccessDenied")
    pipeline.refresh_from_db()
    assert pipeline.status == S.QUEUED and pipeline.queued_from == S.FAILED_TO_DEPLOY
    transitions = list(Event.objects.order_by("id").values_list("transition", flat=True))
    assert transitions[-2:] == ["fail_deployment", "queue_deployment"]
    assert Build.objects.get(pk=first.pk).error == "S3: AccessDenied"


def test_finish_and_fail_are_idempotent():
    pipeline = put_in_status(PipelineFactory(), S.READY_FOR_DEPLOYMENT)
    build = release_build(pipeline)
    services.deployment_start(pipeline_id=pipeline.id)
    assert services.deployment_start(pipeline_id=pipeline.id) is None  # duplicate message
    assert services.deployment_finish(build_id=build.id) is not None
    count = Event.objects.count()
    assert services.deployment_finish(build_id=build.id) is None
    assert services.deployment_fail(build_id=build.id, error="late") is None
    assert Event.objects.count() == count
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.DEPLOYED


@pytest.mark.parametrize("queued_from", [S.READY_FOR_DEPLOYMENT, S.DEPLOYED, S.FAILED_TO_DEPLOY])
def test_cancel_of_the_last_queued_build_withdraws(queued_from):
    pipeline = put_in_status(PipelineFactory(), queued_from)
    build = release_build(pipeline)
    services.build_cancel(build_id=build.id, actor="alice")
    pipeline.refresh_from_db()
    assert pipeline.status == queued_from
    assert Build.objects.get(pk=build.pk).status == BuildStatus.CANCELLED
    assert Event.objects.order_by("-id").first().transition == "withdraw_deployment"


def test_cancel_of_one_of_two_queued_keeps_the_pipeline_queued():
    pipeline = put_in_status(PipelineFactory(), S.DEPLOYED)
    first = release_build(pipeline)
    second = release_build(pipeline)
    services.build_cancel(build_id=second.id, actor="alice")
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.QUEUED
    assert services.deployment_start(pipeline_id=pipeline.id) == first


def test_running_release_and_finished_builds_cannot_be_cancelled():
    pipeline = put_in_status(PipelineFactory(), S.DEPLOYED)
    build = release_build(pipeline)
    services.deployment_start(pipeline_id=pipeline.id)
    with pytest.raises(BuildNotCancellable):
        services.build_cancel(build_id=build.id, actor="alice")
    services.deployment_finish(build_id=build.id)
    with pytest.raises(BuildNotCancellable):
        services.build_cancel(build_id=build.id, actor="alice")


def test_cancel_of_running_automated_build_asks_codebuild_to_stop(django_capture_on_commit_callbacks):
    pipeline = put_in_status(PipelineFactory(), S.DEPLOYED)
    build = services.build_request(
        pipeline_id=pipeline.id, kind=BuildKind.AUTOMATED, trigger=BuildTrigger.MANUAL, actor="alice", ref="main"
    )
    services.deployment_start(pipeline_id=pipeline.id)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.build_cancel(build_id=build.id, actor="alice")
        services.build_cancel(build_id=build.id, actor="alice")  # asked twice: one StopBuild
    assert len(callbacks) == 1
    build.refresh_from_db()
    assert build.cancel_requested and build.status == BuildStatus.RUNNING


def test_schedule_deletion_cancels_queued_builds():
    pipeline = put_in_status(PipelineFactory(), S.DEPLOYED)
    build = release_build(pipeline)
    services.pipeline_schedule_deletion(pipeline_id=pipeline.id, actor="alice")
    assert Build.objects.get(pk=build.pk).status == BuildStatus.CANCELLED
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.SCHEDULED_FOR_DELETION


def test_redeploy_needs_a_build_that_went_live():
    pipeline = put_in_status(PipelineFactory(), S.READY_FOR_DEPLOYMENT)
    build = release_build(pipeline)
    with pytest.raises(NothingToRedeploy):
        services.build_redeploy(build_id=build.id, actor="alice")
    services.deployment_start(pipeline_id=pipeline.id)
    services.deployment_finish(build_id=build.id)
    again = services.build_redeploy(build_id=build.id, actor="alice")
    assert (again.number, again.trigger, again.source_build_id, again.artifact_key) == (
        2,
        BuildTrigger.ROLLBACK,
        build.id,
        "releases/x.zip",
    )


def test_database_allows_one_running_build_per_pipeline():
    pipeline = put_in_status(PipelineFactory(), S.DEPLOYING)
    Build.objects.create(pipeline=pipeline, number=1, kind="release", trigger="cli")
    Build.objects.filter(pipeline=pipeline).update(status=BuildStatus.RUNNING)
    Build.objects.create(pipeline=pipeline, number=2, kind="release", trigger="cli")
    with pytest.raises(IntegrityError), transaction.atomic():
        Build.objects.filter(pipeline=pipeline, number=2).update(status=BuildStatus.RUNNING)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_requests_get_distinct_numbers_on_postgres():
    pipeline = put_in_status(PipelineFactory(), S.DEPLOYED)
    barrier = threading.Barrier(8)
    errors = []

    def request():
        try:
            barrier.wait()
            release_build(pipeline)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(Build.objects.filter(pipeline=pipeline).values_list("number", flat=True)) == list(range(1, 9))
    assert Event.objects.filter(transition="queue_deployment").count() == 1

"""Handling pushes in the worker: which pipelines get a build, and that a delivery acts once.

Deliveries come in through the real hook (signed), then the actor runs as the worker would."""

from __future__ import annotations

from django.test import Client
import dramatiq
import pytest

from events.models import Event
from hooks.github_tasks import handle_github_delivery
from hooks.models import GithubDelivery
from pipelines.choices import BuildKind, BuildStatus, BuildTrigger
from pipelines.choices import PipelineStatus as S
from pipelines.models import Build, Pipeline
from pipelines.services.github_records import pipeline_record_installation
from tests.factories import PipelineFactory, put_in_status
from tests.hooks.github_helpers import INSTALLATION, SECRET, SHA, deliver, push_payload

pytestmark = pytest.mark.django_db

ZERO = "0" * 40


@pytest.fixture(autouse=True)
def secret(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET


@pytest.fixture
def site():
    return put_in_status(
        PipelineFactory(name="site", repository="octo-org/site", branch="main", auto_deploy=True), S.DEPLOYED
    )


def push(payload: dict, delivery_id: str | None = None) -> GithubDelivery:
    """Deliver through the hook, then run the handling actor (synchronously, as a worker would)."""
    response = deliver(Client(), payload, delivery_id=delivery_id)
    assert response.status_code == 202, response.content
    delivery = GithubDelivery.objects.get(delivery_id=response.json()["delivery"])
    handle_github_delivery(delivery.pk)
    delivery.refresh_from_db()
    return delivery


def test_a_push_to_the_branch_queues_one_build_of_that_commit(site, broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        delivery = push(push_payload())

    [build] = Build.objects.filter(pipeline=site)
    assert (build.status, build.kind, build.trigger) == (BuildStatus.QUEUED, BuildKind.AUTOMATED, BuildTrigger.PUSH)
    assert (build.commit_sha, build.ref) == (SHA, "main")
    site.refresh_from_db()
    assert site.status == S.QUEUED
    assert site.github_installation_id == INSTALLATION
    event = Event.objects.get(pipeline_id=site.id, transition="queue_deployment")
    assert event.actor == "github:octo"
    assert delivery.processed_at is not None
    assert "site: build #1 queued" in delivery.result
    sent = [dramatiq.Message.decode(raw).actor_name for raw in list(broker.queues["troy"].queue)]
    assert "run_deployment" in sent  # the build goes on to a worker after commit


def test_the_repository_matches_whatever_its_case(site):
    push(push_payload(repository={"full_name": "Octo-Org/Site"}))
    assert Build.objects.filter(pipeline=site, commit_sha=SHA).count() == 1


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"ref": "refs/heads/develop"}, "no pipeline deploys octo-org/site branch develop"),
        ({"ref": "refs/tags/v1.0.0"}, "is a tag"),
        ({"ref": "refs/pull/7/head"}, "is not a branch"),
        ({"deleted": True, "after": ZERO}, "was deleted"),
        ({"after": ZERO}, "was deleted"),
        ({"repository": {"full_name": "octo-org/other"}}, "no pipeline deploys octo-org/other"),
    ],
)
def test_pushes_that_start_nothing(site, changes, why):
    delivery = push(push_payload(**changes))

    assert not Build.objects.exists()
    site.refresh_from_db()
    assert site.status == S.DEPLOYED
    assert why in delivery.result and delivery.processed_at is not None


def test_auto_deploy_off_starts_nothing_but_says_so(site):
    Pipeline.objects.filter(pk=site.pk).update(auto_deploy=False)

    delivery = push(push_payload())

    assert not Build.objects.exists()
    assert "site: skipped, auto_deploy is off" in delivery.result


@pytest.mark.parametrize(
    "status", [S.PRE_PROVISIONED, S.PROVISIONING, S.FAILED_TO_PROVISION, S.SCHEDULED_FOR_DELETION, S.DELETING]
)
def test_pipelines_that_cannot_deploy_are_skipped_with_a_note(status):
    pipeline = put_in_status(PipelineFactory(name="site"), status)

    delivery = push(push_payload())

    assert not Build.objects.exists()
    assert Pipeline.objects.get(pk=pipeline.pk).status == status
    assert f"site: skipped, it is {status}" in delivery.result


def test_a_push_during_a_deployment_queues_behind_it(site):
    put_in_status(site, S.DEPLOYING)

    push(push_payload())

    assert Build.objects.get(pipeline=site).status == BuildStatus.QUEUED
    assert Pipeline.objects.get(pk=site.pk).status == S.DEPLOYING


def test_handling_a_delivery_twice_starts_one_build(site):
    delivery = push(push_payload())
    handle_github_delivery(delivery.pk)
    handle_github_delivery(delivery.pk)

    assert Build.objects.count() == 1
    assert GithubDelivery.objects.get(pk=delivery.pk).result == delivery.result


def test_each_pipeline_on_the_branch_gets_a_build_and_all_on_the_repo_learn_the_installation(site):
    second = put_in_status(
        PipelineFactory(name="site-preview", owner=site.owner, repository="octo-org/site", branch="main"),
        S.READY_FOR_DEPLOYMENT,
    )
    elsewhere = put_in_status(
        PipelineFactory(name="site-docs", owner=site.owner, repository="octo-org/site", branch="docs"), S.DEPLOYED
    )
    unrelated = put_in_status(
        PipelineFactory(name="blog", owner=site.owner, repository="octo-org/blog", branch="main"), S.DEPLOYED
    )

    push(push_payload())

    assert sorted(Build.objects.values_list("pipeline__name", flat=True)) == ["site", "site-preview"]
    assert Pipeline.objects.get(pk=second.pk).status == S.QUEUED
    assert Pipeline.objects.get(pk=elsewhere.pk).github_installation_id == INSTALLATION
    assert Pipeline.objects.get(pk=unrelated.pk).github_installation_id is None


def test_recording_the_installation_changes_no_status_and_writes_no_event(site):
    assert pipeline_record_installation(pipeline_id=site.id, installation_id=99) is True
    assert pipeline_record_installation(pipeline_id=site.id, installation_id=99) is False

    site.refresh_from_db()
    assert (site.github_installation_id, site.status) == (99, S.DEPLOYED)
    assert not Event.objects.filter(pipeline_id=site.id).exists()

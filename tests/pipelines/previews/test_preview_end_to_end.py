"""A pull request end to end: the signed webhook, the worker's handling, CodeBuild on moto with
the source from a fake GitHub over loopback HTTP, the CodeBuild event, the real deploy step, the
local edge serving `pr-{n}--{name}`, and the preview's URL back on the commit (a status and a
GitHub deployment) — and the fork path, which waits for approval and runs without secrets."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.test import Client
from dramatiq import Message
import pytest

from deployment_service import aws as aws_clients
from edge.local import LocalEdge
from hooks.github_tasks import handle_github_delivery
from hooks.models import GithubDelivery
from pipelines import services
from pipelines.choices import BuildStatus
from pipelines.choices import PipelineStatus as S
from pipelines.flows.codebuild import codebuild_event_apply, codebuild_report_commit_status, codebuild_start_run
from pipelines.flows.deploy import deploy_build_run
from pipelines.flows.preview_reports import preview_deployment_deactivate
from pipelines.models import Build, Pipeline, Preview
from pipelines.selectors import edge_pointer_value
from tests.factories import PipelineFactory, put_in_status
from tests.fakes.github_server import FakeGithub, github_zipball
from tests.hooks.github_helpers import INSTALLATION, SECRET, deliver
from tests.hooks.test_github_previews import HEAD, pr_payload
from tests.pipelines.codebuild_support import RUN_PHASES, state_event
from tests.releases.helpers import create_distribution, zip_bytes

pytestmark = pytest.mark.django_db

REPO = "octo-org/site"
APP_ID = "4242"


@pytest.fixture
def github(settings, github_app_key):
    private, public = github_app_key
    fake = FakeGithub(app_id=APP_ID, public_key_pem=public)
    fake.installations[REPO] = INSTALLATION
    fake.add_commit(REPO, "topic", HEAD, github_zipball(REPO, HEAD, {"index.html": b"<h1>pr</h1>"}))
    with fake:
        settings.GITHUB_API_URL = fake.api_url
        settings.GITHUB_APP_ID = APP_ID
        settings.GITHUB_APP_PRIVATE_KEY = private
        settings.GITHUB_WEBHOOK_SECRET = SECRET
        yield fake


@pytest.fixture
def site(aws):
    pipeline = put_in_status(
        PipelineFactory(name="site", repository=REPO, pull_request_previews=True), S.READY_FOR_DEPLOYMENT
    )
    create_distribution(pipeline)
    return Pipeline.objects.get(pk=pipeline.pk)


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


def webhook(on_commit, payload: dict) -> None:
    response = on_commit(deliver, Client(), payload, event="pull_request")
    assert response.status_code == 202, response.content
    on_commit(handle_github_delivery, GithubDelivery.objects.get(delivery_id=response.json()["delivery"]).pk)


def run_codebuild_to_success(on_commit, build: Build) -> Build:
    on_commit(codebuild_start_run, build_id=build.id)
    build.refresh_from_db()
    assert build.codebuild_build_id, build.error
    # What CodeBuild's Archive phase writes, then its SUCCEEDED event.
    aws_clients.client("s3").put_object(
        Bucket=settings.TROY_ARTIFACT_BUCKET, Key=build.artifact_key, Body=zip_bytes({"index.html": "<h1>pr 7</h1>"})
    )
    phases = [{"phase-type": name, "phase-status": "SUCCEEDED"} for name in RUN_PHASES]
    event = state_event(build.codebuild_build_id, "SUCCEEDED", phases=phases, current_phase="COMPLETED")
    assert on_commit(codebuild_event_apply, event).startswith("succeeded")
    on_commit(deploy_build_run, build_id=build.id)
    return Build.objects.get(pk=build.pk)


def test_a_pull_request_preview_from_webhook_to_edge_with_its_url_on_the_commit(site, github, on_commit, broker):
    webhook(on_commit, pr_payload("opened"))
    [build] = Build.objects.filter(pipeline=site)
    started = on_commit(services.preview_deployment_start, preview_id=build.preview_id)
    assert started.pk == build.pk
    assert codebuild_report_commit_status(build_id=build.id).startswith("reported pending")

    build = run_codebuild_to_success(on_commit, build)
    assert build.status == BuildStatus.SUCCEEDED, build.error
    assert codebuild_report_commit_status(build_id=build.id) == "reported success, deployment success"

    preview = Preview.objects.get(pk=build.preview_id)
    assert preview.host == f"pr-7--site.{settings.TROY_BASE_DOMAIN}" and preview.build_id == build.id
    site.refresh_from_db()
    assert site.status == S.READY_FOR_DEPLOYMENT and site.live_build_id is None  # production untouched
    edge = LocalEdge(edge_pointer_value, aws_clients.client("s3"), settings.TROY_LIVE_BUCKET)
    status, _headers, body = edge.handle("GET", "pr-7--site.localhost", "/", "", {"accept": "text/html"})
    assert status == 200 and b"pr 7" in (body if isinstance(body, bytes) else b"".join(body))

    contexts = {body["context"] for _repo, sha, body in github.statuses if sha == HEAD}
    assert contexts == {"troy/preview/pr-7"}
    assert github.statuses[-1][2]["state"] == "success" and github.statuses[-1][2]["target_url"] == preview.url
    [(repo, deployment)] = github.deployments
    assert (repo, deployment["ref"], deployment["environment"]) == (REPO, HEAD, "preview/pr-7")
    assert deployment["transient_environment"] is True and deployment["production_environment"] is False
    states = [(d, body["state"]) for _repo, d, body in github.deployment_statuses]
    assert states == [(1, "in_progress"), (1, "success")]
    assert github.deployment_statuses[-1][2]["environment_url"] == preview.url
    assert Build.objects.get(pk=build.pk).github_deployment_id == 1

    # Closed and removed after the grace: the deployment goes inactive.
    webhook(on_commit, pr_payload("closed"))
    Preview.objects.filter(pk=preview.pk).update(closed_at=preview.created_at - timedelta(days=1))
    on_commit(services.previews_remove_closed)
    assert (str(build.id),) in [
        m.args
        for m in map(Message.decode, broker.queues["troy"].queue)
        if m.actor_name == "deactivate_preview_deployment"
    ]
    assert preview_deployment_deactivate(build_id=str(build.id)) == "deactivated"
    assert github.deployment_statuses[-1][2]["state"] == "inactive"


def test_a_forks_pull_request_is_built_only_after_approval_and_without_secrets(site, github, on_commit):
    services.env_variable_set(pipeline_id=site.id, name="API_TOKEN", value="s3cr3t", secret=True, actor="alice")
    webhook(on_commit, pr_payload("opened", head_repo="someone/site"))
    [build] = Build.objects.filter(pipeline=site)
    assert build.awaiting_approval
    assert on_commit(services.preview_deployment_start, preview_id=build.preview_id) is None
    assert codebuild_report_commit_status(build_id=build.id) == "reported pending"
    assert "approval" in github.statuses[-1][2]["description"]
    assert github.deployments == []  # nothing deployed while it waits

    on_commit(services.preview_approve, pipeline_id=site.id, label="pr-7", actor="alice")
    started = on_commit(services.preview_deployment_start, preview_id=build.preview_id)
    assert started.pk == build.pk and started.from_fork
    environment = services.build_codebuild_environment(started)
    assert environment.parameters == {}  # no secrets reach a fork's build
    build = run_codebuild_to_success(on_commit, started)
    assert build.status == BuildStatus.SUCCEEDED, build.error

"""End to end on moto with a real Dramatiq worker (StubBroker thread), a fake GitHub on loopback
and signed SNS deliveries: deploy request → source in S3 → CodeBuild started on our project →
a SUCCEEDED notification → files live and a success status on the commit; then a FAILED one →
failed_to_deploy, a failure status on the commit, and the site still serving what was live."""

from __future__ import annotations

import io
from urllib.parse import parse_qs, urlsplit
import zipfile

import pytest

from deployment_service import aws as aws_clients
from hooks import sns
from pipelines.choices import BuildStatus
from pipelines.choices import PipelineStatus as S
from pipelines.models import Build, GithubInstallationRepository, Pipeline
from tests.fakes.github_server import FakeGithub, app_keypair, github_zipball
from tests.hooks.sns_support import CERT_URL, Signer, notification, post
from tests.pipelines.codebuild_support import BUILD_ERROR, codebuild_events
from tests.releases.helpers import live_body

pytestmark = pytest.mark.django_db(transaction=True)

REPO = "octo-org/shop"
FIRST_SHA = "1111111111111111111111111111111111111111"
SECOND_SHA = "2222222222222222222222222222222222222222"


@pytest.fixture
def settle(broker, worker):
    """Wait until the worker has done everything queued (and what that queued). The test thread
    then acts only while the worker is idle: SQLite's shared in-memory test database refuses
    concurrent writers ("table is locked"); on PostgreSQL this is simply deterministic."""

    def run() -> None:
        for _ in range(20):
            for queue in list(broker.queues):
                broker.join(queue)
            worker.join()
            if not any(q.unfinished_tasks for q in broker.queues.values()):
                return
        raise AssertionError("the worker never settled")

    return run


@pytest.fixture
def github(settings):
    private, public = app_keypair()
    fake = FakeGithub(app_id="4242", public_key_pem=public)
    fake.installations[REPO] = 31337
    fake.add_commit(REPO, "main", FIRST_SHA, github_zipball(REPO, FIRST_SHA, {"package.json": b"{}"}))
    with fake:
        settings.GITHUB_API_URL = fake.api_url
        settings.GITHUB_APP_ID = "4242"
        settings.GITHUB_APP_PRIVATE_KEY = private
        yield fake


@pytest.fixture
def signer(settings, monkeypatch) -> Signer:
    signer = Signer()
    settings.TROY_SNS_VERIFY_SIGNATURES = True
    sns.certificate_cache_clear()
    monkeypatch.setattr(sns, "_download_certificate", lambda url: signer.pem if url == CERT_URL else b"")
    yield signer
    sns.certificate_cache_clear()


def site_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buffer.getvalue()


def codebuild_run(client, signer, settle, topic: str, build: Build, *, outcome: str) -> None:
    """Play CodeBuild: the artifact where StartBuild's overrides put it, then its events via SNS."""
    if outcome == "SUCCEEDED":
        aws_clients.client("s3").put_object(
            Bucket="troy-artifacts",
            Key=f"artifacts/{build.id}.zip",
            Body=site_zip({"index.html": b"<h1>shop v1</h1>", "assets/app.3f2a1b9c.js": b"console.log(1)"}),
        )
    for event in codebuild_events(build.codebuild_build_id, outcome=outcome):
        response = post(client, signer.sign(notification(event, topic=topic)))
        assert response.status_code == 200, response.content
        settle()


def test_push_to_live_and_a_failed_build_through_sns(aws, github, signer, api, client, settle, settings):
    s3 = aws_clients.client("s3")
    # The GitHub App's setup flow: Troy's install link, GitHub's redirect to the setup URL, then a
    # worker fetches what the installation covers from the (fake) GitHub.
    settings.TROY_GITHUB_APP_SLUG = "troy-test"
    link = api.get("/api/v1/github/install/").json()["url"]
    state = parse_qs(urlsplit(link).query)["state"][0]
    setup = client.get("/hooks/github/setup/", {"installation_id": "31337", "setup_action": "install", "state": state})
    assert setup.status_code == 200, setup.content
    settle()
    assert list(GithubInstallationRepository.objects.values_list("full_name", flat=True)) == [REPO]

    created = api.post(
        "/api/v1/pipelines/",
        {
            "name": "shop",
            "repository": REPO,
            "branch": "main",
            "provision": True,
            "build": {"install": "npm ci", "build": "npm run build", "test": "npm test", "output_dir": "dist"},
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    pipeline_id = created.json()["id"]
    settle()
    assert Pipeline.objects.get(pk=pipeline_id).status == S.READY_FOR_DEPLOYMENT

    # Deploy request → source in S3 → CodeBuild started with our project.
    answer = api.post(f"/api/v1/pipelines/{pipeline_id}/deploy/", {}, format="json")
    assert answer.status_code == 202, answer.content
    settle()
    build = Build.objects.get(pk=answer.json()["id"])
    assert build.commit_sha == FIRST_SHA
    assert build.codebuild_build_id.startswith("troy-build:")
    [started] = aws_clients.client("codebuild").batch_get_builds(ids=[build.codebuild_build_id])["builds"]
    assert started["projectName"] == "troy-build"
    source = zipfile.ZipFile(
        io.BytesIO(s3.get_object(Bucket="troy-artifacts", Key=f"sources/{build.id}.zip")["Body"].read())
    )
    assert source.namelist() == ["package.json"]

    # A SUCCEEDED notification → the deploy step → files live, success on the commit.
    codebuild_run(client, signer, settle, aws.sns_topic_arn, build, outcome="SUCCEEDED")
    assert Pipeline.objects.get(pk=pipeline_id).status == S.DEPLOYED
    build.refresh_from_db()
    assert build.status == BuildStatus.SUCCEEDED and build.phase == "COMPLETED"
    assert live_body(Pipeline.objects.get(pk=pipeline_id), "index.html") == b"<h1>shop v1</h1>"
    assert [b["state"] for _r, sha, b in github.statuses if sha == FIRST_SHA] == ["pending", "success"]

    # A new commit, a FAILED notification → failed_to_deploy, failure on that commit, site unchanged.
    github.add_commit(REPO, "main", SECOND_SHA, github_zipball(REPO, SECOND_SHA, {"package.json": b"{}"}))
    answer = api.post(f"/api/v1/pipelines/{pipeline_id}/deploy/", {}, format="json")
    assert answer.status_code == 202, answer.content
    settle()
    second = Build.objects.get(pk=answer.json()["id"])
    assert second.commit_sha == SECOND_SHA and second.codebuild_build_id
    codebuild_run(client, signer, settle, aws.sns_topic_arn, second, outcome="FAILED")
    assert Pipeline.objects.get(pk=pipeline_id).status == S.FAILED_TO_DEPLOY
    second.refresh_from_db()
    assert second.status == BuildStatus.FAILED and BUILD_ERROR in second.error
    second_statuses = [b for _r, sha, b in github.statuses if sha == SECOND_SHA]
    assert [b["state"] for b in second_statuses] == ["pending", "failure"]
    assert "npm run build" in second_statuses[-1]["description"]
    assert live_body(Pipeline.objects.get(pk=pipeline_id), "index.html") == b"<h1>shop v1</h1>"
    assert Pipeline.objects.get(pk=pipeline_id).live_build_id == build.id

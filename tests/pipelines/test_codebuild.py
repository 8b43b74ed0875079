"""The CodeBuild flows against moto (S3, CodeBuild) and a fake GitHub over loopback HTTP; botocore's
Stubber where moto is too lenient (it ignores StartBuild's overrides and always answers SUCCEEDED
to BatchGetBuilds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import io
import uuid
import zipfile

from botocore.stub import Stubber
from django.utils import timezone
import pytest
import yaml

from deployment_service import aws as aws_clients
from deployment_service.integrations import codebuild as cb
from pipelines import services
from pipelines.choices import BuildStatus
from pipelines.choices import PipelineStatus as S
from pipelines.flows.codebuild import (
    codebuild_reconcile,
    codebuild_report_commit_status,
    codebuild_start_run,
    codebuild_stop_run,
)
from pipelines.models import Build, Pipeline
from tests.fakes.github_server import FakeGithub, github_zipball
from tests.pipelines.codebuild_support import SHA, new_codebuild_id, running_build, sent

pytestmark = pytest.mark.django_db

REPO = "octo-org/site"
INSTALLATION = 777
APP_ID = "4242"


@pytest.fixture
def github(settings, github_app_key):
    private, public = github_app_key
    fake = FakeGithub(app_id=APP_ID, public_key_pem=public)
    fake.installations[REPO] = INSTALLATION
    fake.add_commit(
        REPO,
        "main",
        SHA,
        github_zipball(
            REPO,
            SHA,
            {
                "index.html": b"<h1>hi</h1>",
                "package.json": b"{}",
                "src/main.js": b"x()",
            },
        ),
    )
    with fake:
        settings.GITHUB_API_URL = fake.api_url
        settings.GITHUB_APP_ID = APP_ID
        settings.GITHUB_APP_PRIVATE_KEY = private
        yield fake


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


def codebuild_stubber() -> Stubber:
    return Stubber(aws_clients.client("codebuild"))


def started_answer(codebuild_build_id: str) -> dict:
    return {
        "build": {
            "id": codebuild_build_id,
            "arn": f"arn:aws:codebuild:us-east-1:123456789012:build/{codebuild_build_id}",
            "buildStatus": "IN_PROGRESS",
            "currentPhase": "QUEUED",
        }
    }


def queued_build(**fields) -> Build:
    """A running automated build whose CodeBuild run has not started (what run_codebuild gets);
    its owner holds the fake GitHub's installation unless ``grant`` says otherwise."""
    fields.setdefault("grant", INSTALLATION)
    build = running_build(commit_sha="", **fields)
    assert build.status == BuildStatus.RUNNING and build.pipeline.status == S.DEPLOYING
    return build


# --- buildspec ------------------------------------------------------------------------------------


def test_the_buildspec_runs_install_build_and_test_and_archives_the_output_directory():
    spec = yaml.safe_load(
        cb.buildspec_for(
            install="npm ci", build="npm run build\nnpm run sitemap", test="npm test", output_dir="site/dist/"
        )
    )
    assert spec["version"] == 0.2
    assert spec["phases"] == {
        "install": {"on-failure": "ABORT", "commands": ["npm ci"]},
        "build": {"on-failure": "ABORT", "commands": ["npm run build", "npm run sitemap"]},
        "post_build": {"commands": ["npm test"]},
    }
    assert spec["artifacts"] == {"base-directory": "site/dist", "files": ["**/*"], "discard-paths": "no"}


def test_without_a_test_command_there_is_no_test_phase_and_odd_commands_stay_literal():
    text = cb.buildspec_for(
        install="", build="echo 'a: b' && [ -d x ] || mkdir -p x # {not yaml}", test="   ", output_dir="."
    )
    spec = yaml.safe_load(text)
    assert spec["phases"] == {
        "build": {"on-failure": "ABORT", "commands": ["echo 'a: b' && [ -d x ] || mkdir -p x # {not yaml}"]}
    }
    assert spec["artifacts"]["base-directory"] == "."


# --- start ----------------------------------------------------------------------------------------


def test_start_downloads_the_source_and_starts_codebuild_with_our_overrides(aws, github, settings, on_commit, broker):
    build = queued_build(
        build_install="npm ci",
        build_command="npm run build",
        build_test="npm test",
        build_output_dir="dist",
        github_installation_id=INSTALLATION,
    )
    cb_id = new_codebuild_id()
    expected_buildspec = (
        "version: 0.2\n"
        "phases:\n"
        "  install:\n    on-failure: ABORT\n    commands:\n    - npm ci\n"
        "  build:\n    on-failure: ABORT\n    commands:\n    - npm run build\n"
        "  post_build:\n    commands:\n    - npm test\n"
        "artifacts:\n  base-directory: dist\n  files:\n  - '**/*'\n  discard-paths: 'no'\n"
    )
    with codebuild_stubber() as stub:
        stub.add_response(
            "start_build",
            started_answer(cb_id),
            expected_params={
                "projectName": "troy-build",
                "sourceTypeOverride": "S3",
                "sourceLocationOverride": f"troy-artifacts/sources/{build.id}.zip",
                "buildspecOverride": expected_buildspec,
                "artifactsOverride": {
                    "type": "S3",
                    "location": "troy-artifacts",
                    "path": "artifacts",
                    "name": f"{build.id}.zip",
                    "namespaceType": "NONE",
                    "packaging": "ZIP",
                    "overrideArtifactName": False,
                    "encryptionDisabled": False,
                },
                "idempotencyToken": str(build.id),
                "timeoutInMinutesOverride": settings.TROY_CODEBUILD_TIMEOUT_MINUTES,
                # The only variable: no token or key (CodeBuild shows plaintext variables in its events).
                "environmentVariablesOverride": [
                    {"name": "TROY_BUILD_ID", "value": str(build.id), "type": "PLAINTEXT"}
                ],
            },
        )
        on_commit(codebuild_start_run, build_id=build.id)
        stub.assert_no_pending_responses()

    build.refresh_from_db()
    assert build.status == BuildStatus.RUNNING
    assert build.codebuild_build_id == cb_id
    assert build.commit_sha == SHA
    assert build.artifact_key == f"artifacts/{build.id}.zip"
    assert build.logs_url.startswith(
        "https://us-east-1.console.aws.amazon.com/codesuite/codebuild/projects/troy-build/"
    )
    assert build.phase == "SUBMITTED"
    source = aws_clients.client("s3").get_object(Bucket="troy-artifacts", Key=f"sources/{build.id}.zip")
    names = zipfile.ZipFile(io.BytesIO(source["Body"].read())).namelist()
    assert "index.html" in names and "src/main.js" in names  # the top-level folder is gone
    assert source["ContentType"] == "application/zip" and source["Metadata"]["commit-sha"] == SHA
    assert sent(broker, "report_commit_status") == [(str(build.id),)]


def test_start_against_moto_records_the_build_and_is_idempotent(aws, github, on_commit):
    build = queued_build(github_installation_id=INSTALLATION)

    on_commit(codebuild_start_run, build_id=build.id)
    build.refresh_from_db()
    first = build.codebuild_build_id
    assert first.startswith("troy-build:")
    on_commit(codebuild_start_run, build_id=build.id)  # a duplicate message

    build.refresh_from_db()
    assert build.codebuild_build_id == first
    assert aws_clients.client("codebuild").list_builds_for_project(projectName="troy-build")["ids"] == [first]
    assert len(github.on("download")) == 1


def test_start_uses_the_owners_installation_and_never_asks_github_whose_the_repository_is(aws, github, on_commit):
    build = queued_build(github_installation_id=None)
    on_commit(codebuild_start_run, build_id=build.id)
    build.refresh_from_db()
    assert build.codebuild_build_id and build.commit_sha == SHA
    assert not github.on("api", "GET", f"/repos/{REPO}/installation$")
    assert Pipeline.objects.get(pk=build.pipeline_id).github_installation_id == INSTALLATION  # remembered


def test_a_recorded_installation_the_owner_does_not_hold_is_not_used(aws, github, on_commit):
    """B's pipeline once learnt A's installation id (the old push handling): it must not build with it."""
    build = queued_build(github_installation_id=INSTALLATION)
    services.installation_assign(installation_id=INSTALLATION, user_id=None)  # an operator unlinks it
    on_commit(codebuild_start_run, build_id=build.id)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED and not build.codebuild_build_id
    assert build.error.startswith(
        "Download Source failed: The pipeline's owner holds no active GitHub App installation"
    )
    assert not github.on("api", "GET", "/zipball/")
    assert not github.on("download")


def test_an_installation_removed_on_github_fails_the_build_saying_so(aws, github, on_commit):
    build = queued_build(github_installation_id=INSTALLATION)
    services.installation_record(installation_id=INSTALLATION, removed=True)
    on_commit(codebuild_start_run, build_id=build.id)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED and "uninstalled or suspended" in build.error
    assert not github.on("api", "GET", "/zipball/")


def test_start_without_a_github_app_fails_the_build_saying_what_to_set(aws, settings, on_commit, broker):
    settings.GITHUB_APP_ID = ""
    settings.GITHUB_APP_PRIVATE_KEY = ""
    build = queued_build(github_installation_id=None)

    on_commit(codebuild_start_run, build_id=build.id)

    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert build.pipeline.status == S.FAILED_TO_DEPLOY
    assert build.error.startswith("Download Source failed: The GitHub App is not configured")
    assert "GITHUB_APP_ID" in build.error
    assert not build.codebuild_build_id
    assert aws_clients.client("codebuild").list_builds_for_project(projectName="troy-build")["ids"] == []


def test_an_unknown_ref_fails_the_build_with_githubs_answer(aws, github, on_commit):
    build = queued_build(github_installation_id=INSTALLATION)
    Build.objects.filter(pk=build.id).update(ref="no-such-branch")

    on_commit(codebuild_start_run, build_id=build.id)

    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert build.error.startswith("Download Source failed:")
    assert "GitHub answered 422" in build.error and "no-such-branch" in build.error


def test_a_startbuild_error_fails_the_build_and_reports_failure_on_the_commit(aws, github, on_commit, broker):
    build = queued_build(github_installation_id=INSTALLATION)
    with codebuild_stubber() as stub:
        stub.add_client_error(
            "start_build",
            service_error_code="AccountLimitExceededException",
            service_message="Cannot have more than 1 builds in queue for the account",
            expected_params=None,
        )
        on_commit(codebuild_start_run, build_id=build.id)

    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert build.error == (
        "StartBuild failed: StartBuild: AccountLimitExceededException: "
        "Cannot have more than 1 builds in queue for the account"
    )
    assert build.commit_sha == SHA  # Download Source had resolved it
    assert sent(broker, "report_commit_status") == [(str(build.id),)]
    codebuild_report_commit_status(build_id=build.id)
    [(repo, sha, body)] = github.statuses
    assert (repo.lower(), sha, body["state"]) == (REPO, SHA, "failure")
    assert "AccountLimitExceededException" in body["description"]


def test_a_build_cancelled_before_codebuild_started_never_starts(aws, github, on_commit):
    build = queued_build(github_installation_id=INSTALLATION)
    Build.objects.filter(pk=build.id).update(cancel_requested=True)

    on_commit(codebuild_start_run, build_id=build.id)

    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert build.error == "Cancelled on request before CodeBuild started."
    assert github.on("download") == []


def test_start_leaves_builds_that_are_not_running_alone(aws, github, on_commit):
    build = queued_build(github_installation_id=INSTALLATION)
    from pipelines.services import deployment_fail

    deployment_fail(build_id=build.id, error="reaped")
    on_commit(codebuild_start_run, build_id=build.id)
    build.refresh_from_db()
    assert build.error == "reaped" and not build.codebuild_build_id
    assert github.requests == []


# --- stop -----------------------------------------------------------------------------------------


def _cancel(build: Build) -> None:
    from pipelines import services

    services.build_cancel(build_id=build.id, actor="alice")


def test_cancel_stops_codebuild_and_the_stopped_answer_fails_the_build_as_cancelled(aws, on_commit, broker):
    cb_id = new_codebuild_id()
    build = running_build(codebuild_build_id=cb_id)
    on_commit(_cancel, build)
    assert sent(broker, "stop_codebuild") == [(str(build.id),)]
    stopped = {
        "build": {
            "id": cb_id,
            "buildStatus": "STOPPED",
            "projectName": "troy-build",
            "currentPhase": "COMPLETED",
            "phases": [
                {"phaseType": "BUILD", "phaseStatus": "STOPPED", "startTime": datetime(2026, 11, 1, 16, 0, tzinfo=UTC)}
            ],
        }
    }
    with codebuild_stubber() as stub:
        stub.add_response("stop_build", stopped, expected_params={"id": cb_id})
        result = on_commit(codebuild_stop_run, build_id=build.id)

    assert result.startswith("failed")
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED and build.pipeline.status == S.FAILED_TO_DEPLOY
    assert build.error == "Cancelled by alice: CodeBuild stopped the build in BUILD."


def test_a_build_still_stopping_waits_for_its_event(aws, on_commit):
    cb_id = new_codebuild_id()
    build = running_build(codebuild_build_id=cb_id)
    on_commit(_cancel, build)
    with codebuild_stubber() as stub:
        stub.add_response(
            "stop_build", {"build": {"id": cb_id, "buildStatus": "IN_PROGRESS"}}, expected_params={"id": cb_id}
        )
        assert on_commit(codebuild_stop_run, build_id=build.id).startswith("stop asked")
    build.refresh_from_db()
    assert build.status == BuildStatus.RUNNING


def test_stop_of_a_build_codebuild_does_not_know_fails_it(aws, on_commit):
    cb_id = new_codebuild_id()
    build = running_build(codebuild_build_id=cb_id)
    on_commit(_cancel, build)
    with codebuild_stubber() as stub:
        stub.add_client_error("stop_build", service_error_code="ResourceNotFoundException", service_message="nope")
        on_commit(codebuild_stop_run, build_id=build.id)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert "does not know" in build.error


def test_stop_against_moto(aws, github, on_commit):
    build = queued_build(github_installation_id=INSTALLATION)
    on_commit(codebuild_start_run, build_id=build.id)
    on_commit(_cancel, build)
    on_commit(codebuild_stop_run, build_id=build.id)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert build.error.startswith("Cancelled by alice")


def test_a_cancel_while_startbuild_runs_stops_the_build_once_it_has_an_id(aws, github, on_commit, broker, monkeypatch):
    build = queued_build(github_installation_id=INSTALLATION)
    real_start = cb.start_build

    def start_then_cancel(**kwargs):
        answer = real_start(**kwargs)
        on_commit(_cancel, build)  # the user cancels while StartBuild is answering
        return answer

    monkeypatch.setattr(cb, "start_build", start_then_cancel)
    broker.flush_all()
    on_commit(codebuild_start_run, build_id=build.id)

    assert (str(build.id),) in sent(broker, "stop_codebuild")
    build.refresh_from_db()
    assert build.codebuild_build_id and build.cancel_requested


# --- reconcile ------------------------------------------------------------------------------------


def _age(build: Build, seconds: int) -> None:
    Build.objects.filter(pk=build.id).update(started_at=timezone.now() - timedelta(seconds=seconds))


def test_the_reconciler_applies_batchgetbuilds_answers_like_events(aws, settings, on_commit, broker, monkeypatch):
    settings.TROY_RECONCILE_AFTER_SECONDS = 600
    monkeypatch.setattr(cb, "BATCH_GET_LIMIT", 2)
    failed_id, running_id, gone_id, young_id = (new_codebuild_id() for _ in range(4))
    failed = running_build(codebuild_build_id=failed_id)
    running = running_build(codebuild_build_id=running_id)
    gone = running_build(codebuild_build_id=gone_id)
    young = running_build(codebuild_build_id=young_id)
    for seconds, old in ((603, failed), (602, running), (601, gone)):
        _age(old, seconds)
    t0 = datetime(2026, 11, 1, 16, 0, tzinfo=UTC)
    with codebuild_stubber() as stub:
        stub.add_response(
            "batch_get_builds",
            {
                "builds": [
                    {
                        "id": failed_id,
                        "arn": f"arn:aws:codebuild:us-east-1:123456789012:build/{failed_id}",
                        "projectName": "troy-build",
                        "buildStatus": "FAILED",
                        "currentPhase": "COMPLETED",
                        "logs": {
                            "deepLink": "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logEvent:x"
                        },
                        "phases": [
                            {
                                "phaseType": "INSTALL",
                                "phaseStatus": "SUCCEEDED",
                                "startTime": t0,
                                "endTime": t0 + timedelta(seconds=30),
                                "durationInSeconds": 30,
                            },
                            {
                                "phaseType": "BUILD",
                                "phaseStatus": "FAILED",
                                "startTime": t0 + timedelta(seconds=30),
                                "endTime": t0 + timedelta(seconds=90),
                                "durationInSeconds": 60,
                                "contexts": [
                                    {
                                        "statusCode": "COMMAND_EXECUTION_ERROR",
                                        "message": "Error while executing command: npm run build. Reason: exit status 2",
                                    }
                                ],
                            },
                            {"phaseType": "COMPLETED", "startTime": t0 + timedelta(seconds=95)},
                        ],
                    },
                    {
                        "id": running_id,
                        "projectName": "troy-build",
                        "buildStatus": "IN_PROGRESS",
                        "currentPhase": "BUILD",
                        "phases": [
                            {
                                "phaseType": "INSTALL",
                                "phaseStatus": "SUCCEEDED",
                                "startTime": t0,
                                "endTime": t0 + timedelta(seconds=30),
                                "durationInSeconds": 30,
                            },
                            {"phaseType": "BUILD", "startTime": t0 + timedelta(seconds=30)},
                        ],
                    },
                ]
            },
            expected_params={"ids": [failed_id, running_id]},
        )
        stub.add_response(
            "batch_get_builds", {"builds": [], "buildsNotFound": [gone_id]}, expected_params={"ids": [gone_id]}
        )
        results = on_commit(codebuild_reconcile)
        stub.assert_no_pending_responses()

    assert len(results) == 3
    failed.refresh_from_db()
    assert failed.status == BuildStatus.FAILED and failed.pipeline.status == S.FAILED_TO_DEPLOY
    assert failed.error == (
        "CodeBuild build FAILED in BUILD. COMMAND_EXECUTION_ERROR: Error while executing "
        "command: npm run build. Reason: exit status 2"
    )
    assert {p["phase"]: p["duration"] for p in failed.phases}["BUILD"] == 60
    running.refresh_from_db()
    assert running.status == BuildStatus.RUNNING and running.phase == "BUILD"
    assert [p["phase"] for p in running.phases] == ["INSTALL", "BUILD"]
    gone.refresh_from_db()
    assert gone.status == BuildStatus.FAILED and "does not know" in gone.error
    young.refresh_from_db()
    assert young.status == BuildStatus.RUNNING and young.phases == []


def test_the_reconciler_on_moto_deploys_a_succeeded_build_once(aws, github, settings, on_commit, broker):
    settings.TROY_RECONCILE_AFTER_SECONDS = 60
    build = queued_build(github_installation_id=INSTALLATION)
    on_commit(codebuild_start_run, build_id=build.id)
    _age(build, 61)

    on_commit(codebuild_reconcile)
    assert on_commit(codebuild_reconcile) == []  # its outcome is known: not asked again

    build.refresh_from_db()
    assert build.phase == "COMPLETED" and build.status == BuildStatus.RUNNING
    assert sent(broker, "deploy_build").count((str(build.id),)) == 1


def test_the_reconciler_with_nothing_to_ask_makes_no_call(aws):
    with codebuild_stubber() as stub:  # any call would fail: nothing is stubbed
        assert codebuild_reconcile() == []
        stub.assert_no_pending_responses()


# --- commit statuses ------------------------------------------------------------------------------


def test_commit_status_goes_pending_then_success_with_the_site_link(aws, github, on_commit):
    build = queued_build(github_installation_id=INSTALLATION)
    on_commit(codebuild_start_run, build_id=build.id)
    assert codebuild_report_commit_status(build_id=build.id) == "reported pending"
    from pipelines.services import deployment_finish

    deployment_finish(build_id=build.id)
    assert codebuild_report_commit_status(build_id=build.id) == "reported success"

    states = [body["state"] for _repo, _sha, body in github.statuses]
    assert states == ["pending", "success"]
    site = Pipeline.objects.get(pk=build.pipeline_id).site_url
    assert github.statuses[-1][2]["target_url"] == site


def test_commit_status_is_skipped_without_a_github_app(settings):
    settings.GITHUB_APP_ID = ""
    build = running_build()
    assert codebuild_report_commit_status(build_id=build.id).startswith("skipped")
    assert codebuild_report_commit_status(build_id=uuid.uuid4()).startswith("skipped")

"""Download Source under faults: GitHub 5xx and rate limits on the token and the archive, S3
throttling on the upload. Transient ones are retried into a started CodeBuild build; the build
fails only on a permanent answer or when the retries are used up, with the last error."""

from __future__ import annotations

import pytest

from deployment_service import aws as aws_clients
from pipelines import tasks
from pipelines.choices import BuildStatus
from pipelines.choices import PipelineStatus as S
from tests.pipelines import test_codebuild as codebuild_tests
from tests.retry_support import AwsFaults, run_like_dramatiq, throttling

github = codebuild_tests.github  # the fake GitHub App fixture, with REPO's commit SHA
INSTALLATION = codebuild_tests.INSTALLATION
queued_build = codebuild_tests.queued_build

pytestmark = pytest.mark.django_db

TOKEN_PATH = r"/access_tokens$"
ARCHIVE_PATH = r"/zipball/"


def _codebuild_ids() -> list[str]:
    return aws_clients.client("codebuild").list_builds_for_project(projectName="troy-build")["ids"]


@pytest.mark.parametrize(
    "path, status, times",
    [
        (TOKEN_PATH, 502, 4),  # more than the HTTP client's own three tries: reaches Dramatiq's retry
        (TOKEN_PATH, 429, 1),
        (ARCHIVE_PATH, 500, 2),
        (ARCHIVE_PATH, 503, 4),
    ],
)
def test_a_github_outage_during_download_source_is_retried_into_a_started_build(
    aws, github, broker, path, status, times
):
    build = queued_build(github_installation_id=INSTALLATION)
    github.fail_next(path, times=times, status=status)

    retries = run_like_dramatiq(tasks.run_codebuild, str(build.id))

    build.refresh_from_db()
    assert retries >= 1
    assert build.status == BuildStatus.RUNNING and build.error == ""
    assert build.codebuild_build_id and _codebuild_ids() == [build.codebuild_build_id]
    assert build.pipeline.status == S.DEPLOYING


def test_a_throttled_source_upload_is_retried(aws, github, broker, monkeypatch):
    build = queued_build(github_installation_id=INSTALLATION)
    faults = AwsFaults().install(monkeypatch)
    faults.fail("PutObject", times=1, error=throttling)

    assert run_like_dramatiq(tasks.run_codebuild, str(build.id)) == 1

    build.refresh_from_db()
    assert build.status == BuildStatus.RUNNING and build.codebuild_build_id
    assert len(github.on("download")) == 2  # the retry starts again from the download


def test_a_github_outage_longer_than_the_retries_fails_the_build_with_the_last_error(aws, github, broker):
    build = queued_build(github_installation_id=INSTALLATION)
    github.fail_next(TOKEN_PATH, times=1000, status=500)

    assert run_like_dramatiq(tasks.run_codebuild, str(build.id)) == tasks.RETRY.max_retries

    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert build.error.startswith("Download Source failed: GitHub answered 500")
    assert build.pipeline.status == S.FAILED_TO_DEPLOY
    assert _codebuild_ids() == []


def test_a_permanent_github_answer_fails_the_build_at_once(aws, github, broker):
    build = queued_build(github_installation_id=INSTALLATION)
    github.fail_next(ARCHIVE_PATH, times=1, status=404)

    assert run_like_dramatiq(tasks.run_codebuild, str(build.id)) == 0

    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert build.error.startswith("Download Source failed: GitHub answered 404")

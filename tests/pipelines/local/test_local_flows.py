"""The pieces of the CodeBuild flows that a local source or the local builder changes, one at a
time: Download Source by git archive, the local build id that StopBuild and the reconciler leave
alone, and a local source refused once the setting is off."""

from __future__ import annotations

import io
import zipfile

import pytest

from deployment_service import artifact_keys, aws
from deployment_service.integrations import local_builder as lb
from pipelines import services
from pipelines.choices import BuildKind, BuildStatus, BuildTrigger
from pipelines.choices import PipelineStatus as S
from pipelines.flows.codebuild import codebuild_reconcile, codebuild_start_run, codebuild_stop_run
from pipelines.models import Build
from tests.factories import put_in_status
from tests.pipelines.local.support import make_repo

pytestmark = pytest.mark.django_db


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "site", {"index.html": "<h1>hi</h1>\n", "sub/page.html": "page\n"})


def _running_build(user, repo, settings) -> Build:
    settings.TROY_LOCAL_SOURCES = True
    pipeline = services.pipeline_create(owner=user, name="hello", repository=repo.url, build_command="true", actor="a")
    put_in_status(pipeline, S.READY_FOR_DEPLOYMENT)
    build = services.build_request(
        pipeline_id=pipeline.id, kind=BuildKind.AUTOMATED, trigger=BuildTrigger.MANUAL, actor="a", ref="main"
    )
    services.deployment_start(pipeline_id=pipeline.id)
    return Build.objects.get(pk=build.id)


def _source_files(build: Build) -> dict[str, bytes]:
    from django.conf import settings

    body = aws.client("s3").get_object(Bucket=settings.TROY_ARTIFACT_BUCKET, Key=artifact_keys.source_key(build.id))
    with zipfile.ZipFile(io.BytesIO(body["Body"].read())) as archive:
        return {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}


def test_download_source_of_a_local_source_is_a_git_archive_then_codebuild_starts(user, repo, settings, aws, broker):
    settings.TROY_BUILDER = "codebuild"
    build = _running_build(user, repo, settings)
    codebuild_start_run(build_id=build.id)
    build.refresh_from_db()
    assert build.commit_sha == repo.head()  # the manual build's ref resolved by git
    assert _source_files(build) == {"index.html": b"<h1>hi</h1>\n", "sub/page.html": b"page\n"}
    assert build.codebuild_build_id.startswith(f"{settings.TROY_CODEBUILD_PROJECT}:")  # StartBuild, as for GitHub


def test_the_local_builder_takes_the_build_instead_of_startbuild(
    user, repo, settings, aws, broker, django_capture_on_commit_callbacks
):
    settings.TROY_BUILDER = "local"
    build = _running_build(user, repo, settings)
    with django_capture_on_commit_callbacks(execute=True):
        codebuild_start_run(build_id=build.id)
    build.refresh_from_db()
    assert build.codebuild_build_id == lb.local_build_id(build.id)
    assert build.artifact_key == artifact_keys.build_artifact_key(build.id)
    queued = [m.actor_name for q in broker.queues.values() for m in map(_decode, q.queue)]
    assert "run_local_build" in queued


def _decode(raw):
    from dramatiq import Message

    return Message.decode(raw)


def test_a_local_source_fails_at_download_source_once_the_setting_is_off(user, repo, settings, aws, broker):
    build = _running_build(user, repo, settings)
    settings.TROY_LOCAL_SOURCES = False
    codebuild_start_run(build_id=build.id)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert "Download Source failed: Local git sources are turned off" in build.error


def test_stop_and_the_reconciler_leave_a_local_build_to_the_local_builder(user, repo, settings, aws, broker):
    settings.TROY_BUILDER = "local"
    build = _running_build(user, repo, settings)
    codebuild_start_run(build_id=build.id)
    services.build_cancel(build_id=build.id, actor="alice")
    assert codebuild_stop_run(build_id=build.id).startswith("stop asked: the local builder")
    settings.TROY_RECONCILE_AFTER_SECONDS = 0
    assert codebuild_reconcile() == []  # nothing asked of CodeBuild, nothing failed
    assert Build.objects.get(pk=build.id).status == BuildStatus.RUNNING

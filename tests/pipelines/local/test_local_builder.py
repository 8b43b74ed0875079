"""The local builder end to end on the dev run's shape: a real git repository, the poller, a
Dramatiq worker on the StubBroker, moto for S3, real subprocesses for the phases, and the
production flow after them (the report path, the deploy step, the pointer)."""

from __future__ import annotations

import os
from pathlib import Path
import threading
import time

from django.conf import settings
import pytest

from deployment_service import artifact_keys, aws
from deployment_service.integrations import local_builder as lb
from edge.manifest import blob_key, manifest_key
from edge.manifest import loads as manifest_loads
from pipelines import services
from pipelines.choices import BuildStatus
from pipelines.choices import PipelineStatus as S
from pipelines.flows.local_sources import local_sources_poll
from pipelines.models import Build, Pipeline
from tests.factories import put_in_status
from tests.pipelines.local.support import make_repo

pytestmark = pytest.mark.django_db(transaction=True)

ENDED = (BuildStatus.SUCCEEDED, BuildStatus.FAILED, BuildStatus.CANCELLED)


@pytest.fixture
def local_flow(settings, aws):
    settings.TROY_LOCAL_SOURCES = True
    settings.TROY_BUILDER = "local"
    settings.TROY_LOCAL_BUILD_PHASE_SECONDS = 60
    return settings


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "site", {"index.html": "<h1>hello</h1>\n", "README.md": "a site\n"})


def _pipeline(user, repo, **fields) -> Pipeline:
    settings = {
        "build_install": 'echo "installing with $GREETING"',
        "build_command": 'mkdir -p dist && cp index.html dist/ && printf %s "$GREETING" > dist/greeting.txt',
        "build_output_dir": "dist",
        **fields,
    }
    created = services.pipeline_create(owner=user, name="hello", repository=repo.url, actor="alice", **settings)
    return put_in_status(created, S.READY_FOR_DEPLOYMENT)


def _push(repo, text: str = "<h1>hello again</h1>\n") -> Build:
    """A commit, then the scheduler's poll: the build it queued."""
    repo.commit({"index.html": text})
    [line] = local_sources_poll()
    assert "queued" in line, line
    return Build.objects.latest("number")


def _wait_for_end(broker, worker, build: Build, timeout: float = 60) -> Build:
    """The build once it ended and its pipeline settled (read afresh each time: the worker's
    threads write the rows meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = Build.objects.get(pk=build.pk)
        pipeline = Pipeline.objects.get(pk=build.pipeline_id)
        if current.status in ENDED and pipeline.status not in (S.QUEUED, S.DEPLOYING):
            broker.join("troy", timeout=10_000, fail_fast=False)
            worker.join()
            return Build.objects.get(pk=build.pk)
        time.sleep(0.1)
    raise AssertionError(f"build still {current.status} in phase {current.phase} after {timeout} s")


def _phase_statuses(build: Build) -> dict[str, str]:
    return {p["phase"]: p["status"] for p in build.phases if p.get("status")}


def _served(pipeline: Pipeline, build: Build) -> dict[str, bytes]:
    """What the edge serves for the build: its manifest's paths, read from their blobs."""
    s3 = aws.client("s3")
    bucket = settings.TROY_LIVE_BUCKET
    raw = s3.get_object(Bucket=bucket, Key=manifest_key(str(pipeline.id), str(build.id)))["Body"].read()
    return {
        path: s3.get_object(Bucket=bucket, Key=blob_key(str(pipeline.id), entry.key))["Body"].read()
        for path, entry in manifest_loads(raw).files.items()
    }


def test_a_commit_is_built_locally_and_deployed(local_flow, user, repo, broker, worker):
    pipeline = _pipeline(user, repo)
    services.env_variable_set(
        pipeline_id=pipeline.id, name="GREETING", value="hi from a secret", secret=True, actor="a"
    )
    build = _wait_for_end(broker, worker, _push(repo))

    assert build.status == BuildStatus.SUCCEEDED, build.error
    assert build.codebuild_build_id == lb.local_build_id(build.id)
    assert build.commit_sha == repo.head()
    statuses = _phase_statuses(build)
    assert [statuses.get(p) for p in ("DOWNLOAD_SOURCE", "INSTALL", "BUILD", "UPLOAD_ARTIFACTS")] == ["SUCCEEDED"] * 4
    pipeline = Pipeline.objects.get(pk=pipeline.pk)
    assert pipeline.status == S.DEPLOYED
    assert pipeline.live_build_id == build.id
    # The artifact went where CodeBuild puts it, and the deploy step stored what the build made.
    assert aws.client("s3").head_object(
        Bucket=local_flow.TROY_ARTIFACT_BUCKET, Key=artifact_keys.build_artifact_key(build.id)
    )
    served = _served(pipeline, build)
    assert served["index.html"] == b"<h1>hello again</h1>\n"
    assert served["greeting.txt"] == b"hi from a secret"  # the secret reached the build's environment
    # The output was streamed into the build's log, the secret redacted there.
    text, _next, complete = services.build_log_read(build_id=build.id, offset=0)
    assert complete
    assert "Running command mkdir -p dist" in text
    assert "installing with ***" in text
    assert "hi from a secret" not in text


def test_a_failing_test_phase_fails_the_build_naming_the_phase(local_flow, user, repo, broker, worker):
    pipeline = _pipeline(user, repo, build_test="echo checking; test -f dist/missing.html")
    build = _wait_for_end(broker, worker, _push(repo))

    assert build.status == BuildStatus.FAILED
    assert "Local build FAILED in Test (POST_BUILD)" in build.error
    assert "test -f dist/missing.html" in build.error  # the command that failed, as CodeBuild says it
    assert "Last lines of the log:" in build.error and "checking" in build.error  # the log's tail
    assert _phase_statuses(build)["POST_BUILD"] == "FAILED"
    assert "UPLOAD_ARTIFACTS" not in _phase_statuses(build)  # a red test never deploys
    pipeline = Pipeline.objects.get(pk=pipeline.pk)
    assert pipeline.status == S.FAILED_TO_DEPLOY
    assert pipeline.live_build_id is None


def test_a_phase_past_its_time_limit_is_killed_and_the_build_times_out(local_flow, user, repo, broker, worker):
    local_flow.TROY_LOCAL_BUILD_PHASE_SECONDS = 1
    _pipeline(user, repo, build_command="sleep 30")
    started = time.monotonic()
    build = _wait_for_end(broker, worker, _push(repo))

    assert time.monotonic() - started < 20
    assert build.status == BuildStatus.FAILED
    assert "The local builder timed out in BUILD. BUILD_TIMED_OUT: the phase ran longer than 1 seconds" in build.error
    assert _phase_statuses(build)["BUILD"] == "TIMED_OUT"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def test_a_cancel_kills_the_running_phase_and_everything_it_started(local_flow, user, repo, broker, worker, tmp_path):
    pid_file = tmp_path / "child.pid"
    # The phase starts a child of its own and waits: the cancel must take the whole group.
    _pipeline(user, repo, build_command=f"sleep 300 & echo $! > {pid_file}; wait")
    build = _push(repo)
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the build phase never started"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert _alive(child)

    services.build_cancel(build_id=build.id, actor="alice")
    build = _wait_for_end(broker, worker, build)

    assert build.status == BuildStatus.FAILED
    assert build.error.startswith("Cancelled by alice: The local builder stopped the build in BUILD.")
    assert _phase_statuses(build)["BUILD"] == "STOPPED"
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    assert Pipeline.objects.get(pk=build.pipeline_id).status == S.FAILED_TO_DEPLOY


def test_a_stopping_worker_kills_the_running_phase(tmp_path):
    """Worker shutdown (LocalBuildsShutdown → stop_all) ends a running phase as STOPPED."""
    results: list[lb.PhaseResult] = []
    phase = lb.LocalPhase(phase="BUILD", commands=["sleep 300"])
    thread = threading.Thread(
        target=lambda: results.append(
            lb.run_phase(
                phase=phase,
                cwd=str(tmp_path),
                environ=lb.build_environ(source_dir=str(tmp_path), build_id="b", values={}),
                timeout=60,
                on_output=lambda text: None,
                should_stop=lambda: False,
            )
        )
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not lb._running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert lb.stop_all() == 1
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert (results[0].status, results[0].context) == ("STOPPED", ["BUILD_STOPPED: the worker stopped"])


def test_the_phase_environment_is_the_pipelines_not_the_workers(tmp_path, monkeypatch):
    monkeypatch.setenv("DJANGO_SECRET_KEY", "worker-only")
    environ = lb.build_environ(source_dir=str(tmp_path), build_id="b", values={"API_KEY": "k"})
    assert "DJANGO_SECRET_KEY" not in environ
    assert not any(name.startswith("AWS_") for name in environ)
    assert (environ["API_KEY"], environ["CODEBUILD_SRC_DIR"], environ["CI"]) == ("k", str(tmp_path), "true")
    assert os.environ["DJANGO_SECRET_KEY"] == "worker-only"


def test_a_phase_that_closes_its_output_is_still_timed(tmp_path):
    phase = lb.LocalPhase(phase="BUILD", commands=["exec >/dev/null 2>&1; sleep 30"])
    started = time.monotonic()
    result = lb.run_phase(
        phase=phase,
        cwd=str(tmp_path),
        environ=lb.build_environ(source_dir=str(tmp_path), build_id="b", values={}),
        timeout=1,
        on_output=lambda text: None,
        should_stop=lambda: False,
    )
    assert result.status == "TIMED_OUT"
    assert time.monotonic() - started < 10

"""``troy logs NAME [BUILD] [--follow]`` against the live API: the newest build by default, a
build by number, following until the log is complete, and the build's outcome as the exit code."""

from __future__ import annotations

import _thread
import threading
import time

from django.db import connection
import pytest

from pipelines import services
from pipelines.models import Build
from tests.pipelines.codebuild_support import running_build

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "cli-visible-nowhere-42"


@pytest.fixture
def build(user, broker) -> Build:
    return running_build(owner=user, name="docs")


def _later(work, delay: float = 0.4):
    """Run ``work`` in a thread after ``delay`` seconds (the build writing while the CLI follows)."""

    def run():
        try:
            time.sleep(delay)
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _follow(troy, *argv: str):
    watchdog = threading.Timer(30, _thread.interrupt_main)  # Ctrl-C if the follow never ends
    watchdog.start()
    try:
        return troy("logs", *argv, "--follow", "--interval", "0.1")
    finally:
        watchdog.cancel()


def test_prints_the_newest_builds_log_or_the_one_asked_for(troy, build):
    services.build_log_append(build_id=build.id, text="first build\n")
    services.deployment_fail(build_id=build.id, error="boom")
    newer = services.build_request(
        pipeline_id=build.pipeline_id, kind="automated", trigger="manual", actor="alice", ref="main"
    )
    services.build_log_append(build_id=newer.id, text="second build\n")

    newest = troy("logs", "docs")
    assert newest.code == 0, newest
    assert newest.out == "second build\n"
    by_number = troy("logs", "docs", "1")
    assert by_number.code == 0 and by_number.out == "first build\n"
    by_id = troy("logs", "docs", str(build.id), "--json")
    assert by_id.json()["log"] == "first build\n" and by_id.json()["build"]["number"] == 1


def test_follow_streams_until_the_log_is_complete_and_exits_0_when_the_build_succeeded(troy, build):
    services.build_log_append(build_id=build.id, text="[Container] Entering phase INSTALL\n")

    def finish():
        services.build_log_append(build_id=build.id, text="[Container] Entering phase BUILD\n")
        time.sleep(0.3)
        services.build_log_append(build_id=build.id, text="built 3 pages\n")
        services.build_log_finish(build_id=build.id)
        time.sleep(0.3)  # the deploy step runs after the log is complete
        services.deployment_finish(build_id=build.id, stats={})

    writer = _later(finish)
    result = _follow(troy, "docs")
    writer.join()
    assert result.code == 0, result
    assert result.out == "[Container] Entering phase INSTALL\n[Container] Entering phase BUILD\nbuilt 3 pages\n"
    assert "following docs #1" in result.err and "Build #1 of docs succeeded." in result.err


def test_follow_exits_1_with_the_error_and_the_logs_last_lines_when_the_build_failed(troy, build):
    services.env_variable_set(pipeline_id=build.pipeline_id, name="TOKEN", value=SECRET, secret=True, actor="a")

    def fail():
        services.build_log_append(build_id=build.id, text=f"npm ERR! auth {SECRET} rejected\n")
        services.deployment_fail(build_id=build.id, error="CodeBuild build FAILED in Build (BUILD).")
        services.build_log_finish(build_id=build.id)

    writer = _later(fail)
    result = _follow(troy, "docs", "1")
    writer.join()
    assert result.code == 1, result
    assert result.out == "npm ERR! auth *** rejected\n"
    assert "Build #1 of docs failed: CodeBuild build FAILED in Build (BUILD)." in result.err
    assert "Last lines of the log:\nnpm ERR! auth *** rejected" in result.err
    assert SECRET not in result.out + result.err


def test_a_pipeline_without_builds_and_someone_elses_build(troy, user, other_user, broker):
    from tests.factories import PipelineFactory

    PipelineFactory(owner=user, name="empty")
    result = troy("logs", "empty")
    assert result.code == 1 and "empty has no builds yet" in result.err
    theirs = running_build(owner=other_user, name="theirs")
    result = troy("logs", "empty", str(theirs.id))
    assert result.code == 1 and "not_found" in result.err
    assert troy("logs", "empty", "seven").code == 1

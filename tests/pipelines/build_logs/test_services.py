"""The build log service: append (redacted, chunked, bounded), read by offset, tail, finish, and
a failed build's error ending with the log's last lines."""

from __future__ import annotations

import uuid

import pytest

from pipelines import services
from pipelines.choices import BuildKind, BuildStatus, BuildTrigger
from pipelines.exceptions import BuildNotFound, InvalidLogOffset
from pipelines.models import Build, BuildLog, BuildLogChunk
from pipelines.services import build_logs
from tests.factories import PipelineFactory
from tests.pipelines.codebuild_support import running_build

pytestmark = pytest.mark.django_db

SECRET = "sk_live_5f3c9a1e77"


@pytest.fixture
def build(django_capture_on_commit_callbacks) -> Build:
    pipeline = PipelineFactory()
    return Build.objects.create(pipeline=pipeline, number=1, kind=BuildKind.AUTOMATED, trigger=BuildTrigger.PUSH)


def test_append_returns_the_new_size_and_read_walks_the_offsets(build):
    assert services.build_log_append(build_id=build.id, text="one\n") == 4
    assert services.build_log_append(build_id=build.id, text="two\nthree\n") == 14
    assert services.build_log_read(build_id=build.id, offset=0) == ("one\ntwo\nthree\n", 14, False)
    assert services.build_log_read(build_id=build.id, offset=6) == ("o\nthree\n", 14, False)
    assert services.build_log_read(build_id=build.id, offset=14) == ("", 14, False)
    services.build_log_finish(build_id=build.id)
    assert services.build_log_read(build_id=build.id, offset=14) == ("", 14, True)


def test_a_complete_log_takes_nothing_more(build):
    services.build_log_append(build_id=build.id, text="done\n")
    services.build_log_finish(build_id=build.id)
    services.build_log_finish(build_id=build.id)  # twice is fine
    assert services.build_log_append(build_id=build.id, text="late\n") == 5
    assert services.build_log_read(build_id=build.id, offset=0) == ("done\n", 5, True)


@pytest.mark.parametrize("offset", [-1, 7, 10**12])
def test_an_offset_outside_the_log_is_refused(build, offset):
    services.build_log_append(build_id=build.id, text="hello\n")
    with pytest.raises(InvalidLogOffset) as raised:
        services.build_log_read(build_id=build.id, offset=offset)
    assert raised.value.code == "invalid_log_offset" and raised.value.extra == {"size": 6}


def test_no_log_yet_reads_empty_and_incomplete_while_the_build_may_still_write(build):
    assert services.build_log_read(build_id=build.id, offset=0) == ("", 0, False)
    with pytest.raises(InvalidLogOffset):
        services.build_log_read(build_id=build.id, offset=1)


def test_a_build_that_ended_without_building_has_a_complete_empty_log(build):
    Build.objects.filter(pk=build.id).update(status=BuildStatus.CANCELLED)
    assert services.build_log_read(build_id=build.id, offset=0) == ("", 0, True)


def test_an_unknown_build_is_not_found():
    with pytest.raises(BuildNotFound):
        services.build_log_append(build_id=uuid.uuid4(), text="x\n")
    with pytest.raises(BuildNotFound):
        services.build_log_read(build_id=uuid.uuid4(), offset=0)


def test_long_text_is_split_into_chunks_and_reads_are_bounded(build, monkeypatch):
    monkeypatch.setattr(build_logs, "CHUNK_CHARS", 10)
    monkeypatch.setattr(build_logs, "READ_MAX_CHARS", 25)
    text = "".join(f"line {n:02d}\n" for n in range(10))  # 80 characters
    assert services.build_log_append(build_id=build.id, text=text) == 80
    assert BuildLogChunk.objects.filter(log_id=build.id).count() == 8
    read, offset, pieces = 0, 0, []
    while True:
        part, offset, _complete = services.build_log_read(build_id=build.id, offset=offset)
        if not part:
            break
        assert len(part) <= 25
        pieces.append(part)
        read += 1
    assert "".join(pieces) == text and read == 4 and offset == 80


def test_past_the_limit_the_rest_is_dropped_with_one_note(build, monkeypatch):
    monkeypatch.setattr(build_logs, "MAX_LOG_CHARS", 12)
    services.build_log_append(build_id=build.id, text="0123456789\n")
    services.build_log_append(build_id=build.id, text="abcdef\n")
    size = services.build_log_append(build_id=build.id, text="more\n")
    text, _offset, _complete = services.build_log_read(build_id=build.id, offset=0)
    assert text.startswith("0123456789\na") and text.count("[troy: the log passed") == 1
    assert "more" not in text and size == len(text)
    assert BuildLog.objects.get(pk=build.id).truncated


def test_tail_gives_the_last_lines_across_chunks(build, monkeypatch):
    monkeypatch.setattr(build_logs, "CHUNK_CHARS", 7)
    for n in range(30):
        services.build_log_append(build_id=build.id, text=f"line {n}\n")
    assert services.build_log_tail(build_id=build.id, lines=3) == "line 27\nline 28\nline 29"
    assert services.build_log_tail(build_id=build.id, lines=100).count("\n") == 29
    assert services.build_log_tail(build_id=uuid.uuid4(), lines=3) == ""


def test_secrets_are_redacted_before_they_are_stored(build):
    services.env_variable_set(pipeline_id=build.pipeline_id, name="API_KEY", value=SECRET, secret=True, actor="a")
    services.build_log_append(build_id=build.id, text=f"$ echo $API_KEY\n{SECRET}\nkey={SECRET}!\n")
    stored = "".join(BuildLogChunk.objects.filter(log_id=build.id).values_list("text", flat=True))
    assert SECRET not in stored and stored == "$ echo $API_KEY\n***\nkey=***!\n"
    assert SECRET not in services.build_log_tail(build_id=build.id)


# --- a failed build's error ---------------------------------------------------------------------


def _fail_in_codebuild(build: Build) -> None:
    from tests.pipelines.codebuild_support import codebuild_events

    for event in codebuild_events(build.codebuild_build_id, outcome="FAILED", failed_phase="BUILD"):
        services.build_apply_codebuild_report(report=_report(event))


def _report(event):
    from deployment_service.integrations.codebuild import codebuild_report_from_event

    return codebuild_report_from_event(event)


def _log_lines(build: Build, count: int) -> None:
    services.build_log_append(build_id=build.id, text="".join(f"step {n}\n" for n in range(count)))


def test_a_codebuild_failure_ends_with_the_last_lines_once_the_log_is_in(django_capture_on_commit_callbacks):
    build = running_build(codebuild_build_id=f"troy-build:{uuid.uuid4()}")
    _log_lines(build, 50)
    _fail_in_codebuild(build)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED and "FAILED in BUILD" in build.error
    assert "step 49" not in build.error  # the log is not complete yet

    services.build_log_append(build_id=build.id, text="npm ERR! " + "x" * 500 + "\n")
    services.build_log_finish(build_id=build.id)
    services.build_log_finish(build_id=build.id)
    build.refresh_from_db()
    head, _, tail = build.error.partition("\nLast lines of the log:\n")
    assert "FAILED in BUILD" in head and "COMMAND_EXECUTION_ERROR" in head
    lines = tail.split("\n")
    assert len(lines) == 20 and lines[0] == "step 31" and lines[-1].startswith("npm ERR! xxx")
    assert lines[-1].endswith("…") and len(lines[-1]) == 200
    assert build.error.count("Last lines of the log:") == 1


def test_a_log_finished_before_the_failure_is_reported_is_added_at_once(django_capture_on_commit_callbacks):
    build = running_build(codebuild_build_id=f"troy-build:{uuid.uuid4()}")
    _log_lines(build, 3)
    services.build_log_finish(build_id=build.id)
    _fail_in_codebuild(build)
    build.refresh_from_db()
    assert build.error.endswith("Last lines of the log:\nstep 0\nstep 1\nstep 2")


def test_a_deploy_step_failure_gets_no_log_tail(django_capture_on_commit_callbacks):
    build = running_build(codebuild_build_id=f"troy-build:{uuid.uuid4()}")
    from tests.pipelines.codebuild_support import codebuild_events

    for event in codebuild_events(build.codebuild_build_id, outcome="SUCCEEDED"):
        services.build_apply_codebuild_report(report=_report(event))
    _log_lines(build, 3)
    services.deployment_fail(build_id=build.id, error="Deploy failed: fingerprint_reused")
    services.build_log_finish(build_id=build.id)
    build.refresh_from_db()
    assert build.error == "Deploy failed: fingerprint_reused"


def test_a_value_made_secret_after_it_was_logged_is_hidden_when_read(build):
    services.build_log_append(build_id=build.id, text=f"token {SECRET}\n")
    services.env_variable_set(pipeline_id=build.pipeline_id, name="LATE", value=SECRET, secret=True, actor="a")
    assert services.build_log_read(build_id=build.id, offset=0)[0] == "token ***\n"
    assert services.build_log_tail(build_id=build.id) == "token ***"

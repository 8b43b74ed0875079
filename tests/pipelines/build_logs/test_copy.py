"""Copying a CodeBuild build's CloudWatch Logs stream: moto for the stream, botocore's Stubber
for GetLogEvents' paging; the cursor that keeps re-runs from repeating text; the final copy that
finishes the log (and a failed build's error ending with its last lines); redaction."""

from __future__ import annotations

import time
import uuid

from botocore.stub import Stubber
import pytest

from deployment_service import aws as aws_clients
from deployment_service.integrations import cloudwatch_logs as cwl
from deployment_service.integrations.codebuild import codebuild_report_from_event
from pipelines import services
from pipelines.choices import BuildStatus
from pipelines.flows import build_logs as flow
from pipelines.models import Build, BuildLog, BuildLogChunk
from pipelines.tasks import build_logs_retries_exhausted, copy_build_logs
from tests.pipelines.codebuild_support import PROJECT, codebuild_events, running_build, sent

pytestmark = pytest.mark.django_db

SECRET = "npm_Zq81xY2wVt55"
GROUP = f"/aws/codebuild/{PROJECT}"


@pytest.fixture
def build(aws, django_capture_on_commit_callbacks) -> Build:
    build = running_build(codebuild_build_id=f"{PROJECT}:{uuid.uuid4()}")
    logs = aws_clients.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName=stream_of(build))
    return build


def stream_of(build: Build) -> str:
    return build.codebuild_build_id.split(":", 1)[1]


def put(build: Build, *messages: str) -> None:
    now = int(time.time() * 1000)
    aws_clients.client("logs").put_log_events(
        logGroupName=GROUP,
        logStreamName=stream_of(build),
        logEvents=[{"timestamp": now + n, "message": m} for n, m in enumerate(messages)],
    )


def stored(build: Build) -> str:
    return "".join(BuildLogChunk.objects.filter(log_id=build.id).values_list("text", flat=True))


def test_copies_new_events_once_whatever_the_number_of_runs(build):
    put(build, "[Container] Entering phase INSTALL\n", "npm ci")
    assert flow.build_log_copy_run(build_id=build.id).message == "copied 2 event(s)"
    assert stored(build) == "[Container] Entering phase INSTALL\nnpm ci\n"

    flow.build_log_copy_run(build_id=build.id)  # nothing new: nothing added
    put(build, "[Container] Entering phase BUILD\n")
    flow.build_log_copy_run(build_id=build.id)
    flow.build_log_copy_run(build_id=build.id)
    assert stored(build) == "[Container] Entering phase INSTALL\nnpm ci\n[Container] Entering phase BUILD\n"
    log = BuildLog.objects.get(pk=build.id)
    assert (log.source_group, log.source_stream) == (GROUP, stream_of(build)) and log.source_token
    assert not log.complete


def test_a_copy_that_lost_the_race_stores_nothing(build):
    put(build, "one\n")
    services.build_log_source_record(build_id=build.id, group=GROUP, stream=stream_of(build))
    source = services.build_log_source(build_id=build.id)
    read = cwl.log_events_read(group=GROUP, stream=stream_of(build), token=source.token)
    assert services.build_log_copy_record(
        build_id=build.id, source=source, token=read.token, text=read.text, finish=False
    )
    # A second run that started from the same cursor (a duplicate message) is dropped.
    assert not services.build_log_copy_record(
        build_id=build.id, source=source, token=read.token, text=read.text, finish=False
    )
    assert stored(build) == "one\n"


def test_secrets_never_reach_the_stored_log(build):
    services.env_variable_set(pipeline_id=build.pipeline_id, name="NPM_TOKEN", value=SECRET, secret=True, actor="a")
    put(build, f"//registry.npmjs.org/:_authToken={SECRET}\n", f"echo {SECRET}\n")
    flow.build_log_copy_run(build_id=build.id)
    assert SECRET not in stored(build) and stored(build).count("***") == 2
    assert SECRET not in services.build_log_read(build_id=build.id, offset=0)[0]


def test_the_final_copy_finishes_the_log_once_the_stream_has_settled(build):
    put(build, "last line\n")
    first = flow.build_log_copy_run(build_id=build.id, final=True)
    assert first.again_in == flow.FINAL_SETTLE_SECONDS and first.final and first.attempt == 1
    assert not BuildLog.objects.get(pk=build.id).complete
    put(build, "a late line\n")
    second = flow.build_log_copy_run(build_id=build.id, final=True, attempt=1)
    assert second.again_in is not None  # it found more: once again
    third = flow.build_log_copy_run(build_id=build.id, final=True, attempt=2)
    assert third.again_in is None and "finished" in third.message
    assert BuildLog.objects.get(pk=build.id).complete
    assert services.build_log_read(build_id=build.id, offset=0) == ("last line\na late line\n", 22, True)
    assert flow.build_log_copy_run(build_id=build.id, final=True, attempt=3).message.endswith("is complete")


def test_a_stream_that_never_appears_finishes_empty_after_the_final_attempts(aws, django_capture_on_commit_callbacks):
    build = running_build(codebuild_build_id=f"{PROJECT}:{uuid.uuid4()}")
    assert flow.build_log_copy_run(build_id=build.id).again_in is None
    attempt, result = 0, flow.build_log_copy_run(build_id=build.id, final=True)
    while result.again_in is not None:
        attempt += 1
        result = flow.build_log_copy_run(build_id=build.id, final=True, attempt=result.attempt)
    assert attempt <= flow.FINAL_ATTEMPTS and BuildLog.objects.get(pk=build.id).complete


def test_a_build_without_codebuild_has_nothing_to_copy(aws, django_capture_on_commit_callbacks):
    build = running_build()
    assert flow.build_log_copy_run(build_id=build.id).message.startswith("nothing to copy")


# --- paging (Stubber) ---------------------------------------------------------------------------


def _page(messages, token):
    return {"events": [{"timestamp": 1, "message": m, "ingestionTime": 1} for m in messages], "nextForwardToken": token}


def test_paging_follows_the_forward_token_until_it_repeats(aws):
    client = aws_clients.client("logs")
    base = {"logGroupName": GROUP, "logStreamName": "s", "startFromHead": True}
    with Stubber(client) as stub:
        stub.add_response("get_log_events", _page(["a\n", "b\n"], "f/1"), {**base, "nextToken": "f/0"})
        stub.add_response("get_log_events", _page(["c"], "f/2"), {**base, "nextToken": "f/1"})
        stub.add_response("get_log_events", _page([], "f/2"), {**base, "nextToken": "f/2"})
        read = cwl.log_events_read(group=GROUP, stream="s", token="f/0")
        stub.assert_no_pending_responses()
    assert read == cwl.LogRead(text="a\nb\nc\n", events=3, token="f/2", more=False)


def test_paging_stops_at_the_page_limit_and_says_there_is_more(aws):
    client = aws_clients.client("logs")
    base = {"logGroupName": GROUP, "logStreamName": "s", "startFromHead": True}
    with Stubber(client) as stub:
        stub.add_response("get_log_events", _page(["a\n"], "f/1"), base)
        stub.add_response("get_log_events", _page(["b\n"], "f/2"), {**base, "nextToken": "f/1"})
        read = cwl.log_events_read(group=GROUP, stream="s", max_pages=2)
        stub.assert_no_pending_responses()
    assert read == cwl.LogRead(text="a\nb\n", events=2, token="f/2", more=True)


def test_a_missing_stream_reads_as_none_and_other_errors_are_raised(aws):
    client = aws_clients.client("logs")
    with Stubber(client) as stub:
        stub.add_client_error("get_log_events", "ResourceNotFoundException", "The specified log stream does not exist.")
        stub.add_client_error("get_log_events", "ThrottlingException", "Rate exceeded", http_status_code=400)
        assert cwl.log_events_read(group=GROUP, stream="s") is None
        with pytest.raises(Exception, match="Rate exceeded"):
            cwl.log_events_read(group=GROUP, stream="s")


def test_only_the_builds_own_stream_is_taken_from_a_report():
    run = str(uuid.uuid4())
    assert cwl.codebuild_stream_of(f"p:{run}", group="/g", stream=run) == ("/g", run)
    assert cwl.codebuild_stream_of(f"p:{run}", group="/g", stream=f"prefix/{run}") == ("/g", f"prefix/{run}")
    assert cwl.codebuild_stream_of(f"p:{run}", group="/g", stream="someone-else") is None
    assert cwl.codebuild_default_stream(f"p:{run}") == ("/aws/codebuild/p", run)


# --- from CodeBuild's events to the actor -------------------------------------------------------


def test_phase_and_final_reports_send_copies_and_record_the_stream(build, broker, django_capture_on_commit_callbacks):
    events = codebuild_events(build.codebuild_build_id, outcome="FAILED", failed_phase="BUILD")
    with django_capture_on_commit_callbacks(execute=True):
        for event in events:
            services.build_apply_codebuild_report(report=codebuild_report_from_event(event))
    copies = sent(broker, "copy_build_logs")
    assert copies[-1] == (str(build.id), True)
    assert (str(build.id), False) in copies and copies.count((str(build.id), True)) == 1
    assert services.build_log_source(build_id=build.id).stream == stream_of(build)


def test_a_failed_build_ends_with_its_last_log_lines_via_the_actor(build, broker, django_capture_on_commit_callbacks):
    services.env_variable_set(pipeline_id=build.pipeline_id, name="NPM_TOKEN", value=SECRET, secret=True, actor="a")
    put(build, *[f"line {n}\n" for n in range(30)], f"npm ERR! token {SECRET} rejected\n")
    with django_capture_on_commit_callbacks(execute=True):
        for event in codebuild_events(build.codebuild_build_id, outcome="FAILED", failed_phase="BUILD"):
            services.build_apply_codebuild_report(report=codebuild_report_from_event(event))
    broker.flush_all()
    copy_build_logs(str(build.id), True, 0)  # the actor, called directly
    copy_build_logs(str(build.id), True, 1)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert "FAILED in BUILD" in build.error
    assert build.error.endswith(
        "Last lines of the log:\n" + "\n".join(f"line {n}" for n in range(11, 30)) + "\nnpm ERR! token *** rejected"
    )
    assert SECRET not in build.error


def test_the_actor_sends_itself_again_until_the_stream_settles(build, broker):
    put(build, "x\n")
    copy_build_logs(str(build.id), True, 0)
    assert sent(broker, "copy_build_logs") == [(str(build.id), True, 1)]


def test_a_final_copy_that_keeps_failing_finishes_the_log_with_a_note(build):
    message = {"args": [str(build.id), True, 0], "options": {"troy_last_error": "GetLogEvents: AccessDenied"}}
    build_logs_retries_exhausted(message, {})
    text, _offset, complete = services.build_log_read(build_id=build.id, offset=0)
    assert complete and "could not be copied from CloudWatch Logs: GetLogEvents: AccessDenied" in text
    other = running_build(codebuild_build_id=f"{PROJECT}:{uuid.uuid4()}")
    build_logs_retries_exhausted({"args": [str(other.id), False, 0], "options": {}}, {})
    assert not BuildLog.objects.filter(pk=other.id).exists()

"""End to end on the StubBroker with a real worker: CodeBuild's events for a failed build send
the copies, the worker copies the CloudWatch stream (moto) and finishes the log, and the build's
error ends with the log's last lines."""

from __future__ import annotations

import time
import uuid

import dramatiq
import pytest

from deployment_service import aws as aws_clients
from deployment_service.integrations.codebuild import codebuild_report_from_event
from pipelines import services
from pipelines.flows import build_logs as flow
from pipelines.models import Build, BuildLog
from tests.pipelines.codebuild_support import PROJECT, codebuild_events, running_build

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_failed_codebuild_build_gets_its_whole_log_and_the_tail_in_its_error(aws, broker, monkeypatch):
    monkeypatch.setattr(flow, "FINAL_SETTLE_SECONDS", 0.1)
    build = running_build(codebuild_build_id=f"{PROJECT}:{uuid.uuid4()}")
    broker.flush_all()  # not its Download Source (no GitHub here): CodeBuild's events drive it
    worker = dramatiq.Worker(broker, worker_timeout=100)
    worker.start()
    try:  # stopped also when a step raises: a running worker would take later tests' messages
        group, stream = f"/aws/codebuild/{PROJECT}", build.codebuild_build_id.split(":", 1)[1]
        logs = aws_clients.client("logs")
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        lines = [f"[Container] step {n}\n" for n in range(25)] + ["npm ERR! missing script: build\n"]
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": now + n, "message": line} for n, line in enumerate(lines)],
        )

        for event in codebuild_events(build.codebuild_build_id, outcome="FAILED", failed_phase="BUILD"):
            services.build_apply_codebuild_report(report=codebuild_report_from_event(event))
        deadline = time.monotonic() + 30
        while not BuildLog.objects.filter(pk=build.id, complete=True).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.stop()

    text, size, complete = services.build_log_read(build_id=build.id, offset=0)
    assert complete and text == "".join(lines) and size == len(text)  # each line once, whatever the copies
    error = Build.objects.get(pk=build.id).error
    assert "FAILED in BUILD" in error
    assert error.endswith("\n[Container] step 24\nnpm ERR! missing script: build")

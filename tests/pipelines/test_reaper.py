"""The stuck-pipeline reaper, its one-shot command and the scheduler that runs it periodically."""

from datetime import timedelta
import io
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from dramatiq import Message
import pytest

from events.models import Event
from operations.scheduler import run_scheduler
from pipelines import services, tasks
from pipelines.choices import BuildKind, BuildStatus, BuildTrigger
from pipelines.choices import PipelineStatus as S
from pipelines.models import Pipeline
from tests.factories import PipelineFactory, put_in_status

ROOT = Path(__file__).resolve().parents[2]

DEADLINES = {
    S.PROVISIONING: ("TROY_STUCK_PROVISIONING_SECONDS", S.FAILED_TO_PROVISION, "fail_provisioning"),
    S.DEPLOYING: ("TROY_STUCK_DEPLOYING_SECONDS", S.FAILED_TO_DEPLOY, "fail_deployment"),
    S.DELETING: ("TROY_STUCK_DELETING_SECONDS", S.FAILED_TO_DELETE, "fail_deletion"),
}


def _in_status_since(status: str, seconds_ago: float) -> Pipeline:
    return put_in_status(PipelineFactory(), status, status_changed_at=timezone.now() - timedelta(seconds=seconds_ago))


@pytest.mark.django_db
@pytest.mark.parametrize("status", list(DEADLINES))
def test_a_pipeline_stuck_past_its_deadline_is_failed_by_the_reaper(status):
    setting, failed_status, transition = DEADLINES[status]
    deadline = getattr(settings, setting)
    stuck = _in_status_since(status, deadline + 60)
    fresh = _in_status_since(status, deadline - 60)

    reaped = services.pipelines_reap_stuck()

    assert reaped == [stuck.name]
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert stuck.status == failed_status
    assert "reaper" in stuck.last_error and f"{deadline // 60} minutes" in stuck.last_error
    event = Event.objects.get(pipeline_id=stuck.id)
    assert (event.transition, event.actor, event.from_status, event.to_status) == (
        transition,
        "system:reaper",
        status,
        failed_status,
    )
    assert event.message == stuck.last_error
    assert fresh.status == status and not Event.objects.filter(pipeline_id=fresh.id).exists()


@pytest.mark.django_db
def test_pipelines_at_rest_or_waiting_are_never_reaped():
    long_ago = 10 * 24 * 3600
    untouched = [
        _in_status_since(status, long_ago)
        for status in (
            S.PRE_PROVISIONED,
            S.PROVISION_REQUEST,
            S.READY_FOR_DEPLOYMENT,
            S.QUEUED,
            S.DEPLOYED,
            S.SCHEDULED_FOR_DELETION,
            S.FAILED_TO_DELETE,
        )
    ]
    assert services.pipelines_reap_stuck() == []
    assert [Pipeline.objects.get(pk=p.pk).status for p in untouched] == [p.status for p in untouched]
    assert Event.objects.count() == 0


@pytest.mark.django_db
def test_a_stuck_deployment_fails_its_running_build_too():
    pipeline = put_in_status(PipelineFactory(), S.READY_FOR_DEPLOYMENT)
    build = services.build_request(
        pipeline_id=pipeline.id,
        kind=BuildKind.RELEASE,
        trigger=BuildTrigger.CLI,
        actor="alice",
        artifact_key="releases/x.zip",
    )
    assert services.deployment_start(pipeline_id=pipeline.id) == build
    Pipeline.objects.filter(pk=pipeline.pk).update(
        status_changed_at=timezone.now() - timedelta(seconds=settings.TROY_STUCK_DEPLOYING_SECONDS + 1)
    )

    tasks.reap_stuck_pipelines()  # the actor's body, as the scheduler's message runs it

    pipeline.refresh_from_db()
    build.refresh_from_db()
    assert pipeline.status == S.FAILED_TO_DEPLOY
    assert build.status == BuildStatus.FAILED and "reaper" in build.error
    event = Event.objects.filter(pipeline_id=pipeline.id).order_by("id").last()
    assert event.transition == "fail_deployment" and event.actor == "system:reaper"
    assert event.build_id == build.id


@pytest.mark.django_db
def test_a_reaped_provisioning_can_be_retried():
    stuck = _in_status_since(S.PROVISIONING, settings.TROY_STUCK_PROVISIONING_SECONDS + 1)
    services.pipelines_reap_stuck()
    services.pipeline_request_provisioning(pipeline_id=stuck.id, actor="alice")
    assert Pipeline.objects.get(pk=stuck.pk).status == S.PROVISION_REQUEST


@pytest.mark.django_db
def test_reap_stuck_command_reports_what_it_failed():
    stuck = _in_status_since(S.DELETING, settings.TROY_STUCK_DELETING_SECONDS + 1)
    out = io.StringIO()
    call_command("reap_stuck", stdout=out)
    assert out.getvalue().splitlines() == [f"failed stuck pipeline {stuck.name}", "1 stuck pipeline(s) failed"]
    assert Pipeline.objects.get(pk=stuck.pk).status == S.FAILED_TO_DELETE

    out = io.StringIO()
    call_command("reap_stuck", stdout=out)
    assert out.getvalue().splitlines() == ["0 stuck pipeline(s) failed"]


# --- the scheduler --------------------------------------------------------------------------------

PERIODIC = ["care_for_releases", "reap_stuck_pipelines", "reconcile_codebuild_builds", "remove_closed_previews"]
RETENTION = ["prune_builds"]  # every TROY_RETENTION_INTERVAL_SECONDS, with the first tick


def _queued_actor_names(broker) -> list[str]:
    queue = broker.queues["troy"]
    return sorted(Message.decode(raw).actor_name for raw in list(queue.queue))


def test_scheduler_once_enqueues_the_reaper_and_the_reconciler(broker):
    out = io.StringIO()
    call_command("scheduler", "--once", stdout=out)
    assert _queued_actor_names(broker) == sorted(PERIODIC + RETENTION)
    assert "1 time(s)" in out.getvalue()


def test_run_scheduler_ticks_every_interval_until_stopped(broker):
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(run_scheduler(stop, interval=0.05)), daemon=True)
    thread.start()
    time.sleep(0.3)
    stop.set()
    thread.join(timeout=2)

    assert not thread.is_alive()
    ticks = result[0]
    assert 2 <= ticks <= 8
    assert _queued_actor_names(broker) == sorted(PERIODIC * ticks + RETENTION)


def test_the_retention_care_goes_with_the_first_tick_and_then_every_retention_interval(broker, monkeypatch):
    clock = iter([0.0, 0.0, 30.0, 61.0, 90.0, 122.0])  # the start, then one reading per tick
    monkeypatch.setattr("operations.scheduler.monotonic", lambda: next(clock))
    stop = threading.Event()
    waits = []

    def wait(seconds):
        waits.append(seconds)
        if len(waits) == 5:
            stop.set()

    monkeypatch.setattr(stop, "wait", wait)

    assert run_scheduler(stop, interval=30, retention_interval=60) == 5

    assert _queued_actor_names(broker) == sorted(PERIODIC * 5 + RETENTION * 3)  # at 0, 61 and 122 s


@pytest.mark.django_db(transaction=True)
def test_the_scheduled_reaper_runs_on_a_worker(aws, broker, worker):
    stuck = _in_status_since(S.PROVISIONING, settings.TROY_STUCK_PROVISIONING_SECONDS + 1)
    run_scheduler(threading.Event(), once=True)
    broker.join("troy", timeout=10_000, fail_fast=False)  # the reconciler may have nothing to do
    worker.join()
    assert Pipeline.objects.get(pk=stuck.pk).status == S.FAILED_TO_PROVISION


def test_the_scheduler_process_stops_cleanly_on_sigterm():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "scheduler", "--interval", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()
        assert "every 0.2 s" in first
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "enqueued the periodic jobs" in out

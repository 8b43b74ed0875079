"""Test support for the CodeBuild flows: a running automated build, and the events one CodeBuild
build sends, shaped like the fixtures in tests/fixtures (copied from the issue's shared fixtures)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import uuid

from dramatiq import Message

from pipelines import services
from pipelines.choices import BuildKind, BuildTrigger
from pipelines.choices import PipelineStatus as S
from pipelines.models import Build
from pipelines.services.build_records import build_record_codebuild
from tests.factories import PipelineFactory, put_in_status

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PROJECT = "troy-build"
ACCOUNT_REGION = "us-east-1:123456789012"
SHA = "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5"
BUILD_ERROR = "COMMAND_EXECUTION_ERROR: Error while executing command: npm run build. Reason: exit status 1"
RUN_PHASES = (
    "SUBMITTED",
    "QUEUED",
    "PROVISIONING",
    "DOWNLOAD_SOURCE",
    "INSTALL",
    "PRE_BUILD",
    "BUILD",
    "POST_BUILD",
    "UPLOAD_ARTIFACTS",
    "FINALIZING",
)


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def new_codebuild_id() -> str:
    return f"{PROJECT}:{uuid.uuid4()}"


def arn(codebuild_build_id: str) -> str:
    return f"arn:aws:codebuild:{ACCOUNT_REGION}:build/{codebuild_build_id}"


def event_time(when: datetime) -> str:
    """As CodeBuild's events write times: "Nov 1, 2026 4:12:29 PM"."""
    return f"{when:%b} {when.day}, {when.year} {when.hour % 12 or 12}:{when:%M:%S} {'PM' if when.hour >= 12 else 'AM'}"


def running_build(*, codebuild_build_id: str | None = None, commit_sha: str = SHA, **pipeline_fields) -> Build:
    """An automated build that ``deployment_start`` moved to running (pipeline deploying); with a
    CodeBuild build recorded when ``codebuild_build_id`` is given."""
    pipeline = put_in_status(PipelineFactory(**pipeline_fields), S.READY_FOR_DEPLOYMENT)
    build = services.build_request(
        pipeline_id=pipeline.id,
        kind=BuildKind.AUTOMATED,
        trigger=BuildTrigger.MANUAL,
        actor="alice",
        ref="main",
        commit_sha=commit_sha,
    )
    services.deployment_start(pipeline_id=pipeline.id)
    if codebuild_build_id:
        build_record_codebuild(
            build_id=build.id,
            codebuild_build_id=codebuild_build_id,
            logs_url="https://example.invalid/start",
            artifact_key=f"artifacts/{build.id}.zip",
        )
    return Build.objects.get(pk=build.id)


def _phase_list(outcomes: list[tuple[str, str, datetime, datetime, list[str]]], completed_at: datetime | None):
    phases = [
        {
            "phase-context": context,
            "start-time": event_time(start),
            "end-time": event_time(end),
            "duration-in-seconds": int((end - start).total_seconds()),
            "phase-type": name,
            "phase-status": status,
        }
        for name, status, start, end, context in outcomes
    ]
    if completed_at is not None:
        phases.append({"start-time": event_time(completed_at), "phase-type": "COMPLETED"})
    return phases


def state_event(
    codebuild_build_id: str,
    build_status: str,
    *,
    phases: list,
    current_phase: str,
    current_context: list[str] | None = None,
) -> dict:
    event = fixture("codebuild-build-state-change.json")
    detail = event["detail"]
    event["resources"] = [arn(codebuild_build_id)]
    detail["build-id"] = arn(codebuild_build_id)
    detail["build-status"] = build_status
    detail["current-phase"] = current_phase
    detail["current-phase-context"] = json.dumps(current_context or [])
    info = detail["additional-information"]
    info["build-complete"] = build_status != "IN_PROGRESS"
    info["phases"] = copy.deepcopy(phases)
    stream = codebuild_build_id.split(":", 1)[1]
    info["logs"]["stream-name"] = stream
    info["logs"]["deep-link"] = info["logs"]["deep-link"].replace("8745a7a9-c340-456a-9166-edf953571b01", stream)
    return event


def phase_event(
    codebuild_build_id: str, name: str, status: str, start: datetime, end: datetime, context: list[str]
) -> dict:
    event = fixture("codebuild-build-phase-change.json")
    detail = event["detail"]
    event["resources"] = [arn(codebuild_build_id)]
    detail.update(
        {
            "build-id": arn(codebuild_build_id),
            "completed-phase": name,
            "completed-phase-status": status,
            "completed-phase-start": event_time(start),
            "completed-phase-end": event_time(end),
            "completed-phase-duration-seconds": int((end - start).total_seconds()),
            # CodeBuild writes this as one bracketed string, not JSON: "[]", "[: ]", "[CODE: message]".
            "completed-phase-context": f"[{'; '.join(context)}]" if context else "[: ]",
        }
    )
    stream = codebuild_build_id.split(":", 1)[1]
    detail["additional-information"]["logs"]["deep-link"] = detail["additional-information"]["logs"][
        "deep-link"
    ].replace("8745a7a9-c340-456a-9166-edf953571b01", stream)
    return event


def codebuild_events(
    codebuild_build_id: str, *, outcome: str = "SUCCEEDED", failed_phase: str = "BUILD", started: datetime | None = None
) -> list[dict]:
    """Every event one CodeBuild build sends, in the clean order: IN_PROGRESS, one phase change per
    phase (with two mid-run IN_PROGRESS state changes, as the reconciler produces them), the
    terminal state change (which lists all phases). A failed phase is followed by
    UPLOAD_ARTIFACTS and FINALIZING (CodeBuild runs them even then), skipping the phases between."""
    started = started or datetime(2026, 11, 1, 16, 12, 29, tzinfo=UTC)
    clock = started
    done: list[tuple[str, str, datetime, datetime, list[str]]] = []
    events = [state_event(codebuild_build_id, "IN_PROGRESS", phases=[], current_phase="SUBMITTED")]
    skipping = False
    for name in RUN_PHASES:
        if skipping and name not in ("UPLOAD_ARTIFACTS", "FINALIZING"):
            continue
        status, context = "SUCCEEDED", []
        if outcome != "SUCCEEDED" and name == failed_phase:
            status = {"TIMED_OUT": "TIMED_OUT", "STOPPED": "STOPPED", "FAULT": "FAULT"}.get(outcome, "FAILED")
            context = [BUILD_ERROR] if status == "FAILED" else []
            skipping = True
        end = clock + timedelta(seconds=7 + len(done))
        done.append((name, status, clock, end, context))
        events.append(phase_event(codebuild_build_id, name, status, clock, end, context))
        clock = end
        if name in ("DOWNLOAD_SOURCE", "BUILD") and not skipping:
            # What the reconciler sees mid-run: the phases so far and the current one, started.
            following = RUN_PHASES[RUN_PHASES.index(name) + 1]
            so_far = [*_phase_list(done, None), {"start-time": event_time(clock), "phase-type": following}]
            events.append(state_event(codebuild_build_id, "IN_PROGRESS", phases=so_far, current_phase=following))
    events.append(state_event(codebuild_build_id, outcome, phases=_phase_list(done, clock), current_phase="COMPLETED"))
    return events


def sent(broker, actor_name: str) -> list[tuple]:
    """Args of the messages waiting for ``actor_name`` on the StubBroker."""
    found = []
    for queue in broker.queues.values():
        for data in list(queue.queue):
            message = Message.decode(data)
            if message.actor_name == actor_name:
                found.append(tuple(message.args))
    return found

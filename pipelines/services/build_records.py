"""Writes to a build that are not status changes of their own: the commit it builds, its CodeBuild
build, and CodeBuild's progress (phases, timings, logs link), which ends in the deploy step or in
``deployment_fail``.

CodeBuild's events arrive best effort (lost, late, duplicated, out of order), so progress is
merged, never overwritten: phases are kept per phase type, a finished phase beats an in-progress
report of it, and the first terminal build status CodeBuild reports ("the outcome") is recorded
once, under the pipeline lock. Anything that arrives after the outcome changes nothing; a second
SUCCEEDED never hands the build to the deploy step twice.
"""

from __future__ import annotations

import logging
from typing import Any
import uuid

from django.db import transaction

from deployment_service.integrations.cloudwatch_logs import codebuild_stream_of
from deployment_service.integrations.codebuild import CodebuildReport
from deployment_service.integrations.local_builder import is_local_build_id
from deployment_service.transactions import send_on_commit
from pipelines.choices import BuildStatus
from pipelines.models import Build
from pipelines.services.build_logs import build_log_error_add_tail, build_log_source_record
from pipelines.services.builds import build_lock, deployment_fail

logger = logging.getLogger(__name__)

SYSTEM_CODEBUILD = "system:codebuild"

# CodeBuild's phases in the order a build runs them (COMPLETED is where a finished build rests).
PHASE_ORDER = (
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
    "COMPLETED",
)
PHASE_LABELS = {
    "DOWNLOAD_SOURCE": "Download Source",
    "INSTALL": "Install",
    "PRE_BUILD": "Pre-build",
    "BUILD": "Build",
    "POST_BUILD": "Test",
    "UPLOAD_ARTIFACTS": "Archive",
    "PROVISIONING": "Provisioning",
    "QUEUED": "Queued",
    "SUBMITTED": "Submitted",
    "FINALIZING": "Finalizing",
    "COMPLETED": "Completed",
}
# How much a phase status says; a merge keeps the one that says more, so the order of arrival
# does not matter. A failure outranks a success of the same phase (they never both happen).
_STATUS_RANK = {
    None: 0,
    "": 0,
    "IN_PROGRESS": 1,
    "SUCCEEDED": 2,
    "STOPPED": 3,
    "CLIENT_ERROR": 4,
    "TIMED_OUT": 5,
    "FAULT": 6,
    "FAILED": 7,
}
PHASE_FAILURES = ("FAILED", "FAULT", "TIMED_OUT", "STOPPED", "CLIENT_ERROR")


# --- small writes -------------------------------------------------------------------------------


def build_record_commit(*, build_id: uuid.UUID | str, commit_sha: str) -> None:
    """Keep the commit sha Download Source resolved the build's ref to."""
    Build.objects.filter(pk=build_id, status=BuildStatus.RUNNING).update(commit_sha=commit_sha)


def build_record_codebuild(
    *, build_id: uuid.UUID | str, codebuild_build_id: str, logs_url: str, artifact_key: str
) -> Build | None:
    """Keep the CodeBuild build that StartBuild made for a running build (once).

    Returns None when the build stopped running meanwhile. If a cancel was asked for while
    StartBuild was on its way, StopBuild is enqueued now that there is something to stop."""
    with transaction.atomic():
        _pipeline, build = build_lock(build_id)
        if build.status != BuildStatus.RUNNING:
            logger.info("build %s is %s: not recording CodeBuild build %s", build_id, build.status, codebuild_build_id)
            return None
        if build.codebuild_build_id and build.codebuild_build_id != codebuild_build_id:
            logger.warning(
                "build %s already has CodeBuild build %s; %s not recorded",
                build_id,
                build.codebuild_build_id,
                codebuild_build_id,
            )
            return build
        build.codebuild_build_id = codebuild_build_id
        build.logs_url = build.logs_url or logs_url
        build.artifact_key = artifact_key
        build.phase = build.phase or "SUBMITTED"
        build.save(update_fields=["codebuild_build_id", "logs_url", "artifact_key", "phase", "updated_at"])
        send_on_commit("report_commit_status", str(build.id))
        if build.cancel_requested:
            send_on_commit("stop_codebuild", str(build.id))
    return build


# --- phases: merge and read ---------------------------------------------------------------------


def _order(phase: str) -> int:
    return PHASE_ORDER.index(phase) if phase in PHASE_ORDER else len(PHASE_ORDER)


def _merge_entry(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(old)
    if _STATUS_RANK.get(new.get("status"), 1) > _STATUS_RANK.get(old.get("status"), 1):
        merged["status"] = new.get("status")
    starts = [t for t in (old.get("start"), new.get("start")) if t]
    ends = [t for t in (old.get("end"), new.get("end")) if t]
    durations = [d for d in (old.get("duration"), new.get("duration")) if d is not None]
    merged["start"] = min(starts) if starts else None
    merged["end"] = max(ends) if ends else None
    merged["duration"] = max(durations) if durations else None
    merged["context"] = sorted(set(old.get("context") or []) | set(new.get("context") or []))
    for key in ("build_status",):  # the outcome marker, see _with_outcome
        if new.get(key) or old.get(key):
            merged[key] = old.get(key) or new.get(key)
    return merged


def merge_phases(current: list[dict[str, Any]], incoming: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Phases kept per phase type, in CodeBuild's order; the same whatever order reports arrive in."""
    by_phase: dict[str, dict[str, Any]] = {}
    for entry in [*(current or []), *(incoming or [])]:
        name = entry.get("phase")
        if not name:
            continue
        base = {"phase": name, "status": None, "start": None, "end": None, "duration": None, "context": []}
        by_phase[name] = _merge_entry(by_phase.get(name, base), entry)
    return [by_phase[name] for name in sorted(by_phase, key=lambda n: (_order(n), n))]


def codebuild_outcome(phases: list[dict[str, Any]]) -> str:
    """The terminal build status CodeBuild reported for this build, or "" while it runs."""
    for entry in phases or []:
        if entry.get("phase") == "COMPLETED" and entry.get("build_status"):
            return entry["build_status"]
    return ""


def _with_outcome(phases: list[dict[str, Any]], build_status: str) -> list[dict[str, Any]]:
    return merge_phases(phases, [{"phase": "COMPLETED", "build_status": build_status}])


def current_phase(phases: list[dict[str, Any]]) -> str:
    """The phase a build is in: COMPLETED once the outcome is known; otherwise the furthest phase
    reported (a finished phase means the next one has begun)."""
    if codebuild_outcome(phases):
        return "COMPLETED"
    furthest = -1
    for entry in phases:
        position = _order(entry["phase"])
        if position >= len(PHASE_ORDER):
            continue
        finished = _STATUS_RANK.get(entry.get("status"), 1) >= _STATUS_RANK["SUCCEEDED"]
        furthest = max(furthest, min(position + 1 if finished else position, len(PHASE_ORDER) - 1))
    return PHASE_ORDER[furthest] if furthest >= 0 else ""


def phase_label(phase: str) -> str:
    label = PHASE_LABELS.get(phase)
    return f"{label} ({phase})" if label and label.upper() != phase else phase


def failure_text(
    *,
    build_status: str,
    phases: list[dict[str, Any]],
    current_context: list[str],
    cancel_requested: bool,
    cancelled_by: str = "",
    timeout_minutes: Any = None,
    local: bool = False,
) -> str:
    """The error a failed build keeps: what CodeBuild (or, ``local``, the local builder) said, in
    which phase, and why."""
    who, noun = ("The local builder", "Local build") if local else ("CodeBuild", "CodeBuild build")
    failed = next((e for e in phases if e.get("status") in PHASE_FAILURES and e["phase"] != "COMPLETED"), None)
    where = f" in {phase_label(failed['phase'])}" if failed else ""
    reason = "; ".join((failed or {}).get("context") or []) or "; ".join(current_context or [])
    cancelled = f"Cancelled by {cancelled_by}" if cancelled_by else "Cancelled on request"
    if build_status == "STOPPED" and cancel_requested:
        text = f"{cancelled}: {who} stopped the build{where}."
    elif build_status == "SUCCEEDED" and cancel_requested:
        text = f"{cancelled}: {who} had finished, the result is not deployed."
    elif build_status == "TIMED_OUT":
        text = f"{who} timed out{where}"
        text += f" (limit {timeout_minutes} minutes)." if timeout_minutes else "."
    else:
        text = f"{noun} {build_status or 'ended'}{where}."
    if reason and not (build_status == "SUCCEEDED" and cancel_requested):
        text += f" {reason}"
    return text


# --- applying a report --------------------------------------------------------------------------


def _copy_logs(build: Build, report: CodebuildReport, *, final: bool) -> None:
    """Keep where the log is, and copy it from CloudWatch after commit: as phases complete, and
    (``final``) once CodeBuild reports the outcome, after which the log is finished. A local
    build writes its log itself (pipelines.flows.local_builds): nothing to copy."""
    if is_local_build_id(build.codebuild_build_id):
        return
    location = codebuild_stream_of(build.codebuild_build_id, group=report.log_group, stream=report.log_stream)
    if location is not None:
        build_log_source_record(build_id=build.id, group=location[0], stream=location[1])
    if final or any(entry.get("end") for entry in report.phases):
        send_on_commit("copy_build_logs", str(build.id), final)


def build_apply_codebuild_report(*, report: CodebuildReport) -> str:
    """Apply what CodeBuild says about one build. Returns what it did, in words (kept on the
    delivery). Only a running build with no recorded outcome changes; the first terminal status
    decides: SUCCEEDED hands the build to the deploy step, anything else fails it."""
    build_id = Build.objects.filter(codebuild_build_id=report.codebuild_build_id).values_list("id", flat=True).first()
    if build_id is None:
        return f"ignored: no build has CodeBuild id {report.codebuild_build_id}"
    build_status = (report.build_status or "").upper()
    with transaction.atomic():
        _pipeline, build = build_lock(build_id)
        name = f"build #{build.number} of {_pipeline.name}"
        if build.status != BuildStatus.RUNNING:
            return f"ignored: {name} is already {build.status}"
        outcome = codebuild_outcome(build.phases)
        if outcome:
            return f"ignored: CodeBuild already reported {outcome} for {name}"

        phases = merge_phases(build.phases, report.phases)
        if report.current_phase and report.current_phase not in {e["phase"] for e in phases}:
            phases = merge_phases(phases, [{"phase": report.current_phase}])
        terminal = bool(build_status) and build_status != "IN_PROGRESS"
        if terminal:
            phases = _with_outcome(phases, build_status)
        build.phases = phases
        build.phase = current_phase(phases)
        if report.logs_url:
            build.logs_url = report.logs_url
        build.save(update_fields=["phases", "phase", "logs_url", "updated_at"])
        _copy_logs(build, report, final=terminal)
        if not terminal:
            return f"recorded: {name} is in {build.phase or 'an unknown phase'}"

        if build_status == "SUCCEEDED" and not build.cancel_requested:
            send_on_commit("deploy_build", str(build.id))
            return f"succeeded: {name} handed to the deploy step"
        error = failure_text(
            build_status=build_status,
            phases=phases,
            current_context=report.current_context,
            cancel_requested=build.cancel_requested,
            cancelled_by=build.cancel_requested_by,
            timeout_minutes=report.timeout_minutes,
            local=is_local_build_id(report.codebuild_build_id),
        )
        deployment_fail(build_id=build.id, error=error, actor=SYSTEM_CODEBUILD)
        # The error ends with the log's last lines: now if the log is complete, else once it is.
        build_log_error_add_tail(build_id=build.id)
        return f"failed: {name}: {error}"

"""The local builder (``TROY_BUILDER=local``): what CodeBuild does for an automated build, done by
a worker on this machine, reported through the very path CodeBuild's events take.

``codebuild_start_run`` (pipelines/flows/codebuild.py) does Download Source as always (the
source zip into the artifact bucket) and then, instead of StartBuild, records the build as
``local:{build id}`` and sends ``run_local_build``. :func:`local_build_run` then:

1. unpacks the source zip into a fresh temporary directory (DOWNLOAD_SOURCE);
2. runs the phases of the buildspec ``buildspec_for`` generates for the pipeline (INSTALL, BUILD,
   POST_BUILD = the test command) with the pipeline's variables and decrypted secrets (a fork's
   build gets none), each phase under ``TROY_LOCAL_BUILD_PHASE_SECONDS``, its output streamed into
   the build log (redacted there);
3. zips the output directory into ``artifacts/{build id}.zip`` (UPLOAD_ARTIFACTS);
4. reports each phase start and end, and the outcome, as a :class:`CodebuildReport` to
   ``build_apply_codebuild_report``: SUCCEEDED sends the deploy step, anything else fails the
   build naming the phase, exactly as for CodeBuild.

A cancel sets ``cancel_requested`` (``build_cancel``); the running phase sees it within a second
and its process group is killed: the outcome is STOPPED. A stopping worker kills its phases the
same way (``LocalBuildsShutdown``). A build whose worker died is failed by the reaper.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
import logging
import os
import shutil
import tempfile
from typing import Any
import uuid

from django.conf import settings

from deployment_service import artifact_keys, aws
from deployment_service.integrations import codebuild as cb
from deployment_service.integrations import local_builder as lb
from pipelines.choices import BuildStatus
from pipelines.models import Build
from pipelines.services import (
    build_apply_codebuild_report,
    build_environment,
    build_log_append,
    build_log_finish,
    codebuild_outcome,
)

logger = logging.getLogger(__name__)


def local_build_started(build: Build) -> cb.StartedBuild:
    """What StartBuild would answer, for a build the local builder will run."""
    return cb.StartedBuild(
        id=lb.local_build_id(build.id), logs_url="", artifact_key=artifact_keys.build_artifact_key(build.id)
    )


def _report(codebuild_build_id: str, **fields: Any) -> str:
    return build_apply_codebuild_report(report=cb.CodebuildReport(codebuild_build_id=codebuild_build_id, **fields))


def _stop_asked(build_id: uuid.UUID | str) -> Callable[[], bool]:
    """True once the build's cancel was asked for, or it no longer runs (the reaper failed it)."""

    def asked() -> bool:
        return not Build.objects.filter(pk=build_id, status=BuildStatus.RUNNING, cancel_requested=False).exists()

    return asked


def _step(name: str, run: Callable[[], str], log: Callable[[str], None]) -> lb.PhaseResult:
    """A phase the builder does itself (download source, upload artifacts)."""
    start = datetime.now(UTC)
    log(lb.container_line(f"Entering phase {name}"))
    try:
        said = run()
    except lb.LocalBuildError as exc:
        result = lb.PhaseResult(name, lb.FAILED, start, datetime.now(UTC), [str(exc)])
    else:
        result = lb.PhaseResult(name, lb.SUCCEEDED, start, datetime.now(UTC))
        log(lb.container_line(said))
    reason = f" ({'; '.join(result.context)})" if result.context else ""
    log(lb.container_line(f"Phase complete: {name} State: {result.status}{reason}"))
    return result


def local_build_run(*, build_id: uuid.UUID | str) -> str:
    """Run a local build from its source zip to its outcome. Idempotent: a build that is not
    running, is not a local build, or already started (a repeated message) is left alone."""
    build = Build.objects.select_related("pipeline").filter(pk=build_id).first()
    local_id = lb.local_build_id(build_id)
    if build is None or build.status != BuildStatus.RUNNING or build.codebuild_build_id != local_id:
        return f"ignored: build {build_id} is not a running local build"
    if codebuild_outcome(build.phases) or any(p.get("phase") == "DOWNLOAD_SOURCE" for p in build.phases):
        return f"ignored: local build {build_id} already ran"

    def log(text: str) -> None:
        build_log_append(build_id=build.id, text=text)

    if build.cancel_requested:
        return _finish(build, local_id, lb.STOPPED, ["BUILD_STOPPED: the build was cancelled before it started"])
    pipeline = build.pipeline
    environment = build_environment(build)
    buildspec = cb.buildspec_for(
        install=pipeline.build_install,
        build=pipeline.build_command,
        test=pipeline.build_test,
        output_dir=pipeline.build_output_dir,
        base_dir=pipeline.base_dir,
        variables=environment.variables,
    )
    plan = lb.plan_from_buildspec(buildspec)
    work = tempfile.mkdtemp(prefix="troy-build-", dir=settings.TROY_LOCAL_BUILD_DIR)
    source_dir = os.path.join(work, "src")
    os.makedirs(source_dir)
    try:
        outcome, context = _run_phases(build, local_id, plan, source_dir, environment.secrets, log)
    except Exception as exc:  # anything unforeseen ends the build (FAULT) instead of leaving it running
        logger.exception("local build %s failed unexpectedly", build_id)
        outcome, context = "FAULT", [f"{type(exc).__name__}: {exc}"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _finish(build, local_id, outcome, context)


def _run_phases(
    build: Build,
    local_id: str,
    plan: lb.LocalBuildPlan,
    source_dir: str,
    secrets: dict[str, str],
    log: Callable[[str], None],
) -> tuple[str, list[str]]:
    """DOWNLOAD_SOURCE, the buildspec's phases, UPLOAD_ARTIFACTS; (outcome, its context)."""
    log(lb.container_line(f"Running on the local builder, build {build.id} of {build.pipeline.name}"))

    def download() -> str:
        archive = os.path.join(os.path.dirname(source_dir), "source.zip")
        aws.client("s3").download_file(settings.TROY_ARTIFACT_BUCKET, artifact_keys.source_key(build.id), archive)
        files = lb.extract_source(archive, source_dir)
        os.unlink(archive)
        return f"Source: {files} files of {build.commit_sha or build.ref}"

    def upload() -> str:
        archive = os.path.join(os.path.dirname(source_dir), "artifacts.zip")
        files = lb.zip_artifacts(source_dir=source_dir, base=plan.artifacts_base, dest=archive)
        aws.client("s3").upload_file(
            archive,
            settings.TROY_ARTIFACT_BUCKET,
            artifact_keys.build_artifact_key(build.id),
            ExtraArgs={"ContentType": "application/zip"},
        )
        return f"Artifacts: {files} files from {plan.artifacts_base}"

    environ = lb.build_environ(source_dir=source_dir, build_id=str(build.id), values={**plan.variables, **secrets})
    stop_asked = _stop_asked(build.id)
    steps: list[tuple[str, Callable[[], lb.PhaseResult]]] = [
        ("DOWNLOAD_SOURCE", lambda: _step("DOWNLOAD_SOURCE", download, log)),
    ]
    for phase in plan.phases:
        run_this = partial(
            lb.run_phase,
            phase=phase,
            cwd=source_dir,
            environ=environ,
            timeout=settings.TROY_LOCAL_BUILD_PHASE_SECONDS,
            on_output=log,
            should_stop=stop_asked,
        )
        steps.append((phase.phase, run_this))
    steps.append(("UPLOAD_ARTIFACTS", lambda: _step("UPLOAD_ARTIFACTS", upload, log)))
    for name, run in steps:
        if stop_asked():
            return lb.STOPPED, ["BUILD_STOPPED: the build was cancelled"]
        _report(local_id, build_status="IN_PROGRESS", current_phase=name)
        result = run()
        _report(local_id, phases=[result.as_report_phase()])
        if result.status != lb.SUCCEEDED:
            return result.status, result.context
    return lb.SUCCEEDED, []


def _finish(build: Build, local_id: str, outcome: str, context: list[str]) -> str:
    """The log is complete, then the outcome goes the way CodeBuild's last event goes."""
    build_log_append(build_id=build.id, text=lb.container_line(f"Build {outcome}"))
    build_log_finish(build_id=build.id)
    return _report(local_id, build_status=outcome, current_phase="COMPLETED", current_context=context)

"""The CodeBuild flows of an automated build (called by the actors in ``pipelines.tasks`` and
``hooks.tasks``):

* :func:`codebuild_start_run` — Download Source from GitHub into the artifact bucket, StartBuild;
* :func:`codebuild_stop_run` — StopBuild for a build whose cancel was asked for;
* :func:`codebuild_event_apply` — one CodeBuild event (EventBridge shape, as SNS delivers it);
* :func:`codebuild_reconcile` — BatchGetBuilds for builds that stay running (events are best
  effort), each answer read into the same report an event gives;
* :func:`codebuild_report_commit_status` — the build's state as a GitHub commit status.

AWS and GitHub are called outside any transaction; every write goes through the services.
"""

from __future__ import annotations

from datetime import timedelta
import logging
import tempfile
from typing import Any
import uuid

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.utils import timezone

from deployment_service import artifact_keys, aws
from deployment_service.exceptions import ApplicationError
from deployment_service.integrations import codebuild as cb
from deployment_service.integrations import github
from deployment_service.integrations.local_builder import LOCAL_BUILD_PREFIX, is_local_build_id
from deployment_service.integrations.local_git import is_local_source
from deployment_service.retries import TransientFailure, is_transient
from deployment_service.transactions import send_on_commit
from pipelines.choices import BuildKind, BuildStatus
from pipelines.exceptions import InstallationMissing
from pipelines.flows.environment import secrets_ensure_synced
from pipelines.flows.local_builds import local_build_started
from pipelines.flows.local_sources import local_source_to_s3
from pipelines.flows.preview_reports import preview_report_to_github
from pipelines.grants import owner_installation_id
from pipelines.models import Build
from pipelines.services import (
    SYSTEM_CODEBUILD,
    build_apply_codebuild_report,
    build_codebuild_environment,
    build_record_codebuild,
    build_record_commit,
    codebuild_outcome,
    deployment_fail,
    pipeline_record_installation,
)

logger = logging.getLogger(__name__)


def _describe(exc: BaseException) -> str:
    """A short, secret-free text for an error (GitHub's client keeps tokens out of its errors)."""
    if isinstance(exc, ApplicationError):
        return exc.detail
    if isinstance(exc, (ClientError, BotoCoreError)):
        return aws.error_message(exc)
    return f"{type(exc).__name__}: {exc}"


# --- start and stop -----------------------------------------------------------------------------


def codebuild_start_run(*, build_id: uuid.UUID | str) -> None:
    """Download Source, then StartBuild. Idempotent: a build that is not running, or that already
    has its CodeBuild build, is left alone. Any failure fails the build (and the pipeline) with
    the step and the reason kept on the build, except a transient one (a GitHub 5xx or rate limit,
    AWS throttling, a broken connection): it is raised with the build left running, and Dramatiq's
    retry starts again from Download Source."""
    build = Build.objects.select_related("pipeline").filter(pk=build_id).first()
    if build is None or build.status != BuildStatus.RUNNING:
        logger.info("build %s is %s: not starting CodeBuild", build_id, build.status if build else "gone")
        return
    if build.codebuild_build_id:
        logger.info("build %s already has CodeBuild build %s", build_id, build.codebuild_build_id)
        return
    if build.cancel_requested:
        deployment_fail(build_id=build.id, error=_cancelled_before_start(build), actor=SYSTEM_CODEBUILD)
        return
    pipeline = build.pipeline

    step = "Download Source"
    local_builder = settings.TROY_BUILDER == "local"
    try:
        if not pipeline.repository:
            raise ApplicationError("The pipeline has no repository to build.")
        if is_local_source(pipeline.repository):
            commit_sha = local_source_to_s3(build)  # git archive of the local repository
        else:
            # Only the owner's installation: never "any installation of the repository" (that would
            # let anyone build a repository they merely named).
            installation_id = owner_installation_id(
                owner_id=pipeline.owner_id, repository=pipeline.repository, prefer=pipeline.github_installation_id
            )
            if installation_id is None:
                raise InstallationMissing(
                    f"The pipeline's owner holds no active GitHub App installation covering {pipeline.repository} "
                    "(uninstalled or suspended on GitHub?)."
                )
            pipeline_record_installation(pipeline_id=pipeline.id, installation_id=installation_id)
            commit_sha = _download_source_to_s3(build, installation_id=installation_id)
        build_record_commit(build_id=build.id, commit_sha=commit_sha)

        build.refresh_from_db(fields=["cancel_requested", "cancel_requested_by"])
        if build.cancel_requested:
            deployment_fail(build_id=build.id, error=_cancelled_before_start(build), actor=SYSTEM_CODEBUILD)
            return

        step = "StartBuild"
        if local_builder:
            # The worker runs the buildspec itself (run_local_build), with the secrets' values.
            started = local_build_started(build)
        else:
            # Secrets travel by SSM reference only; any not copied there yet is copied first.
            environment = build_codebuild_environment(build)
            secrets_ensure_synced(build)
            buildspec = cb.buildspec_for(
                install=pipeline.build_install,
                build=pipeline.build_command,
                test=pipeline.build_test,
                output_dir=pipeline.build_output_dir,
                base_dir=pipeline.base_dir,
                variables=environment.variables,
                parameters=environment.parameters,
            )
            started = cb.start_build(build_id=build.id, buildspec=buildspec)
    except Exception as exc:  # a permanent failure ends the build with its reason
        if is_transient(exc):
            logger.warning("build %s: %s failed, retrying later: %s", build_id, step, _describe(exc))
            raise TransientFailure(f"{step} failed: {_describe(exc)}") from exc
        logger.warning("build %s: %s failed", build_id, step, exc_info=not isinstance(exc, ApplicationError))
        deployment_fail(build_id=build.id, error=f"{step} failed: {_describe(exc)}", actor=SYSTEM_CODEBUILD)
        return

    recorded = build_record_codebuild(
        build_id=build.id, codebuild_build_id=started.id, logs_url=started.logs_url, artifact_key=started.artifact_key
    )
    if local_builder:
        if recorded is not None:
            send_on_commit("run_local_build", str(build.id))
        logger.info("build %s: handed to the local builder", build_id)
        return
    logger.info("build %s: CodeBuild build %s started", build_id, started.id)


def build_give_up(*, build_id: uuid.UUID | str | None, error: str) -> None:
    """The retries of the build's Download Source/StartBuild or deploy step are used up: the build
    fails with ``error`` (nothing happens when it already ended)."""
    if build_id and Build.objects.filter(pk=build_id, status=BuildStatus.RUNNING).exists():
        logger.warning("build %s failed after its retries: %s", build_id, error)
        deployment_fail(build_id=build_id, error=error)


def _download_source_to_s3(build: Build, *, installation_id: int) -> str:
    """The GitHub client writes the repackaged archive to a temporary file; the flow stores it
    where CodeBuild reads its source. Returns the commit sha."""
    pipeline = build.pipeline
    key = artifact_keys.source_key(build.id)
    with tempfile.TemporaryFile(prefix="troy-source-", dir=settings.FILE_UPLOAD_TEMP_DIR) as archive:
        source = github.download_source(
            repository=pipeline.repository,
            ref_or_sha=build.commit_sha or build.ref or pipeline.branch,
            installation_id=installation_id,
            dest=archive,
        )
        archive.seek(0)
        aws.client("s3").upload_fileobj(
            archive,
            settings.TROY_ARTIFACT_BUCKET,
            key,
            ExtraArgs={"ContentType": "application/zip", "Metadata": {"commit-sha": source.commit_sha}},
        )
    logger.info("source of %s@%s (%d files) stored at %s", pipeline.repository, source.commit_sha, source.files, key)
    return source.commit_sha


def _cancelled_before_start(build: Build) -> str:
    who = f"Cancelled by {build.cancel_requested_by}" if build.cancel_requested_by else "Cancelled on request"
    return f"{who} before CodeBuild started."


def codebuild_stop_run(*, build_id: uuid.UUID | str) -> str:
    """StopBuild for a running build whose cancel was asked for. CodeBuild's answer goes through
    :func:`codebuild_event_apply` at once (a STOPPED answer fails the build as cancelled; a build
    that had already finished is treated as what it is); later STOPPED events then change nothing."""
    build = Build.objects.filter(pk=build_id).first()
    if build is None or build.status != BuildStatus.RUNNING or not build.cancel_requested:
        return f"nothing to stop: build {build_id} is {build.status if build else 'gone'}"
    if not build.codebuild_build_id:
        # StartBuild has not answered yet: the start flow checks cancel_requested before starting
        # and enqueues this actor again once it has the CodeBuild id.
        return f"nothing to stop yet: build {build_id} has no CodeBuild build"
    if is_local_build_id(build.codebuild_build_id):
        # The local builder checks cancel_requested every second and kills the running phase.
        return f"stop asked: the local builder stops build {build_id}"
    answer = cb.stop_build(build.codebuild_build_id)
    if answer is None:
        deployment_fail(
            build_id=build.id,
            error=(f"Cancelled on request; CodeBuild does not know build {build.codebuild_build_id}."),
            actor=SYSTEM_CODEBUILD,
        )
        return "failed: CodeBuild does not know the build"
    if answer.get("buildStatus") == "IN_PROGRESS":
        return f"stop asked: CodeBuild build {build.codebuild_build_id} is stopping"
    return build_apply_codebuild_report(report=cb.codebuild_report_from_build(answer))


# --- events -------------------------------------------------------------------------------------


def codebuild_event_apply(event: dict[str, Any]) -> str:
    """Apply one CodeBuild event to its build. Returns what it did, in words.

    Phase changes record the phase, phases with timings and the logs link; a state change
    IN_PROGRESS does the same; SUCCEEDED hands the build to the deploy step (once); FAILED, FAULT,
    STOPPED, TIMED_OUT or any other terminal status fails the build with the failed phase and its
    message. Duplicates, late and out-of-order events change nothing harmful."""
    report = cb.codebuild_report_from_event(event)
    if isinstance(report, str):
        return report
    return build_apply_codebuild_report(report=report)


# --- the reconciler -----------------------------------------------------------------------------


def codebuild_reconcile(*, now=None) -> list[str]:
    """Builds running with a CodeBuild build for longer than ``TROY_RECONCILE_AFTER_SECONDS`` whose
    outcome is not known yet: ask BatchGetBuilds, apply each answer like an event. A build
    CodeBuild does not know fails. Returns what was done, one line per build."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.TROY_RECONCILE_AFTER_SECONDS)
    rows = (
        Build.objects.filter(status=BuildStatus.RUNNING, started_at__lt=cutoff)
        .exclude(codebuild_build_id="")
        .exclude(codebuild_build_id__startswith=LOCAL_BUILD_PREFIX)  # the local builder reports itself
        .order_by("started_at")  # oldest first
        .values_list("id", "codebuild_build_id", "phases")
    )
    waiting = {cb_id: build_id for build_id, cb_id, phases in rows if not codebuild_outcome(phases)}
    if not waiting:
        return []
    found, missing = cb.batch_get_builds(list(waiting))
    results = []
    for answer in found:
        try:
            results.append(build_apply_codebuild_report(report=cb.codebuild_report_from_build(answer)))
        except Exception:  # one bad build must not stop the sweep
            logger.exception("reconciler could not apply CodeBuild build %s", answer.get("id"))
    for cb_id in missing:
        build = deployment_fail(
            build_id=waiting[cb_id], error=f"CodeBuild does not know build {cb_id}.", actor=SYSTEM_CODEBUILD
        )
        results.append(f"failed: CodeBuild does not know {cb_id}" if build else f"ignored: {cb_id}")
    return results


# --- GitHub commit statuses ---------------------------------------------------------------------

_COMMIT_STATES = {
    BuildStatus.RUNNING: ("pending", "Troy is building and deploying this commit."),
    BuildStatus.SUCCEEDED: ("success", "Deployed by Troy."),
    BuildStatus.FAILED: ("failure", "Troy could not deploy this commit."),
    BuildStatus.CANCELLED: ("error", "The deployment was cancelled."),
}


def codebuild_report_commit_status(*, build_id: uuid.UUID | str) -> str:
    """Put the build's current state on its commit as a GitHub status (pending while it runs,
    success when live, failure with the reason). It reports the state at the time it runs, so
    late or repeated calls converge on the final state. Best effort: a permanent GitHub error is
    logged; a transient one is raised, for Dramatiq to retry."""
    build = Build.objects.select_related("pipeline", "preview").filter(pk=build_id).first()
    if build is None or not build.commit_sha or not build.pipeline.repository:
        return "skipped: no commit to report on"
    if is_local_source(build.pipeline.repository):
        return "skipped: a local git source has no commit statuses"
    if build.preview_label and build.kind == BuildKind.AUTOMATED:
        # a preview's URL, context troy/preview/{label} and a GitHub deployment
        return preview_report_to_github(build) if github.github_configured() else "skipped: GitHub not configured"
    if build.status not in _COMMIT_STATES:
        return f"skipped: build is {build.status}"
    if not github.github_configured():
        return "skipped: the GitHub App is not configured"
    state, description = _COMMIT_STATES[build.status]
    if build.status == BuildStatus.FAILED and build.error:
        description = build.error
    description = f"#{build.number}: {description}"
    target_url = build.logs_url or ""
    if build.status == BuildStatus.SUCCEEDED:
        description = f"#{build.number}: Deployed to {build.pipeline.site_url}"
        target_url = build.pipeline.site_url
    try:
        installation_id = owner_installation_id(
            owner_id=build.pipeline.owner_id,
            repository=build.pipeline.repository,
            prefer=build.pipeline.github_installation_id,
        )
        if installation_id is None:
            return "not reported: the owner holds no installation covering the repository"
        github.set_commit_status(
            repository=build.pipeline.repository,
            sha=build.commit_sha,
            installation_id=installation_id,
            state=state,
            description=description,
            target_url=target_url,
        )
    except Exception as exc:
        if is_transient(exc):
            raise TransientFailure(f"commit status {state} not set: {_describe(exc)}") from exc
        logger.warning("commit status %s for build %s not set: %s", state, build_id, _describe(exc))
        return f"not reported: {_describe(exc)}"
    return f"reported {state}"

"""A preview build's state back on its commit (called by the ``report_commit_status`` actor):

* a commit status with context ``troy/preview/{label}``: pending while it waits for approval or
  runs, success with ``target_url`` = the preview's URL, failure with the reason;
* a GitHub deployment to environment ``preview/{label}`` (transient), made once per build when it
  starts or ends, with a deployment status carrying ``environment_url`` = the preview's URL.

It reports the state at the time it runs, so late or repeated calls converge on the final state.
Best effort: a permanent GitHub error is logged; a transient one is raised for Dramatiq to retry.
"""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError

from deployment_service import aws
from deployment_service.exceptions import ApplicationError
from deployment_service.integrations import github
from deployment_service.retries import TransientFailure, is_transient
from pipelines.choices import BuildStatus
from pipelines.grants import owner_installation_id
from pipelines.models import Build, Pipeline
from pipelines.services import build_record_github_deployment

logger = logging.getLogger(__name__)

# build status → (commit status state, deployment state or None for no deployment yet)
_STATES = {
    BuildStatus.RUNNING: ("pending", "in_progress"),
    BuildStatus.SUCCEEDED: ("success", "success"),
    BuildStatus.FAILED: ("failure", "failure"),
    BuildStatus.CANCELLED: ("error", "error"),
}


def preview_status_context(label: str) -> str:
    return f"troy/preview/{label}"


def preview_environment(label: str) -> str:
    return f"preview/{label}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApplicationError):
        return exc.detail
    if isinstance(exc, (ClientError, BotoCoreError)):
        return aws.error_message(exc)
    return f"{type(exc).__name__}: {exc}"


def _what(build: Build, url: str) -> tuple[str, str, str | None, str]:
    """(commit state, description, deployment state, target url) for the build's state now."""
    if build.status == BuildStatus.QUEUED and build.awaiting_approval:
        return "pending", f"#{build.number}: a fork's pull request; waiting for the owner's approval.", None, ""
    commit_state, deployment_state = _STATES[build.status]
    if build.status == BuildStatus.SUCCEEDED:
        return commit_state, f"#{build.number}: preview at {url}", deployment_state, url
    if build.status == BuildStatus.RUNNING:
        return commit_state, f"#{build.number}: building the preview.", deployment_state, build.logs_url
    return commit_state, f"#{build.number}: {build.error or build.status}", deployment_state, build.logs_url


NO_INSTALLATION = "not reported: the owner holds no installation covering the repository"


def _installation(pipeline: Pipeline) -> int | None:
    """The owner's installation covering the pipeline's repository (the pipeline's own first)."""
    return owner_installation_id(
        owner_id=pipeline.owner_id, repository=pipeline.repository, prefer=pipeline.github_installation_id
    )


def preview_report_to_github(build: Build) -> str:
    """Report one preview build (its pipeline and preview loaded); returns what it did, in words."""
    if not (build.status in _STATES or (build.status == BuildStatus.QUEUED and build.awaiting_approval)):
        return f"skipped: build is {build.status}"
    label = build.preview_label
    url = build.preview.url if build.preview is not None else ""
    state, description, deployment_state, target_url = _what(build, url)
    pipeline = build.pipeline
    try:
        installation_id = _installation(pipeline)
        if installation_id is None:
            return NO_INSTALLATION
        github.set_commit_status(
            repository=pipeline.repository,
            sha=build.commit_sha,
            installation_id=installation_id,
            state=state,
            description=description,
            target_url=target_url,
            context=preview_status_context(label),
        )
        if deployment_state is None:
            return f"reported {state}"
        deployment_id = build.github_deployment_id
        if deployment_id is None:
            made = github.create_deployment(
                repository=pipeline.repository,
                sha=build.commit_sha,
                environment=preview_environment(label),
                installation_id=installation_id,
                description=f"Troy preview {label}, build #{build.number}",
            )
            deployment_id = build_record_github_deployment(build_id=build.id, deployment_id=made)
        github.set_deployment_status(
            repository=pipeline.repository,
            deployment_id=deployment_id,
            state=deployment_state,
            installation_id=installation_id,
            environment_url=url if build.status == BuildStatus.SUCCEEDED else "",
            log_url=build.logs_url,
            description=description,
        )
    except Exception as exc:
        if is_transient(exc):
            raise TransientFailure(f"preview {label} not reported: {_describe(exc)}") from exc
        logger.warning("preview report %s for build %s not made: %s", state, build.id, _describe(exc))
        return f"not reported: {_describe(exc)}"
    return f"reported {state}, deployment {deployment_state}"


def preview_deployment_deactivate(*, build_id: str) -> str:
    """The preview a build served was removed: its GitHub deployment's status becomes
    ``inactive`` (the pull request no longer offers "View deployment"). Best effort, like the
    reports."""
    build = Build.objects.select_related("pipeline").filter(pk=build_id).first()
    if build is None or build.github_deployment_id is None or not build.pipeline.repository:
        return "skipped: no GitHub deployment"
    if not github.github_configured():
        return "skipped: GitHub not configured"
    pipeline = build.pipeline
    try:
        installation_id = _installation(pipeline)
        if installation_id is None:
            return NO_INSTALLATION
        github.set_deployment_status(
            repository=pipeline.repository,
            deployment_id=build.github_deployment_id,
            state="inactive",
            installation_id=installation_id,
            description=f"Preview {build.preview_label} removed.",
        )
    except Exception as exc:
        if is_transient(exc):
            raise TransientFailure(f"deployment of preview {build.preview_label} not deactivated") from exc
        logger.warning("deployment of build %s not deactivated: %s", build.id, _describe(exc))
        return f"not reported: {_describe(exc)}"
    return "deactivated"

"""GitHub deliveries that build or close previews (in a worker, inside the delivery's transaction):

* a push to a branch matching a pipeline's ``preview_branches`` (not its production branch)
  builds that branch's preview, with the pipeline's watch paths applied; a push deleting such a
  branch marks its preview closed;
* ``pull_request`` (pipelines with ``pull_request_previews``): ``opened``, ``synchronize`` and
  ``reopened`` build ``pr-{n}`` (a fork's waits for the owner's approval; watch paths apply to
  what the pull request changes, base...head), ``closed`` (merged or not) marks it closed; any
  other action is ignored.

The periodic care removes closed previews after TROY_PREVIEW_CLOSED_GRACE_SECONDS. Nothing here
touches a pipeline's status or production (pipelines.services.preview_sources).
"""

from __future__ import annotations

from dataclasses import dataclass
import re
from typing import Any

from deployment_service.exceptions import ApplicationError
from hooks.exceptions import InvalidDelivery
from pipelines.choices import ACCEPTS_DEPLOYMENT, PreviewSource
from pipelines.models import Pipeline
from pipelines.services import (
    pipeline_record_installation,
    preview_automated_request,
    preview_mark_closed,
    preview_reopen,
    pull_request_label,
    push_skipped_record,
    watch_paths_decide,
)

_SHA_RE = re.compile(r"[0-9a-f]{40}")
BUILD_ACTIONS = ("opened", "synchronize", "reopened")
CLOSE_ACTIONS = ("closed",)


def preview_push_handle(
    pipeline: Pipeline,
    *,
    branch: str,
    commit_sha: str,
    deleted: bool,
    actor: str,
    changed_files: list[str] | None,
) -> str:
    """One pipeline whose ``preview_branches`` match the pushed branch; returns a note."""
    if deleted:
        preview = preview_mark_closed(
            pipeline_id=pipeline.id, branch=branch, actor=actor, reason=f"branch {branch} was deleted"
        )
        if preview is None:
            return f"{pipeline.name}: branch {branch} deleted, it had no preview"
        return f"{pipeline.name}: preview {preview.label} closed, branch {branch} deleted"
    if pipeline.status not in ACCEPTS_DEPLOYMENT:
        return f"{pipeline.name}: preview of {branch} skipped, it is {pipeline.status} and cannot deploy"
    watched = watch_paths_decide(pipeline.watch_paths, changed_files)
    if not watched.build:
        push_skipped_record(
            pipeline_id=pipeline.id,
            commit_sha=commit_sha,
            reason=watched.reason,
            actor=actor,
            where=f"{branch} (preview)",
        )
        return f"{pipeline.name}: preview of {branch} skipped, {watched.reason}"
    try:
        build = preview_automated_request(
            pipeline_id=pipeline.id,
            source=PreviewSource.BRANCH,
            branch=branch,
            commit_sha=commit_sha,
            actor=actor,
        )
    except ApplicationError as exc:
        return f"{pipeline.name}: preview of {branch} skipped, {exc.detail}"
    return f"{pipeline.name}: build #{build.number} queued for preview {build.preview_label} of {commit_sha[:12]}"


# --- pull requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullRequest:
    action: str
    number: int
    repository: str  # the base repository, owner/repo
    head_repository: str  # "" when the head repository is gone (a deleted fork)
    head_ref: str
    head_sha: str
    base_sha: str  # "" when the delivery lacks it (then the changed files stay unknown)
    merged: bool
    installation_id: int | None
    sender: str

    @property
    def from_fork(self) -> bool:
        """A head outside the base repository (or one deleted since) is a fork's."""
        return self.head_repository.lower() != self.repository.lower()


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def github_pull_request_parse(payload: Any) -> PullRequest:
    """The fields of a ``pull_request`` delivery Troy uses; :class:`InvalidDelivery` when one is
    missing or malformed."""
    if not isinstance(payload, dict):
        raise InvalidDelivery("A pull_request delivery is a JSON object.")
    pull = _dict(payload.get("pull_request"))
    head = _dict(pull.get("head"))
    base_sha = _dict(pull.get("base")).get("sha")
    number = payload.get("number", pull.get("number"))
    action = payload.get("action")
    repository = _dict(payload.get("repository")).get("full_name")
    head_repository = _dict(head.get("repo")).get("full_name") or ""
    installation_id = _dict(payload.get("installation")).get("id")
    problems = []
    if not isinstance(action, str) or not action:
        problems.append("action")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        problems.append("number")
    if not isinstance(repository, str) or repository.count("/") != 1:
        problems.append("repository.full_name")
    if not isinstance(head_repository, str):
        problems.append("pull_request.head.repo.full_name")
    if not isinstance(head.get("ref"), str) or not head.get("ref"):
        problems.append("pull_request.head.ref")
    if not isinstance(head.get("sha"), str) or not _SHA_RE.fullmatch(head.get("sha") or ""):
        problems.append("pull_request.head.sha")
    if installation_id is not None and (not isinstance(installation_id, int) or isinstance(installation_id, bool)):
        problems.append("installation.id")
    if problems:
        raise InvalidDelivery(
            f"The pull_request delivery lacks valid {', '.join(problems)}.", extra={"fields": problems}
        )
    sender = _dict(payload.get("sender")).get("login") or "unknown"
    return PullRequest(
        action=action,
        number=number,
        repository=repository,
        head_repository=head_repository,
        head_ref=head["ref"][:255],
        head_sha=head["sha"],
        base_sha=base_sha if isinstance(base_sha, str) and _SHA_RE.fullmatch(base_sha) else "",
        merged=pull.get("merged") is True,
        installation_id=installation_id,
        sender=str(sender)[:100],
    )


def pull_request_handle(pull: PullRequest, *, changed_files: list[str] | None = None) -> str:
    """Build or close ``pr-{n}`` on every pipeline of the base repository with pull request
    previews whose owner holds the delivering installation (pipelines locked in name order).
    ``changed_files``: what the pull request changes (base...head), when known, for watch paths."""
    where = f"{pull.repository} pull request #{pull.number}"
    if pull.action not in BUILD_ACTIONS + CLOSE_ACTIONS:
        return f"ignored: {where} {pull.action}"
    if pull.installation_id is None:
        return f"ignored: the delivery for {where} names no installation"
    pipelines = list(
        Pipeline.objects.filter(
            repository__iexact=pull.repository,
            pull_request_previews=True,
            owner__github_installations__installation_id=pull.installation_id,
            owner__github_installations__suspended_at=None,
            owner__github_installations__removed_at=None,
        ).order_by("name")
    )
    actor = f"github:{pull.sender}"
    label = pull_request_label(pull.number)
    notes = []
    for pipeline in pipelines:
        try:
            pipeline_record_installation(pipeline_id=pipeline.id, installation_id=pull.installation_id)
            if pull.action in CLOSE_ACTIONS:
                how = "merged" if pull.merged else "closed"
                closed = preview_mark_closed(
                    pipeline_id=pipeline.id, label=label, actor=actor, reason=f"pull request #{pull.number} {how}"
                )
                notes.append(f"{pipeline.name}: preview {label} {'closed' if closed else 'absent'}")
                continue
            if pull.action == "reopened":  # kept even when the build below cannot start
                preview_reopen(pipeline_id=pipeline.id, label=label, actor=actor)
            if pipeline.status not in ACCEPTS_DEPLOYMENT:
                notes.append(f"{pipeline.name}: skipped, it is {pipeline.status} and cannot deploy")
                continue
            watched = watch_paths_decide(pipeline.watch_paths, changed_files)
            if not watched.build:
                push_skipped_record(
                    pipeline_id=pipeline.id,
                    commit_sha=pull.head_sha,
                    reason=watched.reason,
                    actor=actor,
                    where=f"pull request #{pull.number}",
                )
                notes.append(f"{pipeline.name}: {label} skipped, {watched.reason}")
                continue
            build = preview_automated_request(
                pipeline_id=pipeline.id,
                source=PreviewSource.PULL_REQUEST,
                branch=pull.head_ref,
                commit_sha=pull.head_sha,
                pull_request=pull.number,
                from_fork=pull.from_fork,
                actor=actor,
            )
        except ApplicationError as exc:  # the pipeline changed since it was listed
            notes.append(f"{pipeline.name}: skipped, {exc.detail}")
            continue
        waits = ", waiting for approval (a fork)" if build.awaiting_approval else ""
        notes.append(f"{pipeline.name}: build #{build.number} queued for preview {label}{waits}")
    if not notes:
        return (
            f"no pipeline builds previews of {pull.repository} pull requests with installation {pull.installation_id}"
        )
    return "; ".join(notes)

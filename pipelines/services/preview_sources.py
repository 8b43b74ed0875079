"""Automated previews: branches matching a pipeline's ``preview_branches`` and pull requests get a
preview built by CodeBuild (docs/github.md, "Previews"). Releases to a label are in ``previews``.

* Labels: a branch's slug (``preview_label_for_branch``: DNS-safe; ``pr-{n}`` and ``b{n}`` forms
  get ``branch-`` in front; too long, or taken by another branch, a stable hash); a pull
  request's ``pr-{n}``.
* Newest wins per label: a new build supersedes the preview's queued ones at once and asks
  CodeBuild to stop a running one whose outcome is not known yet (its end starts the newest).
* A fork's pull request waits (``awaiting_approval``) until the pipeline's owner approves it
  (``preview_approve``) and builds with ``from_fork``: no secrets (services.environment).
* A deleted branch or a closed pull request marks the preview closed (``preview_mark_closed``);
  the periodic care removes it later (services.preview_care). A new build clears the mark.

Nothing here changes the pipeline's status or its production pointer: the events are notes
(``preview_*`` transitions, from_status == to_status). Locking: the pipeline, then the preview,
then its builds.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import re
import uuid

from django.db import transaction
from django.utils import timezone

from deployment_service.transactions import send_on_commit
from pipelines.choices import ACCEPTS_DEPLOYMENT, BuildKind, BuildStatus, BuildTrigger, PreviewSource
from pipelines.exceptions import NothingToApprove, PreviewNotFound
from pipelines.models import DNS_LABEL_MAX, Build, Pipeline, Preview
from pipelines.services.build_records import codebuild_outcome
from pipelines.services.builds import automated_source_check, next_build_number
from pipelines.services.previews import preview_lock_or_create
from pipelines.services.transitions import lock_pipeline, note_record, refuse
from pipelines.validators import RESERVED_PREVIEW_LABEL

logger = logging.getLogger(__name__)

_NOT_IN_LABEL = re.compile(r"[^a-z0-9]+")
_LABEL_HASH = 8
MAX_PREVIEW_BRANCH_PATTERNS = 50


def pull_request_label(number: int) -> str:
    return f"pr-{number}"


def preview_branches_check(patterns: object) -> list[str]:
    """The patterns if valid (a list of at most 50 non-empty fnmatch patterns), else ValueError."""
    if not isinstance(patterns, list):
        raise ValueError("preview_branches must be a list of branch patterns.")
    if len(patterns) > MAX_PREVIEW_BRANCH_PATTERNS:
        raise ValueError(f"At most {MAX_PREVIEW_BRANCH_PATTERNS} preview branch patterns.")
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip() or len(pattern) > 255 or pattern != pattern.strip():
            raise ValueError(f"{pattern!r} is not a branch pattern (a non-empty string, no surrounding spaces).")
    return patterns


def preview_branch_matches(patterns: list[str], branch: str) -> bool:
    """Does ``branch`` get a branch preview? fnmatch, case-sensitive as git is (``*`` also
    crosses ``/``: ``feature/*`` matches ``feature/a/b``)."""
    return any(isinstance(pattern, str) and fnmatch.fnmatchcase(branch, pattern) for pattern in patterns or [])


def _unreserved(label: str) -> str:
    return f"branch-{label}" if RESERVED_PREVIEW_LABEL.match(label) else label


def _with_hash(label: str, key: str) -> str:
    """``label`` cut to leave room for `-{8 hex}` of ``key`` (stable: the same branch, the same label)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:_LABEL_HASH]
    head = label[: DNS_LABEL_MAX - _LABEL_HASH - 1].strip("-")
    return _unreserved(f"{head}-{digest}" if head else digest)


def preview_label_for_branch(branch: str) -> str:
    """A branch's preview label: lowercased, every run of characters other than a-z and 0-9 one
    '-', no '-' at either end (``Feature/Login_Form`` → ``feature-login-form``); ``branch`` when
    nothing is left; ``branch-`` in front of the reserved forms (``pr-7`` → ``branch-pr-7``,
    ``b12`` → ``branch-b12``); past 63 characters cut and followed by a stable hash."""
    label = _unreserved(_NOT_IN_LABEL.sub("-", branch.lower()).strip("-") or "branch")
    if len(label) > DNS_LABEL_MAX:
        label = _with_hash(label, branch)
    return label


def _branch_preview_label(pipeline: Pipeline, branch: str) -> str:
    """The label of ``branch``'s preview on this pipeline: its slug, or (when another branch or a
    release already holds that label) the slug with the branch's hash."""
    label = preview_label_for_branch(branch)
    holder = Preview.objects.filter(pipeline=pipeline, label=label).values_list("source", "branch").first()
    if holder is None or holder == (PreviewSource.BRANCH, branch):
        return label
    return _with_hash(label, branch)


def _supersede_older(pipeline: Pipeline, preview: Preview, newest: Build) -> None:
    """Newest wins: the preview's other queued builds are superseded, and a running one still in
    CodeBuild is asked to stop (its STOPPED end fails it and starts ``newest``). A running one past
    CodeBuild (deploying its artifact, which is short) finishes and is replaced right after."""
    others = Build.objects.select_for_update().filter(preview=preview).exclude(pk=newest.pk)
    for queued in others.filter(status=BuildStatus.QUEUED):
        queued.supersede(by=newest)
        queued.save()
    for running in others.filter(status=BuildStatus.RUNNING, kind=BuildKind.AUTOMATED, cancel_requested=False):
        if codebuild_outcome(running.phases):
            continue
        running.cancel_requested = True
        running.cancel_requested_by = f"build #{newest.number} (newer)"
        running.save(update_fields=["cancel_requested", "cancel_requested_by", "updated_at"])
        send_on_commit("stop_codebuild", str(running.id))
        logger.info(
            "%s preview %s: build #%s stops for #%s", pipeline.name, preview.label, running.number, newest.number
        )


def preview_automated_request(
    *,
    pipeline_id: uuid.UUID | str,
    source: str,
    branch: str,
    commit_sha: str,
    actor: str,
    pull_request: int | None = None,
    from_fork: bool = False,
) -> Build:
    """Queue a CodeBuild build of ``commit_sha`` for the branch's preview (``source`` branch) or
    the pull request's ``pr-{n}`` (``source`` pr; ``branch`` is its head branch). A fork's build
    waits for approval; any other starts as soon as the preview's queue lets it. Clears a closed
    mark (a reopened pull request, a branch pushed again)."""
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        if pipeline.status not in ACCEPTS_DEPLOYMENT:
            raise refuse(pipeline, "queue_deployment")
        automated_source_check(pipeline)
        if source == PreviewSource.PULL_REQUEST:
            if pull_request is None:
                raise ValueError("a pull request preview needs its number")
            label = pull_request_label(pull_request)
        else:
            label = _branch_preview_label(pipeline, branch)
        preview = preview_lock_or_create(pipeline, label, source=source)
        preview.source, preview.branch, preview.pull_request, preview.closed_at = source, branch, pull_request, None
        preview.save(update_fields=["source", "branch", "pull_request", "closed_at", "updated_at"])
        number = next_build_number(pipeline)
        build = Build.objects.create(
            pipeline=pipeline,
            preview=preview,
            preview_label=label,
            number=number,
            kind=BuildKind.AUTOMATED,
            trigger=BuildTrigger.PULL_REQUEST if source == PreviewSource.PULL_REQUEST else BuildTrigger.PUSH,
            ref=branch,
            commit_sha=commit_sha,
            from_fork=from_fork,
            awaiting_approval=from_fork,
        )
        if from_fork:
            # Only older builds waiting for approval give way: an unapproved push never stops an
            # approved build (approving this one does).
            for waiting in Build.objects.select_for_update().filter(
                preview=preview, status=BuildStatus.QUEUED, awaiting_approval=True, number__lt=number
            ):
                waiting.supersede(by=build)
                waiting.save()
            message = (
                f"Build #{number} of {commit_sha[:12]} (a fork's pull request) waits for approval on preview {label}."
            )
            send_on_commit("report_commit_status", str(build.id))  # "waiting for approval" on the commit
        else:
            _supersede_older(pipeline, preview, build)
            message = f"Build #{number} of {commit_sha[:12]} queued for preview {label}."
            send_on_commit("run_preview_deployment", str(preview.id))
        note_record(pipeline, transition="preview_queue", actor=actor, build=build, message=message)
    return build


def preview_approve(*, pipeline_id: uuid.UUID | str, label: str, actor: str) -> Build:
    """The pipeline's owner approves the newest build of a fork's pull request waiting on the
    preview: it is queued (newest wins: other queued builds superseded, a running one stopped) and
    runs without the pipeline's secrets. 409 ``nothing_to_approve`` when none waits."""
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        preview = Preview.objects.select_for_update().filter(pipeline=pipeline, label=label).first()
        if preview is None:
            raise PreviewNotFound(f"No preview {label!r} on this pipeline.")
        waiting = list(
            Build.objects.select_for_update()
            .filter(preview=preview, status=BuildStatus.QUEUED, awaiting_approval=True)
            .order_by("-number")
        )
        if not waiting:
            raise NothingToApprove(f"No build of preview {label} waits for approval.")
        build = waiting[0]
        build.awaiting_approval = False
        build.approved_by = actor
        build.save(update_fields=["awaiting_approval", "approved_by", "updated_at"])
        _supersede_older(pipeline, preview, build)
        note_record(
            pipeline,
            transition="preview_approve",
            actor=actor,
            build=build,
            message=f"Build #{build.number} of {build.commit_sha[:12]} approved for preview {label} "
            "(a fork's pull request: built without secrets).",
        )
        send_on_commit("run_preview_deployment", str(preview.id))
    return build


def preview_mark_closed(
    *,
    pipeline_id: uuid.UUID | str,
    actor: str,
    reason: str,
    label: str | None = None,
    branch: str | None = None,
) -> Preview | None:
    """A pull request closed (``label``) or a branch deleted (``branch``: its branch preview): the
    preview is marked closed (the periodic care removes it after the grace period) and its queued
    builds are cancelled; a running one finishes. None when there is no such preview."""
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        previews = Preview.objects.select_for_update().filter(pipeline=pipeline)
        if label is not None:
            preview = previews.filter(label=label).first()
        else:
            preview = previews.filter(source=PreviewSource.BRANCH, branch=branch).first()
        if preview is None:
            return None
        for queued in Build.objects.select_for_update().filter(preview=preview, status=BuildStatus.QUEUED):
            queued.cancel(reason=f"Cancelled: {reason}.")
            queued.save()
        if preview.closed_at is None:
            preview.closed_at = timezone.now()
            preview.save(update_fields=["closed_at", "updated_at"])
            note_record(
                pipeline,
                transition="preview_close",
                actor=actor,
                message=f"Preview {preview.label} closed ({reason}); the periodic care removes it.",
            )
    return preview


def preview_reopen(*, pipeline_id: uuid.UUID | str, label: str, actor: str) -> Preview | None:
    """A closed pull request reopened: its preview is no longer removed (a reopen also builds,
    which clears the mark too; this covers a reopen that builds nothing). None when there is no
    such preview or it was not closed."""
    with transaction.atomic():
        pipeline = lock_pipeline(pipeline_id)
        preview = Preview.objects.select_for_update().filter(pipeline=pipeline, label=label).first()
        if preview is None or preview.closed_at is None:
            return None
        preview.closed_at = None
        preview.save(update_fields=["closed_at", "updated_at"])
        note_record(pipeline, transition="preview_reopen", actor=actor, message=f"Preview {label} reopened.")
    return preview

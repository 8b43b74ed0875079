"""A push to a pipeline's branch, wherever it came from: a GitHub push delivery (hooks.github) or a
new head of a local git source (``pipelines.flows.local_sources``). One decision for both:
auto_deploy, the pipeline's status, the watch paths, then ``build_request``.

Local sources (``file:///path``, only with ``TROY_LOCAL_SOURCES``): ``source_head`` keeps the branch
head last seen. It is set when the repository or branch is set (so creating a pipeline builds
nothing by itself: the next commit does) and moved by :func:`local_push_record`, compare-and-set
under the pipeline's lock, so a head is handled once however many polls see it.
"""

from __future__ import annotations

import logging
import uuid

from django.core.exceptions import ValidationError
from django.db import transaction

from deployment_service.error_codes import ErrorCode
from deployment_service.exceptions import ApplicationError
from deployment_service.integrations import local_git
from pipelines.choices import ACCEPTS_DEPLOYMENT, BuildKind, BuildTrigger
from pipelines.choices import PipelineStatus as S
from pipelines.models import Pipeline
from pipelines.services.builds import build_request
from pipelines.services.transitions import lock_pipeline
from pipelines.services.watch_paths import push_skipped_record, watch_paths_decide

logger = logging.getLogger(__name__)

LOCAL_GIT_ACTOR = "local:git"
_BEING_PROVISIONED = (S.PROVISION_REQUEST, S.PROVISIONING)


def push_build_request(
    *, pipeline: Pipeline, branch: str, commit_sha: str, changed_files: list[str] | None, actor: str
) -> str:
    """Start a build of ``commit_sha`` on ``pipeline`` for a push to its branch, unless auto_deploy
    is off, its status cannot deploy, or the push changed none of its watch paths (an event says
    so). Returns what was done, in words, starting with the pipeline's name."""
    if not pipeline.auto_deploy:
        return f"{pipeline.name}: skipped, auto_deploy is off"
    if pipeline.status not in ACCEPTS_DEPLOYMENT:
        return f"{pipeline.name}: skipped, it is {pipeline.status} and cannot deploy"
    watched = watch_paths_decide(pipeline.watch_paths, changed_files)
    if not watched.build:  # a monorepo push outside the pipeline's paths: an event, no build
        push_skipped_record(pipeline_id=pipeline.id, commit_sha=commit_sha, reason=watched.reason, actor=actor)
        return f"{pipeline.name}: skipped, {watched.reason}"
    try:
        build = build_request(
            pipeline_id=pipeline.id,
            kind=BuildKind.AUTOMATED,
            trigger=BuildTrigger.PUSH,
            actor=actor,
            ref=branch,
            commit_sha=commit_sha,
        )
    except ApplicationError as exc:  # the pipeline changed since it was read (deleted, deleting…)
        return f"{pipeline.name}: skipped, {exc.detail}"
    return f"{pipeline.name}: build #{build.number} queued for {commit_sha[:12]}"


# --- local git sources ----------------------------------------------------------------------------


def local_source_check(pipeline: Pipeline) -> None:
    """For a local source: the repository exists and holds the branch; its head becomes
    ``source_head`` (not saved here). ValidationError on ``repository`` otherwise. Runs git (a local
    process, no network) so that a wrong path is refused when it is typed, not at the first build."""
    if not local_git.is_local_source(pipeline.repository):
        pipeline.source_head = ""
        return
    try:
        pipeline.source_head = local_git.branch_head(local_git.local_source_path(pipeline.repository), pipeline.branch)
    except local_git.LocalGitError as exc:
        error = ValidationError(f"Not a usable local source: {exc}", code=ErrorCode.INVALID_LOCAL_SOURCE)
        raise ValidationError({"repository": [error]}) from exc


def local_push_record(
    *, pipeline_id: uuid.UUID | str, seen_head: str, head: str, changed_files: list[str] | None
) -> str:
    """The local source's branch moved from ``seen_head`` to ``head``: remember ``head`` and decide
    as for a push (one transaction, the pipeline locked). Nothing happens when ``source_head`` is no
    longer ``seen_head`` (another poll handled it) or the pipeline is gone."""
    with transaction.atomic():
        try:
            pipeline = lock_pipeline(pipeline_id)
        except ApplicationError:
            return f"ignored: pipeline {pipeline_id} is gone"
        if pipeline.source_head != seen_head or not local_git.is_local_source(pipeline.repository):
            return f"ignored: {pipeline.name} moved on (head {pipeline.source_head[:12] or 'unset'})"
        if pipeline.status in _BEING_PROVISIONED and seen_head:
            # Unlike a webhook, the head stays there to be read again: it builds once provisioned
            # (a commit right after `create --provision` is not lost).
            return f"waiting: {pipeline.name} is {pipeline.status}; {head[:12]} builds once it is provisioned"
        pipeline.source_head = head
        pipeline.save(update_fields=["source_head", "updated_at"])
        if not seen_head:  # first look (e.g. after an upgrade): a baseline, not a push
            return f"{pipeline.name}: head {head[:12]} recorded"
        return push_build_request(
            pipeline=pipeline,
            branch=pipeline.branch,
            commit_sha=head,
            changed_files=changed_files,
            actor=LOCAL_GIT_ACTOR,
        )

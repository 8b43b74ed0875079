"""Local git sources (``file:///path``, with ``TROY_LOCAL_SOURCES``): the push a new commit is,
and the source archive of a build.

* :func:`local_sources_poll` — every ``TROY_LOCAL_SOURCES_POLL_SECONDS`` (the scheduler sends
  ``poll_local_sources``): the branch head of each local-source pipeline (``git rev-parse``); a
  head other than the one last seen is a push, handed to ``local_push_record`` with the files
  that changed (``git diff --name-only``), which decides as for a GitHub push (auto_deploy, the
  status, watch paths) and queues the build. Idempotent: the head is compared and moved under the
  pipeline's lock, so a second poll (or a second scheduler) starts nothing more.
* :func:`local_source_to_s3` — Download Source of a local source: ``git archive`` of the commit
  into the artifact bucket, where CodeBuild (or the local builder) reads it.
"""

from __future__ import annotations

import logging
import os
import tempfile

from django.conf import settings

from deployment_service import artifact_keys, aws
from deployment_service.exceptions import ApplicationError
from deployment_service.integrations import local_git
from pipelines.models import Build, Pipeline
from pipelines.services import local_push_record

logger = logging.getLogger(__name__)


def local_sources_poll() -> list[str]:
    """One look at every local source; returns what was done for each that moved."""
    if not settings.TROY_LOCAL_SOURCES:
        return []
    rows = Pipeline.objects.filter(repository__startswith=local_git.LOCAL_SOURCE_PREFIX).values_list(
        "id", "name", "repository", "branch", "source_head"
    )
    results = []
    for pipeline_id, name, repository, branch, seen in rows:
        path = local_git.local_source_path(repository)
        try:
            head = local_git.branch_head(path, branch)
        except local_git.LocalGitError as exc:
            logger.warning("local source of %s: %s", name, exc)
            continue
        if head == seen:
            continue
        changed = local_git.changed_files(path, seen, head)
        try:
            results.append(local_push_record(pipeline_id=pipeline_id, seen_head=seen, head=head, changed_files=changed))
        except Exception:  # one pipeline must not stop the sweep
            logger.exception("local source of %s: the new head %s was not handled", name, head)
    for line in results:
        logger.info("local sources: %s", line)
    return results


def local_source_to_s3(build: Build) -> str:
    """``git archive`` of the build's commit (or ref, or the branch) into ``sources/{id}.zip``.
    Returns the commit sha. ApplicationError when the source cannot be read."""
    pipeline = build.pipeline
    if not settings.TROY_LOCAL_SOURCES:
        raise ApplicationError("Local git sources are turned off on this service (TROY_LOCAL_SOURCES).")
    path = local_git.local_source_path(pipeline.repository)
    key = artifact_keys.source_key(build.id)
    try:
        sha = local_git.resolve_commit(path, build.commit_sha or build.ref or pipeline.branch)
        with tempfile.TemporaryDirectory(prefix="troy-source-", dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
            archive = os.path.join(tmp, "source.zip")
            local_git.archive_zip(path, sha, archive)
            aws.client("s3").upload_file(
                archive,
                settings.TROY_ARTIFACT_BUCKET,
                key,
                ExtraArgs={"ContentType": "application/zip", "Metadata": {"commit-sha": sha}},
            )
    except local_git.LocalGitError as exc:
        raise ApplicationError(f"{pipeline.repository}: {exc}") from exc
    logger.info("source of %s@%s (git archive) stored at %s", pipeline.repository, sha, key)
    return sha

"""Which files a push changed, for pipelines with watch paths (monorepos, docs/github.md).

From the payload when it lists them all: the union of its commits' ``added``, ``modified`` and
``removed``. GitHub may cut the commit list short, so a payload with 20 or more commits (or none
listed, or a commit without its file lists) counts as truncated: then the worker asks GitHub's
compare API, before the delivery's transaction (no lock held across the network). ``None`` means
"unknown" and the push builds; it is never guessed into a skip.
"""

from __future__ import annotations

import logging
from typing import Any

from deployment_service.integrations import github
from deployment_service.retries import is_transient
from hooks.github import Push, github_push_parse
from hooks.github_previews import BUILD_ACTIONS, github_pull_request_parse
from hooks.models import GithubDelivery
from pipelines.models import Pipeline
from pipelines.services import preview_branch_matches

logger = logging.getLogger(__name__)

# GitHub's documented cap on the commits a push payload lists; at or past it the list may be cut.
PAYLOAD_COMMITS_MAX = 20
_FILE_LISTS = ("added", "modified", "removed")


def payload_changed_files(payload: dict[str, Any]) -> list[str] | None:
    """The files the payload's commits changed, or None when the payload cannot tell them all."""
    commits = payload.get("commits")
    if not isinstance(commits, list) or not commits or len(commits) >= PAYLOAD_COMMITS_MAX:
        return None
    changed: set[str] = set()
    for commit in commits:
        if not isinstance(commit, dict):
            return None
        for key in _FILE_LISTS:
            paths = commit.get(key)
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                return None
            changed.update(paths)
    return sorted(changed)


def _watching(push: Push) -> bool:
    """Whether any pipeline this push could build (its branch, or a preview branch) has watch
    paths (else nothing to work out)."""
    candidates = Pipeline.objects.filter(repository__iexact=push.repository).values_list(
        "branch", "preview_branches", "watch_paths"
    )
    return any(
        paths and (branch == push.branch or preview_branch_matches(patterns, push.branch or ""))
        for branch, patterns, paths in candidates
    )


def push_changed_files(delivery_pk: int) -> list[str] | None:
    """The changed files of a stored, unhandled push delivery when a pipeline needs them, else
    None. Calls GitHub (compare) when the payload is truncated: only from a worker, outside any
    transaction. A transient GitHub error raises (the actor retries); any other leaves it unknown."""
    delivery = GithubDelivery.objects.filter(pk=delivery_pk, event="push", processed_at=None).first()
    if delivery is None or not isinstance(delivery.payload, dict):
        return None
    try:
        push = github_push_parse(delivery.payload)
    except Exception:  # the handler reports a malformed push itself
        return None
    if push.deleted or push.branch is None or not _watching(push):
        return None
    files = payload_changed_files(delivery.payload)
    if files is not None:
        return files
    before = delivery.payload.get("before")
    if not isinstance(before, str) or set(before) == {"0"} or push.installation_id is None:
        return None  # a new branch has nothing to compare with
    try:
        return github.compare_changed_files(
            repository=push.repository, base=before, head=push.after, installation_id=push.installation_id
        )
    except github.GithubError as exc:
        if is_transient(exc):
            raise
        logger.warning("push %s: compare failed (%s); building without watch paths", delivery.delivery_id, exc)
        return None


def pull_request_changed_files(delivery_pk: int) -> list[str] | None:
    """What a stored, unhandled ``pull_request`` delivery that builds changes (compare
    base...head), when a pipeline with pull request previews has watch paths; else None (unknown:
    it builds). Like a push's: a transient GitHub error raises, any other leaves it unknown."""
    delivery = GithubDelivery.objects.filter(pk=delivery_pk, event="pull_request", processed_at=None).first()
    if delivery is None:
        return None
    try:
        pull = github_pull_request_parse(delivery.payload)
    except Exception:  # the handler reports a malformed delivery itself
        return None
    if pull.action not in BUILD_ACTIONS or not pull.base_sha or pull.installation_id is None:
        return None
    candidates = Pipeline.objects.filter(repository__iexact=pull.repository, pull_request_previews=True)
    if not any(paths for paths in candidates.values_list("watch_paths", flat=True)):
        return None
    try:
        return github.compare_changed_files(
            repository=pull.repository, base=pull.base_sha, head=pull.head_sha, installation_id=pull.installation_id
        )
    except github.GithubError as exc:
        if is_transient(exc):
            raise
        logger.warning("pull request %s: compare failed (%s); building without watch paths", delivery.delivery_id, exc)
        return None


def delivery_changed_files(delivery_pk: int) -> list[str] | None:
    """The changed files of a push or pull_request delivery, when a pipeline needs them."""
    event = GithubDelivery.objects.filter(pk=delivery_pk).values_list("event", flat=True).first()
    if event == "pull_request":
        return pull_request_changed_files(delivery_pk)
    return push_changed_files(delivery_pk)

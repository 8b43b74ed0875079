"""GitHub's ``owner/repo`` rule, once: the pipeline validator and the GitHub client both use it."""

from __future__ import annotations

import re

_OWNER = r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}"
_REPO = r"[A-Za-z0-9._-]{1,100}"
_REPOSITORY_RE = re.compile(rf"({_OWNER})/({_REPO})")


def repository_split(value: str) -> tuple[str, str] | None:
    """``(owner, repo)`` of a GitHub repository name, or None when ``value`` is not one: owner up to
    39 of letters, digits and single hyphens; repo up to 100 of letters, digits, '.', '_', '-' (but
    not '.' or '..', and not ending in '.git')."""
    match = _REPOSITORY_RE.fullmatch(value or "")
    if not match or match[2] in {".", ".."} or value.endswith(".git"):
        return None
    return match[1], match[2]

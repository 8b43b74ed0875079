"""Comparing two commits: the files a push changed, when its payload could not list them all."""

from __future__ import annotations

import logging
from urllib.parse import quote

from deployment_service.integrations.github.auth import installation_call
from deployment_service.integrations.github.repos import repo_api_path
from deployment_service.integrations.github.transport import SHA_RE, GithubError, error_from, new_session

logger = logging.getLogger(__name__)

# GitHub lists at most this many files in a comparison; a list that long may be cut short.
COMPARE_FILES_MAX = 300


def compare_changed_files(*, repository: str, base: str, head: str, installation_id: int) -> list[str] | None:
    """Every path changed between ``base`` and ``head`` (``GET /repos/{o}/{r}/compare/{base}...{head}``;
    a rename counts both names), or None when GitHub cannot say for sure: the list reached its
    300-file cap, or ``base`` is unknown to it (a force push rewrote it). Other errors raise
    :class:`GithubError` (a 5xx is transient for the caller's retries)."""
    if not SHA_RE.fullmatch(base) or not SHA_RE.fullmatch(head):
        raise GithubError("compare needs two commit shas.")
    path = f"{repo_api_path(repository)}/compare/{quote(base)}...{quote(head)}"
    with new_session() as session:
        response = installation_call(session, "GET", path, installation_id=installation_id)
    if response.status_code == 404:
        logger.info("GitHub does not know %s...%s in %s: changed files unknown", base[:12], head[:12], repository)
        return None
    if response.status_code != 200:
        raise error_from(response, f"GET {path}")
    try:
        files = response.json()["files"]
        names: list[str] = []
        for item in files:
            names.append(str(item["filename"]))
            if item.get("previous_filename"):
                names.append(str(item["previous_filename"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise GithubError(f"GitHub's answer to GET {path} lists no files.") from exc
    if len(files) >= COMPARE_FILES_MAX:
        return None
    return names

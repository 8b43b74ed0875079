"""Commit statuses: the build's state on its commit."""

from __future__ import annotations

import logging

from deployment_service.integrations.github.auth import installation_call
from deployment_service.integrations.github.repos import repo_api_path
from deployment_service.integrations.github.transport import (
    SHA_RE,
    STATUS_DESCRIPTION_MAX,
    STATUS_STATES,
    GithubError,
    error_from,
    new_session,
)

logger = logging.getLogger(__name__)


def set_commit_status(
    *,
    repository: str,
    sha: str,
    installation_id: int,
    state: str,
    description: str,
    target_url: str = "",
    context: str = "troy",
) -> None:
    """``POST /repos/{o}/{r}/statuses/{sha}``: ``state`` is pending, success, failure or error;
    the description is cut to GitHub's 140 characters."""
    if state not in STATUS_STATES:
        raise ValueError(f"state must be one of {STATUS_STATES}, not {state!r}")
    if not SHA_RE.fullmatch(sha or ""):
        raise GithubError(f"{sha!r} is not a full commit sha.")
    description = " ".join((description or "").split())
    if len(description) > STATUS_DESCRIPTION_MAX:
        description = description[: STATUS_DESCRIPTION_MAX - 1] + "…"
    body = {"state": state, "description": description, "context": context}
    if target_url:
        body["target_url"] = target_url
    path = f"{repo_api_path(repository)}/statuses/{sha}"
    with new_session() as session:
        response = installation_call(session, "POST", path, installation_id=installation_id, json=body)
    if response.status_code != 201:
        raise error_from(response, f"POST {path}")

"""GitHub deployments: a preview's URL on its pull request ("View deployment") and in the
repository's environments. One deployment per preview build (environment ``preview/{label}``,
transient: GitHub may mark it inactive once the preview is gone), then its statuses."""

from __future__ import annotations

import logging

from deployment_service.integrations.github.auth import installation_call
from deployment_service.integrations.github.repos import repo_api_path
from deployment_service.integrations.github.transport import (
    SHA_RE,
    STATUS_DESCRIPTION_MAX,
    GithubError,
    error_from,
    new_session,
)

logger = logging.getLogger(__name__)

DEPLOYMENT_STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")


def _short(text: str) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= STATUS_DESCRIPTION_MAX else text[: STATUS_DESCRIPTION_MAX - 1] + "…"


def create_deployment(
    *, repository: str, sha: str, environment: str, installation_id: int, description: str = ""
) -> int:
    """``POST /repos/{o}/{r}/deployments`` of the commit ``sha`` to ``environment`` (transient,
    not production; no auto-merge and no required contexts: Troy's own pending status must not
    block it). Returns the deployment's id."""
    if not SHA_RE.fullmatch(sha or ""):
        raise GithubError(f"{sha!r} is not a full commit sha.")
    body = {
        "ref": sha,
        "environment": environment,
        "transient_environment": True,
        "production_environment": False,
        "auto_merge": False,
        "required_contexts": [],
        "description": _short(description),
    }
    path = f"{repo_api_path(repository)}/deployments"
    with new_session() as session:
        response = installation_call(session, "POST", path, installation_id=installation_id, json=body)
    if response.status_code != 201:
        raise error_from(response, f"POST {path}")
    deployment_id = response.json().get("id")
    if not isinstance(deployment_id, int):
        raise GithubError(f"POST {path} answered no deployment id.")
    return deployment_id


def set_deployment_status(
    *,
    repository: str,
    deployment_id: int,
    state: str,
    installation_id: int,
    environment_url: str = "",
    log_url: str = "",
    description: str = "",
) -> None:
    """``POST /repos/{o}/{r}/deployments/{id}/statuses``; a success marks the environment's
    earlier deployments inactive (GitHub's ``auto_inactive``)."""
    if state not in DEPLOYMENT_STATES:
        raise ValueError(f"state must be one of {DEPLOYMENT_STATES}, not {state!r}")
    body = {"state": state, "description": _short(description)}
    if environment_url:
        body["environment_url"] = environment_url
    if log_url:
        body["log_url"] = log_url
    path = f"{repo_api_path(repository)}/deployments/{deployment_id}/statuses"
    with new_session() as session:
        response = installation_call(session, "POST", path, installation_id=installation_id, json=body)
    if response.status_code != 201:
        raise error_from(response, f"POST {path}")

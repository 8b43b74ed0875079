"""The ``installation`` and ``installation_repositories`` webhooks (handled in a worker, like pushes)
and the refresh of an installation's repository list from GitHub. They keep the table of what each
installation covers (pipelines.models.GithubInstallation) current: that table is the grant."""

from __future__ import annotations

import logging
from typing import Any

from deployment_service.integrations import github
from deployment_service.transactions import send_on_commit
from hooks.exceptions import InvalidDelivery
from pipelines.models import GithubInstallation
from pipelines.services import installation_record, installation_repositories_change

logger = logging.getLogger(__name__)


def _installation_id(payload: dict[str, Any]) -> int:
    installation = payload.get("installation")
    installation_id = installation.get("id") if isinstance(installation, dict) else None
    if not isinstance(installation_id, int) or isinstance(installation_id, bool):
        raise InvalidDelivery("The delivery lacks a valid installation.id.", extra={"fields": ["installation.id"]})
    return installation_id


def _account(payload: dict[str, Any]) -> str:
    installation = payload.get("installation") or {}
    account = installation.get("account") if isinstance(installation, dict) else None
    login = account.get("login") if isinstance(account, dict) else None
    return login if isinstance(login, str) else ""


def _names(payload: dict[str, Any], key: str) -> list[str]:
    items = payload.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise InvalidDelivery(f"The delivery's {key} is not a list.", extra={"fields": [key]})
    names = [item.get("full_name") for item in items if isinstance(item, dict)]
    valid = [name for name in names if isinstance(name, str) and name.count("/") == 1]
    if len(valid) != len(items):
        raise InvalidDelivery(f"The delivery's {key} holds entries without a full_name.", extra={"fields": [key]})
    return valid


def installation_event_handle(event: str, payload: dict[str, Any]) -> str:
    """Apply one installation event. Runs inside the delivery's transaction (see hooks.github)."""
    installation_id = _installation_id(payload)
    action = payload.get("action")
    account = _account(payload)
    if event == "installation":
        if action == "created":
            installation_record(installation_id=installation_id, account=account, removed=False, suspended=False)
            count = installation_repositories_change(
                installation_id=installation_id, added=_names(payload, "repositories"), replace=True
            )
            # The payload's list may be cut short for big accounts: fetch the full one.
            send_on_commit("refresh_github_installation", installation_id)
            return f"installation {installation_id} created with {count} repositories"
        if action == "deleted":
            installation_record(installation_id=installation_id, account=account, removed=True)
            installation_repositories_change(installation_id=installation_id, replace=True)
            return f"installation {installation_id} removed: its pipelines no longer build"
        if action in ("suspend", "unsuspend"):
            installation_record(installation_id=installation_id, account=account, suspended=action == "suspend")
            return f"installation {installation_id} {action}ed"
        return f"ignored: installation {action}"
    if event == "installation_repositories":
        if action not in ("added", "removed"):
            return f"ignored: installation_repositories {action}"
        added, removed = _names(payload, "repositories_added"), _names(payload, "repositories_removed")
        count = installation_repositories_change(installation_id=installation_id, added=added, removed=removed)
        return f"installation {installation_id}: +{len(added)} -{len(removed)} repositories, {count} now"
    raise ValueError(f"not an installation event: {event}")


def installation_refresh(*, installation_id: int) -> str:
    """Replace the installation's repository list with GitHub's (``GET /installation/repositories``,
    every page). A removed installation is left empty; GitHub is not asked."""
    installation = GithubInstallation.objects.filter(installation_id=installation_id).first()
    if installation is None or installation.removed_at is not None:
        return f"skipped: installation {installation_id} is unknown or removed"
    if not github.github_configured():
        return "skipped: the GitHub App is not configured"
    names = github.installation_repositories(installation_id=installation_id)
    count = installation_repositories_change(installation_id=installation_id, added=names, replace=True)
    logger.info("GitHub installation %s covers %d repositories", installation_id, count)
    return f"installation {installation_id} covers {count} repositories"

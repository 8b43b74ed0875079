"""Installations: the repositories an installation covers."""

from __future__ import annotations

import logging

from deployment_service.integrations.github.auth import installation_call
from deployment_service.integrations.github.transport import (
    GithubError,
    error_from,
    new_session,
)

logger = logging.getLogger(__name__)


def installation_repositories(*, installation_id: int) -> list[str]:
    """Every repository the installation covers (``GET /installation/repositories`` with its
    token, 100 a page, following pages until one comes back short), as ``owner/repo`` names."""
    names: list[str] = []
    page = 1
    with new_session() as session:
        while True:
            path = f"/installation/repositories?per_page=100&page={page}"
            response = installation_call(session, "GET", path, installation_id=installation_id)
            if response.status_code != 200:
                raise error_from(response, "GET /installation/repositories")
            try:
                items = response.json()["repositories"]
                batch = [str(item["full_name"]) for item in items]
            except (ValueError, KeyError, TypeError) as exc:
                raise GithubError("GitHub's answer to GET /installation/repositories holds no repositories.") from exc
            names.extend(batch)
            if len(batch) < 100 or page >= 1000:
                return names
            page += 1

"""``GET /hooks/github/setup/``: the GitHub App's "Setup URL". GitHub sends the browser here after
an installation with ``installation_id``, ``setup_action`` and the ``state`` Troy put in the install
link. The state (signed, expiring, naming the user) is the proof of who started it: a missing,
forged or expired one is refused and nothing changes. The link is recorded here; the
installation's repositories are fetched by a worker (a web request never calls GitHub)."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from deployment_service.exceptions import ApplicationError
from deployment_service.transactions import send_on_commit
from pipelines.exceptions import InstallStateInvalid, InvalidInstallation
from pipelines.grants import install_state_user
from pipelines.services import installation_link


@require_GET
def github_setup(request: HttpRequest) -> JsonResponse:
    try:
        user_id = install_state_user(request.GET.get("state"))
        if request.user.is_authenticated and request.user.pk != user_id:
            raise InstallStateInvalid("The installation's state was issued to another user.")
        if not get_user_model().objects.filter(pk=user_id, is_active=True).exists():
            raise InstallStateInvalid("The installation's state names no active user.")
        raw_id = request.GET.get("installation_id", "")
        if not re.fullmatch(r"[1-9][0-9]{0,17}", raw_id):
            raise InvalidInstallation("installation_id must be a positive number.")
        installation = installation_link(installation_id=int(raw_id), user_id=user_id)
    except ApplicationError as exc:
        return JsonResponse(exc.as_dict(), status=exc.http_status)
    send_on_commit("refresh_github_installation", installation.installation_id)
    return JsonResponse(
        {
            "status": "linked",
            "installation": installation.installation_id,
            "detail": "The installation is linked; its repositories are being fetched from GitHub.",
        }
    )

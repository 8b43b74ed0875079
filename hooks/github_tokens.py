"""The GitHub App's installation tokens, cached in a table (the client in
deployment_service.integrations.github takes this store; it imports no models)."""

from __future__ import annotations

from datetime import datetime

from hooks.models import GithubInstallationToken


class InstallationTokenStore:
    def valid_token(self, *, installation_id: int, valid_after: datetime) -> str | None:
        return (
            GithubInstallationToken.objects.filter(installation_id=installation_id, expires_at__gt=valid_after)
            .values_list("token", flat=True)
            .first()
        )

    def keep(self, *, installation_id: int, token: str, expires_at: datetime) -> None:
        GithubInstallationToken.objects.update_or_create(
            installation_id=installation_id, defaults={"token": token, "expires_at": expires_at}
        )

    def forget(self, *, installation_id: int, token: str) -> None:
        GithubInstallationToken.objects.filter(installation_id=installation_id, token=token).delete()

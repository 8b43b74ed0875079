"""Writes to GitHub App installations and their repository lists (no status, no event: these
record what GitHub says, and who installed what)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from pipelines.exceptions import InstallationTaken
from pipelines.models import GithubInstallation, GithubInstallationRepository


def _lock(installation_id: int) -> GithubInstallation:
    installation, _ = GithubInstallation.objects.get_or_create(installation_id=int(installation_id))
    return GithubInstallation.objects.select_for_update().get(pk=installation.pk)


def installation_link(*, installation_id: int, user_id: int) -> GithubInstallation:
    """Link an installation to a user. One linked to someone else is refused
    (:class:`InstallationTaken`): the setup callback's installation id is not proof of ownership,
    so it never moves an installation away from its user; an operator can, in the admin."""
    with transaction.atomic():
        installation = _lock(installation_id)
        if installation.user_id is not None and installation.user_id != user_id:
            raise InstallationTaken(f"Installation {installation_id} is linked to another user.")
        if installation.user_id != user_id:
            installation.user_id = user_id
            installation.save(update_fields=["user", "updated_at"])
    return installation


def installation_assign(*, installation_id: int, user_id: int | None) -> GithubInstallation:
    """An operator's link (the admin): the installation now grants its repositories to ``user_id``
    (None: to nobody), whoever held it before."""
    with transaction.atomic():
        installation = _lock(installation_id)
        installation.user_id = user_id
        installation.save(update_fields=["user", "updated_at"])
    return installation


def installation_record(
    *, installation_id: int, account: str = "", removed: bool | None = None, suspended: bool | None = None
) -> GithubInstallation:
    """Remember an installation's account and whether it is removed or suspended (None: unchanged)."""
    with transaction.atomic():
        installation = _lock(installation_id)
        now = timezone.now()
        if account:
            installation.account = account[:100]
        if removed is not None:
            installation.removed_at = (installation.removed_at or now) if removed else None
        if suspended is not None:
            installation.suspended_at = (installation.suspended_at or now) if suspended else None
        installation.save()
    return installation


def installation_repositories_change(
    *, installation_id: int, added: Iterable[str] = (), removed: Iterable[str] = (), replace: bool = False
) -> int:
    """Add and remove repositories (``replace``: the list becomes exactly ``added``, as after a
    full fetch). Returns how many the installation covers now."""
    added_names = {name.lower() for name in added}
    removed_names = {name.lower() for name in removed}
    with transaction.atomic():
        installation = _lock(installation_id)
        repositories = GithubInstallationRepository.objects.filter(installation=installation)
        if replace:
            repositories.exclude(full_name__in=added_names).delete()
            installation.repositories_synced_at = timezone.now()
            installation.save(update_fields=["repositories_synced_at", "updated_at"])
        else:
            repositories.filter(full_name__in=removed_names).delete()
        have = set(repositories.values_list("full_name", flat=True))
        GithubInstallationRepository.objects.bulk_create(
            [GithubInstallationRepository(installation=installation, full_name=name) for name in added_names - have]
        )
        return repositories.count()

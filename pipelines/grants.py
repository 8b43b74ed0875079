"""Repository grants: which GitHub repositories a Troy user may build, through the GitHub App
installations linked to them, and the signed ``state`` of the App's setup flow that links one.

The rule is the same for staff: a pipeline builds with its owner's installation only, so an owner
without one could never build, whoever created the pipeline. (An operator links installations to
any user, themselves included, in the admin.)
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

from django.conf import settings
from django.core import signing

from pipelines.exceptions import InstallStateInvalid
from pipelines.models import GithubInstallation, GithubInstallationRepository

_STATE_SALT = "troy.github.install-state"


def _active(queryset):
    return queryset.filter(installation__suspended_at=None, installation__removed_at=None)


def repository_granted(*, user_id: int, repository: str) -> bool:
    """True when one of the user's active installations covers ``repository``."""
    return (
        _active(GithubInstallationRepository.objects)
        .filter(installation__user_id=user_id, full_name=repository.lower())
        .exists()
    )


def owner_installation_id(*, owner_id: int, repository: str, prefer: int | None = None) -> int | None:
    """The owner's active installation that covers ``repository`` (``prefer`` when it still does),
    or None. Never asks GitHub: an installation nobody linked to the owner is not theirs to use."""
    ids = list(
        _active(GithubInstallationRepository.objects)
        .filter(installation__user_id=owner_id, full_name=repository.lower())
        .order_by("installation__installation_id")
        .values_list("installation__installation_id", flat=True)
    )
    if prefer is not None and int(prefer) in ids:
        return int(prefer)
    return ids[0] if ids else None


def user_holds_installation(*, user_id: int, installation_id: int) -> bool:
    return GithubInstallation.objects.filter(
        user_id=user_id, installation_id=installation_id, suspended_at=None, removed_at=None
    ).exists()


# --- the setup flow's state -----------------------------------------------------------------------


def install_state_for(user_id: int) -> str:
    """A signed, timestamped ``state`` naming the user (with a nonce, so no two are alike)."""
    return signing.TimestampSigner(salt=_STATE_SALT).sign_object({"u": int(user_id), "n": secrets.token_urlsafe(12)})


def install_state_user(state: str | None) -> int:
    """The user id a ``state`` was issued to; :class:`InstallStateInvalid` when it is missing,
    forged or older than ``TROY_GITHUB_INSTALL_STATE_MAX_AGE`` seconds."""
    if not state:
        raise InstallStateInvalid("The setup callback carries no state: start the installation from Troy.")
    try:
        value = signing.TimestampSigner(salt=_STATE_SALT).unsign_object(
            state, max_age=settings.TROY_GITHUB_INSTALL_STATE_MAX_AGE
        )
    except signing.SignatureExpired as exc:
        raise InstallStateInvalid("The installation's state has expired: start the installation again.") from exc
    except (signing.BadSignature, ValueError) as exc:
        raise InstallStateInvalid("The installation's state is not one Troy issued.") from exc
    if not isinstance(value, dict) or not isinstance(value.get("u"), int):
        raise InstallStateInvalid("The installation's state is not one Troy issued.")
    return value["u"]


def install_url(user_id: int) -> str:
    slug = settings.TROY_GITHUB_APP_SLUG
    base = settings.TROY_GITHUB_URL.rstrip("/")
    return f"{base}/apps/{slug}/installations/new?state={quote(install_state_for(user_id))}"

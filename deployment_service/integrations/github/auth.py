"""The GitHub App's credentials: the app JWT and installation access tokens (cached in the store the
app that owns the table passes in: this package imports no models)."""

from __future__ import annotations

from datetime import UTC, datetime
import logging
import time
from typing import Protocol

from django.conf import settings
from django.utils import timezone
import jwt
import requests

from deployment_service.integrations.github.transport import (
    TOKEN_REFRESH_MARGIN,
    GithubError,
    GithubNotConfigured,
    api_request,
    error_from,
    new_session,
)

logger = logging.getLogger(__name__)

# --- the installation token cache -----------------------------------------------------------------


class TokenStore(Protocol):
    """Where installation tokens are kept between calls (hooks.github_tokens keeps them in a table).
    The client holds no models: the app that owns the table passes its store in."""

    def valid_token(self, *, installation_id: int, valid_after: datetime) -> str | None: ...

    def keep(self, *, installation_id: int, token: str, expires_at: datetime) -> None: ...

    def forget(self, *, installation_id: int, token: str) -> None: ...


class _NoTokenStore:
    def valid_token(self, *, installation_id: int, valid_after: datetime) -> str | None:
        return None

    def keep(self, *, installation_id: int, token: str, expires_at: datetime) -> None:
        return None

    def forget(self, *, installation_id: int, token: str) -> None:
        return None


_token_store: TokenStore = _NoTokenStore()


def use_token_store(store: TokenStore) -> None:
    """Cache installation tokens in ``store`` (set once at start-up by operations.apps)."""
    global _token_store
    _token_store = store


# --- configuration and authentication -----------------------------------------------------------


def github_configured() -> bool:
    """True when the GitHub App can authenticate (app id, private key and API URL are set)."""
    return bool(settings.GITHUB_APP_ID and settings.GITHUB_APP_PRIVATE_KEY and settings.GITHUB_API_URL)


def _require_configured() -> None:
    if not github_configured():
        raise GithubNotConfigured(
            "The GitHub App is not configured: set GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and GITHUB_API_URL."
        )


def app_jwt(*, now: float | None = None) -> str:
    """The app's RS256 JWT: issued 60 s in the past (clock drift), valid 9 minutes (GitHub allows 10)."""
    _require_configured()
    issued = int(time.time() if now is None else now)
    claims = {"iat": issued - 60, "exp": issued + 540, "iss": str(settings.GITHUB_APP_ID)}
    try:
        return jwt.encode(claims, settings.GITHUB_APP_PRIVATE_KEY, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        # Never echo the key: the message only names the setting.
        raise GithubNotConfigured(
            "GITHUB_APP_PRIVATE_KEY is not a usable RSA private key (PEM; newlines may be written as \\n)."
        ) from exc


def installation_token(installation_id: int) -> str:
    """An installation access token, from the cache while it has more than 5 minutes left,
    otherwise a fresh one from ``POST /app/installations/{id}/access_tokens``.

    Two workers refreshing at once both get valid tokens; the last one written is cached."""
    _require_configured()
    installation_id = int(installation_id)
    cached = _token_store.valid_token(
        installation_id=installation_id, valid_after=timezone.now() + TOKEN_REFRESH_MARGIN
    )
    if cached:
        return cached
    path = f"/app/installations/{installation_id}/access_tokens"
    with new_session() as session:
        response = api_request(session, "POST", path, authorization=f"Bearer {app_jwt()}")
    if response.status_code != 201:
        raise error_from(response, f"POST {path}")
    try:
        body = response.json()
        token = body["token"]
        expires_at = datetime.fromisoformat(str(body["expires_at"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError) as exc:
        raise GithubError(f"GitHub's answer to POST {path} holds no token and expiry.") from exc
    if not isinstance(token, str) or not token:
        raise GithubError(f"GitHub's answer to POST {path} holds no token.")
    if timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at, UTC)
    _token_store.keep(installation_id=installation_id, token=token, expires_at=expires_at)
    logger.info("GitHub installation %s: new access token, valid until %s", installation_id, expires_at.isoformat())
    return token


def installation_call(
    session: requests.Session, method: str, path: str, *, installation_id: int, **kwargs
) -> requests.Response:
    """A call with the installation's token. A 401 means the cached token was revoked: forget it
    and try once more with a fresh one."""
    for attempt in (1, 2):
        token = installation_token(installation_id)
        response = api_request(session, method, path, authorization=f"Bearer {token}", **kwargs)
        if response.status_code == 401 and attempt == 1:
            response.close()
            _token_store.forget(installation_id=int(installation_id), token=token)
            continue
        return response
    raise AssertionError("unreachable")

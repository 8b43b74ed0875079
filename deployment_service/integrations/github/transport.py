"""HTTP to GitHub's API for the client: the session (retrying connection errors and 502/503/504),
one call without following redirects (credentials must not travel on), and errors naming GitHub's
status and message (never a token or a signed URL)."""

from __future__ import annotations

from datetime import timedelta
import logging
import re

from django.conf import settings
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from deployment_service.error_codes import ErrorCode
from deployment_service.exceptions import ApplicationError

logger = logging.getLogger(__name__)

USER_AGENT = "troy-deployment-service"
API_VERSION = "2022-11-28"
API_TIMEOUT = (10, 30)  # (connect, read) seconds
DOWNLOAD_TIMEOUT = (10, 120)
# A cached installation token is used until this long before it expires (they last an hour).
TOKEN_REFRESH_MARGIN = timedelta(minutes=5)
STATUS_STATES = ("pending", "success", "failure", "error")
STATUS_DESCRIPTION_MAX = 140
MAX_REDIRECTS = 5
CHUNK_BYTES = 1024 * 1024
# A safety bound on entries of a source archive; TROY_ARCHIVE_MAX_ENTRIES is for built sites,
# and repositories may hold far more files than a site.
SOURCE_MAX_ENTRIES = 500_000

SHA_RE = re.compile(r"[0-9a-f]{40}")
REDIRECT_STATUSES = (301, 302, 303, 307, 308)


class GithubError(ApplicationError):
    """GitHub refused or failed a call. ``status`` is GitHub's HTTP status (None when it did not
    answer)."""

    code = ErrorCode.GITHUB_ERROR
    http_status = 502

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail, extra={"github_status": status} if status is not None else None)
        self.status = status


class GithubNotConfigured(GithubError):
    code = ErrorCode.GITHUB_NOT_CONFIGURED
    http_status = 503


class UnsafeSourceArchive(GithubError):
    code = ErrorCode.UNSAFE_SOURCE_ARCHIVE
    http_status = 422


def new_session() -> requests.Session:
    session = requests.Session()
    retry = Retry(
        total=3,
        connect=3,
        read=2,
        status=3,
        backoff_factor=0.5,
        status_forcelist=(502, 503, 504),
        allowed_methods=None,
        raise_on_status=False,
        respect_retry_after_header=False,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update(
        {
            "User-Agent": USER_AGENT,
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }
    )
    return session


def api_url(path: str) -> str:
    return f"{settings.GITHUB_API_URL.rstrip('/')}{path}"


def api_request(
    session: requests.Session,
    method: str,
    path: str,
    *,
    authorization: str,
    timeout=API_TIMEOUT,
    headers: dict[str, str] | None = None,
    **kwargs,
) -> requests.Response:
    """One call to the API. Redirects are not followed here: the credentials must not travel on."""
    try:
        return session.request(
            method,
            api_url(path),
            headers={**(headers or {}), "Authorization": authorization},
            timeout=timeout,
            allow_redirects=False,
            **kwargs,
        )
    except requests.RequestException as exc:
        raise GithubError(f"GitHub did not answer {method} {path}: {type(exc).__name__}: {exc}") from exc


def error_from(response: requests.Response, what: str) -> GithubError:
    """A GithubError naming the HTTP status and GitHub's own message."""
    message = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            message = str(body.get("message", ""))
            errors = body.get("errors")
            if errors:
                message = f"{message} {errors}".strip()
    except ValueError:
        message = response.text[:200].strip()
    status = response.status_code
    hint = " (was the repository renamed or moved?)" if status in REDIRECT_STATUSES else ""
    detail = f"GitHub answered {status} {response.reason or ''}".rstrip() + f" to {what}{hint}"
    if message:
        detail += f": {message[:300]}"
    return GithubError(detail, status=status)

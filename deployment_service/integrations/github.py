"""The GitHub App client: app JWT, cached installation tokens, ref → commit sha, the source
archive of a commit into S3 (repackaged for CodeBuild), and commit statuses.

Only workers call this module: web requests never talk to GitHub. Every URL starts from
``settings.GITHUB_API_URL``, so GitHub Enterprise Server works (its API is ``https://HOST/api/v3``).
Tokens, the app's private key and signed download URLs are never logged nor put into errors.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from typing import Protocol
from urllib.parse import quote, urljoin, urlsplit
import zipfile

from django.conf import settings
from django.utils import timezone
import jwt
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from deployment_service import aws
from deployment_service.archives import path_problem
from deployment_service.error_codes import ErrorCode
from deployment_service.exceptions import ApplicationError
from deployment_service.github_names import repository_split

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

_SHA_RE = re.compile(r"[0-9a-f]{40}")
_REDIRECTS = (301, 302, 303, 307, 308)


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


def _session() -> requests.Session:
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


def _api_url(path: str) -> str:
    return f"{settings.GITHUB_API_URL.rstrip('/')}{path}"


def _send(
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
            _api_url(path),
            headers={**(headers or {}), "Authorization": authorization},
            timeout=timeout,
            allow_redirects=False,
            **kwargs,
        )
    except requests.RequestException as exc:
        raise GithubError(f"GitHub did not answer {method} {path}: {type(exc).__name__}: {exc}") from exc


def _error(response: requests.Response, what: str) -> GithubError:
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
    hint = " (was the repository renamed or moved?)" if status in _REDIRECTS else ""
    detail = f"GitHub answered {status} {response.reason or ''}".rstrip() + f" to {what}{hint}"
    if message:
        detail += f": {message[:300]}"
    return GithubError(detail, status=status)


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
    with _session() as session:
        response = _send(session, "POST", path, authorization=f"Bearer {app_jwt()}")
    if response.status_code != 201:
        raise _error(response, f"POST {path}")
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


def _installation_call(
    session: requests.Session, method: str, path: str, *, installation_id: int, **kwargs
) -> requests.Response:
    """A call with the installation's token. A 401 means the cached token was revoked: forget it
    and try once more with a fresh one."""
    for attempt in (1, 2):
        token = installation_token(installation_id)
        response = _send(session, method, path, authorization=f"Bearer {token}", **kwargs)
        if response.status_code == 401 and attempt == 1:
            response.close()
            _token_store.forget(installation_id=int(installation_id), token=token)
            continue
        return response
    raise AssertionError("unreachable")


def _repo_path(repository: str) -> str:
    parts = repository_split(repository)
    if parts is None:
        raise GithubError(f"{repository!r} is not a GitHub repository ('owner/repo').")
    owner, repo = parts
    return f"/repos/{quote(owner)}/{quote(repo)}"


# --- the API Troy uses ----------------------------------------------------------------------------


def repository_installation_id(*, repository: str) -> int:
    """The id of the app's installation that covers ``repository`` (for a deploy asked for before
    any push told us): ``GET /repos/{owner}/{repo}/installation`` with the app JWT."""
    _require_configured()
    path = f"{_repo_path(repository)}/installation"
    with _session() as session:
        response = _send(session, "GET", path, authorization=f"Bearer {app_jwt()}")
    if response.status_code != 200:
        raise _error(response, f"GET {path} (is the GitHub App installed on {repository}?)")
    try:
        return int(response.json()["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise GithubError(f"GitHub's answer to GET {path} holds no installation id.") from exc


def resolve_ref(*, repository: str, ref: str, installation_id: int) -> str:
    """The commit sha of ``ref`` (a branch, tag, ``heads/…``/``refs/heads/…`` or a sha). A full
    40-hex sha is returned as it is, without asking GitHub."""
    ref = (ref or "").strip()
    if _SHA_RE.fullmatch(ref.lower()):
        return ref.lower()
    if not ref:
        raise GithubError("No ref to resolve: give a branch, tag or commit sha.")
    # GitHub's commits endpoint takes `heads/main` but not `refs/heads/main`.
    ref = ref.removeprefix("refs/")
    path = f"{_repo_path(repository)}/commits/{quote(ref, safe='/')}"
    with _session() as session:
        response = _installation_call(
            session, "GET", path, installation_id=installation_id, headers={"Accept": "application/vnd.github.sha"}
        )
    if response.status_code != 200:
        raise _error(response, f"GET {path}")
    text = response.text.strip()
    if text.startswith("{"):  # a server that ignored the sha media type answers the JSON commit
        try:
            text = str(response.json().get("sha", ""))
        except (ValueError, AttributeError):
            text = ""
    if not _SHA_RE.fullmatch(text):
        raise GithubError(f"GitHub's answer to GET {path} is not a commit sha.")
    return text


def download_source(*, repository: str, ref_or_sha: str, installation_id: int, bucket: str, key: str) -> str:
    """Download Source: the repository archive of the commit ``ref_or_sha`` resolves to, streamed
    to a temporary file, repackaged without the archive's top-level ``{owner}-{repo}-{short sha}/``
    folder (CodeBuild expects the repository root at the top), uploaded to ``s3://bucket/key``.

    Returns the commit sha. Raises :class:`UnsafeSourceArchive` for absolute paths, ``..`` or
    symbolic links, and :class:`GithubError` when GitHub refuses."""
    sha = resolve_ref(repository=repository, ref=ref_or_sha, installation_id=installation_id)
    with tempfile.TemporaryDirectory(prefix="troy-source-", dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
        downloaded = os.path.join(tmp, "github.zip")
        repackaged = os.path.join(tmp, "source.zip")
        size = _download_archive(repository=repository, sha=sha, installation_id=installation_id, dest=downloaded)
        entries = _repackage_without_top_folder(downloaded, repackaged)
        aws.client("s3").upload_file(
            repackaged,
            bucket,
            key,
            ExtraArgs={"ContentType": "application/zip", "Metadata": {"commit-sha": sha}},
        )
    logger.info(
        "source of %s@%s (%d bytes, %d files) uploaded to s3://%s/%s", repository, sha, size, entries, bucket, key
    )
    return sha


def _download_archive(*, repository: str, sha: str, installation_id: int, dest: str) -> int:
    """Stream ``GET /repos/{o}/{r}/zipball/{sha}`` into ``dest``. GitHub answers with a redirect to
    a download host and a short-lived signed URL: it is followed without our Authorization header,
    and never logged (the URL itself is a credential)."""
    path = f"{_repo_path(repository)}/zipball/{sha}"
    with _session() as session:
        response = _installation_call(
            session, "GET", path, installation_id=installation_id, stream=True, timeout=DOWNLOAD_TIMEOUT
        )
        url = _api_url(path)
        hops = 0
        while response.status_code in _REDIRECTS:
            location = response.headers.get("Location", "")
            response.close()
            hops += 1
            if not location or hops > MAX_REDIRECTS:
                raise GithubError(f"GitHub's archive download for {repository}@{sha} did not lead to a file.")
            url = urljoin(url, location)
            if urlsplit(url).scheme not in ("http", "https"):
                raise GithubError(f"GitHub's archive download for {repository}@{sha} redirected off HTTP.")
            try:
                response = session.get(
                    url,
                    stream=True,
                    timeout=DOWNLOAD_TIMEOUT,
                    allow_redirects=False,
                    headers={"Accept": "application/zip, application/octet-stream, */*"},
                )
            except requests.RequestException as exc:
                raise GithubError(
                    f"The archive download host did not answer for {repository}@{sha}: {type(exc).__name__}"
                ) from exc
        if response.status_code != 200:
            raise _error(response, f"GET {path}" + (" (download host)" if hops else ""))
        limit = settings.TROY_ARCHIVE_MAX_TOTAL_BYTES
        size = 0
        try:
            with response, open(dest, "wb") as out:
                for chunk in response.iter_content(CHUNK_BYTES):
                    size += len(chunk)
                    if size > limit:
                        raise GithubError(f"The archive of {repository}@{sha} is larger than {limit} bytes.")
                    out.write(chunk)
        except requests.RequestException as exc:
            raise GithubError(f"The archive download of {repository}@{sha} broke off: {type(exc).__name__}") from exc
    return size


def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    return path_problem(name)


def _repackage_without_top_folder(src: str, dest: str) -> int:
    """Copy every file of ``src`` into a new zip at ``dest`` without the single top-level folder,
    entry by entry (streamed, never a whole file in memory), keeping modes (executable scripts)
    and times. Returns the number of files. Directory entries are dropped: git has no empty
    directories, and unzip creates parents."""
    try:
        source = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as exc:
        raise GithubError("GitHub's repository archive is not a readable zip file.") from exc
    max_file = settings.TROY_ARCHIVE_MAX_FILE_BYTES
    max_total = settings.TROY_ARCHIVE_MAX_TOTAL_BYTES
    with source:
        infos = source.infolist()
        if len(infos) > SOURCE_MAX_ENTRIES:
            raise UnsafeSourceArchive(f"The repository archive has {len(infos)} entries (limit {SOURCE_MAX_ENTRIES}).")
        top = None
        for info in infos:
            reason = _unsafe_reason(info)
            if reason:
                raise UnsafeSourceArchive(f"Refusing the repository archive: {info.filename!r} {reason}.")
            first, slash, _rest = info.filename.partition("/")
            if not slash or (top is not None and first != top):
                raise UnsafeSourceArchive(
                    f"The repository archive does not hold one top-level folder ({info.filename!r} is outside it)."
                )
            top = first
        files = 0
        total = 0
        try:
            with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as out:
                for info in infos:
                    name = info.filename.partition("/")[2]
                    if not name or info.is_dir():
                        continue
                    if info.file_size > max_file:
                        raise UnsafeSourceArchive(f"{name!r} is larger than {max_file} bytes.")
                    total += info.file_size
                    if total > max_total:
                        raise UnsafeSourceArchive(f"The repository's files add up to more than {max_total} bytes.")
                    entry = zipfile.ZipInfo(name, date_time=info.date_time)
                    entry.external_attr = info.external_attr
                    entry.create_system = info.create_system
                    entry.compress_type = zipfile.ZIP_DEFLATED
                    entry.file_size = info.file_size  # decides ZIP64 before the data is written
                    with source.open(info) as reader, out.open(entry, "w") as writer:
                        shutil.copyfileobj(reader, writer, CHUNK_BYTES)
                    files += 1
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
            raise GithubError(f"GitHub's repository archive is damaged: {exc}") from exc
    return files


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
    if not _SHA_RE.fullmatch(sha or ""):
        raise GithubError(f"{sha!r} is not a full commit sha.")
    description = " ".join((description or "").split())
    if len(description) > STATUS_DESCRIPTION_MAX:
        description = description[: STATUS_DESCRIPTION_MAX - 1] + "…"
    body = {"state": state, "description": description, "context": context}
    if target_url:
        body["target_url"] = target_url
    path = f"{_repo_path(repository)}/statuses/{sha}"
    with _session() as session:
        response = _installation_call(session, "POST", path, installation_id=installation_id, json=body)
    if response.status_code != 201:
        raise _error(response, f"POST {path}")

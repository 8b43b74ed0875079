"""Repositories: ref → commit sha, and Download Source (the commit's archive, checked and repackaged
without its top-level folder into a file the caller gives; the caller stores it)."""

from __future__ import annotations

from dataclasses import dataclass
import logging
import os
import shutil
import stat
import tempfile
from typing import BinaryIO
from urllib.parse import quote, urljoin, urlsplit
import zipfile

from django.conf import settings
import requests

from deployment_service.archives import path_problem
from deployment_service.github_names import repository_split
from deployment_service.integrations.github.auth import installation_call
from deployment_service.integrations.github.transport import (
    CHUNK_BYTES,
    DOWNLOAD_TIMEOUT,
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    SHA_RE,
    SOURCE_MAX_ENTRIES,
    GithubError,
    UnsafeSourceArchive,
    api_url,
    error_from,
    new_session,
)

logger = logging.getLogger(__name__)


def repo_api_path(repository: str) -> str:
    parts = repository_split(repository)
    if parts is None:
        raise GithubError(f"{repository!r} is not a GitHub repository ('owner/repo').")
    owner, repo = parts
    return f"/repos/{quote(owner)}/{quote(repo)}"


def resolve_ref(*, repository: str, ref: str, installation_id: int) -> str:
    """The commit sha of ``ref`` (a branch, tag, ``heads/…``/``refs/heads/…`` or a sha). A full
    40-hex sha is returned as it is, without asking GitHub."""
    ref = (ref or "").strip()
    if SHA_RE.fullmatch(ref.lower()):
        return ref.lower()
    if not ref:
        raise GithubError("No ref to resolve: give a branch, tag or commit sha.")
    # GitHub's commits endpoint takes `heads/main` but not `refs/heads/main`.
    ref = ref.removeprefix("refs/")
    path = f"{repo_api_path(repository)}/commits/{quote(ref, safe='/')}"
    with new_session() as session:
        response = installation_call(
            session, "GET", path, installation_id=installation_id, headers={"Accept": "application/vnd.github.sha"}
        )
    if response.status_code != 200:
        raise error_from(response, f"GET {path}")
    text = response.text.strip()
    if text.startswith("{"):  # a server that ignored the sha media type answers the JSON commit
        try:
            text = str(response.json().get("sha", ""))
        except (ValueError, AttributeError):
            text = ""
    if not SHA_RE.fullmatch(text):
        raise GithubError(f"GitHub's answer to GET {path} is not a commit sha.")
    return text


@dataclass(frozen=True)
class SourceArchive:
    commit_sha: str
    files: int
    downloaded_bytes: int


def download_source(*, repository: str, ref_or_sha: str, installation_id: int, dest: BinaryIO) -> SourceArchive:
    """Download Source: the repository archive of the commit ``ref_or_sha`` resolves to, streamed
    to a temporary file, repackaged without the archive's top-level ``{owner}-{repo}-{short sha}/``
    folder (CodeBuild expects the repository root at the top) into ``dest`` (a binary file the
    caller opened; the caller stores it, e.g. in S3).

    Raises :class:`UnsafeSourceArchive` for absolute paths, ``..`` or symbolic links, and
    :class:`GithubError` when GitHub refuses."""
    sha = resolve_ref(repository=repository, ref=ref_or_sha, installation_id=installation_id)
    with tempfile.TemporaryDirectory(prefix="troy-source-", dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
        downloaded = os.path.join(tmp, "github.zip")
        size = _download_archive(repository=repository, sha=sha, installation_id=installation_id, dest=downloaded)
        files = _repackage_without_top_folder(downloaded, dest)
    logger.info("source of %s@%s: %d bytes downloaded, %d files", repository, sha, size, files)
    return SourceArchive(commit_sha=sha, files=files, downloaded_bytes=size)


def _download_archive(*, repository: str, sha: str, installation_id: int, dest: str) -> int:
    """Stream ``GET /repos/{o}/{r}/zipball/{sha}`` into ``dest``. GitHub answers with a redirect to
    a download host and a short-lived signed URL: it is followed without our Authorization header,
    and never logged (the URL itself is a credential)."""
    path = f"{repo_api_path(repository)}/zipball/{sha}"
    with new_session() as session:
        response = installation_call(
            session, "GET", path, installation_id=installation_id, stream=True, timeout=DOWNLOAD_TIMEOUT
        )
        url = api_url(path)
        hops = 0
        while response.status_code in REDIRECT_STATUSES:
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
            raise error_from(response, f"GET {path}" + (" (download host)" if hops else ""))
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


def _repackage_without_top_folder(src: str, dest: BinaryIO | str) -> int:
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

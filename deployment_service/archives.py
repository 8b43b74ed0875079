"""Reading site archives (release uploads and CodeBuild artifacts) safely.

Everything here works on a zip file on disk and never holds a member in memory: members are
inflated in 1 MiB chunks. Sizes and the compression ratio are counted on the bytes actually
inflated, never on what the headers claim, so a zip that lies about its sizes (or whose entries
overlap) is stopped as soon as it passes a limit. The checks are the same for an upload (before
anything is stored) and for the deploy step (which treats CodeBuild's output no better).

A zip whose files all sit under one top-level folder (GitHub archives, ``zip -r site.zip dist``)
is read from inside that folder. ``__MACOSX/`` entries (resource forks that macOS's "Compress"
adds) are not site content and are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
import hashlib
import os
import re
import stat
import zipfile
import zlib

from django.conf import settings
from rest_framework import status as http_status

from deployment_service.error_codes import ErrorCode
from deployment_service.exceptions import ApplicationError

CHUNK = 1024 * 1024
# Small members compress well without being bombs (a 40 KB file of spaces); the ratio limit
# applies once this many bytes have come out of one member (or of the whole archive).
RATIO_FLOOR_BYTES = 1024 * 1024
HEAD_BYTES = 256
SKIPPED_PREFIXES = ("__MACOSX/",)
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- errors (their codes are registered in deployment_service.error_codes) ----------------------


class NotAZip(ApplicationError):
    code = ErrorCode.NOT_A_ZIP
    http_status = http_status.HTTP_415_UNSUPPORTED_MEDIA_TYPE


class ArchiveRejected(ApplicationError):
    """The zip is readable but unsafe or over a limit. ``entry`` names the offending entry."""

    code = ErrorCode.ARCHIVE_REJECTED
    http_status = http_status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str, *, entry: str | None = None) -> None:
        super().__init__(detail, extra={"entry": entry} if entry is not None else None)
        self.entry = entry


class CorruptArchive(ArchiveRejected):
    code = ErrorCode.CORRUPT_ARCHIVE


class UnsafePath(ArchiveRejected):
    code = ErrorCode.UNSAFE_PATH


class DuplicateEntry(ArchiveRejected):
    code = ErrorCode.DUPLICATE_ENTRY


class SymlinkEntry(ArchiveRejected):
    code = ErrorCode.SYMLINK_ENTRY


class EncryptedEntry(ArchiveRejected):
    code = ErrorCode.ENCRYPTED_ENTRY


class EmptyArchive(ArchiveRejected):
    code = ErrorCode.EMPTY_ARCHIVE


class TooManyEntries(ArchiveRejected):
    code = ErrorCode.TOO_MANY_ENTRIES


class FileTooLarge(ArchiveRejected):
    code = ErrorCode.FILE_TOO_LARGE


class ArchiveTooLarge(ArchiveRejected):
    code = ErrorCode.ARCHIVE_TOO_LARGE


class CompressionRatioTooHigh(ArchiveRejected):
    code = ErrorCode.COMPRESSION_RATIO_TOO_HIGH


def path_problem(name: str) -> str | None:
    """Why a path taken from an archive (or given as a folder inside one) could escape where it is
    put or mean different things on different systems; None when it is safe. The one rule for
    every server-side path check: upload and artifact entries here, GitHub source archives, a
    pipeline's output directory. (The CLI, a separate package, keeps its own copy.)"""
    if "\x00" in name or _CONTROL.search(name):
        return "has a NUL or control character in its name"
    if "\\" in name:
        return "has a backslash in its name"
    if name.startswith("/") or _DRIVE.match(name):
        return "is an absolute path"
    if any(part == ".." for part in name.split("/")):
        return "climbs out of the archive with '..'"
    return None


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int
    max_file_bytes: int
    max_total_bytes: int
    max_ratio: int

    @classmethod
    def from_settings(cls) -> ArchiveLimits:
        return cls(
            max_entries=settings.TROY_ARCHIVE_MAX_ENTRIES,
            max_file_bytes=settings.TROY_ARCHIVE_MAX_FILE_BYTES,
            max_total_bytes=settings.TROY_ARCHIVE_MAX_TOTAL_BYTES,
            max_ratio=settings.TROY_ARCHIVE_MAX_RATIO,
        )


@dataclass(slots=True)  # one per file of a site, up to TROY_ARCHIVE_MAX_ENTRIES at once
class ArchiveFile:
    """One file of the site: ``path`` is where it is served (the top-level folder stripped)."""

    name: str  # the member name in the zip
    path: str
    size: int = 0  # bytes actually inflated
    sha256: str = ""
    head: bytes = b""  # the first bytes, for sniffing extensionless pages


@dataclass
class ArchiveSummary:
    files: list[ArchiveFile] = field(default_factory=list)
    prefix: str = ""
    uncompressed_size: int = 0

    @property
    def file_count(self) -> int:
        return len(self.files)


def archive_open(path: str | os.PathLike) -> zipfile.ZipFile:
    """Open a zip, or raise :class:`NotAZip` (415)."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise NotAZip(f"The upload is not a zip archive ({exc}).") from exc


def _clean_name(info: zipfile.ZipInfo) -> str | None:
    """The member's path inside the site, or None for directories and skipped entries.

    Raises for names that could escape the site's prefix or mean different things on different
    systems. ``orig_filename`` is checked because zipfile cuts ``filename`` at a NUL."""
    raw = info.orig_filename
    shown = raw.replace("\x00", "\\x00")
    problem = path_problem(raw)
    if problem:
        raise UnsafePath(f"Entry '{shown}' {problem}.", entry=shown)
    is_dir = raw.endswith("/")
    parts = raw.rstrip("/").split("/") if raw.strip("/") else []
    if any(part == "" for part in parts):
        raise UnsafePath(f"Entry '{shown}' has an empty path segment.", entry=shown)
    parts = [part for part in parts if part != "."]
    mode = info.external_attr >> 16
    if mode and stat.S_ISLNK(mode):
        raise SymlinkEntry(f"Entry '{shown}' is a symbolic link; archives may hold only files.", entry=shown)
    if info.flag_bits & 0x1:
        raise EncryptedEntry(f"Entry '{shown}' is encrypted.", entry=shown)
    if is_dir or not parts or (mode and stat.S_ISDIR(mode)):
        return None
    cleaned = "/".join(parts)
    if cleaned.startswith(SKIPPED_PREFIXES):
        return None
    # Usually the name itself: keep that one string (a deploy holds both for every file).
    return raw if cleaned == raw else cleaned


def archive_list(zf: zipfile.ZipFile, *, limits: ArchiveLimits) -> ArchiveSummary:
    """Check every name and header (no inflating yet) and work out the paths the site serves.

    Header sizes are used here only to refuse early; :func:`archive_scan` counts real bytes."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise TooManyEntries(
            f"The archive has {len(infos)} entries; the limit is {limits.max_entries} "
            f"(entry '{infos[limits.max_entries].orig_filename}' is one too many).",
            entry=infos[limits.max_entries].orig_filename,
        )
    files: list[ArchiveFile] = []
    claimed_total = 0
    for info in infos:
        path = _clean_name(info)
        if path is None:
            continue
        if info.file_size > limits.max_file_bytes:
            raise FileTooLarge(
                f"Entry '{info.filename}' is {info.file_size} bytes; the limit per file is {limits.max_file_bytes}.",
                entry=info.filename,
            )
        claimed_total += info.file_size
        if claimed_total > limits.max_total_bytes:
            raise ArchiveTooLarge(
                f"The archive inflates past {limits.max_total_bytes} bytes (at entry '{info.filename}').",
                entry=info.filename,
            )
        files.append(ArchiveFile(name=info.filename, path=path))
    if not files:
        raise EmptyArchive("The archive holds no files.", entry="")

    prefix = ""
    firsts = {f.path.split("/", 1)[0] for f in files}
    if len(firsts) == 1 and all("/" in f.path for f in files):
        prefix = firsts.pop() + "/"
        for f in files:
            f.path = f.path[len(prefix) :]
    seen: dict[str, str] = {}
    for f in files:
        if f.path in seen:
            raise DuplicateEntry(f"Entries '{seen[f.path]}' and '{f.name}' are both the file '{f.path}'.", entry=f.name)
        seen[f.path] = f.name
    return ArchiveSummary(files=files, prefix=prefix)


def member_chunks(zf: zipfile.ZipFile, name: str) -> Iterator[bytes]:
    """The member's bytes, inflated a chunk at a time (zipfile bounds each decompress call)."""
    with zf.open(name) as member:
        while chunk := member.read(CHUNK):
            yield chunk


def archive_scan(
    zf: zipfile.ZipFile,
    *,
    limits: ArchiveLimits,
    archive_bytes: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ArchiveSummary:
    """Validate the whole archive by inflating every file: names, headers, real sizes and ratios.

    Fills each file's ``size``, ``sha256`` and ``head``. Raises an :class:`ArchiveRejected`
    subclass naming the offending entry; nothing is written anywhere."""
    summary = archive_list(zf, limits=limits)
    if archive_bytes is None:
        try:
            archive_bytes = os.fstat(zf.fp.fileno()).st_size  # type: ignore[union-attr]  # fp None: caught below
        except (AttributeError, OSError, ValueError):
            archive_bytes = 0
    infos = {info.filename: info for info in zf.infolist()}
    total = 0
    for f in summary.files:
        info = infos[f.name]
        budget = max(info.compress_size, 1) * limits.max_ratio
        digest = hashlib.sha256()
        size = 0
        try:
            for chunk in member_chunks(zf, f.name):
                if size < HEAD_BYTES:
                    f.head += chunk[: HEAD_BYTES - size]
                size += len(chunk)
                total += len(chunk)
                if size > limits.max_file_bytes:
                    raise FileTooLarge(
                        f"Entry '{f.name}' inflates past the limit per file of {limits.max_file_bytes} bytes.",
                        entry=f.name,
                    )
                if total > limits.max_total_bytes:
                    raise ArchiveTooLarge(
                        f"The archive inflates past {limits.max_total_bytes} bytes (at entry '{f.name}').",
                        entry=f.name,
                    )
                if size > RATIO_FLOOR_BYTES and size > budget:
                    raise CompressionRatioTooHigh(
                        f"Entry '{f.name}' inflates more than {limits.max_ratio} times its compressed size.",
                        entry=f.name,
                    )
                if archive_bytes and total > RATIO_FLOOR_BYTES and total > archive_bytes * limits.max_ratio:
                    raise CompressionRatioTooHigh(
                        f"The archive inflates more than {limits.max_ratio} times its size (at entry '{f.name}').",
                        entry=f.name,
                    )
                digest.update(chunk)
                if on_progress is not None:
                    on_progress(len(chunk))
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise CorruptArchive(f"Entry '{f.name}' cannot be read: {exc}.", entry=f.name) from exc
        except NotImplementedError as exc:
            raise CorruptArchive(
                f"Entry '{f.name}' uses an unsupported compression method: {exc}.", entry=f.name
            ) from exc
        f.size = size
        f.sha256 = digest.hexdigest()
    summary.uncompressed_size = total
    return summary


def archive_validate(path: str | os.PathLike, *, limits: ArchiveLimits | None = None) -> ArchiveSummary:
    """Open and fully validate the zip at ``path``."""
    with archive_open(path) as zf:
        return archive_scan(zf, limits=limits or ArchiveLimits.from_settings(), archive_bytes=os.path.getsize(path))

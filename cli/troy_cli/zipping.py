"""Reproducible zips of a site folder: the same folder gives a byte-identical zip, whatever the
files' timestamps, permissions or the order the file system lists them in.

* entries sorted by path, ``/``-separated, files only (no directory entries);
* every entry dated 1980-01-01 00:00:00, mode 0644, "made by" Unix, deflated (zlib's default
  level; zlib itself is the only thing that could differ between machines);
* skipped, and always reported on stderr: ``.DS_Store`` and ``Thumbs.db`` (desktop litter) and
  ``.git`` folders (publishing one would expose the repository's history). Every other file is
  included, dotfiles too (``.well-known/`` must deploy);
* a symlink is stored as the file it points to when that file is inside the folder; a symlink
  leading outside the folder, a symlinked folder, or anything that is not a regular file stops
  the zip with an error naming it (nothing is left out without a word).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import hashlib
import os
from pathlib import Path
import shutil
import zipfile

from troy_cli.errors import UsageError

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--
SKIPPED_FILES = frozenset({".DS_Store", "Thumbs.db"})
SKIPPED_FOLDERS = frozenset({".git"})


@dataclass
class ZipResult:
    path: Path
    sha256: str
    size: int
    file_count: int
    content_bytes: int
    skipped: list[str] = field(default_factory=list)


def collect(folder: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """``([(entry name, file to read)], [skipped names])`` for ``folder``, sorted by entry name."""
    root = folder.resolve()
    files: list[tuple[str, Path]] = []
    skipped: list[str] = []

    def walk(directory: Path, prefix: str) -> None:
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                name = prefix + entry.name
                if entry.is_symlink():
                    target = Path(entry.path).resolve()
                    if not target.is_relative_to(root):
                        raise UsageError(f"{name} is a symlink to {target}, outside {folder}")
                    if target.is_dir():
                        raise UsageError(f"{name} is a symlink to a folder; copy the folder in instead")
                    if not target.is_file():
                        raise UsageError(f"{name} is a symlink to {target}, which is not a regular file")
                    files.append((name, target))
                elif entry.is_dir():
                    if entry.name in SKIPPED_FOLDERS:
                        skipped.append(name + "/")
                    else:
                        walk(Path(entry.path), name + "/")
                elif entry.is_file():
                    if entry.name in SKIPPED_FILES:
                        skipped.append(name)
                    else:
                        files.append((name, Path(entry.path)))
                else:
                    raise UsageError(f"{name} is not a regular file")

    walk(root, "")
    files.sort(key=lambda item: item[0])
    return files, skipped


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def zip_folder(folder: Path, destination: Path) -> ZipResult:
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    files, skipped = collect(folder)
    if not files:
        raise UsageError(f"{folder} has no files to release")
    content_bytes = 0
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, source in files:
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = FILE_MODE << 16
            info.file_size = source.stat().st_size  # lets zipfile pick zip64 for very large files
            content_bytes += info.file_size
            with open(source, "rb") as src, archive.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
    return ZipResult(
        path=destination,
        sha256=sha256_of(destination),
        size=destination.stat().st_size,
        file_count=len(files),
        content_bytes=content_bytes,
        skipped=skipped,
    )

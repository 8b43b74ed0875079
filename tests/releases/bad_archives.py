"""A corpus of hostile or broken archives, each built the way an attacker (or a bad tool) would."""

from __future__ import annotations

import io
import os
import zipfile

from tests.releases.helpers import zip_bytes

GOOD = {"index.html": "<!doctype html><p>hi</p>"}


def _with_info(info: zipfile.ZipInfo, data: bytes = b"x", *, after=None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("index.html", GOOD["index.html"])
        zf.writestr(info, data)
        if after is not None:
            after(zf)
    return buffer.getvalue()


def absolute_path() -> bytes:
    return _with_info(zipfile.ZipInfo("/etc/cron.d/evil"))


def drive_path() -> bytes:
    return _with_info(zipfile.ZipInfo("C:/evil.html"))


def dot_dot() -> bytes:
    return _with_info(zipfile.ZipInfo("assets/../../evil.html"))


def backslash() -> bytes:
    return _with_info(zipfile.ZipInfo("..\\evil.html"))


def nul_in_name() -> bytes:
    # zipfile cuts names at NUL when writing; write a placeholder of the same length and patch it.
    data = _with_info(zipfile.ZipInfo("evil.htmlXjpg"))
    return data.replace(b"evil.htmlXjpg", b"evil.html\x00jpg")


def symlink() -> bytes:
    info = zipfile.ZipInfo("passwd.html")
    info.create_system = 3
    info.external_attr = 0o120777 << 16
    return _with_info(info, b"/etc/passwd")


def encrypted() -> bytes:
    def flag(zf):
        zf.filelist[-1].flag_bits |= 0x1  # the central directory says "encrypted"

    return _with_info(zipfile.ZipInfo("secret.html"), b"x", after=flag)


def only_folders() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(zipfile.ZipInfo("dist/"), b"")
        zf.writestr(zipfile.ZipInfo("dist/assets/"), b"")
    return buffer.getvalue()


def too_many_entries() -> bytes:  # with TROY_ARCHIVE_MAX_ENTRIES = 10
    return zip_bytes({f"f{i}.txt": "x" for i in range(11)})


def file_too_large() -> bytes:  # with TROY_ARCHIVE_MAX_FILE_BYTES = 64 KiB
    return zip_bytes({**GOOD, "big.bin": os.urandom(100 * 1024)})


def total_too_large() -> bytes:  # with TROY_ARCHIVE_MAX_TOTAL_BYTES = 256 KiB
    return zip_bytes({**GOOD, **{f"part{i}.bin": os.urandom(60 * 1024) for i in range(5)}})


def lying_sizes() -> bytes:
    """The central directory claims 10 bytes for a member that inflates to 200 KiB."""

    def lie(zf):
        zf.filelist[-1].file_size = 10

    return _with_info(zipfile.ZipInfo("small.txt"), b"a" * 200 * 1024, after=lie)


def duplicate_names() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("index.html", "one")
        zf.writestr("./index.html", "two")
    return buffer.getvalue()


def truncated() -> bytes:
    data = zip_bytes({**GOOD, "data.bin": os.urandom(50_000)})
    return data[: len(data) // 2]


def bomb_300mb_of_zeros() -> bytes:
    """300 MB of zeros, deflated at level 9 while streaming: about 300 KB, never 300 MB in memory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("index.html", GOOD["index.html"])
        info = zipfile.ZipInfo("zeros.bin")
        info.compress_type = zipfile.ZIP_DEFLATED
        info._compresslevel = 9  # zipfile's own name for it (compress_level from Python 3.13)
        with zf.open(info, "w", force_zip64=True) as member:
            block = bytes(1024 * 1024)
            for _ in range(300):
                member.write(block)
    data = buffer.getvalue()
    assert len(data) < 1024 * 1024, len(data)
    return data


# name → (builder, expected HTTP status, expected code, entry named in the answer or None).
# The tests run with small limits (10 entries, 64 KiB a file, 256 KiB in all) except the bomb,
# which meets the default limits: only the compression ratio stops it.
CORPUS = {
    "absolute_path": (absolute_path, 400, "unsafe_path", "/etc/cron.d/evil"),
    "drive_path": (drive_path, 400, "unsafe_path", "C:/evil.html"),
    "dot_dot": (dot_dot, 400, "unsafe_path", "assets/../../evil.html"),
    "backslash": (backslash, 400, "unsafe_path", "..\\evil.html"),
    "nul_in_name": (nul_in_name, 400, "unsafe_path", "evil.html\\x00jpg"),
    "symlink": (symlink, 400, "symlink_entry", "passwd.html"),
    "encrypted": (encrypted, 400, "encrypted_entry", "secret.html"),
    "only_folders": (only_folders, 400, "empty_archive", None),
    "too_many_entries": (too_many_entries, 400, "too_many_entries", "f10.txt"),
    "file_too_large": (file_too_large, 400, "file_too_large", "big.bin"),
    "total_too_large": (total_too_large, 400, "archive_too_large", None),
    "lying_sizes": (lying_sizes, 400, "corrupt_archive", "small.txt"),
    "duplicate_names": (duplicate_names, 400, "duplicate_entry", "./index.html"),
    "truncated": (truncated, 415, "not_a_zip", None),
    "not_a_zip": (lambda: b"<html>this is not a zip</html>" * 10, 415, "not_a_zip", None),
    "bomb_300mb_of_zeros": (bomb_300mb_of_zeros, 400, "compression_ratio_too_high", "zeros.bin"),
}

"""The CLI's reproducible zips: same folder → byte-identical zip, whatever the file system says."""

from __future__ import annotations

import os
import zipfile

import pytest

from troy_cli.errors import UsageError
from troy_cli.zipping import collect, zip_folder


def make_site(root, *, order=("index.html", "assets/app.3f9a1c.js", ".well-known/security.txt", "a b/ü.txt")):
    contents = {
        "index.html": b"<h1>hello</h1>",
        "assets/app.3f9a1c.js": b"console.log(1);" * 100,
        ".well-known/security.txt": b"Contact: mailto:security@example.com",
        "a b/\u00fc.txt": b"unicode",
    }
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(contents[name])
    return root


def test_the_same_folder_zips_to_identical_bytes_whatever_the_mtimes_modes_and_creation_order(tmp_path):
    first = make_site(tmp_path / "one")
    second = make_site(
        tmp_path / "two", order=("a b/ü.txt", ".well-known/security.txt", "assets/app.3f9a1c.js", "index.html")
    )
    os.utime(second / "index.html", (1_700_000_000, 1_700_000_000))
    os.chmod(second / "assets/app.3f9a1c.js", 0o755)

    a = zip_folder(first, tmp_path / "a.zip")
    b = zip_folder(second, tmp_path / "b.zip")
    again = zip_folder(first, tmp_path / "again.zip")

    assert (
        (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes() == (tmp_path / "again.zip").read_bytes()
    )
    assert a.sha256 == b.sha256 == again.sha256
    assert a.file_count == 4


def test_entries_are_sorted_files_dated_1980_mode_0644_and_deflated(tmp_path):
    zip_folder(make_site(tmp_path / "site"), tmp_path / "site.zip")
    with zipfile.ZipFile(tmp_path / "site.zip") as archive:
        infos = archive.infolist()
        assert (
            [i.filename for i in infos]
            == sorted(i.filename for i in infos)
            == [
                ".well-known/security.txt",
                "a b/\u00fc.txt",
                "assets/app.3f9a1c.js",
                "index.html",
            ]
        )
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
        assert all(i.external_attr >> 16 == 0o100644 for i in infos)
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in infos)
        assert not any(i.is_dir() for i in infos)
        assert archive.read("index.html") == b"<h1>hello</h1>"


def test_desktop_litter_and_git_folders_are_left_out_and_reported(tmp_path):
    site = make_site(tmp_path / "site")
    (site / ".DS_Store").write_bytes(b"\0")
    (site / "assets/Thumbs.db").write_bytes(b"\0")
    (site / ".git").mkdir()
    (site / ".git/config").write_text("[core]")
    result = zip_folder(site, tmp_path / "site.zip")
    assert sorted(result.skipped) == [".DS_Store", ".git/", "assets/Thumbs.db"]
    with zipfile.ZipFile(tmp_path / "site.zip") as archive:
        assert ".DS_Store" not in archive.namelist() and ".git/config" not in archive.namelist()
        assert ".well-known/security.txt" in archive.namelist()  # other dotfiles are kept


def test_a_symlink_inside_is_stored_as_its_file_and_one_leading_outside_is_refused(tmp_path):
    site = make_site(tmp_path / "site")
    (site / "home.html").symlink_to(site / "index.html")
    files, _ = collect(site)
    assert ("home.html", (site / "index.html").resolve()) in files

    (tmp_path / "secret.txt").write_text("password")
    (site / "leak.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(UsageError, match=r"leak\.txt is a symlink to .*outside"):
        zip_folder(site, tmp_path / "site.zip")


def test_an_empty_folder_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="has no files"):
        zip_folder(tmp_path / "empty", tmp_path / "x.zip")

from __future__ import annotations

import hashlib
import json

import pytest

from edge.manifest import FileEntry, Manifest, ManifestError, blob_key, content_key, dumps, loads, manifest_key

SHA = hashlib.sha256(b"hello").hexdigest()
KEY = content_key(SHA, "text/html", "no-cache")


def manifest(**overrides) -> Manifest:
    fields = {
        "pipeline_id": "p1",
        "build_id": "b1",
        "files": {"index.html": FileEntry(key=KEY, type="text/html", cache="no-cache", size=5)},
    }
    return Manifest(**(fields | overrides))


def test_round_trip():
    original = manifest(not_found="index.html", rules={"redirects": []})
    assert loads(dumps(original)) == original


def test_serialised_form():
    assert json.loads(dumps(manifest())) == {
        "version": 1,
        "pipeline_id": "p1",
        "build_id": "b1",
        "files": {"index.html": {"key": KEY, "type": "text/html", "cache": "no-cache", "size": 5}},
    }


def test_content_key_depends_on_bytes_and_headers():
    keys = {
        content_key(SHA, "text/html", "no-cache"),
        content_key(SHA, "text/plain", "no-cache"),
        content_key(SHA, "text/html", "max-age=60"),
        content_key(hashlib.sha256(b"other").hexdigest(), "text/html", "no-cache"),
    }
    assert len(keys) == 4
    assert content_key(SHA, "text/html", "no-cache") == KEY


def test_storage_layout():
    assert blob_key("p1", KEY) == f"p1/blobs/{KEY}"
    assert manifest_key("p1", "b1") == "p1/builds/b1.json"


@pytest.mark.parametrize("bad_id", ["", "_immutable", "a/b", "..", "x" * 65])
def test_ids_that_would_break_the_layout_are_refused(bad_id):
    with pytest.raises(ManifestError):
        manifest_key("p1", bad_id)
    with pytest.raises(ManifestError):
        blob_key(bad_id, KEY)


def test_content_key_refuses_a_digest_that_is_not_sha256():
    with pytest.raises(ManifestError):
        content_key("abc", "text/html", "")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"version": 2}', "version"),
        (b'{"version": 1, "pipeline_id": "p1", "build_id": "b1", "files": []}', "files"),
        (b'{"version": 1, "pipeline_id": "p1", "build_id": "b1", "files": {}, "extra": 1}', "unknown"),
        (b'{"version": 1, "pipeline_id": 7, "build_id": "b1", "files": {}}', "pipeline_id"),
        (b'{"version": 1, "pipeline_id": "p1", "build_id": "b1", "files": {}, "not_found": "404.html"}', "not_found"),
        (b'{"version": 1, "pipeline_id": "p1", "build_id": "b1", "files": {"/abs": {}}}', "abs"),
        (b'{"version": 1, "pipeline_id": "p1", "build_id": "b1", "files": {"a.html": {"key": "x"}}}', "a.html"),
        (b'{"version": 1, "pipeline_id": "p1", "build_id": "b1", "files": {}, "rules": []}', "rules"),
        (b"\xff", "not JSON"),
    ],
)
def test_a_bad_manifest_is_an_error_naming_the_problem(raw, message):
    with pytest.raises(ManifestError, match=message):
        loads(raw)


@pytest.mark.parametrize("path", ["../etc/passwd", "a//b.html", "dir/", "./a.html"])
def test_paths_that_do_not_name_a_file_are_refused(path):
    with pytest.raises(ManifestError):
        manifest(files={path: FileEntry(key=KEY, type="text/html", cache="", size=1)})


@pytest.mark.parametrize("size", [-1, True, 1.5])
def test_sizes_must_be_counts(size):
    data = json.loads(dumps(manifest()))
    data["files"]["index.html"]["size"] = size
    with pytest.raises(ManifestError, match="size"):
        loads(json.dumps(data))

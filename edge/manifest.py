"""The build manifest: what the deploy writes to `{pipeline}/builds/{build}.json` and what the
origin handler reads to map a request path to a content-addressed blob.

Shared by the deploy writer and the Lambda@Edge origin handler, so it is stdlib only."""

from __future__ import annotations

from dataclasses import dataclass, field
import hashlib
import json
import re
from typing import Any

MANIFEST_VERSION = 1

# Pipeline and build ids as the viewer function accepts them (edge/viewer_request.js, ID).
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_CONTENT_KEY = re.compile(r"[0-9a-f]{64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")

# The fingerprint rule; edge/viewer_request.js isFingerprinted is the same rule (docs/edge.md).
_ASSET_EXT = re.compile(r"(js|mjs|cjs|css|wasm|woff2?|ttf|otf|eot|svg|png|jpe?g|gif|webp|avif|ico|json)")
_HEX_HASH = re.compile(r"[.-]([0-9a-f]{8,64})$")
_B64_HASH = re.compile(r"-([A-Za-z0-9_-]{8})$")


class ManifestError(ValueError):
    """A manifest that does not follow the format: refused, never half-read."""


def is_fingerprinted(path: str) -> bool:
    """Whether a (decoded) path names a content-hashed asset, served without the build in its
    cache key. Conservative on purpose: a false negative only costs a cache miss after a deploy,
    a false positive makes a deploy refuse a changed file as `fingerprint_reused`."""
    name = path.rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return False
    ext = ext.lower()
    if ext == "map":
        stem, dot, ext = stem.rpartition(".")
        if not dot or not stem:
            return False
        ext = ext.lower()
    if ext == "map" or not _ASSET_EXT.fullmatch(ext):
        return False
    match = _HEX_HASH.search(stem)
    if match and match.start() > 0 and re.search(r"[0-9]", match[1]) and re.search(r"[a-f]", match[1]):
        return True
    match = _B64_HASH.search(stem)
    return bool(match and match.start() > 0 and re.search(r"[0-9]", match[1]) and re.search(r"[A-Z]", match[1]))


def content_key(data_sha256: str, content_type: str, cache_control: str) -> str:
    """The blob's name: one stored object serves one set of headers, so the headers it is
    served with are part of its identity (the same bytes as text/plain are another blob)."""
    if not _SHA256.fullmatch(data_sha256):
        raise ManifestError(f"data_sha256 must be 64 lowercase hex characters, got {data_sha256!r}")
    identity = json.dumps([data_sha256, content_type, cache_control], separators=(",", ":"))
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def blob_key(pipeline_id: str, key: str) -> str:
    return f"{_checked_id('pipeline_id', pipeline_id)}/blobs/{key}"


def manifest_key(pipeline_id: str, build_id: str) -> str:
    return f"{_checked_id('pipeline_id', pipeline_id)}/builds/{_checked_id('build_id', build_id)}.json"


@dataclass(frozen=True)
class FileEntry:
    key: str
    type: str
    cache: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "type": self.type, "cache": self.cache, "size": self.size}


@dataclass(frozen=True)
class Manifest:
    """Paths are relative to the site root, decoded, without a leading slash ("docs/index.html").
    `rules` is kept verbatim for the redirect/header rules of issue 10; today nothing reads it."""

    pipeline_id: str
    build_id: str
    files: dict[str, FileEntry]
    not_found: str | None = None
    rules: dict[str, Any] = field(default_factory=dict)
    version: int = MANIFEST_VERSION

    def __post_init__(self) -> None:
        _checked_id("pipeline_id", self.pipeline_id)
        _checked_id("build_id", self.build_id)
        if self.version != MANIFEST_VERSION:
            raise ManifestError(f"unsupported manifest version {self.version!r}")
        for path in self.files:
            _check_path(path)
        if self.not_found is not None and self.not_found not in self.files:
            raise ManifestError(f"not_found {self.not_found!r} is not a file of the build")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": self.version,
            "pipeline_id": self.pipeline_id,
            "build_id": self.build_id,
            "files": {path: entry.to_dict() for path, entry in sorted(self.files.items())},
        }
        if self.not_found is not None:
            data["not_found"] = self.not_found
        if self.rules:
            data["rules"] = self.rules
        return data


def dumps(manifest: Manifest) -> bytes:
    return json.dumps(manifest.to_dict(), separators=(",", ":"), sort_keys=True).encode("utf-8")


def loads(raw: bytes | str) -> Manifest:
    """Parse and validate; any deviation is a ManifestError naming what is wrong."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestError("manifest must be a JSON object")
    unknown = set(data) - {"version", "pipeline_id", "build_id", "files", "not_found", "rules"}
    if unknown:
        raise ManifestError(f"unknown manifest fields: {sorted(unknown)}")
    version = data.get("version")
    if version != MANIFEST_VERSION:
        raise ManifestError(f"unsupported manifest version {version!r}")
    files = data.get("files")
    if not isinstance(files, dict):
        raise ManifestError("files must be an object of path → entry")
    rules = data.get("rules", {})
    if not isinstance(rules, dict):
        raise ManifestError("rules must be an object")
    not_found = data.get("not_found")
    if not_found is not None and not isinstance(not_found, str):
        raise ManifestError("not_found must be a path")
    return Manifest(
        version=version,
        pipeline_id=_string(data, "pipeline_id"),
        build_id=_string(data, "build_id"),
        files={path: _entry(path, entry) for path, entry in files.items()},
        not_found=not_found,
        rules=rules,
    )


def _entry(path: str, entry: Any) -> FileEntry:
    if not isinstance(entry, dict) or set(entry) != {"key", "type", "cache", "size"}:
        raise ManifestError(f"file {path!r}: an entry has exactly key, type, cache and size")
    key, content_type, cache, size = entry["key"], entry["type"], entry["cache"], entry["size"]
    if not isinstance(key, str) or not _CONTENT_KEY.fullmatch(key):
        raise ManifestError(f"file {path!r}: key must be a content key (64 lowercase hex)")
    if not isinstance(content_type, str) or not content_type:
        raise ManifestError(f"file {path!r}: type must be a non-empty string")
    if not isinstance(cache, str):
        raise ManifestError(f"file {path!r}: cache must be a string")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ManifestError(f"file {path!r}: size must be a non-negative integer")
    return FileEntry(key=key, type=content_type, cache=cache, size=size)


def _check_path(path: Any) -> None:
    if not isinstance(path, str) or not path or path.startswith("/") or path.endswith("/"):
        raise ManifestError(f"file path {path!r} must be relative, non-empty and name a file")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise ManifestError(f"file path {path!r} has an empty, '.' or '..' segment")


def _string(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ManifestError(f"{name} must be a string")
    return value


def _checked_id(name: str, value: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ManifestError(f"{name} {value!r} is not an id (letters, digits, '-' and '_', at most 64)")
    return value

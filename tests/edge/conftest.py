"""The routing vectors and the builds they run against, as S3 objects written with the manifest
helpers (the same layout the deploy will write)."""

from __future__ import annotations

import hashlib
import json
import mimetypes
from pathlib import Path

import boto3
from moto import mock_aws
import pytest

from edge.local import LocalEdge, ViewerFunction
from edge.manifest import FileEntry, Manifest, blob_key, content_key, dumps, is_fingerprinted, manifest_key

VECTORS = json.loads(Path(__file__).with_name("vectors.json").read_text())
BUCKET = "troy-live-test"


def file_body(pipeline_build: str, path: str) -> bytes:
    return f"{pipeline_build}:{path}\n".encode()


def build_objects(builds: dict[str, dict]) -> dict[str, tuple[bytes, str, str]]:
    """S3 key → (body, content type, cache control) for every blob and manifest of the builds."""
    objects: dict[str, tuple[bytes, str, str]] = {}
    for pipeline_build, build in builds.items():
        pipeline_id, build_id = pipeline_build.split("/")
        files = {}
        for path in build["files"]:
            body = file_body(pipeline_build, path)
            content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
            cache = (
                "public, max-age=31536000, immutable"
                if is_fingerprinted(path)
                else "public, max-age=0, must-revalidate"
            )
            key = content_key(hashlib.sha256(body).hexdigest(), content_type, cache)
            files[path] = FileEntry(key=key, type=content_type, cache=cache, size=len(body))
            objects[blob_key(pipeline_id, key)] = (body, content_type, cache)
        manifest = Manifest(pipeline_id=pipeline_id, build_id=build_id, files=files, not_found=build["not_found"])
        objects[manifest_key(pipeline_id, build_id)] = (dumps(manifest), "application/json", "no-store")
    return objects


def vector_id(vector: dict) -> str:
    return vector["name"]


@pytest.fixture(scope="session")
def viewer() -> ViewerFunction:
    return ViewerFunction(VECTORS["pointers"].get)


@pytest.fixture(scope="module")
def s3_bucket():
    """Module-wide: no test writes to it, and filling it per test would dominate the run."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        for key, (body, content_type, cache) in build_objects(VECTORS["builds"]).items():
            client.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType=content_type, CacheControl=cache)
        yield client


@pytest.fixture(scope="module")
def local_edge(s3_bucket) -> LocalEdge:
    return LocalEdge(VECTORS["pointers"].get, s3_bucket, BUCKET)

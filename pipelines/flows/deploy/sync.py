"""Put an artifact zip live: only what changed, assets before pages, deletions last.

What is live is known from the live build's manifest (path → sha256, ETag, headers) and from the
bucket (every object carries its content hash as ``x-amz-meta-sha256``). When nothing but the
live build has written under the prefix since it went live, the manifest *is* the bucket's state:
unchanged files are settled without a request, so a no-change redeploy makes one GET (the
artifact) and nothing else. After a failed deploy the prefix is listed and a file counts as
unchanged only when the listing still shows the ETag the manifest recorded. Either way a file
whose entry differs gets one HEAD before it is uploaded, so a deploy run again after a crash
uploads only what is still missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
import hashlib
import json
import logging
import os
from pathlib import Path
import tempfile
import threading
import time
from typing import Any
import zipfile

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from django.conf import settings

from deployment_service import artifact_keys, aws
from deployment_service.archives import (
    HEAD_BYTES,
    ArchiveFile,
    ArchiveLimits,
    archive_list,
    archive_open,
    archive_scan,
    member_chunks,
)
from deployment_service.integrations import s3_cleanup
from pipelines.flows.deploy.content import ObjectHeaders, extension, is_fingerprinted, object_headers
from pipelines.flows.deploy.invalidation import collapse_paths, invalidation_create, invalidation_paths_for
from pipelines.flows.deploy.workdirs import deploy_workdir

logger = logging.getLogger(__name__)

# Files up to this size are read into memory and sent with one PutObject; larger ones are
# inflated to a temporary file and sent by s3transfer (multipart past MULTIPART_THRESHOLD), a few
# at a time, so the worker's memory stays bounded whatever the artifact holds.
IN_MEMORY_MAX_BYTES = 1024 * 1024
MULTIPART_THRESHOLD = 16 * 1024 * 1024
LARGE_FILES_AT_ONCE = 2
# On the trusted-manifest path, files that may need uploading are looked up one HEAD each, up to
# this many; past it the prefix is listed instead.
HEADS_BEFORE_LISTING = 100
_TRANSFER = TransferConfig(
    multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=8 * 1024 * 1024, max_concurrency=4, use_threads=True
)


class ArtifactMissing(Exception):
    pass


class ArtifactMismatch(Exception):
    pass


@dataclass
class DeployResult:
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    bytes_uploaded: int = 0
    invalidation_paths: list[str] = field(default_factory=list)
    invalidation_id: str = ""
    manifest: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        return {
            "files_uploaded": len(self.uploaded),
            "files_unchanged": len(self.unchanged),
            "files_deleted": len(self.deleted),
            "bytes_uploaded": self.bytes_uploaded,
            "invalidation_id": self.invalidation_id,
        }


def _entry(file: ArchiveFile, headers: ObjectHeaders, etag: str) -> dict[str, Any]:
    return {
        "sha256": file.sha256,
        "size": file.size,
        "etag": etag,
        "content_type": headers.content_type,
        "cache_control": headers.cache_control,
    }


def artifact_download(*, key: str, to: Path) -> str:
    """Stream the artifact zip from the artifact bucket to a local file, a chunk at a time (one
    GET: against S3 and emulators alike it beats ranged GETs at these sizes). Returns its sha256."""
    digest = hashlib.sha256()
    try:
        body = aws.client("s3").get_object(Bucket=settings.TROY_ARTIFACT_BUCKET, Key=key)["Body"]
    except ClientError as exc:
        if aws.error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
            raise ArtifactMissing(
                f"The artifact {key} is not in the artifact bucket {settings.TROY_ARTIFACT_BUCKET}."
            ) from exc
        raise
    with open(to, "wb") as out:
        for chunk in body.iter_chunks(1024 * 1024):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def live_listing(s3, *, prefix: str) -> dict[str, str]:
    """Every key under the pipeline's prefix → its ETag (relative path → quoted ETag)."""
    found: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.TROY_LIVE_BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []) or []:
            found[obj["Key"][len(prefix) :]] = obj["ETag"]
    return found


class _Uploader:
    """Per-file work, run on the pool's threads. One shared client (boto3 clients are thread-safe).

    ``listing`` is the bucket's view (path → ETag), or None when the live manifest is trusted
    instead: then any file whose manifest entry differs is looked up with one HEAD, so a run
    repeated after a crash still skips what it had already put."""

    def __init__(
        self,
        *,
        s3,
        zf: zipfile.ZipFile,
        prefix: str,
        listing: dict[str, str] | None,
        live: dict[str, dict[str, Any]],
        workdir: Path,
    ) -> None:
        self.s3 = s3
        self.zf = zf
        self.prefix = prefix
        self.listing = listing
        self.live = live
        self.workdir = workdir
        self.large = threading.BoundedSemaphore(LARGE_FILES_AT_ONCE)
        self.lock = threading.Lock()
        self.result = DeployResult()
        self.existed: set[str] = set()  # paths that held an object before this run wrote

    def known_unchanged(self, file: ArchiveFile, headers: ObjectHeaders) -> bool:
        """Settled without a request: the manifest has this content and these headers, and the
        listing (when there is one) still shows the ETag the manifest recorded. Recorded as such."""
        before = self.live.get(file.path)
        if not (
            before
            and before.get("sha256") == file.sha256
            and before.get("content_type") == headers.content_type
            and before.get("cache_control") == headers.cache_control
        ):
            return False
        if self.listing is not None and self.listing.get(file.path) != before.get("etag"):
            return False
        self._record(file, headers, before["etag"], uploaded=False, existed=True)
        return True

    def _already_there(self, file: ArchiveFile, headers: ObjectHeaders) -> tuple[str | None, bool]:
        """(the live object's ETag when it already holds this content with these headers, whether
        an object was there at all). One HEAD, unless the listing shows there is no object."""
        if self.listing is not None and file.path not in self.listing:
            return None, False
        try:
            head = self.s3.head_object(Bucket=settings.TROY_LIVE_BUCKET, Key=self.prefix + file.path)
        except ClientError as exc:
            if aws.error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return None, False
            raise
        if (
            head.get("Metadata", {}).get("sha256") == file.sha256
            and head.get("ContentType") == headers.content_type
            and head.get("CacheControl") == headers.cache_control
        ):
            return head["ETag"], True
        return None, True

    def _put(self, file: ArchiveFile, headers: ObjectHeaders) -> str:
        key = self.prefix + file.path
        extra = {
            "ContentType": headers.content_type,
            "CacheControl": headers.cache_control,
            "Metadata": {"sha256": file.sha256},
        }
        if file.size <= IN_MEMORY_MAX_BYTES:
            body = b"".join(member_chunks(self.zf, file.name))
            return self.s3.put_object(Bucket=settings.TROY_LIVE_BUCKET, Key=key, Body=body, **extra)["ETag"]
        with self.large:
            fd, tmp = tempfile.mkstemp(dir=self.workdir, suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out:
                    for chunk in member_chunks(self.zf, file.name):
                        out.write(chunk)
                self.s3.upload_file(tmp, settings.TROY_LIVE_BUCKET, key, ExtraArgs=extra, Config=_TRANSFER)
            finally:
                os.unlink(tmp)
        return self.s3.head_object(Bucket=settings.TROY_LIVE_BUCKET, Key=key)["ETag"]

    def sync(self, file: ArchiveFile, headers: ObjectHeaders) -> None:
        etag, existed = self._already_there(file, headers)
        uploaded = etag is None
        if etag is None:
            etag = self._put(file, headers)
        self._record(file, headers, etag, uploaded=uploaded, existed=existed)

    def _record(self, file: ArchiveFile, headers: ObjectHeaders, etag: str, *, uploaded: bool, existed: bool) -> None:
        with self.lock:
            if existed:
                self.existed.add(file.path)
            self.result.manifest[file.path] = _entry(file, headers, etag)
            if uploaded:
                self.result.uploaded.append(file.path)
                self.result.bytes_uploaded += file.size
            else:
                self.result.unchanged.append(file.path)


def _run_all(pool: ThreadPoolExecutor, work, items: Iterable) -> None:
    """Run ``work`` over ``items`` on the pool; wait for all; raise the first error."""
    futures: list[Future] = [pool.submit(work, *item) for item in items]
    done, pending = wait(futures, return_when=FIRST_EXCEPTION)
    for future in pending:
        future.cancel()
    wait(pending)
    for future in done:
        future.result()


def manifest_digest(manifest: dict[str, dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def marker_confirms(pipeline_id: str, live_build_id: str, live_manifest: dict[str, dict[str, Any]]) -> bool:
    """Whether the last deploy's marker names this live build and manifest (one small GET)."""
    if not live_build_id:
        return False
    try:
        answer = aws.client("s3").get_object(
            Bucket=settings.TROY_ARTIFACT_BUCKET, Key=artifact_keys.deployed_marker_key(pipeline_id)
        )
        marker = json.loads(answer["Body"].read())
    except ClientError as exc:
        if aws.error_code(exc) in {"NoSuchKey", "404"}:
            return False
        raise
    except ValueError:
        return False  # unreadable: list rather than trust
    return (
        isinstance(marker, dict)
        and marker.get("build") == live_build_id
        and marker.get("manifest_sha256") == manifest_digest(live_manifest)
    )


def marker_write(pipeline_id: str, *, build_id: str, manifest: dict[str, dict[str, Any]]) -> None:
    """Record what this deploy put live, after the files (a crash before it leaves no marker: the
    next deploy lists)."""
    body = json.dumps({"build": build_id, "manifest_sha256": manifest_digest(manifest)})
    aws.client("s3").put_object(
        Bucket=settings.TROY_ARTIFACT_BUCKET,
        Key=artifact_keys.deployed_marker_key(pipeline_id),
        Body=body.encode(),
        ContentType="application/json",
    )


def _files_of(
    zf: zipfile.ZipFile, *, downloaded_sha256: str, known_files: dict[str, list] | None, artifact_sha256: str | None
) -> list[ArchiveFile]:
    """The artifact's files with their hashes.

    A release was inflated and hashed while its upload was validated: when the downloaded zip
    has the sha256 taken then, those hashes are used and only the files to upload are inflated
    again (names and headers are still checked). Anything else (a CodeBuild artifact) is
    validated and hashed in full here."""
    limits = ArchiveLimits.from_settings()
    if known_files and artifact_sha256:
        if downloaded_sha256 != artifact_sha256:
            raise ArtifactMismatch("The artifact in the bucket is not the zip that was uploaded (sha256 differs).")
        summary = archive_list(zf, limits=limits)
        if {f.path for f in summary.files} == set(known_files):
            for f in summary.files:
                f.sha256, f.size = known_files[f.path][0], int(known_files[f.path][1])
                if not extension(f.path):
                    with zf.open(f.name) as member:
                        f.head = member.read(HEAD_BYTES)
            return summary.files
    return archive_scan(zf, limits=limits).files


def deploy_artifact(
    *,
    pipeline_id: str,
    distribution_id: str,
    artifact_key: str,
    live_manifest: dict[str, dict[str, Any]] | None,
    caller_reference: str,
    trust_live_manifest: bool = False,
    live_build_id: str = "",
    known_files: dict[str, list] | None = None,
    artifact_sha256: str | None = None,
) -> DeployResult:
    """The deploy step's work on AWS. Idempotent: run again, it does only what is still missing.

    ``trust_live_manifest``: the caller knows nothing but the live build has written under the
    prefix since it went live, so the manifest is the bucket's state and no LIST is needed, if
    the marker the last deploy wrote (:func:`marker_write`) still names ``live_build_id`` and its
    manifest: a bucket that lost the files loses the marker too, and then the prefix is listed.
    ``caller_reference`` is the build's id (the invalidation's reference, the marker's build)."""
    prefix = f"{pipeline_id}/"
    live = live_manifest or {}
    s3 = aws.client("s3")
    clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    with deploy_workdir() as workdir:
        archive = workdir / "artifact.zip"
        downloaded_sha256 = artifact_download(key=artifact_key, to=archive)
        lap("download")
        with archive_open(archive) as zf:
            files = _files_of(
                zf, downloaded_sha256=downloaded_sha256, known_files=known_files, artifact_sha256=artifact_sha256
            )
            lap("hash")
            trusted = trust_live_manifest and bool(live) and marker_confirms(pipeline_id, live_build_id, live)
            listing = None if trusted else live_listing(s3, prefix=prefix)
            lap("list")
            uploader = _Uploader(s3=s3, zf=zf, prefix=prefix, listing=listing, live=live, workdir=Path(workdir))
            planned = [
                (f, headers)
                for f in files
                if not uploader.known_unchanged(f, headers := object_headers(f.path, f.head))
            ]
            if listing is None and len(planned) > HEADS_BEFORE_LISTING:
                # Many files to check: one LIST per 1,000 keys beats a HEAD for each.
                listing = uploader.listing = live_listing(s3, prefix=prefix)
            # Pages last: a visitor never gets new HTML that points at assets not uploaded yet.
            assets = [item for item in planned if not item[1].is_html]
            pages = [item for item in planned if item[1].is_html]
            with ThreadPoolExecutor(
                max_workers=max(1, settings.TROY_DEPLOY_CONCURRENCY), thread_name_prefix="troy-deploy"
            ) as pool:
                _run_all(pool, uploader.sync, assets)
                lap("assets")
                _run_all(pool, uploader.sync, pages)
                lap("pages")
    result = uploader.result
    in_release = {f.path for f in files}

    # What the live build served and this release drops: fingerprinted assets stay one more
    # deploy (pages already open in a browser still load their chunks), flagged ``kept`` so the
    # next deploy removes them; everything else goes, including leftovers of failed runs.
    present = set(listing) if listing is not None else set(live)
    dropped_live: list[str] = []
    for path, entry in live.items():
        if path in in_release:
            continue
        if not entry.get("kept") and is_fingerprinted(path):
            if path in present:
                result.kept.append(path)
                result.manifest[path] = {**entry, "kept": True}
        else:
            dropped_live.append(path)
    kept = set(result.kept)
    to_delete = sorted(path for path in present if path not in in_release and path not in kept)
    if to_delete:
        s3_cleanup.keys_delete(bucket=settings.TROY_LIVE_BUCKET, keys=[prefix + path for path in to_delete])
    result.deleted = to_delete
    lap("delete")

    # Invalidate what visitors may have cached and is now different: overwritten or deleted.
    # Worked out from the live manifest as well as from this run's writes, so a run repeated
    # after a crash asks for the same paths (and finds the same invalidation).
    uploaded = set(result.uploaded)
    changed = [
        f.path
        for f in files
        if f.path in uploader.existed and (f.path in uploaded or live.get(f.path, {}).get("sha256") != f.sha256)
    ]
    gone = sorted(set(to_delete) | set(dropped_live))
    paths = invalidation_paths_for(changed + gone)
    if paths:
        result.invalidation_paths = collapse_paths(paths, max_paths=settings.TROY_INVALIDATION_MAX_PATHS)
        if distribution_id:
            result.invalidation_id = invalidation_create(
                distribution_id=distribution_id, paths=result.invalidation_paths, caller_reference=caller_reference
            )
        else:
            logger.warning("pipeline %s has no distribution: not invalidating %d paths", pipeline_id, len(paths))
    lap("invalidate")
    marker_write(pipeline_id, build_id=caller_reference, manifest=result.manifest)
    result.timings = timings
    return result

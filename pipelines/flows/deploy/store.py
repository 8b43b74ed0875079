"""Store a build at the edge: its files as content-addressed blobs, then its manifest.

Layout (docs/edge.md): ``{pipeline}/blobs/{content key}`` and ``{pipeline}/builds/{build}.json``
in the live bucket. Nothing is ever overwritten in place and nothing is invalidated: a blob's
name is its bytes plus its headers, and the build is live only once the pointer names it.

What is stored already is known from the manifests of the pipeline's retained builds (they are
immutable, and retention never deletes a blob a retained manifest names): those blobs are neither
uploaded nor copied. Any other blob gets one HEAD (or, past ``HEADS_BEFORE_LISTING``, the blobs
are listed once): one found younger than half of ``TROY_BLOB_GRACE_SECONDS`` was put by a crashed
run of this deploy (retention never deletes a blob younger than the grace) and is trusted; any
other is put. So a deploy run again after a crash uploads only what is still missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import hashlib
import json
import os
from pathlib import Path
import tempfile
import threading
import time
from typing import Any, BinaryIO
import zipfile

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from django.conf import settings

from deployment_service import aws
from deployment_service.archives import (
    HEAD_BYTES,
    ArchiveFile,
    ArchiveLimits,
    archive_list,
    archive_open,
    archive_scan,
    member_chunks,
)
from edge.manifest import MANIFEST_VERSION, blob_key, content_key, is_fingerprinted, manifest_key
from edge.rules import MAX_FILE_BYTES as MAX_RULES_FILE_BYTES
from edge.rules import RuleProblem, Rules, RulesError
from pipelines.exceptions import FingerprintReused, RulesInvalid
from pipelines.flows.deploy.content import extension, object_headers
from pipelines.flows.deploy.workdirs import deploy_workdir

# Files up to this size are read into memory and sent with one PutObject; larger ones are
# inflated to a temporary file and sent by s3transfer (multipart past MULTIPART_THRESHOLD), a few
# at a time, so the worker's memory stays bounded whatever the artifact holds.
IN_MEMORY_MAX_BYTES = 1024 * 1024
MULTIPART_THRESHOLD = 16 * 1024 * 1024
LARGE_FILES_AT_ONCE = 2
# Blobs not named by a retained manifest are looked up one HEAD each, up to this many; past it
# the pipeline's blobs are listed instead (one LIST per 1,000 keys beats a HEAD for each).
HEADS_BEFORE_LISTING = 100
# Retained manifests read at once: each is parsed whole (a 100,000-file manifest is ~16 MB of
# text and ~20 MB as path → key), so a few at a time keeps the worker's memory bounded.
MANIFEST_READS_AT_ONCE = 4
NOT_FOUND_PAGE = "404.html"
# The build's routing rules (docs/rules.md): read into its manifest, not served as files.
RULES_FILES = ("_redirects", "_headers", "troy.json")
MANIFEST_CONTENT_TYPE = "application/json"
_TRANSFER = TransferConfig(
    multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=8 * 1024 * 1024, max_concurrency=4, use_threads=True
)
_MISSING = {"404", "NoSuchKey", "NotFound"}
_END = object()


class ArtifactMissing(Exception):
    pass


class ArtifactMismatch(Exception):
    pass


@dataclass
class StoreResult:
    """What storing a build did. ``uploaded``: paths whose blob this run wrote (one per content
    key); ``unchanged``: paths whose blob was already in the bucket (or shares the bytes of
    another path of the build)."""

    files_total: int = 0
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    bytes_uploaded: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    # troy.json's basic_auth as salted hashes (Rules.build hashed them with a salt of this
    # build's): what the build's pointers ask visitors for. Never a clear password.
    visitor_credentials: list[str] = field(default_factory=list)

    @property
    def files_uploaded(self) -> int:
        return len(self.uploaded)

    @property
    def files_unchanged(self) -> int:
        return len(self.unchanged)

    def stats(self) -> dict[str, Any]:
        return {
            "files_total": self.files_total,
            "files_uploaded": self.files_uploaded,
            "files_unchanged": self.files_unchanged,
            "bytes_uploaded": self.bytes_uploaded,
            "visitor_credentials": list(self.visitor_credentials),
        }


@dataclass(frozen=True)
class RetainedBuild:
    """A build of the pipeline whose manifest is stored (``Build.stored_at`` set)."""

    id: str
    number: int


@dataclass
class StoredContent:
    """What the retained manifests say is stored: every content key, and for each fingerprinted
    path the content keys retained builds serve there (key → build number)."""

    keys: set[str] = field(default_factory=set)
    fingerprinted: dict[str, dict[str, int]] = field(default_factory=dict)


def artifact_download(*, key: str, to: Path) -> str:
    """Stream the artifact zip from the artifact bucket to a local file, a chunk at a time (one
    GET: against S3 and emulators alike it beats ranged GETs at these sizes). Returns its sha256."""
    digest = hashlib.sha256()
    try:
        body = aws.client("s3").get_object(Bucket=settings.TROY_ARTIFACT_BUCKET, Key=key)["Body"]
    except ClientError as exc:
        if aws.error_code(exc) in _MISSING:
            raise ArtifactMissing(
                f"The artifact {key} is not in the artifact bucket {settings.TROY_ARTIFACT_BUCKET}."
            ) from exc
        raise
    with open(to, "wb") as out:
        for chunk in body.iter_chunks(1024 * 1024):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _files_of(
    zf: zipfile.ZipFile, *, downloaded_sha256: str, known_files: dict[str, list] | None, artifact_sha256: str | None
) -> list[ArchiveFile]:
    """The artifact's files with their hashes.

    A release was inflated and hashed while its upload was validated: when the downloaded zip
    has the sha256 taken then, those hashes are used and only the files to upload are inflated
    again (names and headers are still checked). Anything else (a CodeBuild artifact) is
    validated and hashed in full here. ``known_files`` is emptied as it is used (the caller's
    copy of 100,000 hashes is then not held for the rest of the deploy)."""
    limits = ArchiveLimits.from_settings()
    if known_files and artifact_sha256:
        if downloaded_sha256 != artifact_sha256:
            raise ArtifactMismatch("The artifact in the bucket is not the zip that was uploaded (sha256 differs).")
        summary = archive_list(zf, limits=limits)
        if len(summary.files) == len(known_files) and all(f.path in known_files for f in summary.files):
            for f in summary.files:
                sha256, size = known_files.pop(f.path)
                f.sha256, f.size = sha256, int(size)
                if not extension(f.path):
                    with zf.open(f.name) as member:
                        f.head = member.read(HEAD_BYTES)
            return summary.files
    return archive_scan(zf, limits=limits).files


def manifest_exists(*, pipeline_id: str, build_id: str) -> bool:
    """One HEAD: whether the build's manifest is in the live bucket."""
    try:
        aws.client("s3").head_object(Bucket=settings.TROY_LIVE_BUCKET, Key=manifest_key(pipeline_id, build_id))
    except ClientError as exc:
        if aws.error_code(exc) in _MISSING:
            return False
        raise
    return True


def _entry_key(pairs: list[tuple[str, Any]]) -> Any:
    """json object hook: a file entry (exactly key, type, cache and an integer size) becomes just
    its content key; other objects stay dicts. A 100,000-file manifest then parses to one dict of
    path → key instead of 100,000 small dicts. (Objects are decoded innermost first, so a files
    object whose paths happen to be those four names has string values and stays a dict.)"""
    found = dict(pairs)
    if len(found) == 4 and found.keys() == {"key", "type", "cache", "size"} and type(found["size"]) is int:
        return found["key"]
    return found


def _read_retained(s3, pipeline_id: str, build: RetainedBuild, stored: StoredContent, lock: threading.Lock) -> None:
    """Add one retained manifest's content keys and fingerprinted paths to ``stored``; nothing
    when it is gone (retention removed it since the build row was read). Only those are kept,
    not the parsed manifest, so the memory of many large manifests does not add up."""
    try:
        raw = s3.get_object(Bucket=settings.TROY_LIVE_BUCKET, Key=manifest_key(pipeline_id, build.id))["Body"].read()
    except ClientError as exc:
        if aws.error_code(exc) in _MISSING:
            return
        raise
    files: dict[str, str] = json.loads(raw, object_pairs_hook=_entry_key)["files"]
    del raw
    fingerprinted = {path: key for path, key in files.items() if is_fingerprinted(path)}
    with lock:
        stored.keys.update(files.values())
        for path, key in fingerprinted.items():
            stored.fingerprinted.setdefault(path, {}).setdefault(key, build.number)


def stored_content(*, pipeline_id: str, retained: list[RetainedBuild]) -> StoredContent:
    """The union of the retained builds' manifests, read in parallel (a few at a time)."""
    s3 = aws.client("s3")
    stored = StoredContent()
    lock = threading.Lock()
    run_bounded(
        lambda build: _read_retained(s3, pipeline_id, build, stored, lock),
        retained,
        workers=MANIFEST_READS_AT_ONCE,
        in_flight=MANIFEST_READS_AT_ONCE,
    )
    return stored


@dataclass(frozen=True, slots=True)
class _Planned:
    """One file to store (slots: a deploy holds one per file of the artifact)."""

    name: str  # the zip member
    path: str
    size: int
    sha256: str
    key: str
    content_type: str
    cache_control: str


def _plan(files: list[ArchiveFile]) -> list[_Planned]:
    """Headers and content key of each file. Consumes ``files`` (each ArchiveFile is freed as
    its plan is made, so the two lists are not both whole in memory)."""
    planned = []
    files.reverse()
    while files:
        f = files.pop()
        headers = object_headers(f.path, f.head)
        key = content_key(f.sha256, headers.content_type, headers.cache_control)
        planned.append(_Planned(f.name, f.path, f.size, f.sha256, key, headers.content_type, headers.cache_control))
    return planned


def fingerprint_check(planned: Iterable[_Planned], stored: StoredContent) -> None:
    """A fingerprinted path is served from ``/_immutable`` with ``immutable``, shared by every
    build: other bytes under a name a retained build serves would never reach browsers (nor
    CloudFront) that have the old ones. Refused, naming the file and the build."""
    for item in planned:
        if not is_fingerprinted(item.path):
            continue
        for key, number in stored.fingerprinted.get(item.path, {}).items():
            if key != item.key:
                raise FingerprintReused(
                    f"{item.path} has other bytes (or headers) than build #{number} stored under the same "
                    "fingerprinted name; browsers keep a fingerprinted file forever, so change its name "
                    "(rebuild with content hashes) or give the file its old bytes.",
                    extra={"path": item.path, "build_number": number},
                )


def rules_take(zf: zipfile.ZipFile, planned: list[_Planned]) -> dict[str, Any]:
    """The build's rules from its root `_redirects`, `_headers` and `troy.json`, as the manifest
    stores them (``Rules.to_dict``; {} when it has none). Those files leave ``planned``: they are
    read here, not served. Raises :class:`RulesInvalid` listing every problem, before anything is
    written, when a rule cannot be honoured or names a file the build lacks."""
    texts: dict[str, str] = {}
    problems: list[RuleProblem] = []
    for item in [item for item in planned if item.path in RULES_FILES]:
        planned.remove(item)
        if item.size > MAX_RULES_FILE_BYTES:
            problems.append(RuleProblem(item.path, 0, f"is larger than {MAX_RULES_FILE_BYTES // (1024 * 1024)} MB"))
            continue
        try:
            texts[item.path] = b"".join(member_chunks(zf, item.name)).decode("utf-8-sig")
        except UnicodeDecodeError:
            problems.append(RuleProblem(item.path, 0, "is not UTF-8 text"))
    rules = Rules()
    if texts and not problems:
        try:
            rules = Rules.build(
                redirects_text=texts.get("_redirects"),
                headers_text=texts.get("_headers"),
                config_text=texts.get("troy.json"),
            )
        except RulesError as exc:
            problems.extend(exc.problems)
        else:
            problems.extend(rules.missing_files({item.path for item in planned}))
    if problems:
        shown = "; ".join(str(problem) for problem in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise RulesInvalid(
            f"The build's rules cannot be honoured: {shown}{more}",
            extra={"problems": [{"file": p.file, "line": p.line, "message": p.message} for p in problems]},
        )
    return {} if rules.empty else rules.to_dict()


def _blobs_listing(s3, pipeline_id: str) -> dict[str, datetime]:
    """Every blob of the pipeline → its LastModified."""
    prefix = f"{pipeline_id}/blobs/"
    found: dict[str, datetime] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.TROY_LIVE_BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []) or []:
            found[obj["Key"][len(prefix) :]] = obj["LastModified"]
    return found


def run_bounded(work: Callable[[Any], None], items: Iterable[Any], *, workers: int, in_flight: int) -> None:
    """Run ``work`` over ``items`` on ``workers`` threads with at most ``in_flight`` submitted and
    not finished (items are pulled as slots free up, so memory does not grow with the number of
    items). Waits for everything submitted; raises the first error, submitting nothing after it."""
    slots = threading.BoundedSemaphore(in_flight)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def done(future: Future) -> None:
        exc = future.exception()
        if exc is not None:
            with lock:
                errors.append(exc)
        slots.release()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="troy-deploy") as pool:
        iterator = iter(items)
        while True:
            slots.acquire()  # before taking the next item: at most ``in_flight`` are held
            item = next(iterator, _END) if not errors else _END
            if item is _END:
                slots.release()
                break
            pool.submit(work, item).add_done_callback(done)
    if errors:
        raise errors[0]


class _BlobWriter:
    """Puts the blobs that are not stored yet. One shared client (boto3 clients are thread-safe)."""

    def __init__(
        self, *, s3, zf: zipfile.ZipFile, pipeline_id: str, workdir: Path, listing: dict[str, datetime] | None
    ) -> None:
        self.s3 = s3
        self.zf = zf
        self.pipeline_id = pipeline_id
        self.workdir = workdir
        self.listing = listing
        self.trust_since = datetime.now(UTC) - timedelta(seconds=settings.TROY_BLOB_GRACE_SECONDS / 2)
        self.large = threading.BoundedSemaphore(LARGE_FILES_AT_ONCE)
        self.lock = threading.Lock()
        self.written: list[_Planned] = []

    def _found_recent(self, key: str) -> bool:
        """Whether the blob is there and young enough to be trusted: put by a crashed run of this
        deploy, and safe from retention for at least half the grace. An older one may be deleted
        any moment (no retained manifest names it), so it is put again."""
        if self.listing is not None:
            modified = self.listing.get(key)
        else:
            try:
                head = self.s3.head_object(Bucket=settings.TROY_LIVE_BUCKET, Key=blob_key(self.pipeline_id, key))
            except ClientError as exc:
                if aws.error_code(exc) in _MISSING:
                    return False
                raise
            modified = head["LastModified"]
        return modified is not None and modified >= self.trust_since

    def store(self, item: _Planned) -> None:
        if self._found_recent(item.key):
            return
        key = blob_key(self.pipeline_id, item.key)
        extra = {
            "ContentType": item.content_type,
            "CacheControl": item.cache_control,
            "Metadata": {"sha256": item.sha256},
        }
        if item.size <= IN_MEMORY_MAX_BYTES:
            body = b"".join(member_chunks(self.zf, item.name))
            self.s3.put_object(Bucket=settings.TROY_LIVE_BUCKET, Key=key, Body=body, **extra)
        else:
            with self.large:
                fd, tmp = tempfile.mkstemp(dir=self.workdir, suffix=".part")
                try:
                    with os.fdopen(fd, "wb") as out:
                        for chunk in member_chunks(self.zf, item.name):
                            out.write(chunk)
                    self.s3.upload_file(tmp, settings.TROY_LIVE_BUCKET, key, ExtraArgs=extra, Config=_TRANSFER)
                finally:
                    os.unlink(tmp)
        with self.lock:
            self.written.append(item)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def manifest_body(
    out: BinaryIO,
    *,
    pipeline_id: str,
    build_id: str,
    planned: list[_Planned],
    not_found: str | None,
    rules: dict[str, Any] | None = None,
) -> None:
    """Write the manifest to ``out``, byte for byte as ``edge.manifest.dumps(Manifest(…))`` does,
    a file at a time: a 100,000-file build would otherwise hold a FileEntry and a dict per file,
    and copies of the text, on top of its plan. Paths are the artifact's, already checked
    (``archive_list``)."""
    head: dict[str, Any] = {"build_id": build_id, "pipeline_id": pipeline_id, "version": MANIFEST_VERSION}
    if not_found is not None:
        head["not_found"] = not_found
    if rules:
        head["rules"] = rules
    # Keys sorted as dumps sorts them: "files" comes between "build_id" and "not_found"/"pipeline_id".
    out.write(_compact({k: v for k, v in head.items() if k < "files"})[:-1].encode())
    out.write(b',"files":{')
    for index, item in enumerate(sorted(planned, key=lambda p: p.path)):
        entry = {"cache": item.cache_control, "key": item.key, "size": item.size, "type": item.content_type}
        out.write((("," if index else "") + json.dumps(item.path) + ":" + _compact(entry)).encode())
    out.write(b"},")
    out.write(_compact({k: v for k, v in head.items() if k > "files"})[1:].encode())


def manifest_write(s3, *, pipeline_id: str, build_id: str, body: BinaryIO) -> None:
    """The build's manifest, after every blob it names: once it exists the build can be served.
    Written once per build (a run repeated after a crash writes the same bytes again)."""
    s3.put_object(
        Bucket=settings.TROY_LIVE_BUCKET,
        Key=manifest_key(pipeline_id, build_id),
        Body=body,
        ContentType=MANIFEST_CONTENT_TYPE,
    )


def build_store(
    *,
    pipeline_id: str,
    build_id: str,
    artifact_key: str,
    retained: list[RetainedBuild],
    known_files: dict[str, list] | None = None,
    artifact_sha256: str | None = None,
) -> StoreResult:
    """The deploy step's work on AWS: the artifact's blobs that are not stored yet, then the
    manifest. Idempotent: run again, it writes only what is still missing (and the manifest).

    ``retained``: the pipeline's other builds whose manifests are stored; their blobs are not
    written again, and a fingerprinted path they serve with other bytes refuses the build
    (:class:`FingerprintReused`) before anything is written."""
    s3 = aws.client("s3")
    result = StoreResult()
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result.timings[name] = now - clock
        clock = now

    with deploy_workdir() as workdir:
        archive = workdir / "artifact.zip"
        downloaded_sha256 = artifact_download(key=artifact_key, to=archive)
        lap("download")
        with archive_open(archive) as zf:
            files = _files_of(
                zf, downloaded_sha256=downloaded_sha256, known_files=known_files, artifact_sha256=artifact_sha256
            )
            planned = _plan(files)
            rules = rules_take(zf, planned)
            result.visitor_credentials = [item["credential"] for item in rules.get("basic_auth", [])]
            lap("hash")
            stored = stored_content(pipeline_id=pipeline_id, retained=retained)
            lap("manifests")
            fingerprint_check(planned, stored)
            seen: set[str] = set()
            missing: list[_Planned] = []
            for item in planned:
                if item.key not in stored.keys and item.key not in seen:
                    seen.add(item.key)
                    missing.append(item)
            del seen, stored
            listing = _blobs_listing(s3, pipeline_id) if len(missing) > HEADS_BEFORE_LISTING else None
            lap("list")
            writer = _BlobWriter(s3=s3, zf=zf, pipeline_id=pipeline_id, workdir=Path(workdir), listing=listing)
            workers = max(1, settings.TROY_DEPLOY_CONCURRENCY)
            run_bounded(writer.store, missing, workers=workers, in_flight=workers * 2)
            del missing, listing
            lap("blobs")
        written = {item.key for item in writer.written}
        for item in planned:
            if item.key in written:
                written.discard(item.key)  # one path per blob counts as uploaded
                result.uploaded.append(item.path)
                result.bytes_uploaded += item.size
            else:
                result.unchanged.append(item.path)
        result.files_total = len(planned)
        not_found = NOT_FOUND_PAGE if any(item.path == NOT_FOUND_PAGE for item in planned) else None
        # Through a file in the work directory: the manifest of 100,000 files is ~16 MB of text.
        manifest_path = workdir / "manifest.json"
        with open(manifest_path, "wb") as out:
            manifest_body(
                out, pipeline_id=pipeline_id, build_id=build_id, planned=planned, not_found=not_found, rules=rules
            )
        del planned
        with open(manifest_path, "rb") as body:
            manifest_write(s3, pipeline_id=pipeline_id, build_id=build_id, body=body)
        lap("manifest")
    return result

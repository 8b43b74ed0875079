"""Storing builds at the edge against moto: the layout written, what is deduplicated, the 404 page,
fingerprint_reused, and a crashed deploy run again."""

from __future__ import annotations

import io
import json

from django.conf import settings
import pytest

from deployment_service import aws
from edge.manifest import blob_key, content_key, is_fingerprinted, loads, manifest_key
from pipelines import services as pipeline_services
from pipelines.choices import BuildStatus, PointerKind
from pipelines.choices import PipelineStatus as S
from pipelines.flows.deploy import deploy_build_run
from pipelines.models import Build, EdgePointer, Pipeline
from releases import services
from releases.storage import release_store_run
from tests.pipelines.deploy.support import PAGE, aws_events
from tests.releases.helpers import bucket_keys, live_files, live_objects, release_and_deploy, upload, zip_bytes

pytestmark = pytest.mark.django_db

SITE = {
    "index.html": PAGE.format("home"),
    "about/index.html": PAGE.format("about"),
    "pretty": PAGE.format("an extensionless page"),
    "LICENSE": "MIT",
    "assets/app.3f9a1c2b.js": "console.log('app')",
    "assets/app.3f9a1c2b.js.map": '{"version": 3}',
    "assets/main-3f9a1c2b.css": "body { color: red }",
    "assets/index-BmR3xq9Z.mjs": "export default 1",
    "assets/app.3f9a1c.js": "console.log('six hex: not fingerprinted')",
    "assets/main-3F9A1C2B.css": "body { color: blue }",  # upper-case hex, 8 characters: base64url
    "img/logo.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    "img/logo-deadbeef.png": b"\x89PNG\r\n\x1a\n" + bytes(10),  # letters only: not a hash
    "fonts/inter.woff2": b"wOF2" + bytes(50),
    "robots.txt": "User-agent: *",
    "data.json": '{"a": 1}',
    "favicon.ico": bytes(30),
    "feed.xml": "<rss/>",
    "blob.xyz": b"?",
    "copy-of-robots.txt": "User-agent: *",  # the same bytes and headers as robots.txt: one blob
}
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"
PAGE_CACHE = "public, max-age=0, must-revalidate"


class WorkerCrash(BaseException):
    """Stands for the worker process dying: nothing in the deploy step catches it."""


def stored_manifest(pipeline: Pipeline, build: Build):
    raw = aws.client("s3").get_object(
        Bucket=settings.TROY_LIVE_BUCKET, Key=manifest_key(str(pipeline.id), str(build.id))
    )["Body"]
    return loads(raw.read())


def test_a_build_is_stored_as_blobs_and_its_manifest(pipeline, s3_requests):
    build = release_and_deploy(pipeline, SITE)
    assert build.status == BuildStatus.SUCCEEDED, build.error
    manifest = stored_manifest(pipeline, build)
    assert set(manifest.files) == set(SITE)
    keys = {entry.key for entry in manifest.files.values()}
    assert len(keys) == len(SITE) - 1  # robots.txt and its copy share one blob
    assert set(bucket_keys(pipeline)) == {blob_key(str(pipeline.id), key) for key in keys} | {
        manifest_key(str(pipeline.id), str(build.id))
    }
    expect = {
        "index.html": ("text/html; charset=utf-8", PAGE_CACHE),
        "about/index.html": ("text/html; charset=utf-8", PAGE_CACHE),
        "pretty": ("text/html; charset=utf-8", PAGE_CACHE),
        "LICENSE": ("application/octet-stream", PAGE_CACHE),
        "assets/app.3f9a1c2b.js": ("text/javascript; charset=utf-8", IMMUTABLE),
        "assets/app.3f9a1c2b.js.map": ("application/json", IMMUTABLE),
        "assets/main-3f9a1c2b.css": ("text/css; charset=utf-8", IMMUTABLE),
        "assets/index-BmR3xq9Z.mjs": ("text/javascript; charset=utf-8", IMMUTABLE),
        "assets/app.3f9a1c.js": ("text/javascript; charset=utf-8", SHORT),
        "assets/main-3F9A1C2B.css": ("text/css; charset=utf-8", IMMUTABLE),
        "img/logo.png": ("image/png", SHORT),
        "img/logo-deadbeef.png": ("image/png", SHORT),
        "fonts/inter.woff2": ("font/woff2", SHORT),
        "robots.txt": ("text/plain; charset=utf-8", SHORT),
        "data.json": ("application/json", SHORT),
        "favicon.ico": ("image/x-icon", SHORT),
        "feed.xml": ("application/xml", SHORT),
        "blob.xyz": ("application/octet-stream", SHORT),
        "copy-of-robots.txt": ("text/plain; charset=utf-8", SHORT),
    }
    objects = live_objects(pipeline)
    for path, (content_type, cache_control) in expect.items():
        entry = manifest.files[path]
        assert (entry.type, entry.cache) == (content_type, cache_control), path
        # exactly the paths the viewer function serves from /_immutable are immutable
        assert (cache_control == IMMUTABLE) == is_fingerprinted(path), path
        head = objects[path]
        assert (head["ContentType"], head["CacheControl"]) == (content_type, cache_control), path
        assert entry.key == content_key(head["Metadata"]["sha256"], content_type, cache_control)
        assert entry.size == head["ContentLength"]
    assert live_files(pipeline) == {p: v if isinstance(v, bytes) else v.encode() for p, v in SITE.items()}
    assert manifest.not_found is None

    assert build.stored_at is not None and build.content_build_id is None
    assert (build.files_total, build.files_uploaded, build.files_unchanged) == (len(SITE), len(SITE) - 1, 1)
    assert build.bytes_uploaded == sum(len(v if isinstance(v, bytes) else v.encode()) for v in SITE.values()) - len(
        SITE["robots.txt"]
    )
    assert EdgePointer.objects.get(pipeline=pipeline, kind=PointerKind.LIVE).build_id == build.id
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.DEPLOYED
    # Only reads besides the blobs and the manifest: no copy, no delete, nothing overwritten.
    assert {r.operation for r in s3_requests.writes()} == {"PutObject"}
    assert len(s3_requests.blob_puts()) == len(keys) and len(s3_requests.manifest_puts()) == 1
    assert "CreateInvalidation" not in json.dumps([r.operation for r in s3_requests.all])


def test_a_same_content_redeploy_writes_no_blob(pipeline, s3_requests):
    release_and_deploy(pipeline, SITE)
    s3_requests.clear()
    again = release_and_deploy(pipeline, SITE)
    assert again.status == BuildStatus.SUCCEEDED, again.error
    assert s3_requests.blob_puts() == []
    assert s3_requests.manifest_puts() == [f"builds/{again.id}.json"]
    assert len(s3_requests.writes()) == 1
    assert (again.files_total, again.files_uploaded, again.files_unchanged, again.bytes_uploaded) == (
        len(SITE),
        0,
        len(SITE),
        0,
    )
    assert EdgePointer.objects.get(pipeline=pipeline, kind=PointerKind.LIVE).build_id == again.id


def test_a_one_file_change_writes_that_blob_and_the_manifest(pipeline, s3_requests):
    first = release_and_deploy(pipeline, SITE)
    before = bucket_keys(pipeline)
    s3_requests.clear()
    second = release_and_deploy(pipeline, {**SITE, "about/index.html": PAGE.format("about us")})

    new_key = stored_manifest(pipeline, second).files["about/index.html"].key
    assert s3_requests.blob_puts() == [f"blobs/{new_key}"]
    assert s3_requests.manifest_puts() == [f"builds/{second.id}.json"]
    assert len(s3_requests.writes()) == 2
    # The blob was looked up once before it was put (a crashed earlier run may have put it).
    assert [r.operation for r in s3_requests.live() if r.key.endswith(new_key)] == ["HeadObject", "PutObject"]
    assert (second.files_uploaded, second.files_unchanged) == (1, len(SITE) - 1)
    after = bucket_keys(pipeline)
    assert {key: after[key] for key in before} == before  # nothing written before was touched
    assert live_files(pipeline)["about/index.html"] == PAGE.format("about us").encode()
    # The first build is still stored, whole: it can be rolled back to.
    assert stored_manifest(pipeline, first).files["about/index.html"].key != new_key


def test_the_404_page_is_recorded_in_the_manifest(pipeline):
    build = release_and_deploy(pipeline, {"index.html": PAGE.format(1), "404.html": PAGE.format("missing")})
    assert stored_manifest(pipeline, build).not_found == "404.html"


def test_a_fingerprinted_name_with_other_bytes_is_refused_and_nothing_is_written(pipeline, s3_requests):
    first = release_and_deploy(pipeline, {"index.html": PAGE.format(1), "assets/app.3f9a1c2b.js": "one()"})
    before = bucket_keys(pipeline)
    s3_requests.clear()
    second = release_and_deploy(pipeline, {"index.html": PAGE.format(2), "assets/app.3f9a1c2b.js": "two()"})

    assert second.status == BuildStatus.FAILED
    assert "fingerprint_reused" in second.error
    assert "assets/app.3f9a1c2b.js" in second.error and f"build #{first.number}" in second.error
    assert s3_requests.writes() == []
    assert bucket_keys(pipeline) == before
    assert EdgePointer.objects.get(pipeline=pipeline, kind=PointerKind.LIVE).build_id == first.id
    assert Pipeline.objects.get(pk=pipeline.pk).status == S.FAILED_TO_DEPLOY


def test_a_fingerprinted_name_may_come_back_with_the_same_bytes_or_go(pipeline):
    release_and_deploy(pipeline, {"index.html": PAGE.format(1), "assets/app.3f9a1c2b.js": "one()"})
    same = release_and_deploy(pipeline, {"index.html": PAGE.format(2), "assets/app.3f9a1c2b.js": "one()"})
    gone = release_and_deploy(pipeline, {"index.html": PAGE.format(3), "assets/app.4e8b2d3c.js": "two()"})
    assert (same.status, gone.status) == (BuildStatus.SUCCEEDED, BuildStatus.SUCCEEDED), (same.error, gone.error)


def test_a_fingerprint_of_a_build_past_retention_no_longer_binds(pipeline):
    first = release_and_deploy(pipeline, {"index.html": PAGE.format(1), "assets/app.3f9a1c2b.js": "one()"})
    Build.objects.filter(pk=first.pk).update(stored_at=None)  # what retention does first
    second = release_and_deploy(pipeline, {"index.html": PAGE.format(2), "assets/app.3f9a1c2b.js": "two()"})
    assert second.status == BuildStatus.SUCCEEDED, second.error


def _start_release(pipeline: Pipeline, files: dict) -> Build:
    release, _ = services.release_upload(pipeline=pipeline, upload=upload(zip_bytes(files)), deploy=True, actor="test")
    release_store_run(release_id=release.id)
    build = pipeline_services.deployment_start(pipeline_id=pipeline.id)
    assert build is not None
    return build


def site(version: int, files: int) -> dict[str, str]:
    return {"index.html": PAGE.format(version), **{f"assets/f{i}.txt": f"{version}-{i}" for i in range(files)}}


@pytest.mark.parametrize("files", [30, 150])  # a HEAD per blob to check, or one LIST past 100
def test_a_deploy_that_crashed_between_blobs_and_manifest_uploads_only_what_is_missing(pipeline, s3_requests, files):
    release_and_deploy(pipeline, site(1, files))
    build = _start_release(pipeline, site(2, files))
    put: list[str] = []

    def crash_after_ten(params, **kwargs):
        if params["Bucket"] == settings.TROY_LIVE_BUCKET and "/blobs/" in params["Key"]:
            if len(put) >= 10:
                raise WorkerCrash()
            put.append(params["Key"])

    aws_events().register("before-parameter-build.s3.PutObject", crash_after_ten)
    with pytest.raises(WorkerCrash):
        deploy_build_run(build_id=build.id)
    aws_events().unregister("before-parameter-build.s3.PutObject", crash_after_ten)
    build.refresh_from_db()
    assert build.status == BuildStatus.RUNNING and len(put) == 10
    assert manifest_key(str(pipeline.id), str(build.id)) not in bucket_keys(pipeline)

    s3_requests.clear()
    deploy_build_run(build_id=build.id)  # the message is delivered again after the crash
    build.refresh_from_db()
    assert build.status == BuildStatus.SUCCEEDED, build.error
    missing = files + 1 - 10
    assert len(s3_requests.blob_puts()) == missing
    assert not {f"{pipeline.id}/{key}" for key in s3_requests.blob_puts()} & set(put)
    assert s3_requests.manifest_puts() == [f"builds/{build.id}.json"]
    assert (build.files_uploaded, build.files_unchanged) == (missing, 10)
    assert live_files(pipeline) == {path: body.encode() for path, body in site(2, files).items()}
    listed = [r for r in s3_requests.live() if r.operation == "ListObjectsV2"]
    assert len(listed) == (1 if files + 1 > 100 else 0)


def test_a_deploy_that_crashed_before_its_manifest_writes_no_blob_again(pipeline, s3_requests):
    build = _start_release(pipeline, site(1, 5))

    def crash_on_manifest(params, **kwargs):
        if params["Bucket"] == settings.TROY_LIVE_BUCKET and "/builds/" in params["Key"]:
            raise WorkerCrash()

    aws_events().register("before-parameter-build.s3.PutObject", crash_on_manifest)
    with pytest.raises(WorkerCrash):
        deploy_build_run(build_id=build.id)
    aws_events().unregister("before-parameter-build.s3.PutObject", crash_on_manifest)
    s3_requests.clear()
    deploy_build_run(build_id=build.id)
    build.refresh_from_db()
    assert build.status == BuildStatus.SUCCEEDED, build.error
    assert s3_requests.blob_puts() == [] and s3_requests.manifest_puts() == [f"builds/{build.id}.json"]


def test_a_blob_older_than_half_the_grace_is_put_again(pipeline, s3_requests, settings):
    """Retention may delete a blob no retained manifest names once it is older than the grace:
    one found past half of it is not trusted, it is put again."""
    build = _start_release(pipeline, site(1, 3))

    def crash_on_manifest(params, **kwargs):
        if params["Bucket"] == settings.TROY_LIVE_BUCKET and "/builds/" in params["Key"]:
            raise WorkerCrash()

    aws_events().register("before-parameter-build.s3.PutObject", crash_on_manifest)
    with pytest.raises(WorkerCrash):
        deploy_build_run(build_id=build.id)
    aws_events().unregister("before-parameter-build.s3.PutObject", crash_on_manifest)
    settings.TROY_BLOB_GRACE_SECONDS = 0
    s3_requests.clear()
    deploy_build_run(build_id=build.id)
    build.refresh_from_db()
    assert build.status == BuildStatus.SUCCEEDED, build.error
    assert len(s3_requests.blob_puts()) == 4 and build.files_uploaded == 4


def test_the_manifest_is_written_as_edge_manifest_dumps_writes_it():
    """build_store makes the manifest's bytes a file at a time (memory); they are exactly those of
    edge.manifest.dumps, so the origin handler reads them with loads."""
    from edge.manifest import FileEntry, Manifest, dumps
    from pipelines.flows.deploy.store import _Planned, manifest_body

    planned = [
        _Planned("site/z.txt", "z.txt", 3, "a" * 64, "1" * 64, "text/plain; charset=utf-8", SHORT),
        _Planned("site/404.html", "404.html", 5, "b" * 64, "2" * 64, "text/html; charset=utf-8", PAGE_CACHE),
        _Planned('site/é "q".js', 'dir/é "q".js', 7, "c" * 64, "3" * 64, "text/javascript", IMMUTABLE),
    ]
    for not_found in ("404.html", None):
        expected = Manifest(
            pipeline_id="p1",
            build_id="b-2",
            files={
                p.path: FileEntry(key=p.key, type=p.content_type, cache=p.cache_control, size=p.size) for p in planned
            },
            not_found=not_found,
        )
        out = io.BytesIO()
        manifest_body(out, pipeline_id="p1", build_id="b-2", planned=planned, not_found=not_found)
        body = out.getvalue()
        assert body == dumps(expected)
        assert loads(body) == expected


def test_a_retained_manifest_parses_to_path_and_content_key_whatever_the_paths_are_called():
    from edge.manifest import FileEntry, Manifest, dumps
    from pipelines.flows.deploy.store import _entry_key

    names = ("key", "type", "cache", "size")
    manifest = Manifest(
        pipeline_id="p1",
        build_id="b1",
        files={
            name: FileEntry(key=str(i) * 64, type="text/plain", cache=SHORT, size=i) for i, name in enumerate(names)
        },
    )
    parsed = json.loads(dumps(manifest), object_pairs_hook=_entry_key)
    assert parsed["files"] == {name: str(i) * 64 for i, name in enumerate(names)}

"""The deploy step against moto: what lands in S3 and CloudFront, and in what order."""

from __future__ import annotations

import threading
import time

from django.conf import settings
import pytest

from deployment_service import aws
from pipelines.choices import BuildStatus
from pipelines.choices import PipelineStatus as S
from pipelines.models import Pipeline
from tests.factories import PipelineFactory, put_in_status
from tests.releases.helpers import create_distribution, live_body, live_objects, release_and_deploy

pytestmark = pytest.mark.django_db

PAGE = "<!doctype html><html><body>{}</body></html>"
SITE = {
    "index.html": PAGE.format("home"),
    "about/index.html": PAGE.format("about"),
    "pretty": PAGE.format("an extensionless page"),
    "LICENSE": "MIT",
    "assets/app.3f9a1c.js": "console.log('app')",
    "assets/main-3F9A1C2B.css": "body { color: red }",
    "assets/index-D-9fz1Xa.mjs": "export default 1",
    "img/logo.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    "img/photo.jpg": b"\xff\xd8\xff" + bytes(100),
    "fonts/inter.woff2": b"wOF2" + bytes(50),
    "robots.txt": "User-agent: *",
    "data.json": '{"a": 1}',
    "assets/app.3f9a1c.js.map": '{"version": 3}',
    "favicon.ico": bytes(30),
    "icon.svg": "<svg xmlns='http://www.w3.org/2000/svg'/>",
    "module.wasm": b"\0asm" + bytes(8),
    "feed.xml": "<rss/>",
    "blob.xyz": b"?",
}


@pytest.fixture
def pipeline(aws, user):
    p = put_in_status(PipelineFactory(owner=user, repository=""), S.READY_FOR_DEPLOYMENT)
    create_distribution(p)
    return Pipeline.objects.get(pk=p.pk)


@pytest.fixture
def puts(aws):
    """Every PutObject the deploy makes, in order: (key, content type)."""
    recorded: list[tuple[str, str]] = []
    lock = threading.Lock()

    def record(params, **kwargs):
        if params["Bucket"] != settings.TROY_LIVE_BUCKET:
            return  # the release zip going to the artifact bucket
        with lock:
            recorded.append((params["Key"].split("/", 1)[1], params.get("ContentType", "")))

    events = aws_events()
    events.register("before-parameter-build.s3.PutObject", record)
    yield recorded
    events.unregister("before-parameter-build.s3.PutObject", record)


def aws_events():
    return aws.client("s3").meta.events


def refreshed(pipeline: Pipeline) -> Pipeline:
    return Pipeline.objects.select_related("live_build").get(pk=pipeline.pk)


def test_content_types_and_cache_headers_by_class(pipeline):
    build = release_and_deploy(pipeline, SITE)
    assert build.status == BuildStatus.SUCCEEDED, build.error
    objects = live_objects(pipeline)
    assert set(objects) == set(SITE)
    expect = {
        "index.html": ("text/html; charset=utf-8", "public, max-age=0, must-revalidate"),
        "about/index.html": ("text/html; charset=utf-8", "public, max-age=0, must-revalidate"),
        "pretty": ("text/html; charset=utf-8", "public, max-age=0, must-revalidate"),
        "LICENSE": ("application/octet-stream", "public, max-age=0, must-revalidate"),
        "assets/app.3f9a1c.js": ("text/javascript; charset=utf-8", "public, max-age=31536000, immutable"),
        "assets/main-3F9A1C2B.css": ("text/css; charset=utf-8", "public, max-age=31536000, immutable"),
        "assets/index-D-9fz1Xa.mjs": ("text/javascript; charset=utf-8", "public, max-age=31536000, immutable"),
        "img/logo.png": ("image/png", "public, max-age=300"),
        "img/photo.jpg": ("image/jpeg", "public, max-age=300"),
        "fonts/inter.woff2": ("font/woff2", "public, max-age=300"),
        "robots.txt": ("text/plain; charset=utf-8", "public, max-age=300"),
        "data.json": ("application/json", "public, max-age=300"),
        "favicon.ico": ("image/x-icon", "public, max-age=300"),
        "icon.svg": ("image/svg+xml", "public, max-age=300"),
        "module.wasm": ("application/wasm", "public, max-age=300"),
        "feed.xml": ("application/xml", "public, max-age=300"),
        "blob.xyz": ("application/octet-stream", "public, max-age=300"),
    }
    for path, (content_type, cache_control) in expect.items():
        assert (objects[path]["ContentType"], objects[path]["CacheControl"]) == (content_type, cache_control), path
    assert objects["index.html"]["Metadata"]["sha256"] == build.manifest["index.html"]["sha256"]
    assert live_body(pipeline, "about/index.html") == SITE["about/index.html"].encode()
    p = refreshed(pipeline)
    assert p.status == S.DEPLOYED and p.live_build_id == build.id
    assert (build.files_uploaded, build.files_unchanged, build.files_deleted) == (len(SITE), 0, 0)
    assert build.bytes_uploaded == sum(len(v if isinstance(v, bytes) else v.encode()) for v in SITE.values())
    assert build.invalidation_id == ""  # nothing was live before: nothing to invalidate


def test_all_html_is_uploaded_after_every_other_file(pipeline, puts, settings):
    settings.TROY_DEPLOY_CONCURRENCY = 8
    site = {
        **SITE,
        **{f"blog/post-{i}/index.html": PAGE.format(i) for i in range(20)},
        **{f"assets/chunk-{i}.js": f"// {i}" for i in range(40)},
    }
    release_and_deploy(pipeline, site)
    assert len(puts) == len(site)
    html = [i for i, (_, content_type) in enumerate(puts) if content_type.startswith("text/html")]
    other = [i for i, (_, content_type) in enumerate(puts) if not content_type.startswith("text/html")]
    assert len(html) == 23 and len(other) == len(site) - 23
    assert max(other) < min(html)


def test_second_deploy_with_one_changed_file_uploads_exactly_that_file(pipeline, puts):
    first = release_and_deploy(pipeline, SITE)
    before = live_objects(pipeline)
    puts.clear()
    time.sleep(1.1)  # S3's LastModified has one-second resolution: a re-upload would show
    second = release_and_deploy(pipeline, {**SITE, "about/index.html": PAGE.format("about us")})

    assert puts == [("about/index.html", "text/html; charset=utf-8")]
    assert (second.files_uploaded, second.files_unchanged, second.files_deleted) == (1, len(SITE) - 1, 0)
    after = live_objects(pipeline)
    for path in SITE:
        if path == "about/index.html":
            assert after[path]["ETag"] != before[path]["ETag"]
        else:
            assert (after[path]["ETag"], after[path]["LastModified"]) == (
                before[path]["ETag"],
                before[path]["LastModified"],
            ), path
    assert live_body(pipeline, "about/index.html") == PAGE.format("about us").encode()
    assert first.invalidation_id == ""
    invalidation = aws.client("cloudfront").get_invalidation(
        DistributionId=pipeline.distribution_id, Id=second.invalidation_id
    )["Invalidation"]
    assert sorted(invalidation["InvalidationBatch"]["Paths"]["Items"]) == ["/about", "/about/", "/about/index.html"]
    assert invalidation["InvalidationBatch"]["CallerReference"] == str(second.id)


def test_redeploying_the_same_content_puts_nothing_and_invalidates_nothing(pipeline, puts):
    release_and_deploy(pipeline, SITE)
    puts.clear()
    again = release_and_deploy(pipeline, SITE)
    assert puts == []
    assert (again.files_uploaded, again.files_unchanged, again.invalidation_id) == (0, len(SITE), "")


def test_deleted_files_go_and_previous_fingerprinted_assets_stay_one_deploy(pipeline):
    base = {"index.html": PAGE.format(1), "old.html": "bye", "notes.txt": "old notes"}
    release_and_deploy(pipeline, {**base, "assets/app.aaa111.js": "a", "assets/vendor.fff999.js": "v"})
    second = release_and_deploy(
        pipeline, {"index.html": PAGE.format(2), "assets/app.bbb222.js": "b", "assets/vendor.fff999.js": "v"}
    )
    assert set(live_objects(pipeline)) == {
        "index.html",
        "assets/app.aaa111.js",
        "assets/app.bbb222.js",
        "assets/vendor.fff999.js",
    }
    assert second.files_deleted == 2  # old.html, notes.txt; app.aaa111.js is kept for open pages
    assert second.manifest["assets/app.aaa111.js"]["kept"] is True
    paths = aws.client("cloudfront").get_invalidation(
        DistributionId=pipeline.distribution_id, Id=second.invalidation_id
    )["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
    assert sorted(paths) == ["/", "/index.html", "/notes.txt", "/old.html"]

    third = release_and_deploy(pipeline, {"index.html": PAGE.format(3), "assets/app.ccc333.js": "c"})
    # app.aaa111.js had its extra deploy; bbb222 and vendor (dropped now) get theirs.
    assert set(live_objects(pipeline)) == {
        "index.html",
        "assets/app.bbb222.js",
        "assets/vendor.fff999.js",
        "assets/app.ccc333.js",
    }
    assert third.files_deleted == 1
    assert "assets/app.aaa111.js" not in third.manifest
    assert third.manifest["assets/app.bbb222.js"]["kept"] is True
    assert third.manifest["assets/vendor.fff999.js"]["kept"] is True


@pytest.fixture
def listings(aws):
    """Prefixes of every ListObjectsV2 on the live bucket."""
    recorded: list[str] = []

    def record(params, **kwargs):
        if params["Bucket"] == settings.TROY_LIVE_BUCKET:
            recorded.append(params.get("Prefix", ""))

    aws_events().register("before-parameter-build.s3.ListObjectsV2", record)
    yield recorded
    aws_events().unregister("before-parameter-build.s3.ListObjectsV2", record)


def _wipe_live_and_marker(pipeline: Pipeline) -> None:
    """What an emulator restart or a bucket restored from an older backup does."""
    s3 = aws.client("s3")
    for key in list(live_objects(pipeline)):
        s3.delete_object(Bucket=settings.TROY_LIVE_BUCKET, Key=f"{pipeline.id}/{key}")
    s3.delete_object(Bucket=settings.TROY_ARTIFACT_BUCKET, Key=f"deployed/{pipeline.id}.json")


def test_with_everything_in_place_an_unchanged_redeploy_lists_nothing(pipeline, listings):
    release_and_deploy(pipeline, {"index.html": "<p>1</p>", "a.css": "a", "b.txt": "b"})
    listings.clear()
    again = release_and_deploy(pipeline, {"index.html": "<p>1</p>", "a.css": "a", "b.txt": "b"})
    assert (again.files_uploaded, again.files_unchanged) == (0, 3)
    assert listings == []


def test_files_lost_from_the_bucket_are_put_back_not_counted_unchanged(pipeline, listings):
    files = {"index.html": "<p>1</p>", "a.css": "a", "b.txt": "b"}
    release_and_deploy(pipeline, files)
    _wipe_live_and_marker(pipeline)
    listings.clear()
    again = release_and_deploy(pipeline, files)
    assert listings == [f"{pipeline.id}/"]  # the marker was gone: the prefix was listed
    assert again.status == BuildStatus.SUCCEEDED, again.error
    assert (again.files_uploaded, again.files_unchanged) == (3, 0)
    assert set(live_objects(pipeline)) == set(files)


def test_a_marker_naming_another_build_makes_the_deploy_list(pipeline):
    files = {"index.html": "<p>1</p>", "a.css": "a"}
    release_and_deploy(pipeline, files)
    aws.client("s3").delete_object(Bucket=settings.TROY_LIVE_BUCKET, Key=f"{pipeline.id}/a.css")
    aws.client("s3").put_object(
        Bucket=settings.TROY_ARTIFACT_BUCKET,
        Key=f"deployed/{pipeline.id}.json",
        Body=b'{"build": "someone-else", "manifest_sha256": ""}',
    )
    again = release_and_deploy(pipeline, files)
    assert (again.files_uploaded, again.files_unchanged) == (1, 1)
    assert set(live_objects(pipeline)) == set(files)

"""The Lambda@Edge origin handler on the viewer stage's expected output, with an in-memory
fetch_object in place of S3."""

from __future__ import annotations

import base64
from collections import Counter
import hashlib

import pytest

from edge import origin_request
from edge.manifest import FileEntry, Manifest, blob_key, content_key, dumps, manifest_key
from edge.origin_request import OriginRouter
from tests.edge.conftest import BUCKET, VECTORS, build_objects, file_body, vector_id

ROUTED = [vector for vector in VECTORS["vectors"] if "uri" in vector["viewer"]]


class Store:
    """An in-memory bucket that counts reads, standing in for S3 behind fetch_object."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.reads: Counter[str] = Counter()

    def fetch(self, bucket: str, key: str) -> bytes:
        assert bucket == BUCKET
        self.reads[key] += 1
        return self.objects[key]


def origin_event(uri: str, build: str | None = None, querystring: str = "") -> dict:
    headers = {"host": [{"key": "Host", "value": f"{BUCKET}.s3.us-east-1.amazonaws.com"}]}
    if build is not None:
        headers["x-troy-build"] = [{"key": "x-troy-build", "value": build}]
    return {
        "Records": [
            {
                "cf": {
                    "config": {"distributionId": "EDFDVBD6EXAMPLE", "eventType": "origin-request"},
                    "request": {
                        "clientIp": "192.0.2.1",
                        "method": "GET",
                        "uri": uri,
                        "querystring": querystring,
                        "headers": headers,
                        "origin": {
                            "s3": {
                                "authMethod": "origin-access-identity",
                                "customHeaders": {},
                                "domainName": f"{BUCKET}.s3.us-east-1.amazonaws.com",
                                "path": "",
                                "region": "us-east-1",
                            }
                        },
                    },
                }
            }
        ]
    }


@pytest.fixture
def store() -> Store:
    return Store({key: body for key, (body, _type, _cache) in build_objects(VECTORS["builds"]).items()})


@pytest.mark.parametrize("vector", ROUTED, ids=vector_id)
def test_origin_vector(store, vector):
    viewed = vector["viewer"]
    result = OriginRouter(store.fetch).handle(origin_event(viewed["uri"], viewed.get("build"), vector.get("qs", "")))
    expected = vector["origin"]
    if "file" in expected:
        assert "status" not in result
        assert result["uri"].startswith("/p")
        assert store.objects[result["uri"][1:]] == file_body(_build_of(vector), expected["file"])
        assert "x-troy-build" not in result["headers"]
        assert result["querystring"] == ""  # S3 would honour response-content-type=… from a visitor
        return
    assert result["status"] == str(expected["status"])
    if expected["status"] == 301:
        assert result["headers"]["location"] == [{"key": "Location", "value": expected["location"]}]
        return
    body = result["body"].encode() if result["bodyEncoding"] == "text" else base64.b64decode(result["body"])
    if expected["page"] is None:
        assert body == origin_request.PLAIN_NOT_FOUND
    else:
        assert body == file_body(_build_of(vector), expected["page"])
        assert result["headers"]["content-type"][0]["value"] == "text/html"


def _build_of(vector: dict) -> str:
    uri, build = vector["viewer"]["uri"], vector["viewer"].get("build")
    pipeline, second = uri.split("/")[1:3]
    return f"{pipeline}/{build or second}"


def two_builds() -> Store:
    objects = {}
    for build_id, text in (("b1", b"first"), ("b2", b"second")):
        entry = FileEntry(
            key=content_key(hashlib.sha256(text).hexdigest(), "text/html", "no-cache"),
            type="text/html",
            cache="no-cache",
            size=5,
        )
        objects[blob_key("p9", entry.key)] = text
        objects[manifest_key("p9", build_id)] = dumps(
            Manifest(pipeline_id="p9", build_id=build_id, files={"index.html": entry})
        )
    return Store(objects)


def test_each_build_is_answered_from_its_own_manifest_fetched_once():
    store = two_builds()
    router = OriginRouter(store.fetch)
    answers = [router.handle(origin_event(f"/p9/{build}/"))["uri"][1:] for build in ("b1", "b2", "b1", "b2", "b1")]
    assert [store.objects[key] for key in answers] == [b"first", b"second", b"first", b"second", b"first"]
    assert store.reads[manifest_key("p9", "b1")] == 1
    assert store.reads[manifest_key("p9", "b2")] == 1


def test_the_manifest_cache_is_bounded_least_recently_used_first():
    store = two_builds()
    router = OriginRouter(store.fetch, cache_size=1)
    for build in ("b1", "b1", "b2", "b1"):
        router.handle(origin_event(f"/p9/{build}/"))
    assert store.reads[manifest_key("p9", "b1")] == 2
    assert store.reads[manifest_key("p9", "b2")] == 1


def test_a_build_without_manifest_is_a_502_not_a_cached_404(store):
    result = OriginRouter(store.fetch).handle(origin_event("/p1/b404/index.html"))
    assert result["status"] == "502"
    assert result["headers"]["cache-control"][0]["value"] == "no-store"


def test_a_broken_manifest_is_a_502(store):
    store.objects[manifest_key("p1", "b9")] = b'{"version": 1, "pipeline_id": "p1"}'
    assert OriginRouter(store.fetch).handle(origin_event("/p1/b9/"))["status"] == "502"


def test_a_manifest_naming_another_build_is_a_502(store):
    store.objects[manifest_key("p1", "b9")] = store.objects[manifest_key("p1", "b1")]
    assert OriginRouter(store.fetch).handle(origin_event("/p1/b9/"))["status"] == "502"


def test_an_immutable_path_without_the_build_header_is_a_404(store):
    result = OriginRouter(store.fetch).handle(origin_event("/p1/_immutable/assets/app.3f9a1c2b.js"))
    assert result["status"] == "404"
    assert store.reads == Counter()


def test_a_404_page_too_big_for_a_generated_response_gets_the_plain_one(store, monkeypatch):
    monkeypatch.setattr(origin_request, "MAX_GENERATED_BODY", 3)
    result = OriginRouter(store.fetch).handle(origin_event("/p2/b7/missing.html"))
    assert result["status"] == "404"
    assert result["body"].encode() == origin_request.PLAIN_NOT_FOUND


def test_a_binary_404_page_is_sent_base64(store):
    page = b"\xff\xfe\x00binary"
    entry = FileEntry(
        key=content_key(hashlib.sha256(page).hexdigest(), "image/png", ""), type="image/png", cache="", size=len(page)
    )
    store.objects[blob_key("p3", entry.key)] = page
    store.objects[manifest_key("p3", "b1")] = dumps(
        Manifest(pipeline_id="p3", build_id="b1", files={"404.png": entry}, not_found="404.png")
    )
    result = OriginRouter(store.fetch).handle(origin_event("/p3/b1/nope"))
    assert (result["status"], result["bodyEncoding"], base64.b64decode(result["body"])) == ("404", "base64", page)


def test_the_lambda_entry_point_reads_s3_through_boto3(s3_bucket):
    origin_request._router = None
    try:
        result = origin_request.handler(origin_event("/p2/b7/blog/"), None)
    finally:
        origin_request._router = None
    body = s3_bucket.get_object(Bucket=BUCKET, Key=result["uri"][1:])["Body"].read()
    assert body == file_body("p2/b7", "blog/index.html")


def test_the_bucket_comes_from_the_s3_origin_domain():
    for domain in (f"{BUCKET}.s3.amazonaws.com", f"{BUCKET}.s3.eu-west-1.amazonaws.com"):
        assert origin_request.bucket_of({"origin": {"s3": {"domainName": domain}}}) == BUCKET


# --- fingerprinted assets of retained builds (docs/edge.md, "Retention") -----------------------------

ASSET_CACHE = "public, max-age=31536000, immutable"


def asset_builds() -> Store:
    """Pipeline p8: b1 (an older build, still retained) has app.1a2b3c4d.js; b2 (live) replaced
    it with app.5e6f7a8b.js. A page opened on b1 still asks for the old name."""
    objects = {}
    for build_id, name in (("b1", "app.1a2b3c4d.js"), ("b2", "app.5e6f7a8b.js")):
        files = {}
        for path, body in (("index.html", f"<script src=/{name}>".encode()), (name, f"// {build_id}".encode())):
            kind, cache = ("application/javascript", ASSET_CACHE) if path == name else ("text/html", "no-cache")
            entry = FileEntry(
                key=content_key(hashlib.sha256(body).hexdigest(), kind, cache), type=kind, cache=cache, size=len(body)
            )
            objects[blob_key("p8", entry.key)] = body
            files[path] = entry
        objects[manifest_key("p8", build_id)] = dumps(Manifest(pipeline_id="p8", build_id=build_id, files=files))
    return Store(objects)


class Listing:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls = 0

    def __call__(self, bucket: str, prefix: str) -> list[str]:
        self.calls += 1
        return sorted(key for key in self.store.objects if key.startswith(prefix))


def test_an_open_page_of_a_retained_build_still_gets_its_fingerprinted_asset():
    store = asset_builds()
    router = OriginRouter(store.fetch, list_keys=Listing(store))

    result = router.handle(origin_event("/p8/_immutable/app.1a2b3c4d.js", build="b2"))

    assert store.objects[result["uri"][1:]] == b"// b1"
    # The live build's own assets and pages are answered from its manifest alone.
    assert (
        store.objects[router.handle(origin_event("/p8/_immutable/app.5e6f7a8b.js", build="b2"))["uri"][1:]] == b"// b2"
    )


def test_without_a_listing_or_for_a_page_path_no_other_build_answers():
    store = asset_builds()
    assert (
        OriginRouter(store.fetch).handle(origin_event("/p8/_immutable/app.1a2b3c4d.js", build="b2"))["status"] == "404"
    )
    listing = Listing(store)
    router = OriginRouter(store.fetch, list_keys=listing)
    store.objects[manifest_key("p8", "b1")] = dumps(
        Manifest(
            pipeline_id="p8",
            build_id="b1",
            files={"old.html": FileEntry(key="0" * 64, type="text/html", cache="", size=1)},
        )
    )
    assert router.handle(origin_event("/p8/b2/old.html"))["status"] == "404"
    assert listing.calls == 0


def test_once_retention_deletes_the_build_its_assets_are_gone_after_the_listing_expires():
    store = asset_builds()
    now = [0.0]
    listing = Listing(store)
    router = OriginRouter(store.fetch, list_keys=listing, clock=lambda: now[0], cache_size=1)
    event = lambda: origin_event("/p8/_immutable/app.1a2b3c4d.js", build="b2")  # noqa: E731
    assert "uri" in router.handle(event())

    del store.objects[manifest_key("p8", "b1")]
    router.handle(origin_event("/p8/b2/"))  # b1's manifest leaves the (one-entry) cache
    now[0] += origin_request.RETAINED_LIST_SECONDS - 1
    assert "uri" not in router.handle(event())  # listed still, but its manifest is gone: not an answer
    now[0] += 2
    assert router.handle(event())["status"] == "404"
    assert listing.calls == 2


def test_a_failing_listing_answers_404_rather_than_an_error():
    store = asset_builds()

    def denied(bucket: str, prefix: str) -> list[str]:
        raise PermissionError("s3:ListBucket not granted")

    result = OriginRouter(store.fetch, list_keys=denied).handle(
        origin_event("/p8/_immutable/app.1a2b3c4d.js", build="b2")
    )
    assert result["status"] == "404"


def test_the_lambda_entry_point_lists_retained_builds_through_boto3(s3_bucket):
    for key, body in asset_builds().objects.items():
        s3_bucket.put_object(Bucket=BUCKET, Key=key, Body=body)
    origin_request._router = None
    try:
        result = origin_request.handler(origin_event("/p8/_immutable/app.1a2b3c4d.js", build="b2"), None)
    finally:
        origin_request._router = None
    assert s3_bucket.get_object(Bucket=BUCKET, Key=result["uri"][1:])["Body"].read() == b"// b1"

"""The fixed Content-Type table, the cache classes, and how invalidation paths collapse."""

from datetime import UTC

import pytest

from pipelines.flows.deploy.content import CACHE_IMMUTABLE, CACHE_PAGE, CACHE_SHORT, is_fingerprinted, object_headers
from pipelines.flows.deploy.invalidation import collapse_paths, invalidation_paths_for


@pytest.mark.parametrize(
    "path",
    [
        "app.3f9a1c.js",
        "assets/main-3F9A1C2B.css",
        "assets/index-D-9fz1Xa.js",
        "static/js/main.8e2b1f0c.chunk.js",
        "chunk.k3j9x2m1.js",
        "fonts/inter-latin.5ab2c91d.woff2",
        "app.0123456789abcdef0123.js",
    ],
)
def test_fingerprinted_names(path):
    assert is_fingerprinted(path)
    assert object_headers(path).cache_control == CACHE_IMMUTABLE


@pytest.mark.parametrize(
    "path",
    [
        "logo.png",
        "jquery-3.7.1.min.js",
        "font-OpenSans.woff2",
        "font-Roboto-Bold.woff2",
        "app.decade.js",
        "report-20240101.pdf",
        "my-long-filename2.png",
        "photo2024.jpg",
        "favicon.ico",
    ],
)
def test_names_that_are_not_fingerprinted(path):
    assert not is_fingerprinted(path)
    assert object_headers(path).cache_control == CACHE_SHORT


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("a.html", "text/html; charset=utf-8"),
        ("a.HTM", "text/html; charset=utf-8"),
        ("a.css", "text/css; charset=utf-8"),
        ("a.js", "text/javascript; charset=utf-8"),
        ("a.mjs", "text/javascript; charset=utf-8"),
        ("a.json", "application/json"),
        ("a.js.map", "application/json"),
        ("a.svg", "image/svg+xml"),
        ("a.png", "image/png"),
        ("a.jpg", "image/jpeg"),
        ("a.jpeg", "image/jpeg"),
        ("a.gif", "image/gif"),
        ("a.webp", "image/webp"),
        ("a.avif", "image/avif"),
        ("a.ico", "image/x-icon"),
        ("a.woff", "font/woff"),
        ("a.woff2", "font/woff2"),
        ("a.ttf", "font/ttf"),
        ("a.otf", "font/otf"),
        ("a.wasm", "application/wasm"),
        ("a.txt", "text/plain; charset=utf-8"),
        ("a.xml", "application/xml"),
        ("a.pdf", "application/pdf"),
        ("a.mp4", "video/mp4"),
        ("a.webm", "video/webm"),
        ("a.webmanifest", "application/manifest+json"),
        ("a.unknownext", "application/octet-stream"),
        (".htaccess", "application/octet-stream"),
    ],
)
def test_content_type_table(path, content_type):
    assert object_headers(path).content_type == content_type


def test_pages_and_extensionless_files_revalidate():
    assert object_headers("index.html") == object_headers("docs/index.html")
    assert object_headers("index.html").cache_control == CACHE_PAGE
    assert object_headers("about", b"<!DOCTYPE html><html>").content_type.startswith("text/html")
    assert object_headers("CNAME", b"example.com").content_type == "application/octet-stream"
    assert object_headers("CNAME").cache_control == CACHE_PAGE


def test_paths_of_changed_files_include_folder_urls_for_index_pages():
    assert invalidation_paths_for(["index.html", "docs/index.html", "a b/c*.css"]) == [
        "/",
        "/a%20b/c%2A.css",
        "/docs",
        "/docs/",
        "/docs/index.html",
        "/index.html",
    ]


def test_few_paths_stay_as_they_are():
    paths = ["/a.css", "/b.css"]
    assert collapse_paths(paths, max_paths=15) == paths


def test_many_paths_collapse_to_folder_wildcards_then_everything():
    paths = ["/index.html", "/"] + [f"/docs/guide/p{i}.html" for i in range(20)] + [f"/blog/{i}/" for i in range(20)]
    assert collapse_paths(paths, max_paths=15) == ["/", "/blog/*", "/docs/*", "/index.html"]
    deeper = collapse_paths(paths, max_paths=25)  # the deepest grouping that fits
    assert len(deeper) == 23 and "/docs/guide/*" in deeper and "/blog/7/*" in deeper
    assert collapse_paths(paths, max_paths=3) == ["/*"]


def test_a_retried_deploy_reuses_the_invalidation_its_build_id_already_made(aws):
    """CloudFront refuses a second batch under one CallerReference (moto does not): the existing
    invalidation is found by its CallerReference and reused."""
    from datetime import datetime

    from botocore.stub import Stubber

    from deployment_service import aws as aws_clients
    from pipelines.flows.deploy.invalidation import invalidation_create

    now = datetime(2026, 11, 1, tzinfo=UTC)
    client = aws_clients.client("cloudfront")

    def invalidation(id_: str, reference: str) -> dict:
        return {
            "Invalidation": {
                "Id": id_,
                "Status": "Completed",
                "CreateTime": now,
                "InvalidationBatch": {"Paths": {"Quantity": 1, "Items": ["/a"]}, "CallerReference": reference},
            }
        }

    with Stubber(client) as stub:
        stub.add_client_error(
            "create_invalidation",
            service_error_code="InvalidationBatchAlreadyExists",
            http_status_code=400,
            expected_params={
                "DistributionId": "E1",
                "InvalidationBatch": {"Paths": {"Quantity": 1, "Items": ["/b"]}, "CallerReference": "build-7"},
            },
        )
        stub.add_response(
            "list_invalidations",
            {
                "InvalidationList": {
                    "Marker": "",
                    "MaxItems": 100,
                    "IsTruncated": False,
                    "Quantity": 2,
                    "Items": [
                        {"Id": "I1", "CreateTime": now, "Status": "Completed"},
                        {"Id": "I2", "CreateTime": now, "Status": "InProgress"},
                    ],
                }
            },
            {"DistributionId": "E1"},
        )
        stub.add_response("get_invalidation", invalidation("I1", "build-6"), {"DistributionId": "E1", "Id": "I1"})
        stub.add_response("get_invalidation", invalidation("I2", "build-7"), {"DistributionId": "E1", "Id": "I2"})
        assert invalidation_create(distribution_id="E1", paths=["/b"], caller_reference="build-7") == "I2"
        stub.assert_no_pending_responses()

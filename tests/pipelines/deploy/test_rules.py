"""The deploy step reads a build's routing rules (`_redirects`, `_headers`, `troy.json`) into its
manifest, refuses rules it cannot honour before writing anything, and the edge then applies them
(docs/rules.md). The rules' own vectors are in tests/edge."""

from __future__ import annotations

from django.conf import settings
import pytest

from deployment_service import aws
from edge.local import LocalEdge
from edge.rules import Rules
from pipelines.choices import BuildStatus
from pipelines.selectors import edge_pointer_value
from tests.pipelines.deploy.support import PAGE
from tests.pipelines.deploy.test_store import stored_manifest
from tests.releases.helpers import bucket_keys, release_and_deploy

pytestmark = pytest.mark.django_db

SITE = {
    "index.html": PAGE.format("app shell"),
    "404.html": PAGE.format("not here"),
    "docs/index.html": PAGE.format("docs"),
    "assets/app.3f9a1c2b.js": "console.log('app')",
    "_redirects": "# old URLs\n/old-docs/*  /docs/:splat  301\n/home  /\n",
    "_headers": "/*\n  X-Frame-Options: DENY\n/assets/*\n  Access-Control-Allow-Origin: *\n",
    "troy.json": '{"spa": true, "not_found": "404.html"}',
}


def test_rules_go_into_the_manifest_and_their_files_are_not_served(pipeline):
    build = release_and_deploy(pipeline, SITE)
    assert build.status == BuildStatus.SUCCEEDED, build.error
    manifest = stored_manifest(pipeline, build)
    assert set(manifest.files) == {"index.html", "404.html", "docs/index.html", "assets/app.3f9a1c2b.js"}
    assert build.files_total == 4
    rules = Rules.from_dict(manifest.rules)
    assert [(r.from_path, r.to, r.status, r.source) for r in rules.redirects] == [
        ("/old-docs/*", "/docs/:splat", 301, "_redirects:2"),
        ("/home", "/", 301, "_redirects:3"),
    ]
    assert rules.spa == "index.html" and rules.not_found == "404.html"
    assert rules.headers_for("/assets/app.3f9a1c2b.js") == [
        ("X-Frame-Options", "DENY"),
        ("Access-Control-Allow-Origin", "*"),
    ]


def test_the_local_edge_applies_the_deployed_rules(pipeline):
    build = release_and_deploy(pipeline, SITE)
    assert build.status == BuildStatus.SUCCEEDED, build.error
    edge = LocalEdge(edge_pointer_value, aws.client("s3"), settings.TROY_LIVE_BUCKET)
    host = f"{pipeline.name}.localhost"

    status, headers, _ = edge.handle("GET", host, "/old-docs/intro", "", {})
    assert status == 301 and dict(headers)["Location"] == "/docs/intro"

    status, headers, body = edge.handle("GET", host, "/settings/profile", "", {"sec-fetch-mode": "navigate"})
    assert (status, b"app shell" in body) == (200, True)  # the SPA fallback, for a navigation
    assert dict(headers)["X-Frame-Options"] == "DENY"

    status, _, body = edge.handle("GET", host, "/settings/profile", "", {"sec-fetch-mode": "cors"})
    assert (status, b"not here" in body) == (404, True)  # a fetch gets the real 404 page

    status, headers, _ = edge.handle("GET", host, "/assets/app.3f9a1c2b.js", "", {})
    assert status == 200 and dict(headers)["Access-Control-Allow-Origin"] == "*"

    for rules_file in ("/_redirects", "/_headers", "/troy.json"):
        status, _, _ = edge.handle("GET", host, rules_file, "", {"accept": "*/*"})
        assert status == 404, rules_file


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ({"_redirects": "/a /b 301\n/lonely\n"}, "_redirects:2: a rule needs a path and a target"),
        ({"_redirects": "/api/* https://api.example.com/:splat 200\n"}, "would proxy another site"),
        ({"_headers": "/*\n  Content-Length: 3\n"}, "_headers:2: header Content-Length cannot be set"),
        ({"troy.json": '{"spa": "app.html"}'}, "troy.json: spa names 'app.html', which is not in the build"),
        ({"troy.json": "{not json"}, "troy.json:1: is not JSON"),
        ({"_redirects": "/gone /missing.html 410\n"}, "_redirects:1: target /missing.html is not a file of the build"),
        ({"_redirects": b"\xff\xfe/a /b\n"}, "_redirects: is not UTF-8 text"),
    ],
)
def test_rules_that_cannot_be_honoured_fail_the_build_before_anything_is_written(pipeline, files, words):
    build = release_and_deploy(pipeline, {"index.html": PAGE.format("home"), **files})
    assert build.status == BuildStatus.FAILED
    assert "rules_invalid" in build.error and words in build.error, build.error
    assert not bucket_keys(pipeline)  # not a blob, not a manifest

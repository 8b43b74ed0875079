"""The fixed Content-Type table and the cache classes (the immutable one is the edge's fingerprint rule)."""

import pytest

from edge import manifest
from pipelines.flows.deploy.content import CACHE_IMMUTABLE, CACHE_PAGE, CACHE_SHORT, is_fingerprinted, object_headers


@pytest.mark.parametrize(
    "path",
    [
        "app.3f9a1c2b.js",
        "assets/main-3f9a1c2b.css",
        "assets/main-3F9A1C2B.css",  # 8 characters of base64url with a digit and an upper-case letter
        "assets/index-BmR3xq9Z.js",
        "static/js/main.8e2b1f0c.js",
        "assets/index-D-9fz1Xa.js",
        "chunk.a1b2c3d4e5.mjs",
        "fonts/inter-latin.5ab2c91d.woff2",
        "app.0123456789abcdef0123.js",
        "app.3f9a1c2b.js.map",
        "data.3f9a1c2b.json",
        "bg.cafe1234.png",
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
        "app.3f9a1c.js",  # six hex characters: too short
        "app.3f9a1c2b.min.js",  # the hash must come last
        "chunk.k3j9x2m1.js",  # base36 after a dot
        "static/js/main.8e2b1f0c.chunk.js",  # the hash must come last (a cache miss, never stale)
        "logo-deadbeef.png",
        "report.20240101.json",
        "report-20240101.pdf",
        "my-long-filename2.png",
        "photo2024.jpg",
        "favicon.ico",
        "notes.3f9a1c2b.txt",  # text is never fingerprinted
    ],
)
def test_names_that_are_not_fingerprinted(path):
    assert not is_fingerprinted(path)
    assert object_headers(path).cache_control in (CACHE_SHORT, CACHE_PAGE)


def test_the_immutable_class_is_the_edge_rule():
    """One rule: the deploy gives ``immutable`` to exactly the paths the viewer function serves from
    ``/_immutable`` (edge.manifest.is_fingerprinted, run on the same vectors as the function)."""
    assert is_fingerprinted is manifest.is_fingerprinted


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

"""The local edge end to end: the real viewer function in V8, the origin handler in-process and
moto S3, answering the same vectors; and over HTTP through LocalEdgeServer (what `manage.py edge`
runs), with keep-alive."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import http.client
import threading

import pytest

from edge.local import LocalEdge, LocalEdgeServer, ViewerFunction
from tests.edge.conftest import BUCKET, VECTORS, build_objects, file_body, vector_id


def expected_build(vector: dict) -> str:
    uri, build = vector["viewer"]["uri"], vector["viewer"].get("build")
    pipeline, second = uri.split("/")[1:3]
    return f"{pipeline}/{build or second}"


def check_answer(vector: dict, status: int, headers: dict[str, str], body: bytes) -> None:
    viewed, expected = vector["viewer"], vector.get("origin")
    if "status" in viewed:
        assert status == viewed["status"]
        assert viewed["says"].encode() in body
        return
    if "file" in expected:
        assert status == 200
        assert body == file_body(expected_build(vector), expected["file"])
        assert headers["content-length"] == str(len(body))
        assert headers["cache-control"].startswith("public, max-age=")
        return
    assert status == expected["status"]
    if status == 301:
        assert headers["location"] == expected["location"]
    elif expected["page"] is not None:
        assert body == file_body(expected_build(vector), expected["page"])
    else:
        assert b"<h1>Not found</h1>" in body


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=vector_id)
def test_local_edge_vector(local_edge, vector):
    status, headers, body = local_edge.handle(
        "GET", vector["host"], vector["uri"], vector.get("qs", ""), vector.get("headers", {})
    )
    check_answer(vector, status, {name.lower(): value for name, value in headers}, body)


def test_stored_headers_are_served(local_edge):
    status, headers, _body = local_edge.handle("GET", "site.example.com", "/assets/app.3f9a1c2b.js", "", {})
    headers = dict(headers)
    assert status == 200
    assert headers["Content-Type"] in ("application/javascript", "text/javascript")
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_head_answers_headers_without_body(local_edge):
    status, headers, body = local_edge.handle("HEAD", "site.example.com", "/docs/guide.html", "", {})
    assert (status, body) == (200, b"")
    assert dict(headers)["Content-Length"] == str(len(file_body("p1/b1", "docs/guide.html")))
    status, _headers, body = local_edge.handle("HEAD", "unknown.example.com", "/", "", {})
    assert (status, body) == (404, b"")


def test_a_pointer_write_switches_every_following_request(s3_bucket):
    pointers = {"site.example.com": "p1/b1"}
    edge = LocalEdge(pointers.get, s3_bucket, BUCKET)
    assert edge.handle("GET", "site.example.com", "/", "", {})[2] == file_body("p1/b1", "index.html")
    pointers["site.example.com"] = "p2/b7"
    assert edge.handle("GET", "site.example.com", "/", "", {})[2] == file_body("p2/b7", "index.html")


def test_concurrent_requests_share_the_edge(local_edge):
    paths = ["/", "/about/", "/docs/guide.html", "/assets/app.3f9a1c2b.js"] * 10
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda path: local_edge.handle("GET", "site.example.com", path, "", {}), paths))
    assert {status for status, _headers, _body in answers} == {200}
    assert answers[3][2] == file_body("p1/b1", "assets/app.3f9a1c2b.js")


@pytest.fixture(scope="module")
def http_edge(local_edge):
    server = LocalEdgeServer(("127.0.0.1", 0), local_edge, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def http_get(port: int, method: str, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, target, headers=headers)
        response = connection.getresponse()
        return response.status, {name.lower(): value for name, value in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=vector_id)
def test_vector_over_http(http_edge, vector):
    if vector["host"] == "":
        pytest.skip("HTTP/1.1 clients always send a Host")
    target = vector["uri"] + (f"?{vector['qs']}" if vector.get("qs") else "")
    status, headers, body = http_get(http_edge, "GET", target, {"Host": vector["host"], **vector.get("headers", {})})
    check_answer(vector, status, headers, body)


def test_one_connection_carries_many_requests_and_head(http_edge):
    connection = http.client.HTTPConnection("127.0.0.1", http_edge, timeout=10)
    try:
        for method, path in [("GET", "/"), ("HEAD", "/docs/guide.html"), ("GET", "/about"), ("GET", "/nope")]:
            connection.request(method, path, headers={"Host": "site.example.com"})
            response = connection.getresponse()
            body = response.read()
            assert response.getheader("Connection") != "close"
            if method == "HEAD":
                assert body == b""
                assert response.getheader("Content-Length") == str(len(file_body("p1/b1", "docs/guide.html")))
        assert response.status == 404
    finally:
        connection.close()


def test_other_methods_get_cloudfronts_403(http_edge):
    status, _headers, body = http_get(http_edge, "POST", "/", {"Host": "site.example.com", "Content-Length": "0"})
    assert status == 403 and b"not configured to allow the HTTP request method" in body


def test_the_404_pages_link_to_the_list_of_sites_when_the_edge_knows_it(s3_bucket):
    edge = LocalEdge(VECTORS["pointers"].get, s3_bucket, BUCKET, sites_url="http://127.0.0.1:8000/")
    for host, says in [("unknown.example.com", b"No site is served"), ("empty.example.com", b"nothing deployed yet")]:
        status, _headers, body = edge.handle("GET", host, "/", "", {})
        assert status == 404 and says in body
        assert b'<a href="http://127.0.0.1:8000/">' in body
    # A build's own 404 page is the site's: left alone.
    status, _headers, body = edge.handle("GET", "www.example.org", "/missing", "", {})
    assert status == 404 and body == file_body("p2/b7", "404.html")


def test_a_failing_viewer_function_is_a_503_as_at_cloudfront(local_edge):
    failing = "import cf from 'cloudfront';\nasync function handler(event) { throw new Error('boom'); }\n"
    edge = LocalEdge(VECTORS["pointers"].get, local_edge.s3, BUCKET)
    edge.viewer = ViewerFunction(VECTORS["pointers"].get, source=failing)
    status, _headers, body = edge.handle("GET", "site.example.com", "/", "", {})
    assert status == 503
    assert b"function failed" in body


def test_a_blob_is_fetched_once_and_then_served_from_memory_unless_the_cache_is_off(s3_bucket):
    bucket = "troy-live-cache-test"
    s3_bucket.create_bucket(Bucket=bucket)
    for key, (body, content_type, cache) in build_objects({"p1/b1": VECTORS["builds"]["p1/b1"]}).items():
        s3_bucket.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, CacheControl=cache)
    cached = LocalEdge(VECTORS["pointers"].get, s3_bucket, bucket)
    uncached = LocalEdge(VECTORS["pointers"].get, s3_bucket, bucket, blob_cache_bytes=0)
    first = cached.handle("GET", "site.example.com", "/robots.txt", "", {})
    assert uncached.handle("GET", "site.example.com", "/robots.txt", "", {}) == first
    for key in [o["Key"] for o in s3_bucket.list_objects_v2(Bucket=bucket, Prefix="p1/blobs/")["Contents"]]:
        s3_bucket.delete_object(Bucket=bucket, Key=key)

    assert cached.handle("GET", "site.example.com", "/robots.txt", "", {}) == first
    assert cached.handle("HEAD", "site.example.com", "/robots.txt", "", {})[:2] == first[:2]
    assert uncached.handle("GET", "site.example.com", "/robots.txt", "", {})[0] == 502
    assert cached.handle("GET", "site.example.com", "/feed.xml", "", {})[0] == 502  # never fetched before

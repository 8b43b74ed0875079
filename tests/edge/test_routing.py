"""A build's rules applied at the edge (docs/rules.md, docs/edge.md): the same request vectors
(tests/edge/routing_vectors.json) through the origin handler in-process (both of its stages, with
an in-memory store), through LocalEdge (the viewer function in V8 and the origin handler) over
moto S3, and over HTTP against LocalEdgeServer."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import mimetypes
from pathlib import Path
import threading

import boto3
from moto import mock_aws
import pytest

from edge.local import LocalEdge, LocalEdgeServer, ViewerFunction
from edge.manifest import FileEntry, Manifest, blob_key, content_key, dumps, is_fingerprinted, manifest_key
from edge.origin_request import OriginRouter
from edge.rules import Rules, is_navigation
from tests.edge.conftest import BUCKET, file_body

ROUTING = json.loads(Path(__file__).with_name("routing_vectors.json").read_text())
REQUESTS = ROUTING["requests"]


def site_rules(site: dict) -> Rules:
    config = site.get("troy.json")
    return Rules.build(
        redirects_text=site.get("_redirects"),
        headers_text=site.get("_headers"),
        config_text=None if config is None else json.dumps(config),
    )


def site_objects() -> dict[str, tuple[bytes, str, str]]:
    """S3 key → (body, content type, cache control): every site's blobs and its manifest, the
    rules in it as the deploy stores them."""
    objects: dict[str, tuple[bytes, str, str]] = {}
    for pipeline_build, site in ROUTING["sites"].items():
        pipeline_id, build_id = pipeline_build.split("/")
        files = {}
        for path in site["files"]:
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
        manifest = Manifest(pipeline_id=pipeline_id, build_id=build_id, files=files, rules=site_rules(site).to_dict())
        objects[manifest_key(pipeline_id, build_id)] = (dumps(manifest), "application/json", "no-store")
    return objects


def build_of(vector: dict) -> str:
    return ROUTING["pointers"][vector["host"]]


def check(vector: dict, status: int, headers: dict[str, str], body: bytes) -> None:
    """headers: lower-cased names."""
    assert status == vector["status"]
    if "location" in vector:
        assert headers["location"] == vector["location"]
    if "file" in vector:
        assert body == file_body(build_of(vector), vector["file"])
    if vector.get("plain"):
        assert b"<h1>Not found</h1>" in body
    for name, value in vector.get("headers_out", {}).items():
        assert headers.get(name.lower()) == value, name
    for name in vector.get("absent", []):
        assert name not in headers


def test_every_site_is_a_build_the_deploy_would_accept():
    for site in ROUTING["sites"].values():
        assert site_rules(site).missing_files(set(site["files"])) == []


def test_the_vectors_cover_what_the_issue_asks_for():
    statuses = {vector["status"] for vector in REQUESTS}
    assert statuses >= {200, 301, 302, 303, 307, 308, 404, 410, 451}
    assert len(REQUESTS) >= 80


# --- (a) the origin handler, both stages, in-process -----------------------------------------------


class Store:
    def __init__(self) -> None:
        self.objects = site_objects()

    def fetch(self, bucket: str, key: str) -> bytes:
        assert bucket == BUCKET
        return self.objects[key][0]


def viewer_uri(vector: dict) -> tuple[str, str | None]:
    """What the viewer function makes of the request (checked against it below)."""
    pipeline_id, build_id = build_of(vector).split("/")
    path = vector["path"]
    headers = {name.lower(): value for name, value in vector.get("headers", {}).items()}
    if is_fingerprinted(path):
        return f"/{pipeline_id}/_immutable{path}", build_id
    if is_navigation(headers, path):
        return f"/{pipeline_id}/_nav/{build_id}{path}", None
    return f"/{pipeline_id}/{build_id}{path}", None


def origin_event(vector: dict) -> dict:
    uri, build = viewer_uri(vector)
    headers = {
        name.lower(): [{"key": name, "value": value}]
        for name, value in vector.get("headers", {}).items()
        if name.lower() != "x-troy-build"  # the viewer function drops it
    }
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
                        "querystring": vector.get("query", ""),
                        "headers": headers,
                        "origin": {"s3": {"domainName": f"{BUCKET}.s3.us-east-1.amazonaws.com", "path": ""}},
                    },
                }
            }
        ]
    }


@pytest.fixture(scope="module")
def store() -> Store:
    return Store()


@pytest.fixture(scope="module")
def router(store) -> OriginRouter:
    return OriginRouter(store.fetch)


def run_origin(router: OriginRouter, store: Store, vector: dict) -> tuple[int, dict[str, str], bytes]:
    """Both associations of the Lambda, with S3 between them answering the blob."""
    event = origin_event(vector)
    routed = router.handle(event)
    if "status" in routed:
        raw = routed.get("body", "")
        body = base64.b64decode(raw) if routed.get("bodyEncoding") == "base64" else raw.encode()
        headers = {name: values[0]["value"] for name, values in routed["headers"].items()}
        return int(routed["status"]), headers, body
    assert routed["querystring"] == ""  # S3 would honour response-content-type=… from a visitor
    body, content_type, cache = store.objects[routed["uri"][1:]]
    s3_answer = {
        "status": "200",
        "statusDescription": "OK",
        "headers": {
            "content-type": [{"key": "Content-Type", "value": content_type}],
            "cache-control": [{"key": "Cache-Control", "value": cache}],
        },
    }
    response_event = {
        "Records": [
            {
                "cf": {
                    "config": {"distributionId": "EDFDVBD6EXAMPLE", "eventType": "origin-response"},
                    "request": routed,
                    "response": s3_answer,
                }
            }
        ]
    }
    answered = router.respond(response_event)
    return int(answered["status"]), {name: values[0]["value"] for name, values in answered["headers"].items()}, body


@pytest.mark.parametrize("vector", REQUESTS, ids=lambda vector: vector["name"])
def test_origin_handler(router, store, vector):
    check(vector, *run_origin(router, store, vector))


@pytest.fixture(scope="module")
def viewer() -> ViewerFunction:
    return ViewerFunction(ROUTING["pointers"].get)


@pytest.mark.parametrize("vector", REQUESTS, ids=lambda vector: vector["name"])
def test_the_viewer_function_marks_the_same_requests(viewer, vector):
    headers = {name.lower(): {"value": value} for name, value in vector.get("headers", {}).items()}
    headers["host"] = {"value": vector["host"]}
    event = {
        "version": "1.0",
        "context": {"eventType": "viewer-request"},
        "viewer": {"ip": "192.0.2.1"},
        "request": {"method": "GET", "uri": vector["path"], "querystring": {}, "headers": headers},
    }
    result = viewer.run(event)
    uri, build = viewer_uri(vector)
    assert result["uri"] == uri
    assert result["headers"].get("x-troy-build") == (None if build is None else {"value": build})
    assert "x-troy-path" not in result["headers"]


@pytest.mark.parametrize(("headers", "path", "expected"), ROUTING["navigation"])
def test_navigation_is_one_rule_in_javascript_and_python(viewer, headers, path, expected):
    assert is_navigation(headers, path) is expected
    event = {
        "version": "1.0",
        "context": {"eventType": "viewer-request"},
        "viewer": {"ip": "192.0.2.1"},
        "request": {
            "method": "GET",
            "uri": path,
            "querystring": {},
            "headers": {name: {"value": value} for name, value in headers.items()}
            | {"host": {"value": "plain.example.com"}},
        },
    }
    assert viewer.run(event)["uri"].startswith("/p7/_nav/") is expected


def test_a_response_stage_without_the_handlers_marks_is_left_alone(router):
    response = {"status": "200", "headers": {"content-type": [{"key": "Content-Type", "value": "text/html"}]}}
    event = {
        "Records": [
            {
                "cf": {
                    "config": {"eventType": "origin-response"},
                    "request": {"uri": "/p6/blobs/" + "0" * 64, "headers": {}, "origin": {"s3": {"domainName": ""}}},
                    "response": json.loads(json.dumps(response)),
                }
            }
        ]
    }
    assert router.respond(event) == response


def test_a_build_without_header_rules_sends_s3_nothing_extra(router):
    routed = router.handle(origin_event({"host": "plain.example.com", "path": "/about.html"}))
    assert "x-troy-path" not in routed["headers"] and "x-troy-build" not in routed["headers"]


def test_s3_error_answers_get_no_custom_headers(router, store):
    routed = router.handle(origin_event({"host": "docs.example.com", "path": "/"}))
    assert routed["headers"]["x-troy-path"] == [{"key": "X-Troy-Path", "value": "/"}]
    event = {
        "Records": [
            {
                "cf": {
                    "config": {"eventType": "origin-response"},
                    "request": routed,
                    "response": {"status": "403", "headers": {}},
                }
            }
        ]
    }
    assert router.respond(event) == {"status": "403", "headers": {}}


def test_the_lambda_entry_point_dispatches_on_the_event_type(monkeypatch, router, store):
    from edge import origin_request

    monkeypatch.setattr(origin_request, "_router", router)
    event = origin_event({"host": "docs.example.com", "path": "/blog/"})
    routed = origin_request.handler(event, None)
    assert routed["uri"].startswith("/p6/blobs/")
    response = {"status": "200", "headers": {}}
    event["Records"][0]["cf"] |= {"config": {"eventType": "origin-response"}, "response": response}
    answered = origin_request.handler(event, None)
    assert answered["headers"]["x-robots-tag"] == [{"key": "X-Robots-Tag", "value": "noindex"}]


def test_rules_a_manifest_cannot_hold_are_a_502(store):
    objects = dict(store.objects)
    manifest = json.loads(objects[manifest_key("p7", "b5")][0])
    manifest["rules"] = {"version": 99}
    local = Store()
    local.objects = objects | {manifest_key("p7", "b5"): (json.dumps(manifest).encode(), "", "")}
    answer = OriginRouter(local.fetch).handle(origin_event({"host": "plain.example.com", "path": "/"}))
    assert answer["status"] == "502"


# --- (b) LocalEdge over moto S3, (c) over HTTP ----------------------------------------------------------


@pytest.fixture(scope="module")
def routing_edge():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        for key, (body, content_type, cache) in site_objects().items():
            client.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType=content_type, CacheControl=cache)
        yield LocalEdge(ROUTING["pointers"].get, client, BUCKET)


@pytest.mark.parametrize("vector", REQUESTS, ids=lambda vector: vector["name"])
def test_local_edge(routing_edge, vector):
    status, headers, body = routing_edge.handle(
        "GET", vector["host"], vector["path"], vector.get("query", ""), vector.get("headers", {})
    )
    check(vector, status, {name.lower(): value for name, value in headers}, body)


def test_local_edge_sends_custom_headers_once_and_on_head(routing_edge):
    status, headers, body = routing_edge.handle("HEAD", "docs.example.com", "/blog/", "", {})
    assert (status, body) == (200, b"")
    names = [name.lower() for name, _value in headers]
    assert names.count("cache-control") == 1 and names.count("x-robots-tag") == 1
    assert dict(headers)["Content-Length"] == str(len(file_body("p6/b1", "blog/index.html")))


@pytest.fixture(scope="module")
def routing_http(routing_edge):
    server = LocalEdgeServer(("127.0.0.1", 0), routing_edge, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("vector", REQUESTS, ids=lambda vector: vector["name"])
def test_over_http(routing_http, vector):
    connection = http.client.HTTPConnection("127.0.0.1", routing_http, timeout=10)
    try:
        target = vector["path"] + (f"?{vector['query']}" if vector.get("query") else "")
        connection.request("GET", target, headers={"Host": vector["host"], **vector.get("headers", {})})
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        check(vector, response.status, headers, response.read())
    finally:
        connection.close()


def test_the_query_reaches_the_rules_as_sent(routing_edge):
    # LocalEdge parses the query only for the viewer's view; the rules get the raw string.
    status, headers, _body = routing_edge.handle("GET", "docs.example.com", "/home", "a=%20b&c", {})
    assert (status, dict(headers)["Location"]) == (301, "/?a=%20b&c")


def test_a_navigation_marker_without_a_build_is_a_404_without_reading_anything():
    reads = []
    router = OriginRouter(lambda bucket, key: reads.append(key) or b"")
    for uri in ("/p6/_nav", "/p6/_nav/"):
        event = origin_event({"host": "docs.example.com", "path": "/"})
        event["Records"][0]["cf"]["request"]["uri"] = uri
        assert router.handle(event)["status"] == "404"
    assert reads == []


def test_the_lambda_package_holds_every_edge_module_the_handler_imports():
    """The Lambda@Edge zip lists its modules (deployment_service/integrations/edge_lambda.py,
    LAMBDA_MODULES): with rules applied, origin_request needs edge/rules.py too."""
    import ast

    edge_dir = Path(__file__).resolve().parents[2] / "edge"
    needed, todo = {"__init__.py"}, ["origin_request.py"]
    while todo:
        name = todo.pop()
        needed.add(name)
        for node in ast.walk(ast.parse((edge_dir / name).read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edge."):
                module = node.module.split(".", 1)[1] + ".py"
                if module not in needed:
                    todo.append(module)
    # The package holds exactly these (edge/ imports nothing of the server; the test may).
    from deployment_service.integrations.edge_lambda import LAMBDA_MODULES

    assert needed == set(LAMBDA_MODULES) == {"__init__.py", "manifest.py", "origin_request.py", "rules.py"}

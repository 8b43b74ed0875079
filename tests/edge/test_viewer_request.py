"""The viewer function's JavaScript, run in V8 exactly as the local edge runs it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest

from edge.local import EMULATED_RUNTIME, IMPORT_LINE, VIEWER_FUNCTION, ViewerFunction, load_viewer_function
from edge.manifest import is_fingerprinted
from tests.edge.conftest import VECTORS, vector_id


def viewer_event(vector: dict) -> dict:
    headers = {name.lower(): {"value": value} for name, value in vector.get("headers", {}).items()}
    headers["host"] = {"value": vector["host"]}
    return {
        "version": "1.0",
        "context": {"eventType": "viewer-request"},
        "viewer": {"ip": "192.0.2.1"},
        "request": {
            "method": "GET",
            "uri": vector["uri"],
            "querystring": {"keep": {"value": "me"}},
            "headers": headers,
        },
    }


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=vector_id)
def test_viewer_vector(viewer, vector):
    result = viewer.run(viewer_event(vector))
    expected = vector["viewer"]
    if "status" in expected:
        assert result["statusCode"] == expected["status"]
        assert result["body"]["encoding"] == "text"
        assert expected["says"] in result["body"]["data"]
        assert result["headers"]["content-type"]["value"].startswith("text/html")
        return
    assert "statusCode" not in result
    assert result["uri"] == expected["uri"]
    assert result["querystring"] == {"keep": {"value": "me"}}
    build_header = result["headers"].get("x-troy-build")
    if "build" in expected:
        assert build_header == {"value": expected["build"]}
    else:
        assert build_header is None


@pytest.mark.parametrize(("uri", "expected"), VECTORS["fingerprint"])
def test_fingerprint_rule_is_the_same_in_javascript_and_python(viewer, uri, expected):
    assert viewer.is_fingerprinted(uri) is expected
    try:
        decoded = unquote(uri, errors="strict")
    except UnicodeDecodeError:
        # Never a manifest path (manifests hold decoded text); JavaScript refuses it above.
        return
    assert is_fingerprinted(decoded) is expected


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=vector_id)
def test_fingerprint_rule_agrees_on_every_routing_vector(viewer, vector):
    assert viewer.is_fingerprinted(vector["uri"]) is is_fingerprinted(unquote(vector["uri"]))


def test_function_fits_cloudfront_size_limit():
    assert len(VIEWER_FUNCTION.read_bytes()) < 10 * 1024


def test_only_the_import_line_differs_from_what_cloudfront_runs():
    source = VIEWER_FUNCTION.read_text()
    loaded = load_viewer_function()
    runtime = EMULATED_RUNTIME.read_text()
    # The emulated runtime modules (require('crypto'), Buffer) come first, then the source as is.
    assert loaded.startswith(runtime)
    loaded = loaded[len(runtime) :]
    before, _, after = source.partition(IMPORT_LINE)
    assert loaded.startswith(before)
    assert after in loaded
    assert "import " not in loaded.replace("import cf", "")


def test_a_source_without_the_import_line_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="exactly one"):
        load_viewer_function("async function handler(event) { return event.request; }")


def test_the_function_asks_the_store_for_the_host_without_port_in_lower_case():
    asked = []

    def lookup(host):
        asked.append(host)
        return "p1/b1"

    ViewerFunction(lookup).run(viewer_event({"host": "Shop.Example.COM:8443", "uri": "/"}))
    assert asked == ["shop.example.com"]


def test_a_pointer_change_is_seen_by_the_next_request():
    pointers = {"site.example.com": "p1/b1"}
    viewer = ViewerFunction(pointers.get)
    event = {"host": "site.example.com", "uri": "/"}
    assert viewer.run(viewer_event(event))["uri"] == "/p1/b1/"
    pointers["site.example.com"] = "p1/b2"
    assert viewer.run(viewer_event(event))["uri"] == "/p1/b2/"

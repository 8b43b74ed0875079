"""The local edge: serves every pipeline's live build by Host header, running the same code as
CloudFront: viewer_request.js in an embedded V8 (mini-racer) and origin_request in-process, over
the configured S3; and LocalEdgeServer, its HTTP/1.1 server. Used by `manage.py edge` and the dev
run (operations/local_edge.py wires in the database's pointers)."""

from __future__ import annotations

import base64
from collections import OrderedDict
from collections.abc import Callable
import html
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import logging
from pathlib import Path
import socket
import sys
import threading
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from botocore.exceptions import ClientError
from py_mini_racer import JSEvalException, JSPromise, JSPromiseError, MiniRacer

from edge.origin_request import PATH_HEADER, OriginRouter

logger = logging.getLogger(__name__)

VIEWER_FUNCTION = Path(__file__).with_name("viewer_request.js")
# CloudFront Functions runtime 2.0's `require('crypto')` and `Buffer`, as far as the function uses
# them, in plain JavaScript: V8 alone has neither. Local edge and tests only, never shipped.
EMULATED_RUNTIME = Path(__file__).with_name("emulated_runtime.js")
IMPORT_LINE = "import cf from 'cloudfront';"

# The emulated `cloudfront` module. kvs().get cannot call into Python synchronously from
# mini-racer, so the function runs in passes: a key not answered yet is recorded and rejected
# as missing; Python looks the recorded keys up and runs the function again with the answers.
# The function is deterministic (no clock, no randomness), so the last pass is what CloudFront
# would have answered.
EMULATED_CLOUDFRONT = """
var __troyKvsAnswers = {};
var __troyKvsAsked = [];
var cf = {
  kvs: function () {
    return {
      get: function (key) {
        if (Object.prototype.hasOwnProperty.call(__troyKvsAnswers, key)) {
          var value = __troyKvsAnswers[key];
          return value === null ? Promise.reject(new Error('Key not found')) : Promise.resolve(value);
        }
        __troyKvsAsked.push(key);
        return Promise.reject(new Error('Key not found'));
      },
    };
  },
};
"""

# The run's result is left in a global: V8 runs the promise jobs when an eval returns, so the next
# eval reads it (about 1 ms cheaper than mini-racer's JSPromise.get(), which waits on a thread).
RUNNER = """
var __troyOutcome = null;
var __troyPending = null;
async function __troyRun(event, answers) {
  __troyKvsAnswers = answers;
  __troyKvsAsked = [];
  var result = await handler(event);
  return JSON.stringify({result: result, asked: __troyKvsAsked});
}
function __troyStart(event, answers) {
  __troyOutcome = null;
  __troyPending = __troyRun(event, answers);
  __troyPending.then(function (outcome) { __troyOutcome = outcome; });
  return 0;
}
"""

MAX_PASSES = 4
FUNCTION_FAILED = b"503 The CloudFront function failed (see the edge log)\n"
ORIGIN_FAILED = b"502 The local edge could not reach S3 or the pointers (see its log)\n"
# What a distribution allows (deployment_service/integrations/cloudfront.py AllowedMethods); other
# methods get CloudFront's own 403 before any function runs.
ALLOWED_METHODS = ("GET", "HEAD")
METHOD_NOT_ALLOWED = b"403 This distribution is not configured to allow the HTTP request method that was used.\n"
PointerLookup = Callable[[str], "str | None"]


def load_viewer_function(source: str | None = None) -> str:
    """The function's source with its one ES-module line replaced by the emulated module (and the
    emulated runtime modules before it): the only difference between what CloudFront runs and
    what runs here."""
    source = VIEWER_FUNCTION.read_text() if source is None else source
    if source.count(IMPORT_LINE) != 1:
        raise ValueError(f"the viewer function must contain exactly one {IMPORT_LINE!r} line")
    return EMULATED_RUNTIME.read_text() + source.replace(IMPORT_LINE, EMULATED_CLOUDFRONT) + RUNNER


class ViewerFunction:
    """The compiled viewer function, one V8 context shared under a lock (a run takes well
    under a millisecond; a context per thread would cost a V8 isolate per dev-server thread)."""

    def __init__(self, lookup_pointer: PointerLookup, source: str | None = None) -> None:
        self.lookup_pointer = lookup_pointer
        self._lock = threading.Lock()
        self._ctx = MiniRacer()
        self._ctx.eval(load_viewer_function(source))

    def run(self, event: dict[str, Any], likely_key: str | None = None) -> dict[str, Any]:
        """CloudFront's answer to a viewer-request event: the (rewritten) request, or a response
        when it has `statusCode`. likely_key is looked up before the first pass, which saves a
        pass when the function asks for it; what the function asks for still decides."""
        answers: dict[str, str | None] = {} if likely_key is None else {likely_key: self.lookup_pointer(likely_key)}
        for _ in range(MAX_PASSES):
            with self._lock:
                self._ctx.eval(f"__troyStart({json.dumps(event)}, {json.dumps(answers)})")
                raw = self._ctx.eval("__troyOutcome")
                if raw is None:  # still pending: wait for it the slow way
                    pending = self._ctx.eval("__troyPending")
                    assert isinstance(pending, JSPromise)
                    raw = pending.get()
                assert isinstance(raw, str), "__troyRun resolves to a JSON string"
                outcome = json.loads(raw)
            asked = [key for key in outcome["asked"] if key not in answers]
            if not asked:
                return outcome["result"]
            for key in asked:
                answers[key] = self.lookup_pointer(key)
        raise RuntimeError(f"the viewer function asked for new keys in each of {MAX_PASSES} passes")

    def is_fingerprinted(self, uri: str) -> bool:
        with self._lock:
            return bool(self._ctx.call("isFingerprinted", uri))


Response = tuple[int, list[tuple[str, str]], bytes]
BLOB_CACHE_BYTES = 64 * 1024 * 1024
BLOB_CACHE_MAX_ITEM = 1024 * 1024  # a bigger blob is fetched each time: it would push out many small ones


class BlobCache:
    """LRU of blobs by S3 key, bounded in bytes. Blob keys are content-addressed (edge.manifest:
    the hash of the bytes and the headers they are served with), so an entry never goes stale."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[str, tuple[list[tuple[str, str]], bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[list[tuple[str, str]], bytes] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: str, headers: list[tuple[str, str]], body: bytes) -> None:
        if len(body) > min(BLOB_CACHE_MAX_ITEM, self.max_bytes):
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = (headers, body)
            self.size += len(body)
            while self.size > self.max_bytes:
                _key, (_headers, dropped) = self._entries.popitem(last=False)
                self.size -= len(dropped)


SITES_LINK = '<p>The sites this Troy serves are listed at <a href="{url}">{url}</a>.</p>'


class LocalEdge:
    def __init__(
        self,
        lookup_pointer: PointerLookup,
        s3_client: Any,
        bucket: str,
        *,
        sites_url: str = "",
        blob_cache_bytes: int = BLOB_CACHE_BYTES,
    ) -> None:
        """lookup_pointer(host) → "{pipeline}/{build}" for a live host, "" for a known host with
        nothing live, None for an unknown host (host lowercased, without port).

        blob_cache_bytes: memory for blobs already fetched (0: every answer GETs its blob). A blob's
        key is its content's hash, so a cached one is never stale: this is the local stand-in for
        CloudFront's cache, and what keeps an answer in milliseconds over an emulator whose
        GetObject alone takes ~15 ms. Manifests are cached either way (origin_request).

        sites_url: where a person finds the list of sites (the service's own `/`); the viewer
        function's 404 pages then link to it. Only the local edge adds the link: at CloudFront
        the function does not know the service's address, and a visitor there is not its user."""
        self.s3 = s3_client
        self.bucket = bucket
        self.sites_url = sites_url
        self.blobs = BlobCache(blob_cache_bytes)
        self.viewer = ViewerFunction(lookup_pointer)
        self.origin = OriginRouter(self._fetch_object, list_keys=self._list_keys)

    def handle(self, method: str, host: str, path: str, query: str, headers: dict[str, str]) -> Response:
        """path is the raw (percent-encoded) path, query the raw query string."""
        if method not in ALLOWED_METHODS:
            return _finish(403, [("Content-Type", "text/plain; charset=utf-8")], METHOD_NOT_ALLOWED, method)
        viewer_event = {
            "version": "1.0",
            "context": {"eventType": "viewer-request"},
            "viewer": {"ip": "127.0.0.1"},
            "request": {
                "method": method,
                "uri": path,
                "querystring": {name: {"value": value} for name, value in parse_qsl(query, keep_blank_values=True)},
                "headers": {name.lower(): {"value": value} for name, value in headers.items()}
                | {"host": {"value": host}},
                "cookies": {},
            },
        }
        try:
            viewed = self.viewer.run(viewer_event, likely_key=host.lower().rsplit(":", 1)[0].rstrip("."))
        except (JSEvalException, JSPromiseError):
            # What CloudFront answers when a viewer function throws.
            logger.exception("viewer function failed for %s%s", host, path)
            return _finish(503, [("Content-Type", "text/plain; charset=utf-8")], FUNCTION_FAILED, method)
        if "statusCode" in viewed:
            return self._from_function_response(viewed, method, self.sites_url)
        origin_event = {
            "Records": [
                {
                    "cf": {
                        "config": {"eventType": "origin-request", "distributionId": "LOCAL"},
                        "request": {
                            "clientIp": "127.0.0.1",
                            "method": method,
                            "uri": viewed["uri"],
                            "querystring": query,
                            "headers": {
                                name: [{"key": name, "value": header["value"]}]
                                for name, header in viewed["headers"].items()
                            },
                            "origin": {
                                "s3": {
                                    "domainName": f"{self.bucket}.s3.amazonaws.com",
                                    "path": "",
                                    "customHeaders": {},
                                    "authMethod": "origin-access-identity",
                                }
                            },
                        },
                    }
                }
            ]
        }
        routed = self.origin.handle(origin_event)
        if "status" in routed:
            return self._from_generated_response(routed, method)
        answer = self._from_s3(routed["uri"].lstrip("/"), method)
        return self._origin_response(origin_event, routed, answer)

    def _origin_response(self, origin_event: dict[str, Any], routed: dict[str, Any], answer: Response) -> Response:
        """The origin-response stage, as the same Lambda runs it at CloudFront: S3's answer gets
        the build's custom headers (origin_request.OriginRouter.respond). Only requests the
        origin stage marked (a build with header rules) need it."""
        if PATH_HEADER not in routed.get("headers", {}):
            return answer
        status, headers, body = answer
        response = {
            "status": str(status),
            "statusDescription": "",
            "headers": {name.lower(): [{"key": name, "value": value}] for name, value in headers},
        }
        record = origin_event["Records"][0]["cf"]
        event = {
            "Records": [
                {
                    "cf": {
                        "config": {**record["config"], "eventType": "origin-response"},
                        "request": routed,
                        "response": response,
                    }
                }
            ]
        }
        answered = self.origin.respond(event)
        return (
            status,
            [(entry["key"], entry["value"]) for values in answered["headers"].values() for entry in values],
            body,
        )

    def _list_keys(self, bucket: str, prefix: str) -> list[str]:
        """What the Lambda lists to find a retained build's fingerprinted asset (origin_request)."""
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def _fetch_object(self, bucket: str, key: str) -> bytes:
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                raise KeyError(key) from exc
            raise

    def _from_s3(self, key: str, method: str) -> Response:
        cached = self.blobs.get(key)
        if cached is not None:
            headers, body = cached
            return 200, headers, b"" if method == "HEAD" else body
        try:
            if method == "HEAD":
                found = self.s3.head_object(Bucket=self.bucket, Key=key)
                body = b""
            else:
                found = self.s3.get_object(Bucket=self.bucket, Key=key)
                body = found["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                # The manifest names a blob that is gone: what CloudFront would pass on from S3.
                return 502, [("Content-Type", "text/plain; charset=utf-8")], b"blob missing from the bucket\n"
            raise
        headers = [("Content-Type", found.get("ContentType", "application/octet-stream"))]
        if found.get("CacheControl"):
            headers.append(("Cache-Control", found["CacheControl"]))
        if found.get("ETag"):
            headers.append(("ETag", found["ETag"]))
        headers.append(("Content-Length", str(found["ContentLength"])))
        if method != "HEAD":
            self.blobs.put(key, headers, body)
        return 200, headers, body

    @staticmethod
    def _from_function_response(response: dict[str, Any], method: str, sites_url: str = "") -> Response:
        body_spec = response.get("body") or {}
        if isinstance(body_spec, str):
            body = body_spec.encode("utf-8")
        elif body_spec.get("encoding") == "base64":
            body = base64.b64decode(body_spec.get("data", ""))
        else:
            body = body_spec.get("data", "").encode("utf-8")
        headers = [(name, value["value"]) for name, value in (response.get("headers") or {}).items()]
        status = int(response["statusCode"])
        content_type = next((value for name, value in headers if name.lower() == "content-type"), "")
        if sites_url and status == 404 and content_type.startswith("text/html"):
            body += SITES_LINK.format(url=html.escape(sites_url, quote=True)).encode("utf-8")
        return _finish(status, headers, body, method)

    @staticmethod
    def _from_generated_response(response: dict[str, Any], method: str) -> Response:
        raw = response.get("body", "")
        body = base64.b64decode(raw) if response.get("bodyEncoding") == "base64" else raw.encode("utf-8")
        headers = [
            (entry["key"], entry["value"]) for values in response.get("headers", {}).values() for entry in values
        ]
        return _finish(int(response["status"]), headers, body, method)


def _finish(status: int, headers: list[tuple[str, str]], body: bytes, method: str) -> Response:
    headers = [*headers, ("Content-Length", str(len(body)))]
    return status, headers, b"" if method == "HEAD" else body


class EdgeRequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive in front of LocalEdge.handle; one access-log line per request on
    stderr, in the common format of http.server (and Django's dev server)."""

    protocol_version = "HTTP/1.1"
    server_version = "troy-local-edge"
    # Headers and body are two writes: with Nagle's algorithm the body waits for the client's
    # delayed ACK (40 ms per keep-alive request on Linux).
    disable_nagle_algorithm = True
    server: LocalEdgeServer

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _serve(self) -> None:
        # An absolute-form target (a proxy-style request) carries its own host.
        absolute = self.path.startswith(("http://", "https://"))
        target = urlsplit(self.path if absolute else "http://_" + self.path)
        host = target.netloc if absolute else self.headers.get("Host", "")
        path = target.path or "/"
        headers = {name.lower(): value for name, value in self.headers.items()}
        # A body is never read by the edge (GET/HEAD); drain one so the connection stays usable.
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "Bad Content-Length")
            return
        if length > 0:
            self.rfile.read(length)
        try:
            status, response_headers, body = self.server.edge.handle(self.command, host, path, target.query, headers)
        except Exception:
            # What CloudFront answers when it cannot reach the origin (here: S3 or the pointers).
            logger.exception("local edge: %s %s for %s failed", self.command, path, host)
            status, response_headers, body = _finish(
                502, [("Content-Type", "text/plain; charset=utf-8")], ORIGIN_FAILED, self.command
            )
        finally:
            self.server.request_done()
        # The access line shows the bytes sent, as Django's dev server does (send_response logs "-").
        self.log_request(status, len(body) if self.command != "HEAD" else 0)
        self.send_response_only(status)
        self.send_header("Server", self.version_string())
        self.send_header("Date", self.date_time_string())
        for name, value in response_headers:
            self.send_header(name, value)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            super().log_message(format, *args)


class LocalEdgeServer(ThreadingHTTPServer):
    """A thread per connection. after_request runs in the request's thread once each request is
    answered and at_thread_exit when a connection's thread ends (the caller closes its database
    connections there: the pointer lookup may read a database)."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        edge: LocalEdge,
        *,
        quiet: bool = False,
        after_request: Callable[[], object] | None = None,
        at_thread_exit: Callable[[], object] | None = None,
    ) -> None:
        self.edge = edge
        self.quiet = quiet
        self._after_request = after_request
        self._at_thread_exit = at_thread_exit
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, EdgeRequestHandler)

    def request_done(self) -> None:
        if self._after_request is not None:
            self._after_request()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-answer (a reload, a load generator stopping) is no error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            if self._at_thread_exit is not None:
                self._at_thread_exit()


__all__ = ["LocalEdge", "LocalEdgeServer", "ViewerFunction", "load_viewer_function"]

"""The local edge's latency for a request whose build manifest is already cached.

1. In-process: LocalEdge.handle (the viewer function in V8, the origin handler, the blob from
   its cache or a GET) against in-process moto S3, and its stages alone.
2. Over HTTP (``--http-seconds``, 0 to skip): ``manage.py edge`` as its own process, reading the
   pointer from a SQLite database (EdgePointer rows written by the services, as a deploy leaves
   them) and the blobs from a moto server process, under a keep-alive load: ``--connections``
   client threads, each on one persistent connection, sending GETs back to back (wrk's model; wrk
   itself is run too when it is on PATH). Median and p99 per concurrency.

    /work/main/.venv/bin/python benchmarks/edge_local_bench.py [--calls 1000] [--http-seconds 5]

A command, not a test: nothing here asserts a time. Everything lives in a temporary folder.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
from pathlib import Path
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import boto3
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, as deploy_bench.py

from edge.local import LocalEdge
from edge.manifest import FileEntry, Manifest, blob_key, content_key, dumps, manifest_key

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "troy-edge-bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--files", type=int, default=2000, help="files in the build's manifest")
    parser.add_argument("--http-seconds", type=float, default=5, help="seconds of load per concurrency (0: skip)")
    parser.add_argument("--connections", default="1,4", help="concurrencies to measure over HTTP (comma-separated)")
    args = parser.parse_args()
    in_process(args)
    if args.http_seconds > 0:
        over_http(args)


def in_process(args: argparse.Namespace) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        files = {}
        for number in range(args.files):
            body = f"<p>page {number}</p>".encode()
            key = content_key(hashlib.sha256(body).hexdigest(), "text/html", "no-cache")
            files[f"pages/{number}/index.html"] = FileEntry(key=key, type="text/html", cache="no-cache", size=len(body))
            if number < 10:
                s3.put_object(Bucket=BUCKET, Key=blob_key("p1", key), Body=body, ContentType="text/html")
        manifest = Manifest(pipeline_id="p1", build_id="b1", files=files)
        s3.put_object(Bucket=BUCKET, Key=manifest_key("p1", "b1"), Body=dumps(manifest))
        edge = LocalEdge({"site.localhost": "p1/b1"}.get, s3, BUCKET)
        uncached = LocalEdge({"site.localhost": "p1/b1"}.get, s3, BUCKET, blob_cache_bytes=0)
        uncached.handle("GET", "site.localhost:8000", "/pages/1/", "", {})
        edge.handle("GET", "site.localhost:8000", "/pages/1/", "", {})  # loads and caches the manifest

        def timed(call):
            started = time.perf_counter()
            call()
            return (time.perf_counter() - started) * 1000

        stages = {
            "handle (blob cached)": lambda: edge.handle("GET", "site.localhost:8000", "/pages/3/", "", {}),
            "handle (blob cache off: + S3 GET)": lambda: uncached.handle(
                "GET", "site.localhost:8000", "/pages/3/", "", {}
            ),
            "viewer function only": lambda: edge.viewer.run(
                {
                    "request": {
                        "method": "GET",
                        "uri": "/pages/3/",
                        "querystring": {},
                        "headers": {"host": {"value": "site.localhost"}},
                    }
                },
                likely_key="site.localhost",
            ),
            "moto S3 GET only": lambda: s3.get_object(
                Bucket=BUCKET, Key=blob_key("p1", files["pages/3/index.html"].key)
            )["Body"].read(),
        }
        for name, call in stages.items():
            samples = sorted(timed(call) for _ in range(args.calls))
            print(
                f"{name:36} median {statistics.median(samples):6.2f} ms"
                f"  p90 {samples[int(len(samples) * 0.9)]:6.2f} ms  ({args.calls} calls, {args.files}-file manifest)"
            )


# --- over HTTP ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(port: int, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not listen on {port} within {timeout} s")


def _seed(files: int, bucket: str) -> None:
    """A pipeline with a live build: its manifest and ten of its blobs in the bucket, gone live
    through the services (the pointer row the edge reads)."""
    import django
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    django.setup()
    from deployment_service import aws
    from pipelines import services
    from pipelines.choices import BuildKind, BuildTrigger, PipelineStatus
    from pipelines.models import Pipeline

    call_command("migrate", interactive=False, verbosity=0)
    owner = get_user_model().objects.create_user(username="bench")
    pipeline = Pipeline.objects.create(name="site", owner=owner, repository="")
    Pipeline.objects.filter(pk=pipeline.pk).update(status=PipelineStatus.READY_FOR_DEPLOYMENT)
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    build = services.build_request(
        pipeline_id=pipeline.pk,
        kind=BuildKind.RELEASE,
        trigger=BuildTrigger.CLI,
        actor="bench",
        artifact_key="bench.zip",
    )
    services.deployment_start(pipeline_id=pipeline.pk)
    entries = {}
    for number in range(files):
        body = f"<p>page {number}</p>".encode()
        key = content_key(hashlib.sha256(body).hexdigest(), "text/html", "no-cache")
        entries[f"pages/{number}/index.html"] = FileEntry(key=key, type="text/html", cache="no-cache", size=len(body))
        if number < 10:
            s3.put_object(Bucket=bucket, Key=blob_key(str(pipeline.pk), key), Body=body, ContentType="text/html")
    manifest = Manifest(pipeline_id=str(pipeline.pk), build_id=str(build.pk), files=entries)
    s3.put_object(Bucket=bucket, Key=manifest_key(str(pipeline.pk), str(build.pk)), Body=dumps(manifest))
    services.deployment_finish(build_id=build.pk, stats={"files_total": files})


def _load(port: int, connections: int, seconds: float) -> list[float]:
    """Keep-alive GETs back to back on ``connections`` persistent connections; latencies in ms."""
    samples: list[list[float]] = [[] for _ in range(connections)]
    stop_at = time.monotonic() + seconds
    headers = {"Host": f"site.localhost:{port}"}

    def client(mine: list[float]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            conn.request("GET", "/pages/3/", headers=headers)
            response = conn.getresponse()
            body = response.read()
            mine.append((time.perf_counter() - started) * 1000)
            if response.status != 200 or body != b"<p>page 3</p>":
                raise SystemExit(f"unexpected answer {response.status} {body[:80]!r}")
        conn.close()

    threads = [threading.Thread(target=client, args=(mine,)) for mine in samples]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(value for mine in samples for value in mine)


def _run_wrk(edge_port: int, args: argparse.Namespace) -> None:
    """wrk's own numbers, when it is installed (Debian: apt-get install wrk; not on PyPI)."""
    wrk = shutil.which("wrk")
    if not wrk:
        return
    for connections in (int(c) for c in args.connections.split(",")):
        command = [
            wrk,
            f"-t{min(connections, 2)}",
            f"-c{connections}",
            f"-d{max(1, round(args.http_seconds))}s",
            "--latency",
            "-H",
            f"Host: site.localhost:{edge_port}",
            f"http://127.0.0.1:{edge_port}/pages/3/",
        ]
        report = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        print(f"wrk -c{connections}:\n{report}")


def over_http(args: argparse.Namespace) -> None:
    bucket = "troy-edge-bench"
    with tempfile.TemporaryDirectory(prefix="troy-edgebench-") as tmp:
        moto_port, edge_port = _free_port(), _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TROY_", "AWS_", "DATABASE"))}
        env.update(
            DJANGO_SETTINGS_MODULE="deployment_service.settings",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(32),
            DATABASE_URL=f"sqlite:///{tmp}/troy.sqlite3",
            DRAMATIQ_BROKER_URL="",
            TROY_DATA_DIR=f"{tmp}/var",
            TROY_LIVE_BUCKET=bucket,
            TROY_EDGE_POINTERS="local",
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{moto_port}",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION="us-east-1",
            PYTHONUNBUFFERED="1",
        )
        started: list[subprocess.Popen] = []
        try:
            moto = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            started.append(moto)
            _wait_listening(moto_port, moto, "moto server")
            os.environ.update(env)
            _seed(args.files, bucket)
            for flags, what in (([], "blob cached"), (["--no-blob-cache"], "blob GET from moto")):
                edge = subprocess.Popen(
                    [sys.executable, "manage.py", "edge", "--port", str(edge_port), "--quiet", *flags],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
                started.append(edge)
                _wait_listening(edge_port, edge, "manage.py edge")
                _load(edge_port, 1, 0.5)  # warm: the manifest is fetched and cached, V8 compiled
                for connections in (int(c) for c in args.connections.split(",")):
                    samples = _load(edge_port, connections, args.http_seconds)
                    rate = len(samples) / args.http_seconds
                    print(
                        f"HTTP keep-alive, {connections} conn, {what:18} median {statistics.median(samples):6.2f} ms"
                        f"  p99 {samples[int(len(samples) * 0.99)]:6.2f} ms  ({len(samples)} requests, {rate:.0f}/s)"
                    )
                if not flags:
                    _run_wrk(edge_port, args)
                started.remove(edge)
                edge.terminate()
                edge.wait(timeout=15)
        finally:
            for process in reversed(started):
                process.terminate()
                process.wait(timeout=15)


if __name__ == "__main__":
    main()

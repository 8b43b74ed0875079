"""Median latency of LocalEdge.handle for a request whose build manifest is already cached: the
viewer function in V8, the origin handler and the blob GET against in-process moto S3.

    /work/main/.venv/bin/python benchmarks/edge_local_bench.py [--calls 1000]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
import statistics
import sys
import time

import boto3
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, as deploy_bench.py

from edge.local import LocalEdge
from edge.manifest import FileEntry, Manifest, blob_key, content_key, dumps, manifest_key

BUCKET = "troy-edge-bench"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--files", type=int, default=2000, help="files in the build's manifest")
    args = parser.parse_args()
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
        edge.handle("GET", "site.localhost:8000", "/pages/1/", "", {})  # loads and caches the manifest

        def timed(call):
            started = time.perf_counter()
            call()
            return (time.perf_counter() - started) * 1000

        stages = {
            "handle (viewer + origin + S3 GET)": lambda: edge.handle("GET", "site.localhost:8000", "/pages/3/", "", {}),
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


if __name__ == "__main__":
    main()

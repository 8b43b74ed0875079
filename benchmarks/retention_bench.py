#!/usr/bin/env python
"""Retention benchmark (issue 9): one retention run over a pipeline with more stored builds than
it retains, against one `moto.server` on loopback.

    .venv/bin/python benchmarks/retention_bench.py                 # 12 builds × 2,000 files
    .venv/bin/python benchmarks/retention_bench.py --builds 12 --files 2000 --changed 100 --json

Each build stores ``--files`` files (small bodies: retention never reads a blob) of which
``--changed`` differ from the build before, so blobs are shared as a real site's are; builds are
written directly with the edge/manifest.py helpers, as the deploy step writes them, and go live
through the real services. With ``TROY_RETAINED_BUILDS`` 10 and 12 builds, a run lets 2 go.
Measured: the first run (forget, delete manifests, list and delete blobs) and a second run (must
delete nothing), with their S3 calls counted by botocore hooks, and a bare paginated LIST of the same blobs as a
baseline (the emulator's listing dominates). A command, not a test.
"""

from __future__ import annotations

import argparse
from collections import Counter
import hashlib
import json
from pathlib import Path
import shutil
import socket
import sys
import tempfile
import time

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.deploy_bench import bench_environment, django_setup, start_moto  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builds", type=int, default=12)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument("--retained", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="troy-retention-bench-"))
    port = free_port()
    moto = start_moto(port)
    try:
        env = bench_environment(workdir, f"http://127.0.0.1:{port}")
        env["TROY_BLOB_GRACE_SECONDS"] = "0"  # everything was "written long ago"
        env["TROY_RETAINED_BUILDS"] = str(args.retained)
        env["TROY_EDGE_POINTERS"] = "local"
        django_setup(env)
        results = run(args)
    finally:
        moto.terminate()
        moto.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name in ("first", "second"):
            r = results[name]
            calls = ", ".join(f"{count} {op}" for op, count in sorted(r["s3_calls"].items())) or "none"
            print(
                f"{name} run: {r['seconds']:.2f} s; let go {r['unstored']} build(s), deleted {r['manifests_deleted']} "
                f"manifest(s) and {r['blobs_deleted']} blob(s); S3: {calls}"
            )
        raw = results["raw_list"]
        print(f"baseline: a bare paginated LIST of the {raw['keys']} blobs takes {raw['seconds']:.2f} s")
        print(f"set-up: {results['builds']} builds × {results['files']} files, {results['blobs']} blobs stored")


def run(args: argparse.Namespace) -> dict:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from deployment_service import aws
    from deployment_service.bootstrap import bootstrap_aws_resources
    from edge.manifest import FileEntry, Manifest, blob_key, content_key, dumps, manifest_key
    from pipelines import services
    from pipelines.choices import BuildKind, BuildTrigger
    from pipelines.choices import PipelineStatus as S
    from pipelines.flows.retention import retention_run
    from pipelines.models import Pipeline

    call_command("migrate", verbosity=0)
    bootstrap_aws_resources()
    owner = get_user_model().objects.create_user(username="bench")
    pipeline = Pipeline.objects.create(name="retention-bench", owner=owner, repository="", edge_router="bench")
    Pipeline.objects.filter(pk=pipeline.pk).update(status=S.READY_FOR_DEPLOYMENT)
    s3 = aws.client("s3")
    bucket = settings.TROY_LIVE_BUCKET
    html = ("text/html", "public, max-age=0, must-revalidate")
    stored: set[str] = set()

    for number in range(1, args.builds + 1):
        build = services.build_request(
            pipeline_id=pipeline.id,
            kind=BuildKind.RELEASE,
            trigger=BuildTrigger.CLI,
            actor="bench",
            artifact_key=f"releases/{number}.zip",
        )
        services.deployment_start(pipeline_id=pipeline.id)
        files = {}
        for index in range(args.files):
            # The first `changed` files are rewritten by every build; the others never change.
            body = f"file {index} version {number if index < args.changed else 1}".encode()
            key = content_key(hashlib.sha256(body).hexdigest(), *html)
            if key not in stored:
                s3.put_object(Bucket=bucket, Key=blob_key(str(pipeline.id), key), Body=body)
                stored.add(key)
            files[f"page-{index}.html"] = FileEntry(key=key, type=html[0], cache=html[1], size=len(body))
        manifest = Manifest(pipeline_id=str(pipeline.id), build_id=str(build.id), files=files)
        s3.put_object(Bucket=bucket, Key=manifest_key(str(pipeline.id), str(build.id)), Body=dumps(manifest))
        services.deployment_finish(build_id=build.id, stats={"files_total": args.files})

    calls: Counter[str] = Counter()
    s3.meta.events.register("before-call.s3.*", lambda event_name, **_: calls.update([event_name.split(".")[-1]]))
    results = {"builds": args.builds, "files": args.files, "blobs": len(stored)}
    for name in ("first", "second"):
        calls.clear()
        started = time.perf_counter()
        report = retention_run(pipeline_id=pipeline.id)
        seconds = time.perf_counter() - started
        results[name] = {
            "seconds": round(seconds, 3),
            "unstored": len(report.unstored),
            "manifests_deleted": report.manifests_deleted,
            "blobs_deleted": report.blobs_deleted,
            "s3_calls": dict(calls),
        }
    started = time.perf_counter()
    listed = sum(
        len(page.get("Contents", []))
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{pipeline.id}/blobs/")
    )
    results["raw_list"] = {"seconds": round(time.perf_counter() - started, 3), "keys": listed}
    return results


if __name__ == "__main__":
    main()

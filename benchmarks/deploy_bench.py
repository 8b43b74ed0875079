#!/usr/bin/env python
"""Deploy-step benchmark (issue 9): storing immutable builds against one `moto.server` on
loopback, in one run.

    .venv/bin/python benchmarks/deploy_bench.py                 # ~15 minutes; numbers → stdout
    .venv/bin/python benchmarks/deploy_bench.py --skip-many     # ~2 minutes (moto takes ~170 PUT/s,
                                                                #  so 100,000 blobs take ~10 of the 15)
    .venv/bin/python benchmarks/deploy_bench.py --json          # the same, machine-readable
    .venv/bin/python benchmarks/deploy_bench.py --skip-rss      # only the 2,000-file runs

On a generated site of 2,000 files (about 31 MB, mixed sizes), one pipeline:
  (e) a raw boto3 PUT loop of the same files on TROY_DEPLOY_CONCURRENCY (16) threads, run before
      (a) and after (r); its mean is the reference
  (a) full deploy (first build: every blob and the manifest)
  (b) same-content redeploy (target: 0 blob PUTs)
  (c) one file changed (target: that blob's PUT and the manifest's PUT, besides reads; ≤ 0.05 × (a))
  (r) rollback to build 1 (target: 0 S3 writes)
each with every request the worker sent, by operation and by what it named (artifact zip, blob,
manifest, blob listing). Then the worker's peak RSS (a fresh process each, ru_maxrss) deploying a
500 MB artifact and a 100,000-file (1 KB each) artifact; target < 250 MB each.

Everything (database, spool, site) lives in a temporary folder removed at the end. This is a
command, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
import json
import os
from pathlib import Path
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MB = 1024 * 1024
WORDS = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "function",
    "const",
    "return",
    "import",
    "export",
    "default",
    "class",
    "extends",
    "render",
    "props",
    "state",
    "value",
    "await",
    "async",
    "promise",
    "window",
    "document",
    "query",
    "selector",
    "style",
    "color",
    "margin",
    "padding",
]


# --- the emulator and Django ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto(port: int) -> subprocess.Popen:
    # werkzeug's request log goes to /dev/null: one line per request would cost the emulator time.
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("moto.server did not start")


def bench_environment(workdir: Path, endpoint: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "deployment_service.settings",
        "DJANGO_SECRET_KEY": "benchmark-only-key",
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "TROY_DATA_DIR": str(workdir / "var"),
        "TROY_UPLOAD_SPOOL_DIR": str(workdir / "spool"),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "TROY_LOG_LEVEL": os.environ.get("TROY_LOG_LEVEL", "WARNING"),
        "TROY_EDGE_POINTERS": "local",  # pointers in the database only (no KeyValueStore here)
    }


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    os.environ.pop("DRAMATIQ_BROKER_URL", None)  # in-process broker: the bench calls the flows itself
    import django

    django.setup()


# --- the generated site ----------------------------------------------------------------------------


def _text(rng: random.Random, size: int) -> bytes:
    words = rng.choices(WORDS, k=size // 5 + 1)
    return " ".join(words).encode()[:size]


def site_files(seed: int = 3) -> dict[str, bytes]:
    """2,000 files, about 31 MB: pages, fingerprinted JS/CSS, images, fonts, data."""
    rng = random.Random(seed)
    files: dict[str, bytes] = {}

    def digest() -> str:
        return f"{rng.getrandbits(32):08x}"

    files["index.html"] = b"<!doctype html><html><body>" + _text(rng, 8000) + b"</body></html>"
    for i in range(299):
        section = f"docs/section-{i % 12}" if i < 200 else f"blog/post-{i}"
        name = f"{section}/page-{i}.html" if i < 200 else f"{section}/index.html"
        files[name] = b"<!doctype html><html><body>" + _text(rng, rng.randint(4_000, 24_000)) + b"</body></html>"
    for i in range(200):
        files[f"assets/chunk-{i}.{digest()}.js"] = _text(rng, rng.randint(4_000, 40_000))
    for i in range(60):
        files[f"assets/style-{i}.{digest()}.css"] = _text(rng, rng.randint(2_000, 30_000))
    for i in range(1_180):
        ext = ("jpg", "png", "webp")[i % 3]
        files[f"img/gallery-{i % 20}/photo-{i}.{ext}"] = rng.randbytes(rng.randint(4_000, 30_000))
    for i in range(40):
        files[f"fonts/face-{i}.woff2"] = rng.randbytes(rng.randint(20_000, 60_000))
    for i in range(220):
        files[f"data/item-{i}.json"] = b'{"text": "' + _text(rng, rng.randint(500, 12_000)) + b'"}'
    assert len(files) == 2_000, len(files)
    return files


def write_zip(files: dict[str, bytes], path: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name, data in files.items():
            zf.writestr(name, data)


# --- measuring ----------------------------------------------------------------------------------

WRITES = {"PutObject", "CopyObject", "DeleteObject", "DeleteObjects", "CreateMultipartUpload", "UploadPart"}


class S3Calls:
    """Every S3 request a client sends, by operation and by what it names (botocore event hooks:
    ``before-parameter-build`` keeps the parameters, ``before-call`` counts the request)."""

    def __init__(self, client) -> None:
        self.client = client
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    @staticmethod
    def _keep(params, context, **kwargs) -> None:
        context["bench_params"] = (params.get("Bucket", ""), params.get("Key", ""), params.get("Prefix", ""))

    def _count(self, model, context, **kwargs) -> None:
        _bucket, key, prefix = context.get("bench_params", ("", "", ""))
        if "/blobs/" in key:
            what = "blob"
        elif "/builds/" in key:
            what = "manifest"
        elif prefix.endswith("/blobs/"):
            what = "blob listing"
        elif key.startswith("releases/") or key.startswith("artifacts/"):
            what = "artifact"
        else:
            what = "other object"
        with self.lock:
            self.counts[f"{model.name} {what}"] += 1

    def __enter__(self) -> S3Calls:
        self.client.meta.events.register("before-parameter-build.s3.*", self._keep)
        self.client.meta.events.register("before-call.s3.*", self._count)
        return self

    def __exit__(self, *exc) -> None:
        self.client.meta.events.unregister("before-call.s3.*", self._count)
        self.client.meta.events.unregister("before-parameter-build.s3.*", self._keep)

    def writes(self) -> int:
        return sum(n for kind, n in self.counts.items() if kind.split()[0] in WRITES)

    def blob_puts(self) -> int:
        return self.counts["PutObject blob"] + self.counts["CreateMultipartUpload blob"]


def progress(name: str, row: dict) -> dict:
    """Each measurement on stderr as soon as it is taken (a long run is not lost to a late error)."""
    print(f"{name}: {json.dumps(row)}", file=sys.stderr, flush=True)
    return row


def provisioned_pipeline(name: str, owner):
    from pipelines import services
    from pipelines.flows.provisioning import provision_run
    from pipelines.models import Pipeline

    pipeline = services.pipeline_create(owner=owner, name=name, repository="", provision=True, actor="bench")
    provision_run(pipeline_id=pipeline.id)
    pipeline = Pipeline.objects.get(pk=pipeline.pk)
    assert pipeline.status == "ready_for_deployment", (pipeline.status, pipeline.last_error)
    return pipeline


def queue_release(pipeline, zip_path: Path):
    """What the API and the store actor do: validate, spool, store, queue; then start the build."""
    from django.core.files import File

    from pipelines import services as pipeline_services
    from releases.services import release_upload
    from releases.storage import release_store_run

    with open(zip_path, "rb") as handle:
        release, _ = release_upload(pipeline=pipeline, upload=File(handle, name="site.zip"), deploy=True, actor="bench")
    release_store_run(release_id=release.id)
    build = pipeline_services.deployment_start(pipeline_id=pipeline.id)
    assert build is not None
    return build


def timed_deploy_of(build) -> dict:
    from deployment_service import aws
    from pipelines.flows.deploy import deploy_build_run
    from pipelines.models import Build

    with S3Calls(aws.client("s3")) as calls:
        started = time.perf_counter()
        deploy_build_run(build_id=build.id)
        seconds = time.perf_counter() - started
    build = Build.objects.get(pk=build.pk)
    assert build.status == "succeeded", build.error
    return {
        "seconds": seconds,
        "requests": dict(sorted(calls.counts.items())),
        "writes": calls.writes(),
        "blob_puts": calls.blob_puts(),
        "files_uploaded": build.files_uploaded,
        "files_unchanged": build.files_unchanged,
        "bytes_uploaded": build.bytes_uploaded,
        "pointer_only": build.content_build_id is not None,
    }


def timed_deploy(pipeline, zip_path: Path) -> dict:
    return timed_deploy_of(queue_release(pipeline, zip_path))


def timed_rollback(pipeline, to_build_id) -> dict:
    from pipelines import services as pipeline_services

    pipeline_services.build_redeploy(build_id=to_build_id, actor="bench")
    build = pipeline_services.deployment_start(pipeline_id=pipeline.id)
    assert build is not None
    return timed_deploy_of(build)


def put_loop(files: dict[str, bytes], prefix: str) -> dict:
    """The reference: each file PUT once with its headers, TROY_DEPLOY_CONCURRENCY at a time."""
    from django.conf import settings

    from deployment_service import aws
    from pipelines.flows.deploy.content import object_headers

    s3 = aws.client("s3")

    def put(item: tuple[str, bytes]) -> None:
        rel, body = item
        headers = object_headers(rel, body[:512])
        s3.put_object(
            Bucket=settings.TROY_LIVE_BUCKET,
            Key=f"{prefix}/{rel}",
            Body=body,
            ContentType=headers.content_type,
            CacheControl=headers.cache_control,
        )

    with S3Calls(s3) as calls:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=settings.TROY_DEPLOY_CONCURRENCY) as pool:
            list(pool.map(put, sorted(files.items())))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "requests": dict(calls.counts)}


# --- peak RSS of a worker deploying a large artifact ------------------------------------------------


def big_artifact(path: Path, total_mb: int = 500) -> None:
    """Incompressible files, stored: 400 of 1 MB, 4 of 25 MB (multipart), then pages."""
    rng = random.Random(7)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(4):
            zf.writestr(f"video/clip-{i}.mp4", rng.randbytes(25 * MB))
        for i in range(total_mb - 100):
            zf.writestr(f"img/big-{i}.jpg", rng.randbytes(MB))
        for i in range(50):
            zf.writestr(f"page-{i}.html", b"<!doctype html>" + _text(rng, 20_000))


def _vm_hwm_mb() -> float:
    """Peak RSS of this process image (reset by exec, unlike ru_maxrss), from /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def many_files_artifact(path: Path, count: int = 100_000) -> None:
    """``count`` files of 1 KB (text, deflated), in 100 folders, and an index page."""
    rng = random.Random(11)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("index.html", b"<!doctype html><p>many</p>")
        for i in range(count - 1):
            zf.writestr(f"part-{i % 100}/file-{i}.txt", _text(rng, 1024))


def _vm_hwm_mb() -> float:
    """Peak RSS of this process image (reset by exec, unlike ru_maxrss), from /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def rss_child() -> None:
    """A fresh worker process: waits for a build id on stdin, deploys it, reports its peak RSS.

    It is started before the benchmark process grows: Linux carries ru_maxrss over fork and
    exec, so a child forked later would report its parent's peak. VmHWM is printed beside it."""
    build_id = sys.stdin.readline().strip()
    django_setup({})
    from pipelines.flows.deploy import deploy_build_run
    from pipelines.models import Build

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    deploy_build_run(build_id=build_id)
    seconds = time.perf_counter() - started
    build = Build.objects.get(pk=build_id)
    print(
        json.dumps(
            {
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "vm_hwm_mb": _vm_hwm_mb(),
                "baseline_rss_mb": baseline,
                "seconds": seconds,
                "status": build.status,
                "error": build.error,
                "files_total": build.files_total,
                "files_uploaded": build.files_uploaded,
                "bytes_uploaded": build.bytes_uploaded,
            }
        )
    )


def start_rss_child(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, "--rss-child"],
        env={**os.environ, **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def measure_rss(owner, workdir: Path, child: subprocess.Popen, name: str, make_artifact) -> dict:
    pipeline = provisioned_pipeline(name, owner)
    artifact = workdir / f"{name}.zip"
    make_artifact(artifact)
    zip_mb = artifact.stat().st_size / MB
    build = queue_release(pipeline, artifact)
    artifact.unlink()
    out, _ = child.communicate(f"{build.id}\n", timeout=1800)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "succeeded", result
    return {**result, "zip_mb": zip_mb}


# --- the run ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--skip-site", action="store_true", help="skip the 2,000-file runs (a)-(e)")
    parser.add_argument("--skip-rss", action="store_true", help="skip both RSS runs")
    parser.add_argument("--skip-big", action="store_true", help="skip the 500 MB artifact")
    parser.add_argument("--skip-many", action="store_true", help="skip the 100,000-file artifact")
    parser.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child()
        return
    run_big = not (args.skip_rss or args.skip_big)
    run_many = not (args.skip_rss or args.skip_many)

    workdir = Path(tempfile.mkdtemp(prefix="troy-bench-"))
    port = free_port()
    moto = start_moto(port)
    children: list[subprocess.Popen] = []
    results: dict = {}
    try:
        env = bench_environment(workdir, f"http://127.0.0.1:{port}")
        # The RSS children start now, before this process grows (see rss_child).
        big_child = start_rss_child(env) if run_big else None
        many_child = start_rss_child(env) if run_many else None
        children = [c for c in (big_child, many_child) if c is not None]
        django_setup(env)
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from deployment_service.bootstrap import bootstrap_aws_resources

        call_command("migrate", verbosity=0)
        report = bootstrap_aws_resources()
        settings.TROY_HOSTED_ZONE_ID = report.hosted_zone_id
        env["TROY_HOSTED_ZONE_ID"] = report.hosted_zone_id
        owner = get_user_model().objects.create_user(username="bench")

        if not args.skip_site:
            files = site_files()
            site_zip, changed_zip = workdir / "site.zip", workdir / "site-changed.zip"
            write_zip(files, site_zip)
            changed = dict(files)
            changed["docs/section-3/page-3.html"] = files["docs/section-3/page-3.html"] + b"<!-- edited -->"
            write_zip(changed, changed_zip)
            site_bytes = sum(len(data) for data in files.values())

            pipeline = provisioned_pipeline("bench-site", owner)
            results.update(
                files=len(files),
                site_mb=site_bytes / MB,
                zip_mb=site_zip.stat().st_size / MB,
                concurrency=settings.TROY_DEPLOY_CONCURRENCY,
            )
            results["e_put_loop_before"] = progress("e_put_loop_before", put_loop(files, "bench-put-before"))
            results["a_full_deploy"] = progress("a_full_deploy", timed_deploy(pipeline, site_zip))
            first_build = pipeline.builds.get(number=1)
            results["b_same_content"] = progress("b_same_content", timed_deploy(pipeline, site_zip))
            results["c_one_changed"] = progress("c_one_changed", timed_deploy(pipeline, changed_zip))
            results["r_rollback"] = progress("r_rollback", timed_rollback(pipeline, first_build.id))
            results["e_put_loop"] = progress("e_put_loop", put_loop(files, "bench-put"))
        if big_child is not None:
            results["rss_500mb"] = progress(
                "rss_500mb", measure_rss(owner, workdir, big_child, "bench-big", big_artifact)
            )
        if many_child is not None:
            results["rss_100k_files"] = progress(
                "rss_100k_files", measure_rss(owner, workdir, many_child, "bench-many", many_files_artifact)
            )

        results["targets"] = {}
        if not args.skip_site:
            a, b, c, r = (
                results[k]["seconds"] for k in ("a_full_deploy", "b_same_content", "c_one_changed", "r_rollback")
            )
            e = (results["e_put_loop_before"]["seconds"] + results["e_put_loop"]["seconds"]) / 2
            c_writes = {k for k, n in results["c_one_changed"]["requests"].items() if k.split()[0] in WRITES and n}
            results["ratios"] = {"a/e": a / e, "b/a": b / a, "c/a": c / a, "r/a": r / a}
            results["targets"].update(
                {
                    "(a) <= 1.2 x (e)": a <= 1.2 * e,
                    "(b) makes 0 blob PUTs": results["b_same_content"]["blob_puts"] == 0,
                    "(c) writes only one blob and the manifest": c_writes == {"PutObject blob", "PutObject manifest"}
                    and results["c_one_changed"]["writes"] == 2,
                    "(c) <= 0.05 x (a)": c <= 0.05 * a,
                    "(r) makes 0 S3 writes": results["r_rollback"]["writes"] == 0
                    and results["r_rollback"]["pointer_only"],
                }
            )
        for key in ("rss_500mb", "rss_100k_files"):
            if key in results:
                results["targets"][f"{key} peak RSS < 250 MB"] = results[key]["peak_rss_mb"] < 250
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
        moto.terminate()
        try:
            moto.wait(timeout=30)
        except subprocess.TimeoutExpired:  # busy with a large bucket: the numbers matter more
            moto.kill()
            moto.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)

    if args.json:
        print(json.dumps(results, indent=2))
        return
    if not args.skip_site:
        print(
            f"site: {results['files']} files, {results['site_mb']:.1f} MB ({results['zip_mb']:.1f} MB zipped); "
            f"concurrency {results['concurrency']}; one moto.server on loopback"
        )
        rows = [
            ("(e) raw PUT loop, before (a)", results["e_put_loop_before"]),
            ("(a) full deploy", results["a_full_deploy"]),
            ("(b) same-content redeploy", results["b_same_content"]),
            ("(c) one file changed", results["c_one_changed"]),
            ("(r) rollback to build 1", results["r_rollback"]),
            ("(e) raw PUT loop, after (r)", results["e_put_loop"]),
        ]
        for label, row in rows:
            print(f"  {label:<32} {row['seconds']:8.3f} s")
            for kind, count in sorted(row["requests"].items()):
                print(f"      {count:6d}  {kind}")
        print("  (e) is the mean of its two runs")
        for name, value in results["ratios"].items():
            print(f"  {name:<4} = {value:6.3f}")
    for key, label in (("rss_500mb", "500 MB artifact"), ("rss_100k_files", "100,000 files of 1 KB")):
        if key in results:
            rss = results[key]
            print(
                f"  worker peak RSS, {label} ({rss['zip_mb']:.0f} MB zip, {rss['files_total']} files): "
                f"{rss['peak_rss_mb']:.0f} MB (VmHWM {rss['vm_hwm_mb']:.0f} MB, {rss['baseline_rss_mb']:.0f} MB "
                f"after start-up), deploy {rss['seconds']:.1f} s"
            )
    for name, ok in results["targets"].items():
        print(f"  {'ok  ' if ok else 'MISS'} {name}")


if __name__ == "__main__":
    main()

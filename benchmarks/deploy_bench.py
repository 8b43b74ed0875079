#!/usr/bin/env python
"""Deploy-step benchmark (issue 3): Troy's incremental deploy against `aws s3 sync` and a plain
boto3 PUT loop, all against one `moto.server` on loopback, in one run.

    .venv/bin/python benchmarks/deploy_bench.py            # about two minutes; numbers → stdout
    .venv/bin/python benchmarks/deploy_bench.py --json     # the same, machine-readable

Measures, on a generated site of 2,000 files (about 30 MB, mixed sizes):
  (a) full deploy            (b) redeploy, nothing changed      (c) redeploy, one file changed
  (d) aws s3 sync to a fresh prefix                               (d') sync again after re-extracting
  (e) a plain concurrent boto3 PUT loop of the same files (TROY_DEPLOY_CONCURRENCY threads)
and the worker's peak RSS while deploying a 500 MB artifact (a separate process, ru_maxrss).

awscli comes from PyPI into its own venv (``--awscli-venv``, created on first use). Everything
else (database, spool, site) lives in a temporary folder that is removed at the end. This is a
command, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
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
    """2,000 files, about 30 MB: pages, fingerprinted JS/CSS, images, fonts, data."""
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


def extract(zip_path: Path, into: Path) -> None:
    """Unzip afresh: zipfile does not restore mtimes, so every file is 'new' to aws s3 sync."""
    shutil.rmtree(into, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(into)


# --- measuring ----------------------------------------------------------------------------------


class S3Calls:
    """Counts the S3 operations a client makes (botocore event hooks)."""

    OPS = (
        "PutObject",
        "CreateMultipartUpload",
        "UploadPart",
        "HeadObject",
        "ListObjectsV2",
        "DeleteObjects",
        "GetObject",
    )

    def __init__(self, client) -> None:
        self.client = client
        self.counts = {op: 0 for op in self.OPS}
        self.lock = threading.Lock()

    def _count(self, event_name: str, **kwargs) -> None:
        with self.lock:
            self.counts[event_name.rsplit(".", 1)[-1]] += 1

    def __enter__(self) -> S3Calls:
        for op in self.OPS:
            self.client.meta.events.register(f"before-call.s3.{op}", self._count)
        return self

    def __exit__(self, *exc) -> None:
        for op in self.OPS:
            self.client.meta.events.unregister(f"before-call.s3.{op}", self._count)


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


def timed_deploy(pipeline, zip_path: Path) -> dict:
    from deployment_service import aws
    from pipelines.flows.deploy import deploy_build_run
    from pipelines.models import Build

    build = queue_release(pipeline, zip_path)
    with S3Calls(aws.client("s3")) as calls:
        started = time.perf_counter()
        deploy_build_run(build_id=build.id)
        seconds = time.perf_counter() - started
    build = Build.objects.get(pk=build.pk)
    assert build.status == "succeeded", build.error
    return {
        "seconds": seconds,
        "calls": calls.counts,
        "files_uploaded": build.files_uploaded,
        "files_unchanged": build.files_unchanged,
        "invalidation_id": build.invalidation_id,
    }


def put_loop(tree: Path, prefix: str) -> dict:
    from django.conf import settings

    from deployment_service import aws
    from pipelines.flows.deploy.content import object_headers

    s3 = aws.client("s3")
    paths = sorted(p for p in tree.rglob("*") if p.is_file())

    def put(path: Path) -> None:
        rel = path.relative_to(tree).as_posix()
        headers = object_headers(rel)
        s3.put_object(
            Bucket=settings.TROY_LIVE_BUCKET,
            Key=f"{prefix}/{rel}",
            Body=path.read_bytes(),
            ContentType=headers.content_type,
            CacheControl=headers.cache_control,
        )

    with S3Calls(s3) as calls:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=settings.TROY_DEPLOY_CONCURRENCY) as pool:
            list(pool.map(put, paths))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "calls": calls.counts}


def ensure_awscli(venv: Path) -> Path:
    aws_bin = venv / "bin" / "aws"
    if not aws_bin.exists():
        print(f"installing awscli into {venv} …", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "awscli"], check=True)
    return aws_bin


def aws_sync(aws_bin: Path, tree: Path, prefix: str, env: dict[str, str]) -> dict:
    from django.conf import settings

    command = [
        str(aws_bin),
        "s3",
        "sync",
        str(tree),
        f"s3://{settings.TROY_LIVE_BUCKET}/{prefix}/",
        "--endpoint-url",
        env["AWS_ENDPOINT_URL"],
        "--no-progress",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    uploads = sum(1 for line in done.stdout.splitlines() if line.startswith("upload:"))
    return {"seconds": seconds, "uploads": uploads}


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


def measure_rss(owner, workdir: Path, child: subprocess.Popen) -> dict:
    pipeline = provisioned_pipeline("bench-big", owner)
    artifact = workdir / "big.zip"
    big_artifact(artifact)
    build = queue_release(pipeline, artifact)
    artifact.unlink()
    out, _ = child.communicate(f"{build.id}\n", timeout=900)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "succeeded", result
    return result


# --- the run ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--awscli-venv", default="/tmp/troy-bench-awscli", type=Path)
    parser.add_argument("--skip-rss", action="store_true", help="skip the 500 MB artifact")
    parser.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child()
        return

    aws_bin = ensure_awscli(args.awscli_venv)
    workdir = Path(tempfile.mkdtemp(prefix="troy-bench-"))
    port = free_port()
    moto = start_moto(port)
    child = None
    try:
        env = bench_environment(workdir, f"http://127.0.0.1:{port}")
        child = None if args.skip_rss else start_rss_child(env)
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

        files = site_files()
        site_zip, changed_zip, tree = workdir / "site.zip", workdir / "site-changed.zip", workdir / "tree"
        write_zip(files, site_zip)
        changed = dict(files)
        changed["docs/section-3/page-3.html"] = files["docs/section-3/page-3.html"] + b"<!-- edited -->"
        write_zip(changed, changed_zip)
        extract(site_zip, tree)
        site_bytes = sum(len(data) for data in files.values())

        pipeline = provisioned_pipeline("bench-site", owner)
        results: dict = {
            "files": len(files),
            "site_mb": site_bytes / MB,
            "zip_mb": site_zip.stat().st_size / MB,
            "concurrency": settings.TROY_DEPLOY_CONCURRENCY,
        }
        # (e) runs once before (a) and once after (c); its mean is the reference, so neither side
        # gains from running against a fresher emulator.
        results["e_put_loop_before"] = put_loop(tree, "bench-put-before")
        results["a_full_deploy"] = timed_deploy(pipeline, site_zip)
        results["b_no_change"] = timed_deploy(pipeline, site_zip)
        results["c_one_changed"] = timed_deploy(pipeline, changed_zip)
        results["e_put_loop"] = put_loop(tree, "bench-put")
        results["d_aws_sync"] = aws_sync(aws_bin, tree, "bench-sync", env)
        extract(site_zip, tree)
        results["d2_aws_sync_again"] = aws_sync(aws_bin, tree, "bench-sync", env)
        if not args.skip_rss:
            results["rss_500mb"] = measure_rss(owner, workdir, child)

        a, b, c = (results[k]["seconds"] for k in ("a_full_deploy", "b_no_change", "c_one_changed"))
        d, d2 = (results[k]["seconds"] for k in ("d_aws_sync", "d2_aws_sync_again"))
        e = (results["e_put_loop_before"]["seconds"] + results["e_put_loop"]["seconds"]) / 2
        results["ratios"] = {"a/e": a / e, "a/d": a / d, "e/d": e / d, "c/a": c / a, "d'/b": d2 / b}
        results["targets"] = {
            "(a) <= 1.2 x (e)": a <= 1.2 * e,
            "(b) makes no PUT": results["b_no_change"]["calls"]["PutObject"] == 0,
            "(c) makes exactly one PUT": results["c_one_changed"]["calls"]["PutObject"] == 1,
            "(c) <= 0.05 x (a)": c <= 0.05 * a,
            "(b) >= 10x faster than (d')": d2 >= 10 * b,
            "peak RSS < 250 MB": results.get("rss_500mb", {}).get("peak_rss_mb", 0) < 250,
        }
    finally:
        if child is not None and child.poll() is None:
            child.kill()
        moto.terminate()
        moto.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)

    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"site: {results['files']} files, {results['site_mb']:.1f} MB ({results['zip_mb']:.1f} MB zipped); "
        f"concurrency {results['concurrency']}; one moto.server on loopback"
    )
    rows = [
        ("(a) full deploy", results["a_full_deploy"]),
        ("(b) redeploy, nothing changed", results["b_no_change"]),
        ("(c) redeploy, one file changed", results["c_one_changed"]),
        ("(d) aws s3 sync, fresh prefix", results["d_aws_sync"]),
        ("(d') aws s3 sync after re-extract", results["d2_aws_sync_again"]),
        ("(e) plain boto3 PUT loop, before (a)", results["e_put_loop_before"]),
        ("(e) plain boto3 PUT loop, after (c)", results["e_put_loop"]),
    ]
    for label, row in rows:
        calls = row.get("calls")
        detail = (
            f"PUT {calls['PutObject']}, HEAD {calls['HeadObject']}, LIST {calls['ListObjectsV2']}"
            if calls
            else f"{row['uploads']} uploads"
        )
        print(f"  {label:<38} {row['seconds']:8.2f} s   {detail}")
    print("  (e) below is the mean of its two runs")
    for name, value in results["ratios"].items():
        print(f"  {name:<6} = {value:6.3f}")
    if "rss_500mb" in results:
        rss = results["rss_500mb"]
        print(
            f"  500 MB artifact: peak RSS {rss['peak_rss_mb']:.0f} MB (VmHWM {rss['vm_hwm_mb']:.0f} MB; "
            f"{rss['baseline_rss_mb']:.0f} MB after Django set-up), "
            f"{rss['files_uploaded']} files in {rss['seconds']:.1f} s"
        )
    for target, met in results["targets"].items():
        print(f"  [{'met' if met else 'MISSED'}] {target}")


if __name__ == "__main__":
    main()

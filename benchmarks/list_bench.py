#!/usr/bin/env python
"""List benchmark (issue 9, "lists stay light whatever the sites hold"): the pipeline and build
lists at page size 100 on PostgreSQL, 500 pipelines × 20 builds, with empty manifests and with
2,000-file manifests stored where the code under test keeps them.

    .venv/bin/python benchmarks/list_bench.py                    # ~5 minutes
    .venv/bin/python benchmarks/list_bench.py --runs 31 --gunicorn --explain

Where a manifest lives depends on the checkout: in the ``Build.manifest`` JSON column before
issue 9 (run this file from a checkout of b37fca2 for the before numbers), and since then in the
live bucket (``{pipeline}/builds/{build}.json``, on a moto server this script starts), with only
``files_total`` in the row. In both, every build deploys a release whose ``Release.files`` (the
per-file list the upload validation keeps) holds the same 2,000 files: that column is in the
database either way. "Empty" is the same rows with no files at all.

Each case recreates the database (``--database-url``, dropped and created again: give it a
database of its own), loads the rows, and times each list through Django's test client (no
network, so it measures the server's work) ``--runs`` times after two warm-ups; it prints the
median and the 90th percentile, the queries per request, the S3 requests the lists made (none:
web requests never call AWS), and the ratio of the two cases. ``--explain`` prints PostgreSQL's
plan of the non-staff ``/builds/`` page; ``--gunicorn`` also serves the pipeline list from
gunicorn (``-c gunicorn.conf.py``) and reports requests per second for a few client threads.
A command, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit
import uuid

ROOT = Path.cwd()  # the checkout under test: run from its root (this file may be copied there)
sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/troy_lists_bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, endpoint
        except OSError:
            time.sleep(0.1)
    raise SystemExit("moto server did not start")


def environment(database_url: str, endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TROY_", "GUNICORN_", "DATABASE"))}
    env.update(
        DJANGO_SETTINGS_MODULE="deployment_service.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(32),
        DJANGO_DEBUG="0",
        TROY_HTTPS="0",
        DATABASE_URL=database_url,
        DRAMATIQ_BROKER_URL="",
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return env


# --- the rows ------------------------------------------------------------------------------------


def file_list(rng: random.Random, files: int) -> list[tuple[str, str, int]]:
    """A site: (path, sha256, size), HTML pages and fingerprinted assets."""
    out = []
    for n in range(files):
        if n % 4 == 0:
            path = f"docs/section-{n // 100}/page-{n}.html"
        else:
            path = f"assets/chunk-{n}.{rng.getrandbits(32):08x}.js"
        out.append((path, f"{rng.getrandbits(256):064x}", rng.randint(200, 200_000)))
    return out


def old_manifest(site: list[tuple[str, str, int]]) -> dict[str, Any]:
    """Build.manifest as the deploy wrote it before issue 9 (pipelines/flows/deploy/sync.py _entry)."""
    return {
        path: {
            "sha256": sha,
            "size": size,
            "etag": f'"{sha[:32]}"',
            "content_type": "text/html; charset=utf-8" if path.endswith(".html") else "text/javascript",
            "cache_control": "public, max-age=0, must-revalidate"
            if path.endswith(".html")
            else "public, max-age=31536000, immutable",
        }
        for path, sha, size in site
    }


def new_manifest_bytes(site: list[tuple[str, str, int]], pipeline_id: str, build_id: str) -> bytes:
    from edge import manifest as m

    entries = {}
    for path, sha, size in site:
        html = path.endswith(".html")
        content_type = "text/html; charset=utf-8" if html else "text/javascript"
        cache = "public, max-age=0, must-revalidate" if html else "public, max-age=31536000, immutable"
        entries[path] = m.FileEntry(
            key=m.content_key(sha, content_type, cache), type=content_type, cache=cache, size=size
        )
    return m.dumps(m.Manifest(pipeline_id=pipeline_id, build_id=build_id, files=entries))


def load_rows(*, pipelines: int, builds: int, files: int, layout: str) -> tuple[Any, dict[str, int]]:
    """Rows for one user (non-staff) plus a staff user; answers (the user, sizes written)."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from pipelines.models import Build, Pipeline
    from releases.models import Release

    User = get_user_model()
    owner = User.objects.create_user(username="bench", password="x")
    User.objects.create_user(username="operator", password="x", is_staff=True)
    rng = random.Random(9)
    site = file_list(rng, files)
    files_json = {path: [sha, size] for path, sha, size in site}
    now = timezone.now()
    build_fields = {f.name for f in Build._meta.get_fields()}

    with transaction.atomic():
        pipeline_rows = [
            Pipeline(name=f"site-{n:04d}", owner=owner, repository="", status="deployed", distribution_id=f"E{n:012d}")
            for n in range(pipelines)
        ]
        Pipeline.objects.bulk_create(pipeline_rows, batch_size=500)
        releases, build_rows = [], []
        for pipeline in pipeline_rows:
            for number in range(1, builds + 1):
                release = Release(
                    id=uuid.uuid4(),
                    pipeline=pipeline,
                    version=f"v{number}",
                    artifact_key=f"releases/{uuid.uuid4()}.zip",
                    sha256=f"{rng.getrandbits(256):064x}",
                    size=31_000_000,
                    file_count=files,
                    uncompressed_size=62_000_000,
                    status="stored",
                    stored_at=now,
                    uploaded_by=owner,
                )
                releases.append(release)
                extra: dict[str, Any] = {}
                if "files_total" in build_fields:
                    extra.update(files_total=files, stored_at=now)
                build_rows.append(
                    Build(
                        id=uuid.uuid4(),
                        pipeline=pipeline,
                        number=number,
                        kind="release",
                        trigger="cli",
                        status="succeeded",
                        ref=f"v{number}",
                        release=release,
                        requested_by=owner,
                        artifact_key=release.artifact_key,
                        files_uploaded=files if number == 1 else min(files, 10),
                        files_unchanged=0 if number == 1 else max(files - 10, 0),
                        bytes_uploaded=31_000_000,
                        started_at=now,
                        finished_at=now,
                        **extra,
                    )
                )
        Release.objects.bulk_create(releases, batch_size=1000)
        Build.objects.bulk_create(build_rows, batch_size=1000)
        # created_at is auto_now_add: spread it so the default ordering has work to do.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE pipelines_build SET created_at = now() - (random() * interval '90 days'), "
                "finished_at = now(), started_at = now()"
            )
            cursor.execute(
                "UPDATE pipelines_pipeline p SET live_build_id = b.id FROM pipelines_build b "
                "WHERE b.pipeline_id = p.id AND b.number = %s",
                [builds],
            )
    sizes = {"files": files}
    if files:
        with connection.cursor() as cursor:
            # The same file list in every row: PostgreSQL still stores (and TOASTs) each copy.
            text = json.dumps(files_json)
            cursor.execute("UPDATE releases_release SET files = %s::jsonb", [text])
            sizes["release_files_json_bytes"] = len(text)
            if layout == "column":
                text = json.dumps(old_manifest(site))
                cursor.execute("UPDATE pipelines_build SET manifest = %s::jsonb", [text])
                sizes["manifest_json_bytes"] = len(text)
        if layout == "bucket":
            sizes["manifest_json_bytes"] = put_manifests(site)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        sizes["database"] = cursor.fetchone()[0]
    return owner, sizes


def put_manifests(site: list[tuple[str, str, int]]) -> int:
    """Every build's manifest in the live bucket, where the deploy writes it; answers one's size."""
    from concurrent.futures import ThreadPoolExecutor

    from django.conf import settings

    from deployment_service import aws
    from edge import manifest as m
    from pipelines.models import Build

    s3 = aws.client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=settings.TROY_LIVE_BUCKET)
    pairs = list(Build.objects.values_list("pipeline_id", "id"))
    size = 0

    # One site deployed again and again: the same files in every manifest, only the ids differ.
    template = new_manifest_bytes(site, "pipeline-placeholder", "build-placeholder")

    def put(pair) -> int:
        pipeline_id, build_id = str(pair[0]), str(pair[1])
        body = template.replace(b'"pipeline-placeholder"', f'"{pipeline_id}"'.encode()).replace(
            b'"build-placeholder"', f'"{build_id}"'.encode()
        )
        s3.put_object(
            Bucket=settings.TROY_LIVE_BUCKET,
            Key=m.manifest_key(pipeline_id, build_id),
            Body=body,
            ContentType="application/json",
        )
        return len(body)

    with ThreadPoolExecutor(8) as pool:
        for written in pool.map(put, pairs):
            size = written
    return size


# --- the timing ----------------------------------------------------------------------------------


def lists(owner) -> dict[str, str]:
    from pipelines.models import Pipeline

    first = Pipeline.objects.filter(owner=owner).order_by("name").first()
    return {
        "pipelines": "/api/v1/pipelines/?page_size=100",
        "builds": "/api/v1/builds/?page_size=100",
        "builds (staff)": "/api/v1/builds/?page_size=100",
        "a pipeline's builds": f"/api/v1/pipelines/{first.id}/builds/?page_size=100",
        "a pipeline's releases": f"/api/v1/pipelines/{first.id}/releases/?page_size=100",
    }


class AwsCalls:
    """Counts AWS API calls made in this process (any boto3 client) while it is entered: the
    lists are served in this process, so this shows they make none."""

    def __init__(self) -> None:
        self.calls = 0

    def __enter__(self) -> AwsCalls:
        from botocore.client import BaseClient

        self._original = original = BaseClient._make_api_call
        counter = self

        def counted(client, operation_name, api_params):
            counter.calls += 1
            return original(client, operation_name, api_params)

        BaseClient._make_api_call = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc) -> None:
        from botocore.client import BaseClient

        BaseClient._make_api_call = self._original  # type: ignore[method-assign]


def use_database(name: str) -> None:
    from django.db import connections

    connections.close_all()
    connections["default"].settings_dict["NAME"] = name


def clients_for(owner_name: str) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from rest_framework.authtoken.models import Token

    users = get_user_model().objects
    return {
        who: Client(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=users.get(username=name))[0].key}")
        for who, name in (("owner", owner_name), ("staff", "operator"))
    }


def time_lists(databases: dict[str, str], runs: int) -> dict[str, dict[str, dict[str, float]]]:
    """Each list, alternating between the cases' databases run by run (the machine's load drifts;
    alternating spreads it over both cases alike). Each timed request follows an untimed one of the
    same list on the same connection."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from pipelines.models import Pipeline

    setup: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
    for case, name in databases.items():
        use_database(name)
        owner = Pipeline.objects.order_by("name").values_list("owner__username", flat=True).first()
        from django.contrib.auth import get_user_model

        setup[case] = (clients_for(owner), lists(get_user_model().objects.get(username=owner)))
    times: dict[str, dict[str, list[float]]] = {case: {} for case in databases}
    results: dict[str, dict[str, dict[str, float]]] = {case: {} for case in databases}
    for case, name in databases.items():  # queries, rows and size of each answer, once
        use_database(name)
        clients, urls = setup[case]
        for label, url in urls.items():
            client = clients["staff" if "staff" in label else "owner"]
            client.get(url)
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            assert response.status_code == 200, response.content[:300]
            results[case][label] = {
                "queries": len(queries.captured_queries),
                "rows": len(response.json()["results"]),
                "bytes": len(response.content),
            }
            times[case][label] = []
    for _ in range(runs):
        for case, name in databases.items():
            use_database(name)
            clients, urls = setup[case]
            for label, url in urls.items():
                client = clients["staff" if "staff" in label else "owner"]
                client.get(url)
                started = time.perf_counter()
                response = client.get(url)
                times[case][label].append(time.perf_counter() - started)
                assert response.status_code == 200
    for case in databases:
        for label, measured in times[case].items():
            measured.sort()
            results[case][label].update(
                median_ms=statistics.median(measured) * 1000, p90_ms=measured[int(len(measured) * 0.9)] * 1000
            )
    return results


def explain_builds() -> str:
    """PostgreSQL's plan of the page query of /builds/ for a non-staff user."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = clients_for("bench")["owner"]
    with CaptureQueriesContext(connection) as queries:
        client.get("/api/v1/builds/?page_size=100")
    (page,) = [q["sql"] for q in queries.captured_queries if q["sql"].endswith(" LIMIT 100")]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + page)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # The owner's pipeline ids, when the query lists them, shortened to the first two.
    shorten = re.compile(r"('\{[^,}]+,[^,}]+),[^}]+(\}')")
    return shorten.sub(r"\1,…\2", page[page.index(" FROM ") :]) + "\n" + shorten.sub(r"\1,…\2", plan)


def gunicorn_rate(env: dict[str, str], owner_token: str, *, seconds: float, clients: int) -> dict[str, float]:
    import requests

    port = free_port()
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2", "GUNICORN_ACCESS_LOG": "/dev/null"}
    with tempfile.TemporaryFile() as log:
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "deployment_service.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}/api/v1/pipelines/?page_size=100"
            headers = {"Authorization": f"Token {owner_token}"}
            for _ in range(100):
                try:
                    requests.get(url, headers=headers, timeout=30).raise_for_status()
                    break
                except requests.RequestException:
                    time.sleep(0.3)
            latencies: list[float] = []
            errors = [0]
            stop = time.monotonic() + seconds

            def loop() -> None:
                session = requests.Session()
                session.headers.update(headers)
                while time.monotonic() < stop:
                    started = time.perf_counter()
                    ok = session.get(url, timeout=60).status_code == 200
                    latencies.append(time.perf_counter() - started)
                    errors[0] += not ok

            threads = [threading.Thread(target=loop) for _ in range(clients)]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
        finally:
            web.terminate()
            web.wait(timeout=30)
    latencies.sort()
    return {
        "req_per_s": len(latencies) / elapsed,
        "median_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": errors[0],
    }


def database_url(base: str, case: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"{parts.path}_{case}"))


def load_case(args, case: str, files: int) -> dict[str, Any]:
    """The case's database, created again and filled (or kept, with --reuse, when it holds rows)."""
    from django.core.management import call_command
    from django.db import OperationalError, connection

    url = database_url(args.database_url, case)
    name = urlsplit(url).path.lstrip("/")
    if args.reuse:
        try:
            use_database(name)
            from pipelines.models import Build

            if Build.objects.count() == args.pipelines * args.builds:
                print(f"  {case}: reusing {name}", flush=True)
                reused: dict[str, Any] = {"database": name, "reused": True}
                if files and "manifest" not in {f.name for f in Build._meta.get_fields()}:
                    # The emulator starts empty each run: the manifests go back where the code keeps them.
                    reused["manifest_json_bytes"] = put_manifests(file_list(random.Random(9), files))
                return reused
        except OperationalError:  # no such database yet: create it
            connection.close()
    recreate_database(url)
    use_database(name)
    call_command("migrate", interactive=False, verbosity=0)
    from pipelines.models import Build

    layout = "column" if "manifest" in {f.name for f in Build._meta.get_fields()} else "bucket"
    loaded = time.perf_counter()
    _owner, sizes = load_rows(pipelines=args.pipelines, builds=args.builds, files=files, layout=layout)
    print(f"  {case}: {files} files, rows loaded in {time.perf_counter() - loaded:.0f} s ({sizes})", flush=True)
    return {"database": name, "sizes": sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE,
        help="the base name: {name}_empty and {name}_full are dropped and created again",
    )
    parser.add_argument("--reuse", action="store_true", help="keep the cases' databases when they hold the rows")
    parser.add_argument("--pipelines", type=int, default=500)
    parser.add_argument("--builds", type=int, default=20, help="per pipeline")
    parser.add_argument("--files", type=int, default=2000, help="files per manifest in the full case")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--gunicorn", action="store_true")
    parser.add_argument("--gunicorn-seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=4, help="client threads for --gunicorn")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()

    moto_server, endpoint = start_moto()
    env = environment(database_url(args.database_url, "empty"), endpoint)
    os.environ.update(env)
    import django

    django.setup()
    from pipelines.models import Build

    layout = "Build.manifest column" if "manifest" in {f.name for f in Build._meta.get_fields()} else "live bucket"
    try:
        print(
            f"checkout {ROOT}: {args.pipelines} pipelines × {args.builds} builds, manifests in the {layout}", flush=True
        )
        loaded = {"empty": load_case(args, "empty", 0), "full": load_case(args, "full", args.files)}
        databases = {case: info["database"] for case, info in loaded.items()}
        with AwsCalls() as aws_calls:
            timed = time_lists(databases, args.runs)
        extra: dict[str, Any] = {}
        if args.explain:
            for case, name in databases.items():
                use_database(name)
                extra[f"explain {case}"] = explain_builds()
        if args.gunicorn:
            from django.db import connections

            connections.close_all()
            for case in ("empty", "full", "empty", "full"):  # twice each, alternating
                case_env = {**env, "DATABASE_URL": database_url(args.database_url, case)}
                use_database(databases[case])
                from rest_framework.authtoken.models import Token

                token = Token.objects.get(user__username="bench").key
                connections.close_all()
                extra.setdefault(f"gunicorn {case}", []).append(
                    gunicorn_rate(case_env, token, seconds=args.gunicorn_seconds, clients=args.clients)
                )
    finally:
        moto_server.terminate()
        moto_server.wait(timeout=30)

    print(
        f"\n{'list':24} {'empty ms':>9} {f'{args.files} files ms':>15} {'ratio':>6} {'p90 e/f ms':>14} {'queries':>8} {'KB':>6}"
    )
    for label in timed["empty"]:
        empty, full = timed["empty"][label], timed["full"][label]
        print(
            f"{label:24} {empty['median_ms']:9.1f} {full['median_ms']:15.1f} {full['median_ms'] / empty['median_ms']:6.2f} "
            f"{empty['p90_ms']:6.1f}/{full['p90_ms']:<7.1f} {empty['queries']:>3}/{full['queries']:<4} "
            f"{full['bytes'] / 1024:6.1f}"
        )
    print(f"AWS calls made while the lists were served: {aws_calls.calls}")
    for case in ("empty", "full"):
        for g in extra.get(f"gunicorn {case}", []):
            print(
                f"gunicorn pipelines list ({case}): {g['req_per_s']:.1f} req/s, median {g['median_ms']:.0f} ms, "
                f"p99 {g['p99_ms']:.0f} ms, {g['errors']} errors ({args.clients} clients, {args.gunicorn_seconds:.0f} s)"
            )
    for case in ("empty", "full"):
        if f"explain {case}" in extra:
            print(f"\nEXPLAIN of /builds/ (non-staff, page 1 of 100), {case}:\n{extra[f'explain {case}']}")
    if args.json:
        print(json.dumps({"loaded": loaded, "lists": timed, **extra}, indent=2, default=str))


if __name__ == "__main__":
    main()

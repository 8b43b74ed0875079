#!/usr/bin/env python
"""Release and rollback on the dev run (issue 9): how long a 10-file release takes from the upload
to being served by the local edge, and a rollback from the API call to the old site being served.

    .venv/bin/python benchmarks/release_bench.py            # 10 releases, ~20 s
    .venv/bin/python benchmarks/release_bench.py --runs 20

Starts ``manage.py devserver --aws emulator`` (its in-process worker, moto server, SQLite and
the local edge, in a temporary folder), provisions one pipeline over the API, then per run:
zips 10 files whose pages carry a fresh marker, POSTs the release (``deploy=true``) and polls the
local edge (Host ``{name}.localhost``) every 5 ms until the page shows the marker. Then it rolls
back to the first release's build (``POST /builds/{id}/redeploy/``) and polls until the first
marker is served again. Prints each time and the medians. A command, not a test.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
import re
import statistics
import sys
import tempfile
import time
import zipfile

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deletion_bench import start_devserver, wait_for

POLL_SECONDS = 0.005


def site_zip(marker: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("index.html", f"<!doctype html><title>{marker}</title><p>{marker}</p>")
        for n in range(1, 6):
            archive.writestr(f"page-{n}/index.html", f"<!doctype html><p>{marker} page {n}</p>")
        archive.writestr("assets/app.css", "body { font-family: sans-serif }")
        archive.writestr("assets/app.js", f"console.log('{marker}')")
        archive.writestr("robots.txt", "User-agent: *")
        archive.writestr("404.html", "<!doctype html><p>not found</p>")
    return out.getvalue()


def served(edge: str, host: str, marker: str, timeout: float = 30) -> float:
    """Poll until the edge serves the marker; returns when it did (perf_counter)."""
    session = requests.Session()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = session.get(edge, headers={"Host": host}, timeout=5)
        if answer.status_code == 200 and marker in answer.text:
            return time.perf_counter()
        time.sleep(POLL_SECONDS)
    raise SystemExit(f"{marker} not served within {timeout} s (last: {answer.status_code} {answer.text[:200]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="troy-releasebench-") as tmp:
        server, base, token = start_devserver(tmp)
        try:
            log = (Path(tmp) / "devserver.log").read_text(errors="replace")
            port = re.search(r"sites\s+http://\{name\}\.localhost:(\d+)/", log)
            if port is None:
                raise SystemExit(f"the dev run printed no local edge:\n{log[-2000:]}")
            edge = f"http://127.0.0.1:{port.group(1)}/"
            api = requests.Session()
            api.headers["Authorization"] = f"Token {token}"
            created = api.post(f"{base}/api/v1/pipelines/", json={"name": "bench-release", "provision": True})
            created.raise_for_status()
            pipeline = created.json()
            url = f"{base}/api/v1/pipelines/{pipeline['id']}/"
            wait_for(api, url, lambda a: a.ok and a.json()["status"] == "ready_for_deployment")
            host = f"{pipeline['name']}.localhost"
            releases, first_build = [], None
            for run in range(args.runs + 1):  # the first run warms the worker and the edge up
                marker = f"release-{run}-{time.time_ns()}"
                body = site_zip(marker)
                started = time.perf_counter()
                answer = api.post(
                    f"{base}/api/v1/pipelines/{pipeline['id']}/releases/",
                    files={"file": ("site.zip", body, "application/zip")},
                    data={"deploy": "true"},
                )
                if answer.status_code != 201:
                    raise SystemExit(f"release answered {answer.status_code}: {answer.text[:300]}")
                seconds = served(edge, host, marker) - started
                if run == 0:
                    first_marker = marker
                    first_build = wait_for(api, url, lambda a: a.json()["status"] == "deployed").json()["live_build"][
                        "id"
                    ]
                else:
                    releases.append(seconds)
            wait_for(api, url, lambda a: a.json()["status"] == "deployed")
            started = time.perf_counter()
            answer = api.post(f"{base}/api/v1/builds/{first_build}/redeploy/")
            if answer.status_code != 202:
                raise SystemExit(f"redeploy answered {answer.status_code}: {answer.text[:300]}")
            rollback = served(edge, host, first_marker) - started
            rolled = wait_for(api, url, lambda a: a.json()["status"] == "deployed").json()["live_build"]["id"]
            build = api.get(f"{base}/api/v1/builds/{rolled}/").json()
        finally:
            server.terminate()
            server.wait(timeout=30)
    print("dev run (moto server, in-process worker, SQLite, local edge)")
    print("10-file release, upload → served (s): " + ", ".join(f"{t:.3f}" for t in releases))
    print(f"median {statistics.median(releases):.3f} s, max {max(releases):.3f} s over {len(releases)} runs")
    print(
        f"rollback to build 1, API call → served: {rollback:.3f} s "
        f"(is_rollback={build.get('is_rollback')}, stored={build.get('stored')}, content_build={build.get('content_build')})"
    )


if __name__ == "__main__":
    main()

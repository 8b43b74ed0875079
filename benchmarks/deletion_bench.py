#!/usr/bin/env python
"""Deletion benchmark (issue 9): how long deleting a provisioned pipeline takes end to end on the
dev run, where the emulator (moto server) reports a disabled distribution deployed at once.

    .venv/bin/python benchmarks/deletion_bench.py            # 5 pipelines, ~10 s
    .venv/bin/python benchmarks/deletion_bench.py --runs 10

Starts ``manage.py devserver --aws emulator`` (its in-process worker, moto server and SQLite in a
temporary folder), then for each run: create a pipeline with ``provision: true`` over the API,
wait until it is ``ready_for_deployment``, ``DELETE`` it, and poll its URL every 20 ms until it
answers 404 (the row is gone). Prints each time and the median. A command, not a test: nothing
here asserts a time.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time

import requests

ROOT = Path(__file__).resolve().parents[1]
POLL_SECONDS = 0.02


def start_devserver(tmp: str) -> tuple[subprocess.Popen, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TROY_", "AWS_", "DATABASE"))}
    env.update(
        DJANGO_SETTINGS_MODULE="deployment_service.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(32),
        DJANGO_DEBUG="1",
        DATABASE_URL=f"sqlite:///{tmp}/troy.sqlite3",
        DRAMATIQ_BROKER_URL="",
        TROY_DATA_DIR=f"{tmp}/var",
        TROY_UPLOAD_SPOOL_DIR=f"{tmp}/spool",
    )
    log_path = Path(tmp) / "devserver.log"
    log = open(log_path, "wb")  # noqa: SIM115 (the child holds it for its lifetime)
    server = subprocess.Popen(
        [sys.executable, "manage.py", "devserver", "--port", "0", "--aws", "emulator"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        api = re.search(r"API\s+(http://\S+)/api/v1/", text)
        token = re.search(r"token\s+(\w+)", text)
        if api and token:
            return server, api.group(1), token.group(1)
        if server.poll() is not None:
            break
        time.sleep(0.2)
    server.terminate()
    raise SystemExit(f"the dev run did not start:\n{log_path.read_text(errors='replace')[-3000:]}")


def wait_for(session: requests.Session, url: str, done, timeout: float = 60) -> requests.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = session.get(url, timeout=10)
        if done(answer):
            return answer
        time.sleep(POLL_SECONDS)
    raise SystemExit(f"timed out waiting on {url}: last answer {answer.status_code} {answer.text[:300]}")


def one_run(session: requests.Session, base: str, name: str) -> float:
    created = session.post(f"{base}/api/v1/pipelines/", json={"name": name, "provision": True}, timeout=10)
    created.raise_for_status()
    url = f"{base}/api/v1/pipelines/{created.json()['id']}/"
    ready = wait_for(
        session, url, lambda a: a.ok and a.json()["status"] in {"ready_for_deployment", "failed_to_provision"}
    )
    if ready.json()["status"] != "ready_for_deployment":
        raise SystemExit(f"provisioning failed: {ready.json()['last_error']}")
    started = time.perf_counter()
    deleted = session.delete(url, timeout=10)
    if deleted.status_code != 202:
        raise SystemExit(f"DELETE answered {deleted.status_code}: {deleted.text[:300]}")
    wait_for(session, url, lambda a: a.status_code == 404 or (a.ok and a.json()["status"] == "failed_to_delete"))
    seconds = time.perf_counter() - started
    if session.get(url, timeout=10).status_code != 404:
        raise SystemExit("deletion failed")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="troy-deletebench-") as tmp:
        server, base, token = start_devserver(tmp)
        try:
            session = requests.Session()
            session.headers["Authorization"] = f"Token {token}"
            times = [one_run(session, base, f"bench-delete-{n}") for n in range(args.runs)]
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(f"dev run ({base}, moto server, in-process worker, SQLite)")
        print("DELETE → row gone (s): " + ", ".join(f"{t:.2f}" for t in times))
        print(f"median {statistics.median(times):.2f} s, max {max(times):.2f} s over {len(times)} runs")


if __name__ == "__main__":
    main()

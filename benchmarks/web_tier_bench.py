#!/usr/bin/env python
"""Web-tier benchmark (issue 8, "a web tier that stays up"): gunicorn as documented
(``-c gunicorn.conf.py``, SQLite, in-process broker), three clients sending one header byte per
second, and one release of ``--upload-mb`` MB sent at ``--rate-mb`` MB/s; /healthz is probed on a
fresh connection every 0.5 s meanwhile.

    .venv/bin/python benchmarks/web_tier_bench.py                    # 300 MB at 8 MB/s, ~45 s
    .venv/bin/python benchmarks/web_tier_bench.py --workers 1        # the hardest case: one process

Prints the upload's answer and time and /healthz latencies. A command, not a test: nothing here
asserts a time. Everything lives in a temporary folder removed at the end.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e import slow_clients as slow  # noqa: E402 (after the path is set)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upload-mb", type=int, default=300)
    parser.add_argument("--rate-mb", type=float, default=8)
    parser.add_argument("--slow-clients", type=int, default=3)
    parser.add_argument("--workers", default="2")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="troy-webbench-") as tmp:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TROY_", "GUNICORN_", "DATABASE"))}
        env.update(
            DJANGO_SETTINGS_MODULE="deployment_service.settings",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(32),
            TROY_HTTPS="0",  # gunicorn is reached over plain HTTP on 127.0.0.1
            DATABASE_URL=f"sqlite:///{tmp}/troy.sqlite3",
            DRAMATIQ_BROKER_URL="",
            TROY_DATA_DIR=f"{tmp}/var",
            TROY_UPLOAD_SPOOL_DIR=f"{tmp}/spool",
            GUNICORN_BIND=f"127.0.0.1:{port}",
            GUNICORN_WORKERS=args.workers,
            GUNICORN_ACCESS_LOG="/dev/null",
        )

        def manage(*argv: str) -> str:
            return subprocess.run(
                [sys.executable, "manage.py", *argv], cwd=ROOT, env=env, check=True, capture_output=True, text=True
            ).stdout

        manage("migrate", "--noinput")
        token = manage("issue_token", "bench").strip()
        log = open(f"{tmp}/gunicorn.log", "wb")  # noqa: SIM115 (the child holds it for its lifetime)
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "deployment_service.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            for _ in range(60):
                try:
                    slow.healthz_probe("127.0.0.1", port, timeout=1)
                    break
                except OSError:
                    time.sleep(0.5)
            import requests

            created = requests.post(
                f"http://127.0.0.1:{port}/api/v1/pipelines/",
                json={"name": "bench-site", "repository": "octo-org/bench"},
                headers={"Authorization": f"Token {token}"},
                timeout=10,
            )
            created.raise_for_status()
            pipeline_id = created.json()["id"]
            print(f"building a {args.upload_mb} MB release zip…", flush=True)
            zip_bytes = slow.release_zip(args.upload_mb * 1024 * 1024)

            clients = [slow.SlowHeaderClient("127.0.0.1", port) for _ in range(args.slow_clients)]
            for client in clients:
                client.start()
            time.sleep(1)
            outcome: dict = {}
            uploader = threading.Thread(
                target=lambda: outcome.update(
                    result=slow.slow_upload(
                        "127.0.0.1",
                        port,
                        path=f"/api/v1/pipelines/{pipeline_id}/releases/",
                        token=token,
                        zip_bytes=zip_bytes,
                        rate_bytes_per_second=int(args.rate_mb * 1024 * 1024),
                        version="bench",
                    )
                ),
                daemon=True,
            )
            uploader.start()
            latencies, failures = [], 0
            while uploader.is_alive():
                try:
                    status, seconds = slow.healthz_probe("127.0.0.1", port, timeout=5)
                    latencies.append(seconds) if status == 200 else None
                    failures += status != 200
                except OSError:
                    failures += 1
                uploader.join(0.5)
            for client in clients:
                client.stopped.set()
            status, body, upload_seconds = outcome["result"]
            latencies.sort()
            print(
                f"gunicorn: -c gunicorn.conf.py, GUNICORN_WORKERS={args.workers}; {args.slow_clients} slow-header clients"
            )
            print(f"upload: {len(zip_bytes)} B at {args.rate_mb} MB/s -> HTTP {status} in {upload_seconds:.1f} s")
            print(body[:300].decode(errors="replace"))
            print(
                f"/healthz: {len(latencies)} answered, {failures} failed/timed out; "
                f"median {latencies[len(latencies) // 2] * 1000:.1f} ms, "
                f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
            )
            timeouts = Path(f"{tmp}/gunicorn.log").read_text(errors="replace").count("WORKER TIMEOUT")
            print(f"WORKER TIMEOUT lines in gunicorn's log: {timeouts}")
        finally:
            web.terminate()
            web.wait(timeout=30)
            log.close()


if __name__ == "__main__":
    main()

"""The dev run as a newcomer starts it: one process with the emulator, the API and the local edge.
It prints where the sites are, the API reports each site's local address, and the edge answers
for a provisioned pipeline with nothing live yet."""

from __future__ import annotations

import json
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import time
from urllib.request import Request, urlopen

from tests.operations.test_local_edge import _read_until, get

ROOT = Path(__file__).resolve().parents[2]


def _api(base: str, token: str, path: str, body: dict | None = None) -> dict:
    request = Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    with urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_the_dev_run_starts_the_local_edge_and_the_api_reports_local_addresses(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "AWS_", "DJANGO_", "TROY_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="deployment_service.settings",
        DJANGO_SECRET_KEY="devserver-test-only",
        TROY_HTTPS="0",
        TROY_DATA_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'troy.sqlite3'}",
        DRAMATIQ_BROKER_URL="",
        PYTHONUNBUFFERED="1",
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "devserver", "--port", "0", "--edge-port", "0", "--aws", "emulator"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        banner = _read_until(process, "Press Ctrl-C", timeout=120)
        base = re.search(r"API +(http://127\.0\.0\.1:\d+)/api/v1/", banner).group(1)
        edge_port = int(re.search(r"sites +http://\{name\}\.localhost:(\d+)/", banner).group(1))
        token = re.search(r"token +([0-9a-f]{40})", banner).group(1)
        assert f"open http://hello.localhost:{edge_port}/" in banner

        created = _api(base, token, "/api/v1/pipelines/", {"name": "hello", "provision": True})
        assert created["local_url"] == f"http://hello.localhost:{edge_port}/"
        deadline = time.monotonic() + 30
        while _api(base, token, f"/api/v1/pipelines/{created['id']}/")["status"] != "ready_for_deployment":
            assert time.monotonic() < deadline, "hello was not provisioned"
            time.sleep(0.2)

        status, _headers, body = get(edge_port, f"hello.localhost:{edge_port}")
        assert status == 404 and b"This site has nothing deployed yet." in body
        assert f'<a href="{base}/">'.encode() in body
        with urlopen(base + "/", timeout=10) as home:
            assert b"API documentation" in home.read()
        assert set(_api(base, token, "/api/v1/")) >= {"pipelines", "builds", "events"}
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert "stopped local edge" in output.decode()

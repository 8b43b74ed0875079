"""The web tier under slow clients: gunicorn as documented (``-c gunicorn.conf.py``) with one
worker process, three clients trickling their headers and a release upload that takes longer
than the worker timeout. /healthz must keep answering and the release must be stored.
(SQLite and the in-process broker: this is about gunicorn, not the services behind it.)"""

from __future__ import annotations

import logging
import os
import secrets
import threading

import pytest
import requests

from tests.e2e import processes as p
from tests.e2e import slow_clients as slow

pytestmark = [pytest.mark.e2e]
logger = logging.getLogger(__name__)

UPLOAD_BYTES = 40 * 1024 * 1024
UPLOAD_RATE = 4 * 1024 * 1024  # ~10 s: twice the GUNICORN_TIMEOUT set below
PROBE_TIMEOUT = 5.0  # a probe that gets no answer in this long counts as unreachable


@pytest.fixture
def web(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "AWS_", "DJANGO_", "TROY_", "GUNICORN_"))
    }
    port = p.free_port()
    env.update(
        DJANGO_SETTINGS_MODULE="deployment_service.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(32),
        TROY_HTTPS="0",  # gunicorn is reached over plain HTTP on 127.0.0.1
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=f"sqlite:///{tmp_path / 'troy.sqlite3'}",
        DRAMATIQ_BROKER_URL="",
        TROY_DATA_DIR=str(tmp_path / "var"),
        TROY_UPLOAD_SPOOL_DIR=str(tmp_path / "spool"),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="1",  # one process: slow clients must not be able to take it
        GUNICORN_TIMEOUT="5",  # a sync worker would be killed mid-upload; the heartbeat must not be
        PYTHONUNBUFFERED="1",
    )
    procs = p.Processes(workdir=tmp_path, env=env)
    try:
        procs.run("migrate", "manage.py", "migrate", "--noinput")
        token = procs.run("issue_token", "manage.py", "issue_token", "e2e-user").strip()
        procs.start("gunicorn", "-m", "gunicorn", "-c", "gunicorn.conf.py", "deployment_service.wsgi")
        base = f"http://127.0.0.1:{port}"
        procs.wait_for("gunicorn answering /healthz", lambda: requests.get(base + "/healthz", timeout=2).ok, timeout=30)
        yield base, port, token, procs
    finally:
        procs.stop_all()


def test_healthz_answers_while_slow_clients_and_a_long_upload_hold_connections(web):
    base, port, token, procs = web
    api = requests.Session()
    api.headers["Authorization"] = f"Token {token}"
    created = api.post(base + "/api/v1/pipelines/", json={"name": "big-site"}, timeout=10)
    assert created.status_code == 201, created.text
    pipeline_id = created.json()["id"]

    slow_header_clients = [slow.SlowHeaderClient("127.0.0.1", port) for _ in range(3)]
    for client in slow_header_clients:
        client.start()
    outcome: dict = {}

    def upload():
        outcome["result"] = slow.slow_upload(
            "127.0.0.1",
            port,
            path=f"/api/v1/pipelines/{pipeline_id}/releases/",
            token=token,
            zip_bytes=slow.release_zip(UPLOAD_BYTES),
            rate_bytes_per_second=UPLOAD_RATE,
            version="v-big",
        )

    uploader = threading.Thread(target=upload, daemon=True)
    uploader.start()
    latencies = []
    try:
        while uploader.is_alive():
            status, seconds = slow.healthz_probe("127.0.0.1", port, timeout=PROBE_TIMEOUT)
            assert status == 200
            latencies.append(seconds)
            uploader.join(0.5)
    finally:
        for client in slow_header_clients:
            client.stopped.set()

    status, body, upload_seconds = outcome["result"]
    logger.warning(
        "upload %d B in %.1f s -> %d; /healthz %d probes, max %.0f ms, median %.0f ms",
        UPLOAD_BYTES,
        upload_seconds,
        status,
        len(latencies),
        max(latencies) * 1000,
        sorted(latencies)[len(latencies) // 2] * 1000,
    )
    assert status == 201, body[:500]
    assert len(latencies) >= 5  # the probes ran throughout the upload
    releases = api.get(base + f"/api/v1/pipelines/{pipeline_id}/releases/", timeout=10).json()["results"]
    assert [r["version"] for r in releases] == ["v-big"]
    assert all(client.bytes_sent > 0 for client in slow_header_clients)
    assert "WORKER TIMEOUT" not in procs.started[0].tail(400)

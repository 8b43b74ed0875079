"""The local edge over real HTTP, with the pointers read from the database: the server
``manage.py edge`` and the dev run start (in a thread here), and the command itself in a process
of its own against a moto server."""

from __future__ import annotations

import http.client
import os
from pathlib import Path
import select
import subprocess
import sys
import time

from django.conf import settings
from django.db import connection
from django.db.backends.signals import connection_created
import pytest

from deployment_service import aws as aws_clients
from edge.rules import Rules
from operations.local_edge import bind_edge_server, make_edge_server, start_edge_server
from tests.operations.edge_support import go_live, ready_pipeline, run_deploy

pytestmark = pytest.mark.django_db(transaction=True)  # the server's threads read what the test committed

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "http://127.0.0.1:8000/"


def get(port: int, host: str, path: str = "/", method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.fixture
def edge(aws, broker):
    running = start_edge_server(make_edge_server("127.0.0.1", 0, sites_url=SERVICE, quiet=True))
    yield running
    running.stop()


@pytest.fixture
def s3(aws):
    return aws_clients.client("s3")


def test_each_pipeline_is_served_by_its_host_on_localhost_and_the_base_domain(edge, s3):
    hello = ready_pipeline("hello")
    shop = ready_pipeline("shop")
    go_live(s3, settings.TROY_LIVE_BUCKET, hello, {"index.html": b"<h1>hello</h1>", "about/index.html": b"about"})
    go_live(s3, settings.TROY_LIVE_BUCKET, shop, {"index.html": b"<h1>shop</h1>"})

    assert get(edge.port, f"hello.localhost:{edge.port}")[2] == b"<h1>hello</h1>"
    assert get(edge.port, "HELLO.localhost")[2] == b"<h1>hello</h1>"
    assert get(edge.port, f"hello.{settings.TROY_BASE_DOMAIN}", "/about/")[2] == b"about"
    status, headers, body = get(edge.port, f"shop.localhost:{edge.port}")
    assert (status, body) == (200, b"<h1>shop</h1>")
    assert headers["content-type"] == "text/html"
    assert headers["cache-control"] == "public, max-age=0, must-revalidate"
    status, headers, body = get(edge.port, "shop.localhost", method="HEAD")
    assert (status, body, headers["content-length"]) == (200, b"", str(len(b"<h1>shop</h1>")))
    status, headers, _ = get(edge.port, "hello.localhost", "/about")
    assert (status, headers["location"]) == (301, "/about/")


def test_an_unknown_host_and_a_site_with_nothing_live_get_pages_that_say_so(edge):
    ready_pipeline("fresh")

    status, headers, body = get(edge.port, "nosuch.localhost")
    assert status == 404 and headers["content-type"].startswith("text/html")
    assert b"No site is served at this address." in body
    assert f'<a href="{SERVICE}">'.encode() in body
    status, _headers, body = get(edge.port, "fresh.localhost")
    assert status == 404 and b"This site has nothing deployed yet." in body
    assert f'<a href="{SERVICE}">'.encode() in body
    assert get(edge.port, "127.0.0.1")[0] == 404


def test_going_live_and_rolling_back_switch_the_next_request(edge, s3):
    site = ready_pipeline("site")
    first = go_live(s3, settings.TROY_LIVE_BUCKET, site, {"index.html": b"v1"})
    go_live(s3, settings.TROY_LIVE_BUCKET, site, {"index.html": b"v2"})
    assert get(edge.port, "site.localhost")[2] == b"v2"

    # A rollback to a retained build writes nothing but the pointer.
    rollback = run_deploy(site, rollback_of=first)
    assert rollback.content_build_id == first.pk
    assert get(edge.port, "site.localhost")[2] == b"v1"


def get_as(port: int, host: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host, **headers})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_a_builds_rules_go_live_and_roll_back_with_it(edge, s3):
    app = ready_pipeline("app")
    files = {"index.html": b"<div id=root>", "assets/app.3f9a1c2b.js": b"render()"}
    spa = Rules.build(
        redirects_text="/old/*  /:splat  301\n",
        headers_text="/*\n  X-Frame-Options: DENY\n",
        config_text='{"spa": true}',
    )
    first = go_live(s3, settings.TROY_LIVE_BUCKET, app, files, rules=spa.to_dict())
    navigate = {"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}

    status, headers, body = get_as(edge.port, "app.localhost", "/settings/profile", navigate)
    assert (status, body, headers["x-frame-options"]) == (200, b"<div id=root>", "DENY")
    assert get_as(edge.port, "app.localhost", "/settings/profile", {"Sec-Fetch-Mode": "cors"})[0] == 404
    assert get_as(edge.port, "app.localhost", "/assets/app.0badc0de.js", navigate)[0] == 404
    status, headers, _ = get_as(edge.port, "app.localhost", "/old/settings?tab=2", {})
    assert (status, headers["location"], headers["x-frame-options"]) == (301, "/settings?tab=2", "DENY")

    # A build without rules: no fallback, no redirect, no header; rolling back brings them back.
    go_live(s3, settings.TROY_LIVE_BUCKET, app, files)
    status, headers, _ = get_as(edge.port, "app.localhost", "/settings/profile", navigate)
    assert status == 404 and "x-frame-options" not in headers
    assert get_as(edge.port, "app.localhost", "/old/settings", {})[0] == 404
    run_deploy(app, rollback_of=first)
    assert get_as(edge.port, "app.localhost", "/settings/profile", navigate)[:1] == (200,)


def test_a_taken_port_falls_back_to_a_free_one(edge):
    other = bind_edge_server("127.0.0.1", edge.port, quiet=True)
    try:
        assert other.server_address[1] not in (0, edge.port)
    finally:
        other.server_close()


# --- the command, in its own process ------------------------------------------------------------


@pytest.fixture
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _read_until(process: subprocess.Popen, marker: str, timeout: float = 60) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            raise AssertionError(f"no {marker!r} from manage.py edge; it said:\n{seen}")
        ready, _, _ = select.select([process.stdout], [], [], remaining)
        if ready:
            seen += os.read(process.stdout.fileno(), 4096).decode()
    return seen


def _database_url() -> str:
    """The test database, as a DATABASE_URL for the command's own process (SQLite or PostgreSQL,
    whichever the suite runs on)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_manage_py_edge_serves_by_host_over_http_and_logs_each_request(moto_server, broker, tmp_path):
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="troy-live-edge-test")
    hello = ready_pipeline("hello")
    go_live(s3, "troy-live-edge-test", hello, {"index.html": b"<h1>hello from the edge</h1>"})
    ready_pipeline("empty")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "AWS_", "DJANGO_", "TROY_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="deployment_service.settings",
        DJANGO_SECRET_KEY="edge-command-test-only",
        DATABASE_URL=_database_url(),
        TROY_DATA_DIR=str(tmp_path),
        TROY_LIVE_BUCKET="troy-live-edge-test",
        AWS_ENDPOINT_URL=moto_server,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        PYTHONUNBUFFERED="1",
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "edge", "--port", "0", "--sites-url", SERVICE],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        banner = _read_until(process, "Press Ctrl-C")
        port = int(banner.split("local edge on http://127.0.0.1:", 1)[1].split("/", 1)[0])
        assert f"sites  http://{{name}}.localhost:{port}/" in banner

        assert get(port, f"hello.localhost:{port}")[::2] == (200, b"<h1>hello from the edge</h1>")
        status, _headers, body = get(port, "empty.localhost")
        assert status == 404 and b"nothing deployed yet" in body
        assert get(port, "hello.localhost", method="HEAD")[::2] == (200, b"")
    finally:
        process.terminate()
        _out, err = process.communicate(timeout=20)
    log = err.decode()
    assert process.returncode == 0, log
    length = len(b"<h1>hello from the edge</h1>")
    assert f'"GET / HTTP/1.1" 200 {length}' in log and '"HEAD / HTTP/1.1" 200 0' in log
    assert '"GET / HTTP/1.1" 404 ' in log


def test_a_keep_alive_connection_reads_the_pointers_on_one_database_connection(edge, s3):
    site = ready_pipeline("site")
    go_live(s3, settings.TROY_LIVE_BUCKET, site, {"index.html": b"v1"})
    opened: list[object] = []

    def count(sender, connection, **kwargs):
        opened.append(connection)

    connection_created.connect(count)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=10)
        for _ in range(5):
            conn.request("GET", "/", headers={"Host": "site.localhost"})
            assert conn.getresponse().read() == b"v1"
        conn.close()
        assert get(edge.port, "site.localhost")[2] == b"v1"  # a new client connection: its own thread
    finally:
        connection_created.disconnect(count)
    assert len(opened) == 2

"""The all-in-one development run behind ``manage.py devserver`` (and ``python3 dev.py run``).

One process holds everything a fresh checkout needs: the database (SQLite by default, migrated
here), a Dramatiq worker in threads on the configured broker (the in-process StubBroker unless
``DRAMATIQ_BROKER_URL`` is set), the periodic scheduler (reaper, reconciler), a local AWS emulator
(moto server) bootstrapped with Troy's shared resources when no AWS endpoint or credentials are
configured, Django's threaded development web server and the local edge (operations/local_edge.py:
every pipeline's live build at ``http://{name}.localhost:8001/``). Ctrl-C stops all of it.

Production runs these as separate processes instead: gunicorn, ``manage.py rundramatiq``,
``manage.py scheduler`` and real AWS, where CloudFront serves the sites (see the README).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from io import StringIO
import logging
import os
from pathlib import Path
import secrets
import socketserver
import threading
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.management import call_command
from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer, get_internal_wsgi_application
import dramatiq

from deployment_service import aws
from deployment_service.bootstrap import bootstrap_aws_resources
from operations.scheduler import run_scheduler, start_local_source_poller

logger = logging.getLogger(__name__)

DEV_USERNAME = "dev"
# AWS's documented dummy credentials for emulators; never valid against a real account.
EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Environment variables through which boto3 finds credentials without the shared files.
_CREDENTIAL_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


# --- AWS: a configured account or the local emulator ---------------------------------------------


def configured_aws_source() -> str | None:
    """Where AWS is configured for this process, or None when nothing is (then the emulator runs).

    Checks the endpoint, the credential variables and the shared files; it does not ask the
    instance metadata service (a network call that hangs for seconds on a laptop)."""
    if os.environ.get("AWS_ENDPOINT_URL") or settings.AWS_ENDPOINT_URL:
        return f"AWS_ENDPOINT_URL={os.environ.get('AWS_ENDPOINT_URL') or settings.AWS_ENDPOINT_URL}"
    for name in _CREDENTIAL_ENV:
        if os.environ.get(name):
            return f"credentials from ${name}"
    home = Path.home()
    for variable, default in (
        ("AWS_SHARED_CREDENTIALS_FILE", home / ".aws" / "credentials"),
        ("AWS_CONFIG_FILE", home / ".aws" / "config"),
    ):
        path = Path(os.environ.get(variable) or default)
        if path.is_file():
            return f"credentials from {path}"
    return None


@dataclass
class AwsEmulator:
    """moto's server in a thread of this process, on a free loopback port. Its state lives in
    memory: a restart starts from empty (pipelines kept in the database then find their AWS
    objects "not found", which deletion treats as already done)."""

    host: str = "127.0.0.1"
    port: int = 0
    _server: Any = None  # moto.server.ThreadedMotoServer, imported only when the dev run starts

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        # moto is a development requirement only: a production image without it never starts the emulator.
        from moto.server import ThreadedMotoServer

        # moto's server logs every request through werkzeug; the dev console is for Troy.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()
        return self.endpoint

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def point_aws_at(endpoint: str) -> None:
    """Every boto3 client made from now on (any thread) talks to ``endpoint`` with dummy
    credentials: set in the environment (boto3) and in Django's settings (deployment_service.aws)."""
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    for name, value in EMULATOR_CREDENTIALS.items():
        os.environ[name] = value
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.setdefault("AWS_DEFAULT_REGION", settings.AWS_REGION)
    settings.AWS_ENDPOINT_URL = endpoint
    # A fresh emulator holds no zone yet: a TROY_HOSTED_ZONE_ID from the shell would not exist in it.
    settings.TROY_HOSTED_ZONE_ID = ""
    # No emulator serves the CloudFront KeyValueStore's data API: going live is the database's
    # pointer row alone, which the local edge reads.
    settings.TROY_EDGE_POINTERS = "local"
    aws.reset_clients()


def bootstrap_aws() -> list[str]:
    """Create (or find) the shared AWS resources and put their ids into the settings."""
    report = bootstrap_aws_resources()
    settings.TROY_HOSTED_ZONE_ID = report.hosted_zone_id
    if report.sns_topic_arn and report.sns_topic_arn not in settings.TROY_SNS_TOPIC_ARNS:
        settings.TROY_SNS_TOPIC_ARNS = [*settings.TROY_SNS_TOPIC_ARNS, report.sns_topic_arn]
    return report.lines()


# --- the local flow: local git sources and the local builder --------------------------------------


def use_local_flow(*, emulator: bool) -> str:
    """The dev run builds on this machine: local git sources (``file:///path``) are allowed, and
    with the emulator (moto runs no CodeBuild build) the local builder runs the builds. A value set
    in the environment wins (``TROY_LOCAL_SOURCES=0``, ``TROY_BUILDER=codebuild``). The dev run is
    a developer's own machine, so the warning about local sources without DEBUG is silenced."""
    if "TROY_LOCAL_SOURCES" not in os.environ:
        settings.TROY_LOCAL_SOURCES = True
    if "TROY_BUILDER" not in os.environ and emulator:
        settings.TROY_BUILDER = "local"
    settings.SILENCED_SYSTEM_CHECKS = [*settings.SILENCED_SYSTEM_CHECKS, "pipelines.W020"]
    sources = "local git sources allowed (file:///path)" if settings.TROY_LOCAL_SOURCES else "GitHub sources only"
    builder = "the local builder (this machine)" if settings.TROY_BUILDER == "local" else "CodeBuild"
    return f"{builder}; {sources}"


# --- the dev user -------------------------------------------------------------------------------


@dataclass
class DevUser:
    username: str
    password: str
    token: str


def ensure_dev_user(username: str = DEV_USERNAME) -> DevUser:
    """A staff user for the admin and the API. Its password is made once, kept beside the SQLite
    file (``TROY_DATA_DIR``, mode 600) and set again if it no longer matches, so what the run
    prints always logs in."""
    password_file = Path(settings.DATA_DIR) / f"{username}-password"
    password_file.parent.mkdir(parents=True, exist_ok=True)
    password = password_file.read_text().strip() if password_file.exists() else ""
    if not password:
        password = secrets.token_urlsafe(12)
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)

    out = StringIO()
    call_command("issue_token", username, "--staff", stdout=out)  # creates the user if missing
    user = get_user_model().objects.get(**{get_user_model().USERNAME_FIELD: username})
    if not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
    return DevUser(username=username, password=password, token=out.getvalue().strip())


# --- the worker and the scheduler ---------------------------------------------------------------


def start_worker(threads: int):
    """A Dramatiq worker in threads of this process, on whatever broker the settings chose."""
    broker = dramatiq.get_broker()
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=250)
    worker.start()
    return worker


def start_scheduler(stop: threading.Event) -> tuple[threading.Thread | None, str]:
    """Run the periodic scheduler (stuck-pipeline reaper, CodeBuild reconciler) in a thread."""
    thread = threading.Thread(target=run_scheduler, args=(stop,), name="troy-scheduler", daemon=True)
    thread.start()
    polling = ""
    if start_local_source_poller(stop) is not None:
        polling = f", local git sources every {settings.TROY_LOCAL_SOURCES_POLL_SECONDS} s"
    return thread, f"running in a thread (stuck-pipeline reaper, CodeBuild reconciler{polling})"


# --- the web server -----------------------------------------------------------------------------


def make_web_server(host: str, port: int):
    """Django's development WSGI server, threaded, serving static files (admin, API docs) itself
    whatever DEBUG says, like ``runserver --insecure``; no autoreloader (the worker lives here)."""
    server_cls = type("ThreadedWSGIServer", (socketserver.ThreadingMixIn, WSGIServer), {"daemon_threads": True})
    ipv6 = ":" in host
    httpd = server_cls((host.strip("[]"), port), WSGIRequestHandler, ipv6=ipv6)
    httpd.set_app(StaticFilesHandler(get_internal_wsgi_application()))
    return httpd


@dataclass
class Stack:
    """What the dev run started, stopped in reverse order."""

    stoppers: list[tuple[str, Callable[[], object]]] = field(default_factory=list)

    def add(self, name: str, stop: Callable[[], object]) -> None:
        self.stoppers.append((name, stop))

    def stop(self, report: Callable[[str], None]) -> None:
        while self.stoppers:
            name, stop = self.stoppers.pop()
            try:
                stop()
            except Exception:  # keep stopping the rest; say what failed
                logger.exception("stopping %s failed", name)
            else:
                report(f"stopped {name}")

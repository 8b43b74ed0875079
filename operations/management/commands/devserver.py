"""``manage.py devserver``: the whole service in one process for development (see
operations/devserver.py). ``python3 dev.py run`` runs it inside the project's venv."""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
import dramatiq

from operations import devserver as dev
from operations.local_edge import DEFAULT_PORT as EDGE_PORT
from operations.local_edge import bind_edge_server, start_edge_server


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = (
        "Run Troy for development in one process: migrations, a Dramatiq worker and the scheduler "
        "in threads, a local AWS emulator (when no AWS is configured), the web server and the local edge "
        "serving every site at http://{name}.localhost:EDGE_PORT/."
    )
    requires_system_checks = []  # checked below, after the emulator is pointed at

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0 = any free)")
        parser.add_argument(
            "--aws",
            choices=["auto", "emulator", "configured"],
            default="auto",
            help="auto (default): the local emulator unless AWS_ENDPOINT_URL or AWS credentials are "
            "configured; emulator: always the emulator; configured: never start it",
        )
        parser.add_argument(
            "--bootstrap",
            action="store_true",
            help="also run bootstrap_aws against configured AWS (always done on the emulator)",
        )
        parser.add_argument(
            "--edge-port",
            type=int,
            default=EDGE_PORT,
            help=f"port of the local edge serving the sites (default {EDGE_PORT}, any free one when taken; 0 = any free)",
        )
        parser.add_argument("--no-edge", action="store_true", help="no local edge (sites not served on this machine)")
        parser.add_argument("--worker-threads", type=int, default=4, help="Dramatiq worker threads (default 4)")
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="no in-process worker or scheduler (run `manage.py rundramatiq` yourself)",
        )

    def line(self, text: str = "") -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def handle(
        self,
        *args,
        host: str,
        port: int,
        aws: str,
        bootstrap: bool,
        worker_threads: int,
        no_worker: bool,
        edge_port: int,
        no_edge: bool,
        **options,
    ):
        # Ctrl-C and SIGTERM both stop everything cleanly (SIGINT explicitly too: a shell starting
        # this in the background would otherwise leave it ignored).
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
        # WhiteNoise warns that STATIC_ROOT (collectstatic's output) is missing; here static files
        # are served from the apps by the dev server instead.
        warnings.filterwarnings("ignore", message=r"No directory at: .*staticfiles")
        stack = dev.Stack()
        try:
            self._start(
                stack,
                host=host,
                port=port,
                aws=aws,
                bootstrap=bootstrap,
                worker_threads=worker_threads,
                no_worker=no_worker,
                edge_port=None if no_edge else edge_port,
            )
        except KeyboardInterrupt:
            self.line("\nstopping…")
        finally:
            stack.stop(lambda text: self.line(f"  {text}"))

    def _start(self, stack: dev.Stack, *, host, port, aws, bootstrap, worker_threads, no_worker, edge_port) -> None:
        # 1. AWS: decided before any boto3 client exists.
        source = dev.configured_aws_source()
        use_emulator = aws == "emulator" or (aws == "auto" and source is None)
        if use_emulator:
            emulator = dev.AwsEmulator()
            endpoint = emulator.start()
            stack.add("AWS emulator", emulator.stop)
            dev.point_aws_at(endpoint)
            aws_line = f"local emulator (moto server) at {endpoint}, in memory"
        else:
            if source is None:
                raise CommandError("--aws configured, but no AWS_ENDPOINT_URL or AWS credentials are configured")
            aws_line = f"configured: {source} (region {settings.AWS_REGION}) — provisioning creates real resources"
        builder_line = dev.use_local_flow(emulator=use_emulator)

        self.check(display_num_errors=False)

        # 2. Database.
        db = settings.DATABASES["default"]
        self.line(f"database: {db['ENGINE'].rsplit('.', 1)[-1]} {db['NAME']}")
        call_command("migrate", interactive=False, verbosity=0)

        # 3. Shared AWS resources.
        if use_emulator or bootstrap:
            for text in dev.bootstrap_aws():
                self.line(f"  aws {text.split(';')[0]}")
            self.line(
                f"  this run uses TROY_HOSTED_ZONE_ID={settings.TROY_HOSTED_ZONE_ID} "
                f"TROY_SNS_TOPIC_ARNS={','.join(settings.TROY_SNS_TOPIC_ARNS)}"
            )
        elif not settings.TROY_HOSTED_ZONE_ID:
            self.line(
                "  TROY_HOSTED_ZONE_ID is not set: run `python manage.py bootstrap_aws` once and set it "
                "(or pass --bootstrap)"
            )

        user = dev.ensure_dev_user()

        # 4. Worker and scheduler.
        broker_name = type(dramatiq.get_broker()).__name__
        if no_worker:
            worker_line = f"none in this process (--no-worker); broker {broker_name}"
            scheduler_line = "none in this process (--no-worker); run `python manage.py scheduler`"
        else:
            worker = dev.start_worker(worker_threads)
            stack.add("worker", worker.stop)
            worker_line = f"{worker_threads} threads in this process on {broker_name}"
            stop_scheduler = threading.Event()
            thread, scheduler_line = dev.start_scheduler(stop_scheduler)
            if thread is not None:
                stack.add("scheduler", lambda: (stop_scheduler.set(), thread.join(timeout=10)))  # type: ignore[func-returns-value]  # both calls, in order

        # 5. Web server.
        try:
            httpd = dev.make_web_server(host, port)
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc} (use --port)") from exc
        stack.add("web server", httpd.server_close)
        bound = httpd.server_address[1]
        shown_host = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
        base = f"http://{f'[{shown_host}]' if ':' in shown_host else shown_host}:{bound}"

        # 6. The local edge: every pipeline's live build by Host header. The API reports each
        # site's local address from TROY_LOCAL_EDGE_PORT, so it is set before the first request.
        sites_line = "none in this process (--no-edge); `python manage.py edge` serves them"
        edge_example = ""
        if edge_port is not None:
            try:
                edge_server = bind_edge_server(host, edge_port, sites_url=f"{base}/")
            except OSError as exc:
                raise CommandError(f"cannot listen on {host}:{edge_port}: {exc} (use --edge-port)") from exc
            edge = start_edge_server(edge_server)
            stack.add("local edge", edge.stop)
            settings.TROY_LOCAL_EDGE_PORT = edge.port
            os.environ["TROY_LOCAL_EDGE_PORT"] = str(edge.port)
            taken = f" ({edge_port} was taken)" if edge_port and edge.port != edge_port else ""
            sites_line = f"http://{{name}}.localhost:{edge.port}/   the local edge{taken}"
            edge_example = f"http://hello.localhost:{edge.port}/"
        self._banner(base, user, aws_line, worker_line, scheduler_line, sites_line, edge_example, builder_line)
        httpd.serve_forever()

    def _banner(
        self,
        base: str,
        user: dev.DevUser,
        aws_line: str,
        worker_line: str,
        scheduler_line: str,
        sites_line: str,
        edge_example: str,
        builder_line: str = "",
    ) -> None:
        example = (
            f"curl -s -X POST {base}/api/v1/pipelines/ \\\n"
            f"       -H 'Authorization: Token {user.token}' -H 'Content-Type: application/json' \\\n"
            '       -d \'{"name": "hello", "provision": true}\''
        )
        lines = [
            "",
            "Troy is running (development).",
            f"  API       {base}/api/v1/",
            f"  API docs  {base}/api/docs/",
            f"  home      {base}/   (links to the API docs, the admin and the sites)",
            f"  admin     {base}/admin/   user {user.username!r}, password {user.password!r}",
            f"  sites     {sites_line}",
            f"  health    {base}/healthz   {base}/readyz",
            f"  token     {user.token}   (header: Authorization: Token {user.token})",
            f"  worker    {worker_line}",
            f"  scheduler {scheduler_line}",
            f"  AWS       {aws_line}",
            f"  builds    {builder_line}",
            "",
            "Create a pipeline and provision it:",
            f"  {example}",
            f"  curl -s -H 'Authorization: Token {user.token}' {base}/api/v1/pipelines/",
            *([f"Once a release of it is live, open {edge_example} (or curl it)."] if edge_example else []),
            "",
            "Press Ctrl-C to stop.",
            "",
        ]
        for text in lines:
            self.line(text)
        sys.stdout.flush()

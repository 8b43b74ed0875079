"""``manage.py edge``: the local edge. Serves every pipeline's live build by Host header
(``{name}.localhost`` and ``{name}.{TROY_BASE_DOMAIN}``) from the configured S3, running the
CloudFront viewer function and the Lambda@Edge origin handler as CloudFront would (docs/edge.md)."""

from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from edge.local import BLOB_CACHE_BYTES
from operations.local_edge import DEFAULT_PORT, make_edge_server


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = (
        "Serve every pipeline's live build by Host header ({name}.localhost:PORT), through the same viewer "
        "function and origin handler as CloudFront, from the configured S3 and the pointers in the database."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT}; 0 = any free)"
        )
        parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument(
            "--sites-url",
            default="",
            help="the service's address (e.g. http://127.0.0.1:8000/): its 404 pages link to the list of sites there",
        )
        parser.add_argument("--quiet", action="store_true", help="no access log")
        parser.add_argument(
            "--no-blob-cache",
            action="store_true",
            help="fetch every answer's blob from S3 (by default blobs, immutable by their content key, are "
            "kept in memory once fetched, as CloudFront's cache would; manifests are cached either way)",
        )

    def handle(self, *args, port: int, bind: str, sites_url: str, quiet: bool, no_blob_cache: bool, **options):
        try:
            server = make_edge_server(
                bind, port, sites_url=sites_url, quiet=quiet, blob_cache_bytes=0 if no_blob_cache else BLOB_CACHE_BYTES
            )
        except OSError as exc:
            raise CommandError(f"cannot listen on {bind}:{port}: {exc} (use --port)") from exc
        bound = server.server_address[1]
        shown = f"[{bind}]" if ":" in bind else bind
        self.stdout.write(
            f"local edge on http://{shown}:{bound}/ serving bucket {settings.TROY_LIVE_BUCKET} "
            f"({settings.AWS_ENDPOINT_URL or 'AWS'})\n"
            f"  sites  http://{{name}}.localhost:{bound}/  (also Host: {{name}}.{settings.TROY_BASE_DOMAIN})\n"
            f"  curl -H 'Host: NAME.localhost' http://{shown}:{bound}/\n"
            "Press Ctrl-C to stop."
        )
        self.stdout.flush()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _interrupt)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("stopping the local edge")
        finally:
            server.server_close()

"""The local edge as this service runs it (``manage.py edge`` and the dev run): edge.local's
server over the configured S3 and live bucket, with the pointers read from the database
(``EdgePointer`` rows, the same rows the CloudFront KeyValueStore is a projection of)."""

from __future__ import annotations

from dataclasses import dataclass
import errno
import threading

from django.conf import settings
from django.db import close_old_connections, connections

from deployment_service import aws
from edge.local import LocalEdge, LocalEdgeServer
from pipelines.selectors import edge_pointer_value

DEFAULT_PORT = 8001


def make_local_edge(*, sites_url: str = "") -> LocalEdge:
    """One S3 client for every request thread (boto3 clients are thread-safe; making one per
    connection thread would cost more than the request)."""
    return LocalEdge(edge_pointer_value, aws.client("s3"), settings.TROY_LIVE_BUCKET, sites_url=sites_url)


def make_edge_server(
    host: str, port: int, *, sites_url: str = "", quiet: bool = False, edge: LocalEdge | None = None
) -> LocalEdgeServer:
    """Listening on (host, port); OSError when the address is taken. Each request thread reads
    the pointers through Django's ORM: stale connections are dropped before each request as
    Django's request_started does (CONN_MAX_AGE, health checks), and a connection's thread closes
    its database connections when it ends, so threads never leak them."""
    return LocalEdgeServer(
        (host.strip("[]"), port),
        edge or make_local_edge(sites_url=sites_url),
        quiet=quiet,
        after_request=close_old_connections,
        at_thread_exit=connections.close_all,
    )


def bind_edge_server(host: str, port: int, **kwargs) -> LocalEdgeServer:
    """The server on ``port``, or on any free port when that one is taken (the dev run's choice:
    a second checkout running beside the first still gets an edge)."""
    try:
        return make_edge_server(host, port, **kwargs)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or port == 0:
            raise
        return make_edge_server(host, 0, **kwargs)


@dataclass
class RunningEdge:
    server: LocalEdgeServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_edge_server(server: LocalEdgeServer) -> RunningEdge:
    thread = threading.Thread(target=server.serve_forever, name="troy-local-edge", daemon=True)
    thread.start()
    return RunningEdge(server=server, thread=thread)

"""The local edge as this service runs it (``manage.py edge`` and the dev run): edge.local's
server over the configured S3 and live bucket, with the pointers read from the database
(``EdgePointer`` rows, the same rows the CloudFront KeyValueStore is a projection of)."""

from __future__ import annotations

from dataclasses import dataclass
import errno
import threading
from typing import Any

from django.conf import settings
from django.db import connections

from deployment_service import aws
from edge.local import BLOB_CACHE_BYTES, LocalEdge, LocalEdgeServer
from pipelines.selectors import edge_pointer_value

DEFAULT_PORT = 8001


def make_local_edge(*, sites_url: str = "", blob_cache_bytes: int = BLOB_CACHE_BYTES) -> LocalEdge:
    """One S3 client for every request thread (boto3 clients are thread-safe; making one per
    connection thread would cost more than the request)."""
    return LocalEdge(
        edge_pointer_value,
        aws.client("s3"),
        settings.TROY_LIVE_BUCKET,
        sites_url=sites_url,
        blob_cache_bytes=blob_cache_bytes,
    )


def make_edge_server(
    host: str,
    port: int,
    *,
    sites_url: str = "",
    quiet: bool = False,
    blob_cache_bytes: int = BLOB_CACHE_BYTES,
    edge: LocalEdge | None = None,
) -> LocalEdgeServer:
    """Listening on (host, port); OSError when the address is taken. Each connection's thread
    reads the pointers through Django's ORM on a database connection of its own, kept while the
    client keeps the connection alive and closed when the thread ends, so threads never leak
    them. Not Django's per-request close_old_connections: with SQLite (CONN_MAX_AGE=0) it would
    reconnect, PRAGMAs included, for every request, ~1 ms of an answer that otherwise takes two."""
    return LocalEdgeServer(
        (host.strip("[]"), port),
        edge or make_local_edge(sites_url=sites_url, blob_cache_bytes=blob_cache_bytes),
        quiet=quiet,
        after_request=drop_broken_connections,
        at_thread_exit=connections.close_all,
    )


def drop_broken_connections() -> None:
    """After a request: a database connection that raised and no longer answers is closed, so
    the next request of the same keep-alive connection reconnects (a restarted PostgreSQL)."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and connection.errors_occurred and not connection.is_usable():
            connection.close()


def bind_edge_server(host: str, port: int, **kwargs: Any) -> LocalEdgeServer:
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

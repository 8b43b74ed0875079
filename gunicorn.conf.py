"""gunicorn's configuration for Troy's web process: ``gunicorn -c gunicorn.conf.py deployment_service.wsgi``.

Chosen for the two kinds of request that stall a sync worker: release uploads of hundreds of MB
from clients on ordinary links, and clients that send their headers (or bodies) slowly. Every
value can be overridden from the environment (below) or on the command line.
"""

import multiprocessing
import os


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


# GUNICORN_BIND wins (e.g. "unix:/run/troy.sock" behind a proxy); else PORT, as PaaS hosts set it.
bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"

# Threaded workers: a slow client (headers trickling in, a 300 MB upload at 8 MB/s) occupies one
# thread, not a whole process, and the worker's main loop keeps accepting and answering /healthz
# on the other threads. Sync workers serve one request per process, so three slow clients were
# enough to make /healthz unreachable. Django is thread-safe; database connections are per thread.
worker_class = "gthread"
# A few processes (CPU for zip checks and JSON) each with many threads (mostly waiting on sockets).
# The default stays modest: each process holds up to `threads` database connections.
workers = _env_int("GUNICORN_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 8))
threads = _env_int("GUNICORN_THREADS", 16)

# For gthread workers `timeout` is the worker's heartbeat to the arbiter, sent from the main loop
# while threads serve requests: it kills a worker that is wedged (the main loop blocked), not a
# long request. A long upload therefore cannot trip it however slowly it arrives; 60 s still leaves
# room for a main loop briefly starved by a busy CPU. (With sync workers the same setting is the
# whole request's deadline: the 30 s default killed a 300 MB upload at 8 MB/s.)
timeout = _env_int("GUNICORN_TIMEOUT", 60)
# On SIGTERM (deploy, scale-down) requests in flight, uploads included, get this long to finish.
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 60)
# Idle keep-alive connections are held (by the poller, not a thread) this long: long enough for a
# CLI's or a load balancer's next request on the same connection, short enough not to pile up.
# Keep it above the load balancer's idle timeout when there is one, so gunicorn never closes first.
keepalive = _env_int("GUNICORN_KEEPALIVE", 75)

# Header limits: a request line or header longer than any Troy URL or token is refused with 400
# before Django sees it (the defaults are 4094 bytes, 100 fields, 8190 bytes per field).
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190

# The heartbeat file lives in memory, not on a disk that a container may mount slowly or read-only.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# One access line per request on stdout, errors on stderr: the container's log collector takes both.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"

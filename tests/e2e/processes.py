"""Real processes for the end-to-end tests: a moto server, a PostgreSQL database of the test's own,
gunicorn and ``manage.py rundramatiq`` on the real broker. Every process runs in its own session
(process group) so stopping it also stops the children it forked (gunicorn and Dramatiq workers)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import os
from pathlib import Path
import secrets
import signal
import socket
import subprocess
import sys
import time
from typing import TypeVar

from django.conf import settings
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15) -> None:
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)
        except ProcessLookupError:
            pass


@dataclass
class Processes:
    """The processes one test started; ``logs()`` goes into every failure message."""

    workdir: Path
    env: dict[str, str]
    started: list[Process] = field(default_factory=list)

    def start(self, name: str, *args: str) -> Process:
        log_path = self.workdir / f"{name}.log"
        log = open(log_path, "wb")  # noqa: SIM115 (closed right after Popen has its own copy of the descriptor)
        popen = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        process = Process(name, popen, log_path)
        self.started.append(process)
        return process

    def run(self, name: str, *args: str, timeout: float = 120) -> str:
        """Run a command to completion; its output, or a failure with the output."""
        result = subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise AssertionError(f"`{' '.join(args)}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()

    def logs(self) -> str:
        parts = []
        for process in self.started:
            state = "running" if process.alive() else f"exited {process.popen.returncode}"
            parts.append(f"----- {process.name} ({state}), last lines of {process.log_path} -----\n{process.tail()}")
        return "\n".join(parts)

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout: float = 180, interval: float = 0.5) -> T:
        """Poll ``probe`` until it returns something truthy; fail with every process's log. The default
        limit is generous: under pytest-xdist another worker shares the cores with these processes."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            for process in self.started:
                if not process.alive() and process.name != "migrate":
                    raise AssertionError(f"{process.name} died while waiting for {what}\n{self.logs()}")
            try:
                last = probe()
            except AssertionError:
                raise
            except Exception as exc:  # a probe may fail while a server is still starting
                last = exc
            else:
                if last:
                    return last
            time.sleep(interval)
        raise AssertionError(f"{what}: not reached in {timeout:.0f} s (last: {last!r})\n{self.logs()}")


# --- PostgreSQL ---------------------------------------------------------------------------------


def postgres_admin_conninfo() -> dict:
    """Connection arguments for the maintenance database of the server the settings point at."""
    db = settings.DATABASES["default"]
    args = {
        "dbname": "postgres",
        "host": db.get("HOST") or "127.0.0.1",
        "user": db.get("USER") or "postgres",
        "autocommit": True,
    }
    if db.get("PORT"):
        args["port"] = int(db["PORT"])
    if db.get("PASSWORD"):
        args["password"] = db["PASSWORD"]
    return args


def postgres_url(name: str) -> str:
    db = settings.DATABASES["default"]
    auth = db.get("USER") or "postgres"
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{name}"


def create_database() -> str:
    name = f"troy_e2e_{secrets.token_hex(4)}"
    with psycopg.connect(**postgres_admin_conninfo()) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(name: str) -> None:
    with psycopg.connect(**postgres_admin_conninfo()) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --- the broker ---------------------------------------------------------------------------------

TROY_QUEUES = ("troy", "troy-deploy")


def purge_rabbitmq_queues(url: str) -> None:
    """RabbitMQ queues are shared by everyone on the vhost: start from empty ones."""
    import logging

    import pika

    logging.getLogger("pika").setLevel(logging.WARNING)  # pika logs every channel at INFO
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        for queue in TROY_QUEUES:
            for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
                channel = connection.channel()
                try:
                    channel.queue_purge(name)
                except pika.exceptions.ChannelClosedByBroker:  # 404: not declared yet, nothing to purge
                    continue
                channel.close()
    finally:
        connection.close()

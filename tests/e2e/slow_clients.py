"""Slow HTTP clients over raw sockets, for the web tier's test and benchmark: clients that trickle
their headers, and a release upload sent at a fixed rate."""

from __future__ import annotations

import io
import secrets
import socket
import threading
import time
import zipfile


def release_zip(size_bytes: int) -> bytes:
    """A valid site zip of about ``size_bytes``: random (incompressible) bytes, stored."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("index.html", b"<h1>big</h1>")
        zf.writestr("blob.bin", secrets.token_bytes(size_bytes))
    return buffer.getvalue()


class SlowHeaderClient(threading.Thread):
    """Opens a connection and sends one header byte per ``interval`` seconds until stopped."""

    def __init__(self, host: str, port: int, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.host, self.port, self.interval = host, port, interval
        self.stopped = threading.Event()
        self.bytes_sent = 0

    def run(self) -> None:
        with socket.create_connection((self.host, self.port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            header = b"X-Slow: " + b"a" * 4000
            for byte in header:
                if self.stopped.wait(self.interval):
                    return
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    return
                self.bytes_sent += 1


def slow_upload(
    host: str, port: int, *, path: str, token: str, zip_bytes: bytes, rate_bytes_per_second: int, version: str
) -> tuple[int, bytes, float]:
    """POST a release as multipart at about the given rate; (status, body, seconds taken)."""
    boundary = secrets.token_hex(16)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="version"\r\n\r\n{version}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="site.zip"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body_length = len(head) + len(zip_bytes) + len(tail)
    request_head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {body_length}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=120) as sock:
        sock.sendall(request_head + head)
        chunk = max(rate_bytes_per_second // 20, 1)
        view = memoryview(zip_bytes)
        for offset in range(0, len(zip_bytes), chunk):
            sock.sendall(view[offset : offset + chunk])
            due = started + (offset + chunk) / rate_bytes_per_second
            time.sleep(max(0.0, due - time.monotonic()))
        sock.sendall(tail)
        answer = b""
        while True:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    status = int(answer.split(b" ", 2)[1]) if answer else 0
    return status, answer.split(b"\r\n\r\n", 1)[-1], time.monotonic() - started


def healthz_probe(host: str, port: int, *, timeout: float) -> tuple[int, float]:
    """One GET /healthz on a fresh connection: (status, seconds)."""
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = b""
        while True:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    return int(answer.split(b" ", 2)[1]), time.monotonic() - started

"""A streamed ``multipart/form-data`` body: a file-like object that requests sends in blocks,
reading the zip from disk as it goes (never the whole file in memory) and reporting progress.

It has a length, so requests sends ``Content-Length`` (not chunked encoding, which some WSGI
servers refuse) and the server can turn away an oversized upload before reading it all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import io
import os
import secrets
from typing import BinaryIO

Progress = Callable[[int, int], None]


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


class MultipartFile:
    def __init__(
        self,
        path: str | os.PathLike,
        *,
        fields: dict[str, str],
        file_field: str = "file",
        filename: str | None = None,
        content_type: str = "application/zip",
        progress: Progress | None = None,
    ) -> None:
        self.boundary = f"troy-{secrets.token_hex(16)}"
        dash = f"--{self.boundary}\r\n"
        head = "".join(
            f'{dash}Content-Disposition: form-data; name="{_quote(name)}"\r\n\r\n{value}\r\n'
            for name, value in fields.items()
        )
        filename = filename or os.path.basename(path)
        head += (
            f'{dash}Content-Disposition: form-data; name="{_quote(file_field)}"; '
            f'filename="{_quote(filename)}"\r\nContent-Type: {content_type}\r\n\r\n'
        )
        tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.file_size = os.path.getsize(path)
        self._file: BinaryIO = open(path, "rb")  # noqa: SIM115 — closed by close()
        self._parts: list[BinaryIO] = [io.BytesIO(head.encode()), self._file, io.BytesIO(tail)]
        self._length = len(head.encode()) + self.file_size + len(tail)
        self._sent = 0
        self._progress = progress

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._length
        chunks = []
        while size > 0 and self._parts:
            chunk = self._parts[0].read(size)
            if not chunk:
                self._parts.pop(0)
                continue
            chunks.append(chunk)
            size -= len(chunk)
        data = b"".join(chunks)
        self._sent += len(data)
        if self._progress is not None and data:
            self._progress(self._sent, self._length)
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(256 * 1024):
            yield chunk

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> MultipartFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

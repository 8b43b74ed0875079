"""The upload body: a well-formed multipart form, read from disk in blocks (never whole)."""

from __future__ import annotations

import email.parser
import email.policy
import os
import tracemalloc

from troy_cli.multipart import MultipartFile


def test_the_body_is_a_multipart_form_with_the_fields_and_the_file(tmp_path):
    payload = os.urandom(300_000)
    (tmp_path / "site.zip").write_bytes(payload)
    seen: list[tuple[int, int]] = []

    with MultipartFile(
        tmp_path / "site.zip",
        fields={"version": "v1", "deploy": "true"},
        progress=lambda sent, total: seen.append((sent, total)),
    ) as body:
        raw = b"".join(iter(lambda: body.read(16384), b""))
        assert len(raw) == len(body)
        content_type = body.content_type

    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    parts = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
    assert parts["version"].get_content() == "v1" and parts["deploy"].get_content() == "true"
    assert parts["file"].get_filename() == "site.zip"
    assert parts["file"].get_content_type() == "application/zip"
    assert parts["file"].get_payload(decode=True) == payload
    assert seen[-1] == (len(raw), len(raw)) and len(seen) > 10  # progress as it goes


def test_reading_a_large_file_holds_one_block_at_a_time(tmp_path):
    path = tmp_path / "big.zip"
    with open(path, "wb") as fh:
        for _ in range(16):
            fh.write(os.urandom(1024 * 1024))  # 16 MB

    with MultipartFile(path, fields={"deploy": "false"}) as body:
        tracemalloc.start()
        try:
            sent = 0
            while chunk := body.read(64 * 1024):
                sent += len(chunk)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert sent == len(body) > 16 * 1024 * 1024
    assert peak < 2 * 1024 * 1024

"""The upload handler for release zips: streamed to a temporary file, never held in memory,
refused with 413 as soon as it is known to be too large.

Checked twice: the request's Content-Length before a byte is read (an honest client learns at
once), then the bytes actually received, counted as they stream (a chunked or lying client is
stopped as soon as it passes the limit). The sha256 and size are taken on the way through, so
the service does not read the file again for them.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from releases.exceptions import UploadTooLarge

# Multipart boundaries, headers and the small form fields around the file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class ReleaseUploadHandler(TemporaryFileUploadHandler):
    def __init__(self, request=None, *, max_bytes: int | None = None) -> None:
        super().__init__(request)
        self.max_bytes = settings.TROY_UPLOAD_MAX_BYTES if max_bytes is None else max_bytes
        self.received = 0
        self.digest = hashlib.sha256()

    def _too_large(self) -> UploadTooLarge:
        return UploadTooLarge(
            f"The upload is larger than the limit of {self.max_bytes} bytes.",
            extra={"limit": self.max_bytes},
        )

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > self.max_bytes + MULTIPART_OVERHEAD_BYTES:
            raise self._too_large()
        return None

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        # ``received`` counts every file of the request: the limit is on the request, not per part.
        self.digest = hashlib.sha256()

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            self.file.close()  # a NamedTemporaryFile: closing removes it
            raise self._too_large()
        self.digest.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.sha256 = self.digest.hexdigest()
        return uploaded
